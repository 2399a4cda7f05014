package repo_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/repo"
)

// derivingSchema is what an attacker adds to the example repository: plain fields the
// schema computes from the secret db.password, each in another form.
const derivingSchema = `package circle

import (
	"encoding/base64"
	"strings"
)

#Config: {
	db: _ // declared here too: CUE resolves a reference in the file that makes it
	derived: {
		dsn:    "postgres://shop:\(db.password)@\(db.host)/\(db.name)"
		b64:    base64.Encode(null, db.password)
		upper:  strings.ToUpper(db.password)
		split:  strings.Split(db.password, "")
		length: len(db.password)
		// Not injective: true or false, which a second concrete value alone may not change.
		prefix: strings.HasPrefix(db.password, "CANARY")
		// A default that guesses the secret: ` + "`_`" + ` takes the default, the secret too.
		guess: *"` + Canary + `" | string
		guess: db.password
		nested: {deeper: value: "x-\(db.password)", plain: "stays plain"}
		// Computed from plain values only: stays plain.
		host: db.host
		// The secret port is 5432, the schema's default for it: only the second pass,
		// with another number, sees that url follows the port.
		url: "https://\(db.host):\(db.port)"
	}
}
`

// canaryForms are the canary and what the schema turns it into.
func canaryForms() map[string]string {
	split, _ := json.Marshal(strings.Split(Canary, ""))
	return map[string]string{
		"canary": Canary,
		"base64": base64.StdEncoding.EncodeToString([]byte(Canary)),
		"upper":  strings.ToUpper(Canary),
		"split":  string(split),
	}
}

func noCanary(t *testing.T, what string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for name, form := range canaryForms() {
		if strings.Contains(string(b), form) {
			t.Errorf("%s holds the canary's %s form:\n%s", what, name, b)
		}
	}
}

func derivingRepo(t *testing.T) fstest.MapFS {
	m := examples(t)
	m["schema/derived.cue"] = &fstest.MapFile{Data: []byte(derivingSchema)}
	m["secrets/prod.sops.yaml"] = &fstest.MapFile{Data: encryptCanary(t, "db:\n    password: "+Canary+"\n    port: 5432\n")}
	return m
}

// Every value the schema computes from a secret is sensitive: in no plain value, masked in
// Redacted, on the Secret side of Split with its real value, and hunted by the Redactor.
// Values computed from plain ones stay plain.
func TestDerivedSecretsAreSecret(t *testing.T) {
	red := redact.New()
	r, inv := load(t, derivingRepo(t), repo.Options{Keyring: exampleKeys(t), Redactor: red})
	if inv != nil {
		t.Fatal(inv)
	}
	prod := r.Env("prod")
	plain, sensitive := prod.Split()
	noCanary(t, "the plain config (the circle-config ConfigMap)", plain)
	noCanary(t, "Redacted", prod.Redacted())

	derived, _ := sensitive["derived"].(map[string]any)
	want := map[string]any{
		"dsn":    "postgres://shop:" + Canary + "@db.prod.internal/shop_prod",
		"b64":    canaryForms()["base64"],
		"upper":  canaryForms()["upper"],
		"length": json.Number("30"),
		"prefix": true,
		"guess":  Canary,
		"url":    "https://db.prod.internal:5432",
	}
	for k, v := range want {
		if derived[k] != v {
			t.Errorf("secret side derived.%s = %#v, want %#v", k, derived[k], v)
		}
		if !prod.Sensitive("derived." + k) {
			t.Errorf("derived.%s is not Sensitive", k)
		}
	}
	if s, _ := json.Marshal(derived["split"]); string(s) != canaryForms()["split"] {
		t.Errorf("secret side derived.split = %s", s)
	}
	if v := derived["nested"].(map[string]any)["deeper"].(map[string]any)["value"]; v != "x-"+Canary {
		t.Errorf("secret side derived.nested.deeper.value = %v", v)
	}
	pd := plain["derived"].(map[string]any)
	if pd["host"] != "db.prod.internal" || pd["nested"].(map[string]any)["plain"] != "stays plain" || len(pd) != 2 {
		t.Errorf("values computed from plain ones left the plain side: %v", pd)
	}
	if prod.Sensitive("derived.host") || prod.Sensitive("app.name") {
		t.Error("a plain value is Sensitive")
	}
	// Free text quoting any derived form is masked too (a log line, a library's error).
	for name, form := range canaryForms() {
		if name == "split" {
			continue // single characters are below the redactor's minimum length
		}
		if got := red.String("x " + form + " y"); strings.Contains(got, form) {
			t.Errorf("the Redactor does not hunt the %s form: %s", name, got)
		}
	}
	// The other environments derive from their own secrets, and no canary is theirs.
	for _, name := range []string{"dev", "staging"} {
		if p, _ := r.Env(name).Split(); p["derived"].(map[string]any)["dsn"] != nil {
			t.Errorf("%s: dsn is plain", name)
		}
	}
}

// Field names are never masked, so a schema that computes them (or decides a field's
// presence) from a secret has the revision refused, at the schema's line, without the
// secret.
func TestDerivedNamesRefused(t *testing.T) {
	for name, src := range map[string]string{
		"name":     "package circle\n\n#Config: {\n\tdb: _\n\tleak: {\"\\(db.password)\": true}\n}\n",
		"presence": "package circle\n\n#Config: {\n\tdb: _\n\tleak: {\n\t\tif db.password == \"" + Canary + "\" {yes: true}\n\t}\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			m := examples(t)
			m["schema/leak.cue"] = &fstest.MapFile{Data: []byte(src)}
			m["secrets/prod.sops.yaml"] = &fstest.MapFile{Data: encryptCanary(t, "db:\n    password: "+Canary+"\n")}
			_, inv := load(t, m, repo.Options{Keyring: exampleKeys(t)})
			if inv == nil {
				t.Fatal("loaded")
			}
			got := inv.Error()
			t.Log(got)
			if !strings.Contains(got, "schema/leak.cue:5:") || !strings.Contains(got, "leak: the schema computes field names here from a secret value") {
				t.Errorf("problem = %s", got)
			}
			for form, s := range canaryForms() {
				if strings.Contains(got, s) {
					t.Errorf("the problem holds the canary's %s form", form)
				}
			}
		})
	}
}

// repo.Options.EvalLimit reaches the schema: a config layer in CUE that explodes (for
// about 3 s on an idle core) is a problem naming the schema after about the limit (1 s,
// which loading the example schema never needs, even on a loaded machine).
func TestLoadEvalLimit(t *testing.T) {
	m := examples(t)
	m["config/base/boom.cue"] = &fstest.MapFile{Data: []byte(`l: ["0","1","2","3","4","5","6","7","8","9","a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u","v","w","x","y","z"]
boom: len([for a in l for b in l for c in l for d in l if false {a}])
`)}
	start := time.Now()
	_, inv := load(t, m, repo.Options{Keyring: exampleKeys(t), EvalLimit: time.Second, Envs: []string{"prod"}})
	if inv == nil {
		t.Fatal("loaded")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Load took %s", took)
	}
	if got := inv.Error(); !strings.Contains(got, "schema/app.cue: schema evaluation exceeded 1s while validating") || !strings.Contains(got, "[prod]") {
		t.Errorf("problem = %s", got)
	}
}

// A cue.mod with deps in the example repository is a problem at its line, and the
// registry CUE_REGISTRY names hears nothing.
func TestLoadAsksNoCUERegistry(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	t.Setenv("CUE_REGISTRY", strings.TrimPrefix(srv.URL, "http://")+"+insecure")
	t.Setenv("CUE_CACHE_DIR", t.TempDir())
	m := examples(t)
	m["cue.mod/module.cue"] = &fstest.MapFile{Data: []byte("module: \"example.com/shop@v0\"\nlanguage: version: \"v0.12.0\"\ndeps: \"example.com/evil@v0\": v: \"v0.1.0\"\n")}
	m["schema/evil.cue"] = &fstest.MapFile{Data: []byte("package circle\n\nimport \"example.com/evil\"\n\n#Config: evil.#Config\n")}
	_, err := repo.Load(context.Background(), m, repo.Options{Keyring: exampleKeys(t)})
	if err == nil || !strings.Contains(err.Error(), "cue.mod/module.cue:3:1: deps: CUE module dependencies are not allowed") ||
		!strings.Contains(err.Error(), `schema/evil.cue:3:8: import "example.com/evil" is not allowed`) {
		t.Errorf("err = %v", err)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d request(s) reached the registry", n)
	}
}

// Sensitive values of other kinds than strings (sensitive by their keys here) go through the
// second pass: a number equal to the schema's default for it, a float, a list, a bool.
func TestDerivedFromOtherKinds(t *testing.T) {
	m := examples(t)
	m["config/base/limits.yaml"] = &fstest.MapFile{Data: []byte("limits:\n  apiTokenCount: 5\n  secretRatio: 0.5\n  secretList: [a1b2c3d4, e5f6a7b8]\n  secretFlag: true\n")}
	m["schema/limits.cue"] = &fstest.MapFile{Data: []byte(`package circle

import "strings"

#Config: {
	limits: {apiTokenCount: *5 | int, secretRatio: number, secretList: [...string], secretFlag: bool}
	shown: {
		count:  "n=\(limits.apiTokenCount)"
		ratio:  limits.secretRatio * 2
		items:  len(limits.secretList)
		joined: strings.Join(limits.secretList, ",")
		flag:   !limits.secretFlag
		plain:  "ok"
	}
}
`)}
	red := redact.New()
	r, inv := load(t, m, repo.Options{Keyring: exampleKeys(t), Redactor: red})
	if inv != nil {
		t.Fatal(inv)
	}
	for _, e := range r.Envs {
		plain, sensitive := e.Split()
		if got := plain["shown"]; !reflect.DeepEqual(got, map[string]any{"plain": "ok"}) {
			t.Errorf("%s: plain shown = %v", e.Name, got)
		}
		shown, _ := sensitive["shown"].(map[string]any)
		for _, k := range []string{"count", "ratio", "items", "joined", "flag"} {
			if _, ok := shown[k]; !ok {
				t.Errorf("%s: shown.%s is not on the secret side: %v", e.Name, k, shown)
			}
		}
	}
	if got := red.String("a1b2c3d4,e5f6a7b8"); strings.Contains(got, "e5f6") {
		t.Errorf("the joined list is not hunted: %s", got)
	}
}

// A schema that rejects a value it computes from a secret gets no message quoting that
// value; a problem that does not depend on a secret keeps CUE's message.
func TestDerivedNeverInProblems(t *testing.T) {
	m := examples(t)
	m["schema/check.cue"] = &fstest.MapFile{Data: []byte(`package circle

import "strings"

#Config: {
	db:    _
	check: strings.ToUpper(db.password) & "nope"
	size:  len(db.password) & <5
}
`)}
	m["secrets/prod.sops.yaml"] = &fstest.MapFile{Data: encryptCanary(t, "db:\n    password: "+Canary+"\n")}
	m["config/prod/app.yaml"] = &fstest.MapFile{Data: []byte("app:\n  replicas: 40\n")}
	_, inv := load(t, m, repo.Options{Keyring: exampleKeys(t), Envs: []string{"prod"}})
	if inv == nil {
		t.Fatal("loaded")
	}
	got := inv.Error()
	t.Log(got)
	for form, s := range canaryForms() {
		if strings.Contains(got, s) {
			t.Errorf("the problems hold the canary's %s form", form)
		}
	}
	for _, want := range []string{
		"check: the schema rejects a value it computes from a secret; CUE's message is withheld",
		"size: the schema rejects a value it computes from a secret; CUE's message is withheld",
		"config/prod/app.yaml:2:13: app.replicas: invalid value 40 (out of bound <=20)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q", want)
		}
	}
}
