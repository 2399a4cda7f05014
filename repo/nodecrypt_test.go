package repo_test

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/schema"
)

// Without keys, the examples load: each secret stands in as its type and is listed as not
// decrypted, the plain values are the real ones, and Split still puts the secrets' paths in
// the Secret.
func TestLoad_NoDecrypt(t *testing.T) {
	fsys := examples(t)
	fsys["secrets/prod.sops.yaml"] = &fstest.MapFile{Data: encryptCanary(t, "db:\n  password: "+Canary+"\n  port: 6543\n")}
	r, inv := load(t, fsys, repo.Options{NoDecrypt: true})
	if inv != nil {
		t.Fatalf("problems: %v", inv.Problems)
	}
	prod := r.Env("prod")
	db := prod.Config["db"].(map[string]any)
	if db["password"] != schema.NotDecrypted || db["host"] != "db.prod.internal" {
		t.Errorf("prod's db: %v", db)
	}
	if db["port"] != schema.NotDecrypted {
		t.Errorf("an int secret: %v, want it unknown", db["port"])
	}
	if !slices.Contains(prod.NotDecrypted, "db.password") || !slices.Contains(prod.NotDecrypted, "db.port") {
		t.Errorf("NotDecrypted %v", prod.NotDecrypted)
	}
	plain, sensitive := prod.Split()
	if _, ok := plain["db"].(map[string]any)["password"]; ok {
		t.Error("the secret's path is in the ConfigMap's half")
	}
	if sensitive["db"].(map[string]any)["password"] != schema.NotDecrypted {
		t.Errorf("the Secret's half: %v", sensitive)
	}
	for _, e := range r.Envs {
		if strings.Contains(strings.Join(e.NotDecrypted, ","), Canary) {
			t.Error("a path holds the secret")
		}
	}
	if strings.Contains(prod.Config["db"].(map[string]any)["password"].(string), Canary) {
		t.Error("the secret was decrypted")
	}
}

// What can be checked without keys is: a plain value against the schema, a missing
// required field, a field not allowed, and a secret whose type tag the schema refuses.
func TestLoad_NoDecryptProblems(t *testing.T) {
	for _, c := range []struct {
		name, file, content, want string
	}{
		{"plain value", "config/prod/db.yaml", "db:\n  host: db.prod.internal\n  name: shop_prod\n  port: \"x\"\n", "config/prod/db.yaml:4:9: db.port"},
		{"missing", "config/base/db.yaml", "db:\n  port: 5432\n", "db.host"},
		{"not allowed", "config/prod/db.yaml", "db:\n  host: db.prod.internal\n  name: shop_prod\n  hots: x\n", "db.hots: field not allowed"},
		{"secret's type", "secrets/prod.sops.yaml", "", "secrets/prod.sops.yaml:2:15: db.password: conflicting values string and int"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := examples(t)
			data := []byte(c.content)
			if c.file == "secrets/prod.sops.yaml" {
				data = encryptCanary(t, "db:\n  password: 12345\n") // an int where the schema wants a string
			}
			fsys[c.file] = &fstest.MapFile{Data: data}
			_, inv := load(t, fsys, repo.Options{NoDecrypt: true})
			if inv == nil {
				t.Fatal("no problem")
			}
			var all []string
			for _, p := range inv.Problems {
				all = append(all, p.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), c.want) {
				t.Errorf("problems:\n%s\nwant %q", strings.Join(all, "\n"), c.want)
			}
		})
	}
}

// Every type tag stands in as its type: a bool where the schema wants a string is a
// conflict at the secret's line; an int, a float and a list are accepted as what the
// schema allows and listed as not decrypted.
func TestLoad_NoDecryptTypes(t *testing.T) {
	fsys := examples(t)
	fsys["schema/extra.cue"] = &fstest.MapFile{Data: []byte("package circle\n#Config: {limits?: {n: int, ratio: number, on: bool, hosts: [...string]}}\n")}
	fsys["secrets/dev.sops.yaml"] = &fstest.MapFile{Data: encryptCanary(t, "db:\n  password: pw\nlimits:\n  n: 3\n  ratio: 0.25\n  on: true\n  hosts: [a, b]\n")}
	r, inv := load(t, fsys, repo.Options{NoDecrypt: true, Envs: []string{"dev"}})
	if inv != nil {
		t.Fatalf("problems: %v", inv.Problems)
	}
	got := strings.Join(r.Env("dev").NotDecrypted, ",")
	for _, p := range []string{"limits.n", "limits.ratio", "limits.on", "limits.hosts", "db.password"} {
		if !strings.Contains(got, p) {
			t.Errorf("NotDecrypted %s lacks %s", got, p)
		}
	}
	fsys["secrets/dev.sops.yaml"] = &fstest.MapFile{Data: encryptCanary(t, "db:\n  password: true\n")}
	if _, inv := load(t, fsys, repo.Options{NoDecrypt: true, Envs: []string{"dev"}}); inv == nil ||
		!strings.Contains(inv.Problems[0].String(), "secrets/dev.sops.yaml:2:") {
		t.Errorf("a bool for a string: %v", inv)
	}
	// A file that is not SOPS under secrets/ is refused without keys too.
	fsys["secrets/dev.sops.yaml"] = &fstest.MapFile{Data: []byte("db:\n  password: plain\n")}
	if _, inv := load(t, fsys, repo.Options{NoDecrypt: true, Envs: []string{"dev"}}); inv == nil || !strings.Contains(inv.Error(), "not encrypted with SOPS") {
		t.Errorf("a plaintext secrets file: %v", inv)
	}
}

// The configuration's kubernetes key is judged by Circle's schema and kept apart: its
// values and their origins on the environment, none of it in Config; one from a SOPS file
// is refused.
func TestLoad_KubernetesKey(t *testing.T) {
	fsys := examples(t)
	fsys["config/base/kubernetes.yaml"] = &fstest.MapFile{Data: []byte("kubernetes:\n  volumes:\n    data: {size: 2Gi}\n")}
	r, inv := load(t, fsys, repo.Options{Keyring: exampleKeys(t), Envs: []string{"dev"}})
	if inv != nil {
		t.Fatalf("problems: %v", inv.Problems)
	}
	dev := r.Env("dev")
	if _, ok := dev.Config["kubernetes"]; ok || dev.Kubernetes["volumes"] == nil {
		t.Errorf("Config %v, Kubernetes %v", dev.Config, dev.Kubernetes)
	}
	if o, ok := dev.KubernetesOrigin("volumes.data.size"); !ok || o.File != "config/base/kubernetes.yaml" || o.Line != 3 {
		t.Errorf("origin %+v %v", o, ok)
	}
	if _, ok := r.Env("dev").KubernetesOrigin("volumes.none"); ok {
		t.Error("an origin for nothing")
	}
	fsys["config/base/kubernetes.yaml"] = &fstest.MapFile{Data: []byte("kubernetes:\n  volumes:\n    data: {size: 2Gi, sise: 3}\n")}
	if _, inv := load(t, fsys, repo.Options{Keyring: exampleKeys(t), Envs: []string{"dev"}}); inv == nil || !strings.Contains(inv.Error(), "kubernetes.volumes.data.sise") {
		t.Errorf("a misspelt key: %v", inv)
	}
	delete(fsys, "config/base/kubernetes.yaml")
	fsys["secrets/dev.sops.yaml"] = &fstest.MapFile{Data: encryptCanary(t, "kubernetes:\n  volumes:\n    data: {size: 2Gi}\n")}
	if _, inv := load(t, fsys, repo.Options{Keyring: exampleKeys(t), Envs: []string{"dev"}}); inv == nil || !strings.Contains(inv.Error(), "cannot come from a SOPS file") {
		t.Errorf("from SOPS: %v", inv)
	}
}
