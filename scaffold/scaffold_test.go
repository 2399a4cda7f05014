package scaffold_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/scaffold"
	"github.com/circlecore/circle/secrets"
)

func options(t *testing.T, envs ...string) scaffold.Options {
	keys := t.TempDir()
	return scaffold.Options{Envs: envs, Service: "shop", AgeKeyFile: filepath.Join(keys, "age.agekey"),
		IssuerKeyFile: filepath.Join(keys, "issuer.key"), Now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
}

// What Make writes runs through the whole pipeline as made, with the key it made: every
// environment builds, with its claim and Ingress, and its secrets open.
func TestMake_RunsThroughThePipeline(t *testing.T) {
	o := options(t, "dev", "qa", "live")
	r, err := scaffold.Make(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := r.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	var ring secrets.Keyring
	if err := ring.AddFile(o.AgeKeyFile); err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Run(context.Background(), os.DirFS(dir), pipeline.Options{Load: repo.Options{Keyring: &ring}, Now: o.Now.Add(time.Hour)})
	if err != nil {
		t.Fatalf("%v\n%v", err, res.Problems)
	}
	if len(res.Outputs) != 3 || len(res.Failed) != 0 {
		t.Fatalf("built %d, failed %v", len(res.Outputs), res.Failed)
	}
	for _, out := range res.Outputs {
		m := string(out.Manifests)
		for _, want := range []string{"kind: PersistentVolumeClaim", "kind: Ingress", "claimName: shop-data", "namespace: shop-" + out.Env} {
			if !strings.Contains(m, want) {
				t.Errorf("%s's manifests lack %q", out.Env, want)
			}
		}
		if out.File("licenses/shop.lic") == nil {
			t.Errorf("%s carries no license", out.Env)
		}
	}
	if !strings.Contains(string(res.Output("dev").Manifests), "host: shop.dev.example.com") ||
		!strings.Contains(string(res.Output("live").Manifests), "host: shop.example.com") ||
		!strings.Contains(string(res.Output("live").Manifests), "storage: 10Gi") {
		t.Error("each environment's host and the last one's size are not its own")
	}
	if pw := res.Repo.Env("dev").Config["db"].(map[string]any)["password"]; len(pw.(string)) != 32 {
		t.Errorf("dev's password: %d characters, want 32 hex", len(pw.(string)))
	}
	if res.Repo.Env("dev").Config["db"].(map[string]any)["password"] == res.Repo.Env("qa").Config["db"].(map[string]any)["password"] {
		t.Error("two environments share a password")
	}
	for _, f := range []string{o.AgeKeyFile, o.IssuerKeyFile} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".sops.yaml")); !strings.Contains(string(b), "age1") {
		t.Errorf(".sops.yaml:\n%s", b)
	}
	if paths := r.Paths(); paths[0] != ".github/workflows/circle.yml" || len(paths) != len(r.Files) {
		t.Errorf("Paths: %v", paths)
	}
}

// Write never overwrites: a file in the way is the error, named, and nothing is written,
// the keys included.
func TestWrite_NeverOverwrites(t *testing.T) {
	o := options(t)
	r, err := scaffold.Make(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "config", "base"), 0o755)
	os.WriteFile(filepath.Join(dir, "config", "base", "app.yaml"), []byte("mine\n"), 0o644)
	err = r.Write(dir, o)
	if !errors.Is(err, scaffold.ErrExists) || !strings.Contains(err.Error(), filepath.Join(dir, "config", "base", "app.yaml")) {
		t.Fatalf("err %v, want ErrExists naming the file", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config", "base", "app.yaml")); string(b) != "mine\n" {
		t.Error("the file was overwritten")
	}
	if _, err := os.Stat(filepath.Join(dir, "circle.yaml")); err == nil {
		t.Error("a refused Write wrote circle.yaml")
	}
	if _, err := os.Stat(o.AgeKeyFile); err == nil {
		t.Error("a refused Write wrote the key")
	}
	// The key file in the way is refused the same.
	o2 := options(t)
	os.WriteFile(o2.AgeKeyFile, []byte("old key\n"), 0o600)
	if err := r.Write(t.TempDir(), o2); !errors.Is(err, scaffold.ErrExists) {
		t.Errorf("over an existing key: %v", err)
	}
}

func TestMake_Refusals(t *testing.T) {
	for _, c := range []struct {
		o    scaffold.Options
		want string
	}{
		{scaffold.Options{Envs: []string{"dev", "Prod"}}, `--env "Prod"`},
		{scaffold.Options{Envs: []string{"dev", "dev"}}, `--env "dev": named twice`},
		{scaffold.Options{Service: "My Service"}, `--service "My Service"`},
	} {
		if _, err := scaffold.Make(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	r, err := scaffold.Make(scaffold.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Files["deploy/staging/kustomization.yaml"] == nil || r.Files["packages/web/1.0.0.yaml"] == nil {
		t.Error("the defaults are not dev, staging, prod and the service web")
	}
}

// A write that fails half-way takes back the files it wrote.
func TestWrite_FailureTakesBack(t *testing.T) {
	base := t.TempDir()
	os.WriteFile(filepath.Join(base, "zz"), []byte("a file, not a folder\n"), 0o644)
	o := options(t)
	o.IssuerKeyFile = filepath.Join(base, "zz", "issuer.key") // sorts after the repository
	r, err := scaffold.Make(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "aa")
	if err := r.Write(dir, o); err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(filepath.Join(dir, "circle.yaml")); err == nil {
		t.Error("circle.yaml stayed after the write failed")
	}
}
