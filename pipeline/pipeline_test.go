package pipeline_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const canary = "canary-7f3e9b1c-do-not-leak"

func keyring(t *testing.T) *secrets.Keyring {
	t.Helper()
	k := &secrets.Keyring{}
	if err := k.AddFile("../examples/keys/age.example.key"); err != nil {
		t.Fatal(err)
	}
	return k
}

func revision(t *testing.T, dir string) *pipeline.Result {
	t.Helper()
	res, err := pipeline.Run(context.Background(), os.DirFS(dir), pipeline.Options{
		Load: repo.Options{Keyring: keyring(t)}, Now: now})
	if _, invalid := errors.AsType[*repo.Invalid](err); err != nil && !invalid {
		t.Fatal(err)
	}
	return res
}

// The example repository builds for its three environments: config, license files,
// manifests with the generated objects, and the package index; secrets only inside the
// Secret's data.
func TestRun_Examples(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	testenv.SOPSEncrypt(t, dir, "secrets/prod.sops.yaml", "db:\n  password: "+canary+"\n")
	res := revision(t, dir)
	if len(res.Problems) > 0 || len(res.Failed) > 0 {
		t.Fatalf("problems %v, failed %v", res.Problems, res.Failed)
	}
	var names []string
	for _, o := range res.Outputs {
		names = append(names, o.Env)
	}
	if strings.Join(names, ",") != "dev,staging,prod" {
		t.Fatalf("outputs %v, want circle.yaml's order", names)
	}
	prod := res.Output("prod")
	var paths []string
	for _, f := range prod.Files {
		paths = append(paths, f.Path)
	}
	want := "config.json,licenses/circle-demo.lic,licenses/issuers.pub,licenses/revoked.list,manifests.yaml,packages/index.json"
	if strings.Join(paths, ",") != want {
		t.Errorf("prod files\n got %s\nwant %s", strings.Join(paths, ","), want)
	}
	m := string(prod.Manifests)
	for _, s := range []string{"name: circle-config-", "name: circle-secrets-", "name: circle-licenses", "kind: Deployment"} {
		if !strings.Contains(m, s) {
			t.Errorf("prod manifests lack %q", s)
		}
	}
	if strings.Contains(m, canary) {
		t.Error("the secret is in the manifests in plain text (it belongs base64-encoded in the Secret's data)")
	}
	if f := prod.File("config.json"); f == nil || !strings.Contains(string(f.Data), canary) {
		t.Error("config.json should carry the decrypted secret (it is only ever stored encrypted)")
	}
	if prod.File("nope") != nil || res.Output("nope") != nil {
		t.Error("lookup of a missing file or environment should be nil")
	}
	if prod.Packages == nil || !prod.Packages.Resolved || prod.Packages.Lock == nil {
		t.Errorf("prod packages: %+v", prod.Packages)
	}
	if len(res.Licenses.Status) != 1 || res.Licenses.Status[0].State == "" {
		t.Errorf("licenses: %+v", res.Licenses.Status)
	}
}

// Problems of the repository come back in the result with their position, and nothing is
// built.
func TestRun_Invalid(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	testenv.WriteFile(t, dir, "config/prod/db.yaml", "db:\n  port: not-a-number\n")
	res := revision(t, dir)
	if len(res.Problems) == 0 || len(res.Outputs) != 0 {
		t.Fatalf("problems %v, outputs %d", res.Problems, len(res.Outputs))
	}
	if p := res.Problems[0]; p.File != "config/prod/db.yaml" || p.Line != 2 {
		t.Errorf("problem at %s:%d, want config/prod/db.yaml:2: %v", p.File, p.Line, p)
	}

	dir = testenv.CopyTree(t, "../examples")
	testenv.WriteFile(t, dir, "circle.yaml", "apiVersion: circle/v1\nenvironments: 3\n")
	if res := revision(t, dir); len(res.Problems) == 0 || res.Settings != nil {
		t.Errorf("a bad circle.yaml: problems %v", res.Problems)
	}

	dir = testenv.CopyTree(t, "../examples")
	testenv.WriteFile(t, dir, "packages/api/1.3.0.yaml", "name: api\nversion: 1.2.0\nlicense: MIT\n")
	if res := revision(t, dir); len(res.Problems) == 0 || res.Problems[0].File != "packages/api/1.3.0.yaml" {
		t.Errorf("a bad package manifest: problems %v", res.Problems)
	}
}

// A build fails closed per environment: packages that do not resolve fail prod, a
// license its policy does not allow fails dev, an overlay that does not render fails
// staging; each failure is its environment's alone.
func TestRun_FailsClosed(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	// api 1.2.0 needs worker ^0.3.0: asking for worker ^0.4.0 beside it cannot resolve.
	testenv.WriteFile(t, dir, "packages/worker/0.4.0.yaml", "name: worker\nversion: 0.4.0\nlicense: MIT\n")
	testenv.WriteFile(t, dir, "packages/environments.yaml", "environments:\n  prod:\n    requires:\n      api: ~1.2.0\n      worker: ^0.4.0\n"+
		"  dev:\n    requires:\n      api: ^1.2.0\n    licenses:\n      allow: [MIT]\n")
	testenv.WriteFile(t, dir, "deploy/staging/kustomization.yaml", "resources:\n  - missing.yaml\n")
	res := revision(t, dir)
	if len(res.Problems) > 0 {
		t.Fatal(res.Problems)
	}
	if !strings.Contains(res.Failed["prod"].Message, "do not resolve") || !strings.Contains(res.Failed["staging"].Message, "missing.yaml") ||
		!strings.Contains(res.Failed["dev"].Message, "packages fail the dev policy: api@1.2.0: license Apache-2.0") {
		t.Errorf("failed: %v", res.Failed)
	}
	for env, f := range res.Failed {
		if f.Stage != pipeline.StageBuild {
			t.Errorf("%s failed at %q, want the build stage", env, f.Stage)
		}
	}
	// The render failure is placed where the user wrote it.
	if f := res.Failed["staging"]; f.File != "deploy/staging/kustomization.yaml" || f.Line != 2 {
		t.Errorf("staging failure at %s:%d, want deploy/staging/kustomization.yaml:2", f.File, f.Line)
	}
	if len(res.Outputs) != 0 {
		t.Error("no environment should have built")
	}
}

// A license that does not verify refuses the environments it applies to.
func TestRun_LicenseRefused(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	b, err := os.ReadFile(dir + "/licenses/circle-demo.lic")
	if err != nil {
		t.Fatal(err)
	}
	testenv.WriteFile(t, dir, "licenses/circle-demo.lic", strings.Replace(string(b), "Signature: nQN9", "Signature: nQN8", 1))
	res := revision(t, dir)
	if len(res.Outputs) != 0 || !strings.Contains(res.Failed["prod"].Message, "license licenses/circle-demo.lic") || res.Failed["prod"].Stage != pipeline.StageLicenses {
		t.Errorf("outputs %d, failed %v", len(res.Outputs), res.Failed)
	}
}
