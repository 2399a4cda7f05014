package schema_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"cuelang.org/go/cue/load"

	"github.com/circlecore/circle/schema"
)

// registryTrap is a CUE module registry on 127.0.0.1 that records every request and
// answers none usefully. CUE_REGISTRY points at it, with CUE's cache in a fresh folder, so
// the loader would find no module without asking.
type registryTrap struct {
	mu       sync.Mutex
	requests []string
}

func newRegistryTrap(t *testing.T) *registryTrap {
	t.Helper()
	trap := &registryTrap{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trap.mu.Lock()
		trap.requests = append(trap.requests, r.Method+" "+r.URL.Path)
		trap.mu.Unlock()
		http.Error(w, "trap", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("CUE_REGISTRY", strings.TrimPrefix(srv.URL, "http://")+"+insecure")
	t.Setenv("CUE_CACHE_DIR", t.TempDir())
	t.Setenv("CUE_CONFIG_DIR", t.TempDir())
	return trap
}

func (r *registryTrap) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

const evilModule = `module: "example.com/shop@v0"
language: version: "v0.12.0"
deps: {
	"example.com/evil@v0": v: "v0.1.0"
}
`

const evilImport = `package shop

import "example.com/evil"

#Config: evil.#Anything
`

// The trap works: CUE's loader left to its defaults (what schema.Load did before) asks the
// registry CUE_REGISTRY names for the module a schema imports. Without this, the next test
// could pass for a trap nobody would ever walk into.
func TestRegistryTrapCatchesCUEsDefaultLoader(t *testing.T) {
	trap := newRegistryTrap(t)
	fsys := fstest.MapFS{"cue.mod/module.cue": {Data: []byte(evilModule)}, "schema/app.cue": {Data: []byte(evilImport)}}
	insts := load.Instances([]string{"./schema"}, &load.Config{FS: fsys, Dir: "/"})
	if trap.count() == 0 {
		t.Fatalf("CUE's default loader made no request (err %v): the trap tests nothing", insts[0].Err)
	}
	t.Logf("CUE's default loader: %v", trap.requests)
}

// A module with deps, and an import from outside the repository's module, are problems at
// their lines; no request reaches the registry CUE_REGISTRY names.
func TestLoadAsksNoRegistry(t *testing.T) {
	trap := newRegistryTrap(t)
	for name, c := range map[string]struct {
		fsys fstest.MapFS
		want []string
	}{
		"deps and import": {
			fsys: fstest.MapFS{"cue.mod/module.cue": {Data: []byte(evilModule)}, "schema/app.cue": {Data: []byte(evilImport)}},
			want: []string{
				"cue.mod/module.cue:3:1: deps: CUE module dependencies are not allowed",
				`schema/app.cue:3:8: import "example.com/evil" is not allowed: it is outside the repository's CUE module "example.com/shop"`,
			},
		},
		"deps in local-module.cue": {
			fsys: fstest.MapFS{
				"cue.mod/module.cue":       {Data: []byte("module: \"example.com/shop@v0\"\nlanguage: version: \"v0.12.0\"\n")},
				"cue.mod/local-module.cue": {Data: []byte("deps: \"example.com/evil@v0\": {v: \"v0.1.0\", replaceWith: \"../x\"}\n")},
				"schema/app.cue":           {Data: []byte("package shop\n#Config: {}\n")},
			},
			want: []string{"cue.mod/local-module.cue:1:1: deps: CUE module dependencies are not allowed"},
		},
		"import without a module": {
			fsys: fstest.MapFS{"schema/app.cue": {Data: []byte("package shop\n\nimport (\n\t\"strings\"\n\tx \"github.com/evil/cue:x\"\n)\n\n#Config: {a: strings.ToUpper(x.y)}\n")}},
			want: []string{`schema/app.cue:5:4: import "github.com/evil/cue:x" is not allowed: only CUE's standard library can be imported by a repository without a cue.mod/module.cue`},
		},
		// The module's own package imports a foreign one: found once the loader has
		// gathered the package (having asked only the refusing registry).
		"import through the module's own package": {
			fsys: fstest.MapFS{
				"cue.mod/module.cue": {Data: []byte("module: \"example.com/shop@v0\"\nlanguage: version: \"v0.12.0\"\n")},
				"schema/app.cue":     {Data: []byte("package shop\n\nimport \"example.com/shop/lib\"\n\n#Config: lib.#X\n")},
				"lib/lib.cue":        {Data: []byte("package lib\n\nimport \"example.com/evil\"\n\n#X: evil.#Y\n")},
			},
			want: []string{`lib/lib.cue:3:8: import "example.com/evil" is not allowed`},
		},
		"a package file above the schema folder": {
			fsys: fstest.MapFS{
				"cue.mod/module.cue": {Data: []byte("module: \"example.com/shop@v0\"\nlanguage: version: \"v0.12.0\"\n")},
				"schema/app.cue":     {Data: []byte("package shop\n#Config: {}\n")},
				"root.cue":           {Data: []byte("package shop\n\nimport \"example.com/evil\"\n\nx: evil.y\n")},
			},
			want: []string{`root.cue:3:8: import "example.com/evil" is not allowed`},
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := schema.Load(c.fsys, "schema")
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	if n := trap.count(); n != 0 {
		t.Errorf("%d request(s) reached the registry: %v", n, trap.requests)
	}
}

// What is allowed still works: the standard library, the repository's own module's
// packages, and a module file without deps (or with an empty deps).
func TestLoadOwnModule(t *testing.T) {
	trap := newRegistryTrap(t)
	fsys := fstest.MapFS{
		"cue.mod/module.cue": {Data: []byte("module: \"example.com/shop@v0\"\nlanguage: version: \"v0.12.0\"\ndeps: {}\n")},
		"schema/app.cue":     {Data: []byte("package shop\n\nimport (\n\t\"strings\"\n\t\"example.com/shop/lib\"\n)\n\n#Config: {name: lib.#Name, upper: strings.ToUpper(name)}\n")},
		"lib/lib.cue":        {Data: []byte("package lib\n\n#Name: =~\"^[a-z]+$\"\n")},
	}
	s, err := schema.Load(fsys, "schema")
	if err != nil {
		t.Fatal(err)
	}
	v, issues := s.Validate("#Config", data(t, "config/base/app.yaml", "name: shop\n"))
	if issues != nil || v.(map[string]any)["upper"] != "SHOP" {
		t.Fatalf("%v %v", v, issues)
	}
	if _, issues := s.Validate("#Config", data(t, "config/base/app.yaml", "name: Shop\n")); issues == nil || !strings.Contains(issues.Error(), "config/base/app.yaml:1:7") {
		t.Errorf("the module's own constraint was not applied: %v", issues)
	}
	if trap.count() != 0 {
		t.Errorf("requests: %v", trap.requests)
	}
}

// explode is CUE that takes three times the limit the tests set, in CPU rather than memory:
// a comprehension over 36^4 combinations that keeps none (3 s on an idle core). It is
// finite, so the evaluation a test abandons ends soon after.
const explode = `[for a in l for b in l for c in l for d in l if false {a}]`

const explodeList = `["0","1","2","3","4","5","6","7","8","9","a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u","v","w","x","y","z"]`

// A schema that does not finish is stopped waiting for at the limit, with an issue naming
// its file; the Schema stays refused.
func TestEvalLimit(t *testing.T) {
	// Far above what the small schemas here need even on a loaded machine, far below what
	// explode takes.
	limit := time.Second
	t.Run("load", func(t *testing.T) {
		fsys := fstest.MapFS{"schema/boom.cue": {Data: []byte("package shop\n\nl: " + explodeList + "\nboom: len(" + explode + ")\n")}}
		start := time.Now()
		_, err := schema.Load(fsys, "schema", schema.WithEvalLimit(limit))
		if took := time.Since(start); took > 5*limit {
			t.Errorf("Load took %s with a limit of %s", took, limit)
		}
		if err == nil || !strings.Contains(err.Error(), "schema/boom.cue: schema evaluation exceeded 1s") {
			t.Fatalf("err = %v", err)
		}
		if schema.Abandoned() == 0 {
			t.Error("the abandoned evaluation is not counted")
		}
	})
	t.Run("validate", func(t *testing.T) {
		// The schema is fine; the data (a config layer in CUE) makes it explode.
		fsys := fstest.MapFS{
			"schema/app.cue": {Data: []byte("package shop\n#Config: {...}\n")},
			"schema/db.cue":  {Data: []byte("package shop\n#DB: {...}\n")},
		}
		s, err := schema.Load(fsys, "schema", schema.WithEvalLimit(limit))
		if err != nil {
			t.Fatal(err)
		}
		d := data(t, "config/base/boom.cue", "l: "+explodeList+"\nboom: len("+explode+")\n")
		start := time.Now()
		_, issues := s.Validate("#Config", d)
		if took := time.Since(start); took > 5*limit {
			t.Errorf("Validate took %s", took)
		}
		want := "schema/app.cue: schema evaluation exceeded 1s while validating; it was abandoned (the schema is schema/app.cue, schema/db.cue)"
		if issues.Error() != want {
			t.Fatalf("issues = %v\nwant %s", issues, want)
		}
		// The abandoned evaluation still holds the Schema's CUE context: nothing else runs.
		start = time.Now()
		if _, issues := s.Validate("#Config", data(t, "a.yaml", "a: 1\n")); issues.Error() != want || time.Since(start) > limit/2 {
			t.Errorf("a later Validate: %v", issues)
		}
		if _, issues := s.Eval("#Config", data(t, "a.yaml", "a: 1\n"), nil); issues.Error() != want {
			t.Errorf("a later Eval: %v", issues)
		}
		if s.Has("#Config") {
			t.Error("a broken schema still has #Config")
		}
	})
	t.Run("built-in only", func(t *testing.T) {
		// No schema folder: the limit still holds, and names the built-in definitions.
		s, err := schema.Load(fstest.MapFS{}, "schema", schema.WithEvalLimit(limit))
		if err != nil {
			t.Fatal(err)
		}
		_, issues := s.Validate("", data(t, "config/base/boom.cue", "l: "+explodeList+"\nboom: len("+explode+")\n"))
		if want := "circle:schema/circle.cue: schema evaluation exceeded 1s while validating"; !strings.HasPrefix(issues.Error(), want) {
			t.Errorf("issues = %v", issues)
		}
	})
	t.Run("default", func(t *testing.T) {
		// The default is generous and a negative limit removes it: both run this at once.
		for _, o := range []schema.Option{schema.WithEvalLimit(0), schema.WithEvalLimit(-1)} {
			s, err := schema.Load(fstest.MapFS{"schema/a.cue": {Data: []byte("package shop\n#Config: {a: int}\n")}}, "schema", o)
			if err != nil {
				t.Fatal(err)
			}
			if _, issues := s.Validate("#Config", data(t, "a.yaml", "a: 1\n")); issues != nil {
				t.Error(issues)
			}
		}
	})
}
