package render_test

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/circlecore/circle/render"
)

// realworld holds kustomize trees with the `kustomize build` output they must give.
const realworld = "../../shared/realworld/kustomize"

// Overlays that need no Circle additions render byte for byte as the kustomize CLI does.
func TestRender_RealWorldMatchesKustomize(t *testing.T) {
	if _, err := os.Stat(realworld); err != nil {
		abs, _ := filepath.Abs(realworld)
		t.Skipf("realworld test data not found at %s; this test runs in CI", abs)
	}
	fsys := os.DirFS(realworld)
	var dirs []string
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "EXPECTED.yaml" {
			dirs = append(dirs, path.Dir(p))
		}
		return nil
	})
	slices.Sort(dirs)
	if len(dirs) == 0 {
		t.Fatal("no EXPECTED.yaml found")
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			want, _ := fs.ReadFile(fsys, dir+"/EXPECTED.yaml")
			got, err := render.Render(render.Input{FS: fsys, Manifests: path.Dir(dir), Env: path.Base(dir)})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("differs from kustomize build\n--- got\n%s\n--- want\n%s", got, want)
			}
		})
	}
}

var hashed = regexp.MustCompile(`circle-(config|secrets)-[a-z0-9]{10}`)

// The generated ConfigMap and Secret carry content-hash suffixes, and the workloads that
// use them are rewritten to the suffixed names: a config change rolls them.
func TestRender_GeneratedObjects(t *testing.T) {
	fsys := os.DirFS("../examples")
	in := render.Input{FS: fsys, Manifests: "deploy", Env: "prod",
		Config:  map[string]any{"db": map[string]any{"host": "db.prod.internal", "port": 5432}},
		Secrets: map[string]any{"db": map[string]any{"password": "hunter2-secret"}}}
	out, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	y := string(out)
	docs := map[string]string{} // kind → document
	for _, d := range strings.Split(y, "\n---\n") {
		if m := regexp.MustCompile(`(?m)^kind: (\w+)$`).FindStringSubmatch(d); m != nil {
			docs[m[1]] = d
		}
	}
	cm, secret := hashed.FindString(docs["ConfigMap"]), hashed.FindString(docs["Secret"])
	if !strings.HasPrefix(cm, "circle-config-") || !strings.HasPrefix(secret, "circle-secrets-") {
		t.Fatalf("generated names %q %q in\n%s", cm, secret, y)
	}
	if !strings.Contains(docs["Deployment"], "name: "+cm) || !strings.Contains(docs["Deployment"], "name: "+secret) {
		t.Errorf("the Deployment does not use %s and %s:\n%s", cm, secret, docs["Deployment"])
	}
	for _, want := range []string{"namespace: shop-prod", `"host": "db.prod.internal"`, "type: Opaque"} {
		if !strings.Contains(y, want) {
			t.Errorf("output lacks %q\n%s", want, y)
		}
	}
	if strings.Contains(y, "hunter2-secret") {
		t.Error("the secret is in the clear (Secret data must be base64, as kustomize writes it)")
	}
	names := hashed.FindAllString(y, -1)

	// A changed value changes the name, in the object and in the Deployment.
	in.Config = map[string]any{"db": map[string]any{"host": "db2.prod.internal", "port": 5432}}
	out2, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(hashed.FindAllString(string(out2), -1), names) {
		t.Error("the names did not change with the config")
	}

	// Same input, same bytes.
	again, _ := render.Render(in)
	if string(again) != string(out2) {
		t.Error("render is not deterministic")
	}

	// Nothing to generate: nothing generated.
	in.Config, in.Secrets = nil, nil
	plain, err := render.Render(in)
	if err != nil || strings.Contains(string(plain), "circle-config-") {
		t.Errorf("without values: %v\n%s", err, plain)
	}
}

func TestRender_Refusals(t *testing.T) {
	kust := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	base := func() fstest.MapFS {
		return fstest.MapFS{
			"deploy/base/kustomization.yaml": kust("resources: [cm.yaml]\n"),
			"deploy/base/cm.yaml":            kust("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
			"deploy/dev/kustomization.yaml":  kust("resources: [../base]\n"),
		}
	}
	if _, err := render.Render(render.Input{FS: base(), Manifests: "deploy", Env: "dev"}); err != nil {
		t.Fatalf("a plain overlay: %v", err)
	}

	remote := base()
	remote["deploy/base/kustomization.yaml"] = kust("resources:\n  - cm.yaml\n  - https://github.com/org/repo//deploy?ref=v1\n")
	_, err := render.Render(render.Input{FS: remote, Manifests: "deploy", Env: "dev"})
	if !errors.Is(err, render.ErrRemote) || !strings.Contains(err.Error(), "deploy/base/kustomization.yaml") {
		t.Errorf("remote base: %v", err)
	}

	if _, err := render.Render(render.Input{FS: base(), Manifests: "deploy", Env: "prod"}); err == nil || !strings.Contains(err.Error(), "deploy/prod/kustomization.yaml") {
		t.Errorf("missing overlay: %v", err)
	}

	unparsable := base()
	unparsable["deploy/dev/kustomization.yaml"] = kust("resources: [../base\nnamespace: {\n")
	if _, err := render.Render(render.Input{FS: unparsable, Manifests: "deploy", Env: "dev", Config: map[string]any{"a": 1}}); err == nil || !strings.Contains(err.Error(), "deploy/dev/kustomization.yaml") {
		t.Errorf("a kustomization that does not parse, with generated objects: %v", err)
	}

	reserved := base()
	reserved[".circle-generated/kustomization.yaml"] = kust("resources: []\n")
	if _, err := render.Render(render.Input{FS: reserved, Manifests: "deploy", Env: "dev"}); err == nil || !strings.Contains(err.Error(), "reserves") {
		t.Errorf("reserved folder: %v", err)
	}

	escape := base()
	escape["deploy/dev/kustomization.yaml"] = kust("resources: [../../../etc]\n")
	if _, err := render.Render(render.Input{FS: escape, Manifests: "deploy", Env: "dev"}); err == nil {
		t.Error("an overlay climbing out of the snapshot rendered")
	}

	broken := base()
	broken["deploy/dev/kustomization.yaml"] = kust("resources: [\n")
	if _, err := render.Render(render.Input{FS: broken, Manifests: "deploy", Env: "dev"}); err == nil || !strings.Contains(err.Error(), "deploy/dev/kustomization.yaml") {
		t.Errorf("broken kustomization: %v", err)
	}
}

// With Origins, every object names the file it came from, relative to the snapshot's root,
// and Circle's generated objects name the generated kustomization; the objects are
// otherwise the same as without.
func TestRender_Origins(t *testing.T) {
	in := render.Input{FS: os.DirFS("../examples"), Manifests: "deploy", Env: "prod",
		Config: map[string]any{"db": map[string]any{"host": "db.prod.internal"}}}
	plain, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	in.Origins = true
	out, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	y := string(out)
	for _, want := range []string{
		render.OriginAnnotation + ": |\n      path: deploy/base/deployment.yaml\n",
		render.OriginAnnotation + ": |\n      path: deploy/base/service.yaml\n",
		"configuredIn: " + render.GeneratedDir + "/objects/kustomization.yaml\n",
	} {
		if !strings.Contains(y, want) {
			t.Errorf("output lacks %q:\n%s", want, y)
		}
	}
	stripped := regexp.MustCompile(`(?m)^    `+regexp.QuoteMeta(render.OriginAnnotation)+`: \|\n(      .*\n)+`).ReplaceAllString(y, "")
	// An annotations map left empty goes too.
	lines := strings.SplitAfter(stripped, "\n")
	stripped = ""
	for i, l := range lines {
		if l == "  annotations:\n" && (i+1 == len(lines) || !strings.HasPrefix(lines[i+1], "    ")) {
			continue
		}
		stripped += l
	}
	if stripped != string(plain) {
		t.Errorf("origins changed more than the annotation:\n%s\nwant\n%s", stripped, plain)
	}
}

func TestIsGenerated(t *testing.T) {
	for _, c := range []struct {
		kind, name string
		want       bool
	}{
		{"ConfigMap", "circle-config-4f69f62gtf", true},
		{"Secret", "circle-secrets-9c2kfgmg7c", true},
		{"Secret", "circle-licenses-dmktt7b5c8", true},
		{"Secret", "circle-config-4f69f62gtf", false},
		{"ConfigMap", "circle-config", false},
		{"ConfigMap", "circle-config-short", false},
		{"ConfigMap", "my-config-4f69f62gtf", false},
		{"ConfigMap", "nodash", false},
	} {
		if got := render.IsGenerated(c.kind, c.name); got != c.want {
			t.Errorf("IsGenerated(%s, %s) = %t", c.kind, c.name, got)
		}
	}
}
