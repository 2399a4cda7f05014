package render_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/testenv"
)

// A tree per kustomize feature that wrapping the overlay in a second kustomization used to
// break: each is the overlay "deploy/env" over "deploy/base".
var features = map[string]map[string]string{
	// kueue's config/default: a late builtin PatchTransformer moves a RoleBinding to
	// kube-system after the overlay's namespace was set; a second namespace pass undid it.
	"late-transformer-moves-namespace": {
		"deploy/env/kustomization.yaml": "namespace: app\nresources: [../base]\ntransformers: [move.yaml]\n",
		"deploy/env/move.yaml": "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: move-binding}\n" +
			"patch: '[{\"op\": \"replace\", \"path\": \"/metadata/namespace\", \"value\": \"kube-system\"}]'\ntarget: {kind: RoleBinding}\n",
	},
	"replacements": {
		"deploy/env/kustomization.yaml": "namespace: app\nresources: [../base]\nreplacements:\n" +
			"  - source: {kind: Service, name: api, fieldPath: metadata.name}\n" +
			"    targets:\n      - select: {kind: Deployment}\n        fieldPaths: [spec.template.spec.containers.0.env.0.value]\n",
	},
	"sort-options-fifo": {
		"deploy/env/kustomization.yaml": "namespace: app\nresources: [../base]\nsortOptions: {order: fifo}\n",
	},
	"sort-options-legacy-custom": {
		"deploy/env/kustomization.yaml": "namespace: app\nresources: [../base]\nsortOptions:\n  order: legacy\n" +
			"  legacySortOptions:\n    orderFirst: [Service, Deployment]\n    orderLast: [RoleBinding]\n",
	},
	"build-metadata": {
		"deploy/env/kustomization.yaml": "namespace: app\nresources: [../base]\nbuildMetadata: [originAnnotations, transformerAnnotations]\n" +
			"labels: [{pairs: {team: shop}}]\n",
	},
	"kustomization-yml": {
		"deploy/env/kustomization.yml": "namespace: app\nresources: [../base]\nnamePrefix: yml-\n",
	},
	"Kustomization": {
		"deploy/env/Kustomization": "namespace: app\nresources: [../base]\nnameSuffix: -k\n",
	},
	"no-namespace": {
		"deploy/env/kustomization.yaml": "resources: [../base]\n",
	},
}

// The base every feature tree builds on: a workload that mounts Circle's ConfigMap, the
// Service it is reached by, and a RoleBinding.
var base = map[string]string{
	"deploy/base/kustomization.yaml": "resources: [deployment.yaml, service.yaml, binding.yaml]\n",
	"deploy/base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: registry.example.com/api:1.0.0
          env: [{name: PEER, value: unset}]
          volumeMounts: [{name: config, mountPath: /etc/api}]
      volumes:
        - name: config
          configMap: {name: circle-config}
`,
	"deploy/base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\nspec: {ports: [{port: 80}]}\n",
	"deploy/base/binding.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: api-reader, namespace: shop}\n" +
		"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}\nsubjects: [{kind: ServiceAccount, name: api, namespace: shop}]\n",
}

// kustomizeBuild runs the kustomize CLI built on the same kustomize/api as Circle.
func kustomizeBuild(t *testing.T, dir string) []byte {
	t.Helper()
	bin, err := testenv.Tool(testenv.ToolKustomize)
	if err != nil {
		t.Fatal(err) // make testenv builds it; a missing tool fails, never skips
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "build", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr.String())
	}
	return out
}

func writeTree(t *testing.T, files ...map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tree := range files {
		for name, content := range tree {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// Without configuration, Circle's render of an overlay is `kustomize build` of it, byte for
// byte, for every feature tree.
func TestRender_FeaturesMatchKustomizeCLI(t *testing.T) {
	for name, tree := range features {
		t.Run(name, func(t *testing.T) {
			dir := writeTree(t, base, tree)
			want := kustomizeBuild(t, filepath.Join(dir, "deploy", "env"))
			got, err := render.Render(render.Input{FS: os.DirFS(dir), Manifests: "deploy", Env: "env"})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("differs from kustomize build\n--- circle\n%s\n--- kustomize\n%s", got, want)
			}
		})
	}
	// The control: the feature the first tree tests is really there.
	out := kustomizeBuild(t, filepath.Join(writeTree(t, base, features["late-transformer-moves-namespace"]), "deploy", "env"))
	if !regexp.MustCompile(`kind: RoleBinding\nmetadata:\n  name: api-reader\n  namespace: kube-system`).Match(out) {
		t.Errorf("kustomize does not move the binding; the test proves nothing:\n%s", out)
	}
}

// With configuration, secrets and licenses, the user's objects are still `kustomize build`'s,
// in its order, but for the references to the generated objects; these come first, in the
// overlay's namespace, or the environment's when the overlay sets none.
func TestRender_GeneratedJoinTheBuildUnchanged(t *testing.T) {
	hashed := regexp.MustCompile(`(circle-(?:config|secrets|licenses))-[a-z0-9]{10}\b`)
	for name, tree := range features {
		t.Run(name, func(t *testing.T) {
			dir := writeTree(t, base, tree)
			want := kustomizeBuild(t, filepath.Join(dir, "deploy", "env"))
			got, err := render.Render(render.Input{FS: os.DirFS(dir), Manifests: "deploy", Env: "env", Namespace: "from-settings",
				Config:   map[string]any{"replicas": 2},
				Secrets:  map[string]any{"token": "s3cr3t-value"},
				Licenses: map[string][]byte{"acme.lic": []byte("license")}})
			if err != nil {
				t.Fatal(err)
			}
			docs := strings.Split(string(got), "\n---\n")
			if len(docs) < 3 {
				t.Fatalf("%d documents:\n%s", len(docs), got)
			}
			ns := "app"
			if name == "no-namespace" {
				ns = "from-settings"
			}
			for i, kind := range []string{"kind: ConfigMap", "kind: Secret", "kind: Secret"} {
				if !strings.Contains(docs[i], kind) || !strings.Contains(docs[i]+"\n", "  namespace: "+ns+"\n") {
					t.Errorf("generated document %d is not a %s in %s:\n%s", i, kind, ns, docs[i])
				}
			}
			user := strings.Join(docs[3:], "\n---\n")
			if !strings.Contains(user, "name: circle-config-") && !strings.Contains(name, "fifo") {
				// Every tree's Deployment mounts circle-config, in the namespace of the generated objects, except
				// where the namespace differs (no-namespace: the Deployment stays in shop).
				if name != "no-namespace" {
					t.Errorf("the Deployment's reference to circle-config was not rewritten:\n%s", user)
				}
			}
			if unhashed := hashed.ReplaceAllString(user, "$1"); unhashed != string(want) {
				t.Errorf("the user's objects differ from kustomize build\n--- circle\n%s\n--- kustomize\n%s", unhashed, want)
			}
		})
	}
}

// An overlay that sets no namespace, in an environment that names none, gets no generated
// objects without a home: the render fails at the overlay's file, before anything applies.
func TestRender_GeneratedObjectsNeedANamespace(t *testing.T) {
	dir := writeTree(t, base, features["no-namespace"])
	_, err := render.Render(render.Input{FS: os.DirFS(dir), Manifests: "deploy", Env: "env", Config: map[string]any{"a": 1}})
	var fe *render.FieldError
	if !errors.As(err, &fe) || !errors.Is(err, render.ErrNoNamespace) || fe.File != "deploy/env/kustomization.yaml" || fe.Field != "namespace" {
		t.Fatalf("err = %v, want a FieldError at deploy/env/kustomization.yaml namespace", err)
	}
	// Nothing to generate: nothing needs a namespace.
	if _, err := render.Render(render.Input{FS: os.DirFS(dir), Manifests: "deploy", Env: "env"}); err != nil {
		t.Errorf("without configuration: %v", err)
	}
}

// Every kustomization of the real-world trees that builds on its own renders as the
// kustomize CLI builds it (besides the EXPECTED.yaml files, which record an older CLI).
func TestRender_RealWorldMatchesKustomizeCLI(t *testing.T) {
	if _, err := os.Stat(realworld); err != nil {
		abs, _ := filepath.Abs(realworld)
		t.Skipf("realworld test data not found at %s; this test runs in CI", abs)
	}
	fsys := os.DirFS(realworld)
	var dirs []string
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && slices.Contains([]string{"kustomization.yaml", "kustomization.yml", "Kustomization"}, d.Name()) {
			dirs = append(dirs, path.Dir(p))
		}
		return nil
	})
	if len(dirs) == 0 {
		t.Fatal("no kustomization found")
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			bin, err := testenv.Tool(testenv.ToolKustomize)
			if err != nil {
				t.Fatal(err)
			}
			want, cliErr := exec.Command(bin, "build", filepath.Join(realworld, filepath.FromSlash(dir))).Output()
			got, err := render.Render(render.Input{FS: fsys, Manifests: path.Dir(dir), Env: path.Base(dir)})
			if cliErr != nil {
				// Trees that do not build on their own (Flux's need Helm or remote bases)
				// must not build in Circle either.
				if err == nil {
					t.Errorf("kustomize refuses it (%v) but Circle renders it", cliErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("differs from kustomize build\n--- circle\n%s\n--- kustomize\n%s", got, want)
			}
		})
	}
}

// With Origins, an overlay that asks for origin annotations itself keeps the ones its own
// build records (made relative to the snapshot), and the generated objects name the generated
// kustomization; an overlay with nothing generated gets them too.
func TestRender_OriginsOfAnOverlayThatRecordsThem(t *testing.T) {
	dir := writeTree(t, base, features["build-metadata"])
	in := render.Input{FS: os.DirFS(dir), Manifests: "deploy", Env: "env", Origins: true, Config: map[string]any{"a": 1}}
	out, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"path: deploy/base/deployment.yaml\n",
		"configuredIn: " + render.GeneratedDir + "/objects/kustomization.yaml\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "path: overlay.yaml") {
		t.Errorf("the joining kustomization's origin leaked:\n%s", out)
	}
	in.Config = nil
	if out, err = render.Render(in); err != nil || !strings.Contains(string(out), "path: deploy/base/service.yaml\n") {
		t.Errorf("nothing generated, with origins: %v\n%s", err, out)
	}
}

// The folder Circle generates in is reserved, and built-in configurations whose path fields
// are not strings are refused at their field rather than handed to kustomize.
func TestRender_RefusedInputs(t *testing.T) {
	reserved := writeTree(t, base, features["no-namespace"], map[string]string{render.GeneratedDir + "/x.yaml": "a: 1\n"})
	if _, err := render.Render(render.Input{FS: os.DirFS(reserved), Manifests: "deploy", Env: "env"}); err == nil || !strings.Contains(err.Error(), "reserves") {
		t.Errorf("a %s folder in the repository: %v", render.GeneratedDir, err)
	}
	for name, gen := range map[string]string{
		"path not a string":   "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: 5\n",
		"files not a list":    "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: c}\nfiles: a.txt\n",
		"a file not a string": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: c}\nfiles: [[a.txt]]\n",
	} {
		dir := writeTree(t, base, map[string]string{
			"deploy/env/kustomization.yaml": "namespace: app\nresources: [../base]\ngenerators: [gen.yaml]\n",
			"deploy/env/gen.yaml":           gen,
			"deploy/env/a.txt":              "a\n",
		})
		_, err := render.Render(render.Input{FS: os.DirFS(dir), Manifests: "deploy", Env: "env"})
		var fe *render.FieldError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "not a string or list of strings") || fe.File != "deploy/env/gen.yaml" {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// An overlay's own OpenAPI schema file is read from the snapshot like any other path.
func TestRender_OpenAPIPath(t *testing.T) {
	dir := writeTree(t, base, map[string]string{
		"deploy/env/kustomization.yaml": "namespace: app\nresources: [../base]\nopenapi: {path: schema.json}\n",
		"deploy/env/schema.json":        `{"definitions": {}}` + "\n",
	})
	want := kustomizeBuild(t, filepath.Join(dir, "deploy", "env"))
	got, err := render.Render(render.Input{FS: os.DirFS(dir), Manifests: "deploy", Env: "env"})
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%v\n--- circle\n%s\n--- kustomize\n%s", err, got, want)
	}
}
