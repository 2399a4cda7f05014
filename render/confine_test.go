package render_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"

	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/sources"
)

// attacker stands in for the outside world: a git on PATH that records every call, and an
// HTTP server on 127.0.0.1 that counts requests and answers with a ConfigMap, so a fetch
// that happened would also show in the output.
type attacker struct {
	gitLog   string
	requests atomic.Int64
	url      string
}

func newAttacker(t testing.TB) *attacker {
	t.Helper()
	a := &attacker{}
	bin := t.TempDir()
	a.gitLog = filepath.Join(bin, "git.log")
	// It succeeds at everything, so kustomize goes on from `git init` to the fetch that
	// carries the reference's arguments.
	script := "#!/bin/sh\necho \"$@\" >> " + a.gitLog + "\nexit 0\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.requests.Add(1)
		fmt.Fprint(w, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fetched\ndata:\n  token: from-the-network\n")
	}))
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

// untouched fails the test if git ran or the server was asked anything.
func (a *attacker) untouched(t testing.TB) {
	t.Helper()
	if b, err := os.ReadFile(a.gitLog); err == nil {
		t.Errorf("git ran: %s", b)
	}
	if n := a.requests.Load(); n > 0 {
		t.Errorf("the network was reached: %d requests", n)
	}
}

func tree(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{
		"deploy/base/kustomization.yaml": {Data: []byte("resources: [cm.yaml]\n")},
		"deploy/base/cm.yaml":            {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  a: b\n")},
		"deploy/base/patch.yaml":         {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  patched: \"yes\"\n")},
	}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fsys
}

// Every way a kustomization can name something outside the snapshot, in every field that
// takes a path, is refused at its line before kustomize runs: git never runs and the network
// is never reached.
func TestConfine_RefusesEveryRemoteSpelling(t *testing.T) {
	a := newAttacker(t)
	host := strings.TrimPrefix(a.url, "http://")
	spellings := []string{
		a.url + "/cm.yaml",
		strings.Replace(a.url, "http", "HTTP", 1) + "/cm.yaml",
		"https://" + host + "/cm.yaml",
		"GitHub.com/org/repo",
		"github.com:org/repo",
		"git@" + host + ":org/repo.git",
		"user@host.example:org/repo.git",
		"git::" + a.url + "/org/repo",
		"ssh://git@" + host + "/org/repo",
		"file:///tmp/repo.git",
		"host.example/org/repo.git?ref=--upload-pack=touch%20/tmp/pwned",
		"github.com/org/repo?ref=--upload-pack=touch /tmp/pwned",
		"/etc/passwd",
		"../../../../etc",
	}
	fields := map[string]string{
		"resources":                             "resources:\n  - ../base\n  - %q\n",
		"bases":                                 "resources: [../base]\nbases:\n  - %q\n",
		"components":                            "resources: [../base]\ncomponents:\n  - %q\n",
		"configMapGenerator.files":              "resources: [../base]\nconfigMapGenerator:\n  - name: x\n    files:\n      - %q\n",
		"configMapGenerator.files key=":         "resources: [../base]\nconfigMapGenerator:\n  - name: x\n    files:\n      - %q\n",
		"configMapGenerator.envs":               "resources: [../base]\nconfigMapGenerator:\n  - name: x\n    envs:\n      - %q\n",
		"secretGenerator.files":                 "resources: [../base]\nsecretGenerator:\n  - name: x\n    files:\n      - %q\n",
		"secretGenerator.env":                   "resources: [../base]\nsecretGenerator:\n  - name: x\n    env: %q\n",
		"patches.path":                          "resources: [../base]\npatches:\n  - path: %q\n",
		"patchesJson6902.path":                  "resources: [../base]\npatchesJson6902:\n  - target: {version: v1, kind: ConfigMap, name: app}\n    path: %q\n",
		"patchesStrategicMerge":                 "resources: [../base]\npatchesStrategicMerge:\n  - %q\n",
		"openapi.path":                          "resources: [../base]\nopenapi:\n  path: %q\n",
		"crds":                                  "resources: [../base]\ncrds:\n  - %q\n",
		"configurations":                        "resources: [../base]\nconfigurations:\n  - %q\n",
		"replacements.path":                     "resources: [../base]\nreplacements:\n  - path: %q\n",
		"transformers (file)":                   "resources: [../base]\ntransformers:\n  - %q\n",
		"transformers: inline PatchTransformer": "resources: [../base]\ntransformers:\n  - |\n    apiVersion: builtin\n    kind: PatchTransformer\n    metadata: {name: p}\n    path: %q\n",
		"generators: inline ConfigMapGenerator": "resources: [../base]\ngenerators:\n  - |\n    apiVersion: builtin\n    kind: ConfigMapGenerator\n    metadata: {name: g}\n    files: [%q]\n",
	}
	for field, kust := range fields {
		for _, s := range spellings {
			v := s
			if field == "configMapGenerator.files key=" {
				v = "key=" + s
			}
			t.Run(field+"/"+s, func(t *testing.T) {
				fsys := tree(map[string]string{"deploy/dev/kustomization.yaml": fmt.Sprintf(kust, v)})
				out, err := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: "dev"})
				if err == nil {
					t.Fatalf("rendered:\n%s", out)
				}
				var fe *render.FieldError
				if !errors.As(err, &fe) || !errors.Is(err, render.ErrRemote) {
					t.Fatalf("want a FieldError wrapping ErrRemote, got %v", err)
				}
				if fe.File != "deploy/dev/kustomization.yaml" || fe.Line < 2 {
					t.Errorf("problem not placed at its line: %v", err)
				}
				a.untouched(t)
			})
		}
	}

	// A transformer configuration in a file of its own is read and held to the same rules,
	// and its problem names that file.
	for _, cfg := range []string{
		"apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: %q\n",
		"apiVersion: builtin\nkind: PatchStrategicMergeTransformer\nmetadata: {name: p}\npaths: [%q]\n",
		"apiVersion: builtin\nkind: PatchJson6902Transformer\nmetadata: {name: p}\ntarget: {kind: ConfigMap, name: app}\npath: %q\n",
		"apiVersion: builtin\nkind: ReplacementTransformer\nmetadata: {name: p}\nreplacements:\n  - path: %q\n",
		"apiVersion: builtin\nkind: SecretGenerator\nmetadata: {name: s}\nenvs: [%q]\n",
	} {
		fsys := tree(map[string]string{
			"deploy/dev/kustomization.yaml": "resources: [../base]\ntransformers: [t.yaml]\n",
			"deploy/dev/t.yaml":             fmt.Sprintf(cfg, a.url+"/p.yaml"),
		})
		_, err := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: "dev"})
		var fe *render.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, render.ErrRemote) || fe.File != "deploy/dev/t.yaml" || fe.Line == 0 {
			t.Errorf("%s: want a problem at deploy/dev/t.yaml's line, got %v", strings.SplitN(cfg, "\n", 3)[1], err)
		}
	}
	a.untouched(t)
}

// A folder of the snapshot whose name kustomize's URL parser would take for a Git remote is
// read from the snapshot: the rewrite, not the check, is what keeps git from running.
func TestConfine_LocalFolderSpelledLikeARemote(t *testing.T) {
	a := newAttacker(t)
	for _, name := range []string{"github.com/org/repo", "GitHub.com/org/repo", "git@host:org/repo.git", "ssh:/host/org/repo"} {
		fsys := tree(map[string]string{
			"deploy/dev/kustomization.yaml":              fmt.Sprintf("resources:\n  - %q\n", name),
			"deploy/dev/" + name + "/kustomization.yaml": "resources: [" + strings.Repeat("../", strings.Count(name, "/")+2) + "base]\n",
		})
		out, err := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: "dev"})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !strings.Contains(string(out), "name: app") {
			t.Errorf("%s: the local folder's objects are missing:\n%s", name, out)
		}
	}
	a.untouched(t)
}

// The same attacks, handed to kustomize as Circle used to (the snapshot as it is), do run
// git and reach the server: the attacker above is able to see them.
func TestConfine_AttackerSeesUnconfinedKustomize(t *testing.T) {
	a := newAttacker(t)
	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	k := krusty.MakeKustomizer(opts)

	fsys := tree(map[string]string{"deploy/dev/kustomization.yaml": "resources: [../base, \"github.com:org/repo?ref=--upload-pack=x\"]\n"})
	_, _ = k.Run(sources.KustomizeFS(fsys), "/deploy/dev")
	if b, err := os.ReadFile(a.gitLog); err != nil || !strings.Contains(string(b), "--upload-pack=x") {
		t.Errorf("kustomize did not run the recording git (%v): the test cannot see an exec", err)
	}
	fsys = tree(map[string]string{"deploy/dev/kustomization.yaml": "resources: [../base]\nconfigMapGenerator:\n  - name: x\n    files: [\"" + a.url + "/token\"]\n"})
	out, err := k.Run(sources.KustomizeFS(fsys), "/deploy/dev")
	if err != nil || a.requests.Load() == 0 {
		t.Fatalf("kustomize did not fetch (%v): the test cannot see a fetch", err)
	}
	y, _ := out.AsYaml()
	if !strings.Contains(string(y), "from-the-network") {
		t.Errorf("the fetched body did not land in the output:\n%s", y)
	}
}

// Helm inflation, plugins that are not built-ins, and folders of transformer configurations
// are refused at their line.
func TestConfine_RefusedFeatures(t *testing.T) {
	a := newAttacker(t)
	cases := map[string]map[string]string{
		"helmCharts": {"deploy/dev/kustomization.yaml": "resources: [../base]\nhelmCharts:\n  - name: x\n    repo: " + a.url + "\n"},
		"exec plugin": {
			"deploy/dev/kustomization.yaml": "resources: [../base]\ngenerators: [gen.yaml]\n",
			"deploy/dev/gen.yaml":           "apiVersion: someteam.example.com/v1\nkind: ChartInflator\nmetadata:\n  name: x\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n",
		},
		"HelmChartInflationGenerator": {
			"deploy/dev/kustomization.yaml": "resources: [../base]\ngenerators:\n  - |\n    apiVersion: builtin\n    kind: HelmChartInflationGenerator\n    metadata: {name: h}\n    repo: " + a.url + "\n",
		},
		"folder of transformers": {
			"deploy/dev/kustomization.yaml":   "resources: [../base]\ntransformers: [t]\n",
			"deploy/dev/t/kustomization.yaml": "resources: [t.yaml]\n",
			"deploy/dev/t/t.yaml":             "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: l}\nlabels: {a: b}\nfieldSpecs: [{path: metadata/labels, create: true}]\n",
		},
	}
	for name, files := range cases {
		_, err := render.Render(render.Input{FS: tree(files), Manifests: "deploy", Env: "dev"})
		var fe *render.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, render.ErrRefused) || fe.Line == 0 {
			t.Errorf("%s: want a refusal at a line, got %v", name, err)
		}
	}
	a.untouched(t)
}

// What confine rewrites still means what the user wrote: built-in transformers and
// generators in files and inline, generator files with keys, and patches of every kind.
func TestConfine_RewrittenOverlayRendersTheSame(t *testing.T) {
	files := map[string]string{
		"deploy/dev/kustomization.yml": `resources: [../base]
patches:
  - path: patch.yaml
configMapGenerator:
  - name: gen
    files: [key=data.txt, data.txt]
    envs: [vars.env]
transformers:
  - labels.yaml
  - |
    apiVersion: builtin
    kind: PatchTransformer
    metadata: {name: inline}
    path: p2.yaml
`,
		"deploy/dev/patch.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  patched: \"yes\"\n",
		"deploy/dev/data.txt":    "hello\n",
		"deploy/dev/vars.env":    "A=1\n",
		"deploy/dev/labels.yaml": "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: l}\nlabels: {team: x}\nfieldSpecs: [{path: metadata/labels, create: true}]\n",
		"deploy/dev/p2.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  second: \"2\"\n",
	}
	fsys := tree(files)
	got, err := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.Reorder = krusty.ReorderOptionUnspecified
	m, err := krusty.MakeKustomizer(opts).Run(sources.KustomizeFS(fsys), "/deploy/dev")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.AsYaml()
	if string(got) != string(want) {
		t.Errorf("confined render differs from kustomize's\n--- circle\n%s\n--- kustomize\n%s", got, want)
	}
	for _, s := range []string{"patched: \"yes\"", "second: \"2\"", "team: x", "key: |", "A: \"1\""} {
		if !strings.Contains(string(got), s) {
			t.Errorf("output lacks %q:\n%s", s, got)
		}
	}
}

// Work is bounded by the daemon's limits, with an error naming the overlay's file.
func TestConfine_Limits(t *testing.T) {
	var patches strings.Builder
	patches.WriteString("resources: [../base]\npatches:\n")
	for range 20 {
		patches.WriteString("  - path: patch.yaml\n")
	}
	fsys := tree(map[string]string{"deploy/dev/kustomization.yaml": patches.String(),
		"deploy/dev/patch.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  patched: \"yes\"\n"})
	_, err := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: "dev", Limits: render.Limits{Patches: 10}})
	if !errors.Is(err, render.ErrTooLarge) || !strings.Contains(err.Error(), "deploy/dev/kustomization.yaml") {
		t.Errorf("too many patches: %v", err)
	}
	if _, err := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: "dev", Limits: render.Limits{Patches: 20}}); err != nil {
		t.Errorf("at the limit: %v", err)
	}

	chain := map[string]string{}
	for i := range 12 {
		chain[fmt.Sprintf("deploy/l%d/kustomization.yaml", i)] = fmt.Sprintf("resources: [../l%d]\n", i+1)
	}
	chain["deploy/l12/kustomization.yaml"] = "resources: [../base]\n"
	_, err = render.Render(render.Input{FS: tree(chain), Manifests: "deploy", Env: "l0", Limits: render.Limits{Kustomizations: 10}})
	if !errors.Is(err, render.ErrTooLarge) {
		t.Errorf("too many kustomizations: %v", err)
	}
}

// Every field of kustomize's Kustomization that holds text is known to confine as a path it
// rewrites or as a value that is not a path. A kustomize upgrade that adds a field fails
// here, until someone decides which it is.
func TestConfine_EveryPathFieldIsKnown(t *testing.T) {
	paths := []string{ // rewritten by confine.go
		"resources", "bases", "components", "crds", "configurations", "generators", "transformers", "validators",
		"openapi{}", "patches[].path", "patchesJson6902[].path", "patchesStrategicMerge",
		"replacements[].path", "configMapGenerator[].files", "configMapGenerator[].envs", "configMapGenerator[].env",
		"secretGenerator[].files", "secretGenerator[].envs", "secretGenerator[].env",
	}
	refused := []string{"helmCharts", "helmChartInflationGenerator", "helmGlobals"}
	var found []string
	var walk func(t reflect.Type, prefix string, depth int)
	walk = func(t reflect.Type, prefix string, depth int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous {
				walk(f.Type, prefix, depth)
				continue
			}
			if name == "" || name == "-" {
				continue
			}
			full := prefix + name
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case slices.Contains(refused, full):
			case ft.Kind() == reflect.String, ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
				found = append(found, full)
			case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.String:
				found = append(found, full+"{}")
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && depth < 3:
				walk(ft.Elem(), full+"[].", depth+1)
			case ft.Kind() == reflect.Struct && depth < 3:
				walk(ft, full+".", depth+1)
			}
		}
	}
	walk(reflect.TypeOf(types.Kustomization{}), "", 0)
	notPaths := map[string]bool{}
	for _, f := range nonPathFields {
		notPaths[f] = true
	}
	var unknown []string
	for _, f := range found {
		if !slices.Contains(paths, f) && !notPaths[f] {
			unknown = append(unknown, f)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("fields of types.Kustomization neither rewritten nor known not to be paths:\n  %s", strings.Join(unknown, "\n  "))
	}
}

// nonPathFields are the text fields of a Kustomization kustomize never loads anything from.
var nonPathFields = []string{
	"apiVersion", "kind", "metadata.name", "metadata.namespace", "metadata.labels{}", "metadata.annotations{}",
	"openapi{}", "namePrefix", "nameSuffix", "namespace", "commonLabels{}", "commonAnnotations{}",
	"labels[].pairs{}", "labels[].fields[].path", "labels[].fields[].group", "labels[].fields[].version", "labels[].fields[].kind",
	"patches[].patch", "patches[].target.group", "patches[].target.version", "patches[].target.kind", "patches[].target.name",
	"patches[].target.namespace", "patches[].target.labelSelector", "patches[].target.annotationSelector",
	"patchesJson6902[].patch", "patchesJson6902[].target.group", "patchesJson6902[].target.version",
	"patchesJson6902[].target.kind", "patchesJson6902[].target.name", "patchesJson6902[].target.namespace",
	"patchesJson6902[].target.labelSelector", "patchesJson6902[].target.annotationSelector",
	"images[].name", "images[].newName", "images[].tagSuffix", "imageTags[].tagSuffix",
	"replacements[].source.options.delimiter", "replacements[].source.options.encoding", "replacements[].sourceValue",
	"vars[].fieldref.fieldPath", "images[].newTag", "images[].digest", "imageTags[].name", "imageTags[].newName",
	"imageTags[].newTag", "imageTags[].digest", "replicas[].name",
	"vars[].name", "vars[].objref.group", "vars[].objref.version", "vars[].objref.kind", "vars[].objref.name",
	"vars[].objref.namespace", "vars[].objref.apiVersion", "vars[].fieldref.fieldpath",
	"replacements[].source.group", "replacements[].source.version", "replacements[].source.kind",
	"replacements[].source.name", "replacements[].source.namespace", "replacements[].source.fieldPath",
	"replacements[].targets", "buildMetadata",
	"configMapGenerator[].name", "configMapGenerator[].namespace", "configMapGenerator[].behavior",
	"configMapGenerator[].literals", "configMapGenerator[].options.labels{}", "configMapGenerator[].options.annotations{}",
	"secretGenerator[].name", "secretGenerator[].namespace", "secretGenerator[].behavior", "secretGenerator[].literals",
	"secretGenerator[].type", "secretGenerator[].options.labels{}", "secretGenerator[].options.annotations{}",
	"generatorOptions.labels{}", "generatorOptions.annotations{}", "sortOptions.order",
	"sortOptions.legacySortOptions.orderFirst", "sortOptions.legacySortOptions.orderLast", "inventory.type",
	"inventory.configMap.name", "inventory.configMap.namespace",
}

// FuzzRender feeds arbitrary kustomizations to Render: it must return (an error is fine)
// without panicking, without running git and without reaching the network, and a refusal is
// placed in the file it is about.
func FuzzRender(f *testing.F) {
	for _, seed := range []string{
		"resources: [../base]\n",
		"resources: [../base, github.com:org/repo?ref=--upload-pack=x]\n",
		"resources: [../base]\nconfigMapGenerator:\n  - name: x\n    files: [key=http://127.0.0.1:1/x]\n",
		"resources: [../base]\ntransformers:\n  - |\n    apiVersion: builtin\n    kind: PatchTransformer\n    metadata: {name: p}\n    path: https://example.com/p\n",
		"resources: [../base]\npatchesStrategicMerge:\n  - |\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: app}\n    data: {x: y}\n",
		"resources: [../base]\nnamespace: a\nnamePrefix: p-\nreplacements:\n  - path: r.yaml\n",
		"resources: [../base]\nopenapi: {path: git@host:o/r.git}\ncrds: [\"GitHub.com/o/r\"]\n",
		"helmCharts: [{name: x}]\n",
	} {
		f.Add(seed)
	}
	a := newAttacker(f)
	f.Fuzz(func(t *testing.T, kust string) {
		fsys := tree(map[string]string{"deploy/dev/kustomization.yaml": kust, "deploy/dev/r.yaml": "source: {kind: ConfigMap, name: app, fieldPath: data.a}\ntargets: []\n"})
		_, err := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: "dev"})
		var fe *render.FieldError
		if errors.As(err, &fe) && !strings.HasPrefix(fe.File, "deploy/") {
			t.Errorf("a problem placed outside the overlay: %v", err)
		}
		// The same overlay joined with Circle's generated objects.
		out, gerr := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: "dev", Namespace: "fuzz",
			Config: map[string]any{"a": 1}, Secrets: map[string]any{"s": "v"}})
		if errors.As(gerr, &fe) && !strings.HasPrefix(fe.File, "deploy/") {
			t.Errorf("a problem placed outside the overlay: %v", gerr)
		}
		if gerr == nil && !strings.Contains(string(out), "name: circle-config-") {
			t.Errorf("rendered without the generated ConfigMap:\n%s", out)
		}
		a.untouched(t)
	})
}
