package layers_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue/cuecontext"

	"github.com/circlecore/circle/layers"
)

func parse(t *testing.T, name, src string) *layers.Layer {
	t.Helper()
	l, err := layers.Parse(name, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// toJSON evaluates the merged document the way validation will, and prints it compactly.
func toJSON(t *testing.T, m *layers.Merged) string {
	t.Helper()
	v := cuecontext.New().BuildExpr(m.Expr())
	if v.Err() != nil {
		t.Fatal(v.Err())
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMergeRules(t *testing.T) {
	base := parse(t, "config/base/app.yaml", `app:
  name: shop
  replicas: 1
  hosts: [a, b]
db:
  host: localhost
  port: 5432
legacy:
  x: 1
mode: simple
`)
	env := parse(t, "config/prod/app.yaml", `app:
  replicas: 4
  hosts: [c]
legacy: null
db:
  port: null
mode:
  kind: advanced
extra: true
`)
	m := layers.Merge(base, env)
	got := toJSON(t, m)
	want := `{"app":{"name":"shop","replicas":4,"hosts":["c"]},"db":{"host":"localhost"},"mode":{"kind":"advanced"},"extra":true}`
	if got != want {
		t.Fatalf("merged:\n got %s\nwant %s", got, want)
	}
	for p, where := range map[string]string{
		"app.name":     "config/base/app.yaml:2:9",
		"app.replicas": "config/prod/app.yaml:2:13",
		"app.hosts":    "config/prod/app.yaml:3:10",
		"db.host":      "config/base/app.yaml:6:9",
		"mode.kind":    "config/prod/app.yaml:8:9",
	} {
		o, ok := m.Origin(p)
		if !ok || o.String() != where {
			t.Errorf("origin of %s = %v (%v), want %s", p, o, ok, where)
		}
	}
	if _, ok := m.Origin("db.port"); ok {
		t.Error("a deleted value kept an origin")
	}
	if len(m.SecretValues()) != 0 || len(m.SensitivePaths()) != 0 {
		t.Error("plain layers produced secrets")
	}
}

func TestFormats(t *testing.T) {
	j := parse(t, "config/base/a.json", `{"a": {"b": 1, "list": [1, 2]}, "weird.key": "x"}`)
	c := parse(t, "config/base/b.cue", "package config\n\n// comment\na: b: 2\nc: \"from cue\"\n")
	empty := parse(t, "config/base/empty.yaml", "")
	nullDoc := parse(t, "config/base/null.yaml", "null\n")
	m := layers.Merge(j, c, empty, nullDoc)
	if got, want := toJSON(t, m), `{"a":{"b":2,"list":[1,2]},"weird.key":"x","c":"from cue"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if o, ok := m.Origin(`"weird.key"`); !ok || o.File != "config/base/a.json" {
		t.Errorf("quoted key origin = %v, %v", o, ok)
	}
	if o, _ := m.Origin("a.b"); o.String() != "config/base/b.cue:4:7" {
		t.Errorf("cue origin = %v", o)
	}
}

func TestParseErrors(t *testing.T) {
	for name, src := range map[string]string{
		"config/base/list.yaml":  "- a\n- b\n",
		"config/base/multi.yaml": "a: 1\n---\nb: 2\n",
		"config/base/str.yaml":   "hello\n",
		"config/base/bad.yaml":   "a: [1, 2\n",
		"config/base/bad.json":   `{"a": }`,
		"config/base/imp.cue":    "import \"strings\"\na: strings.ToUpper(\"x\")\n",
		"config/base/cmp.cue":    "for x in [1] { a: x }\n",
		"config/base/bad.cue":    "a: {\n",
		"config/base/list.json":  `[1]`,
		"config/base/x.toml":     "a = 1",
	} {
		_, err := layers.Parse(name, []byte(src))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
}

// A decrypted SOPS layer reports the encrypted file's lines, and everything in it is secret.
func TestFromSOPS(t *testing.T) {
	encrypted := `# comment line
db:
    password: ENC[AES256_GCM,data:xx,type:str]
    port: ENC[AES256_GCM,data:yy,type:int]
    hosts:
        - ENC[AES256_GCM,data:zz,type:str]
sops:
    version: 3.13.3
`
	plaintext := "db:\n  password: hunter2-secret\n  port: 5433\n  hosts: [h1]\n"
	l, err := layers.FromSOPS("secrets/prod.sops.yaml", []byte(encrypted), []byte(plaintext))
	if err != nil {
		t.Fatal(err)
	}
	base := parse(t, "config/base/db.yaml", "db:\n  password: none\n  user: app\n")
	m := layers.Merge(base, l)
	if o, _ := m.Origin("db.password"); o.String() != "secrets/prod.sops.yaml:3:15" || !o.Sensitive {
		t.Errorf("password origin = %+v", o)
	}
	if o, _ := m.Origin("db.port"); o.Line != 4 {
		t.Errorf("port origin = %+v", o)
	}
	if o, _ := m.Origin("db.user"); o.Sensitive {
		t.Error("a base value became sensitive")
	}
	got := strings.Join(m.SecretValues(), ",")
	if got != "hunter2-secret,5433,h1" {
		t.Errorf("secret values = %q", got)
	}
	if got := strings.Join(m.SensitivePaths(), ","); got != "db.password,db.port,db.hosts" {
		t.Errorf("sensitive paths = %q", got)
	}
	if _, err := layers.FromSOPS("s.yaml", []byte(encrypted), []byte("- not: a map\n- hunter2\n")); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad plaintext error = %v", err)
	}
	if _, err := layers.FromSOPS("s.yaml", []byte("[unclosed"), []byte(plaintext)); err == nil {
		t.Error("bad encrypted file accepted")
	}
}

func TestFromValues(t *testing.T) {
	base := parse(t, "config/base/app.yaml", "app:\n  replicas: 1\n  name: shop\n")
	over, err := layers.FromValues("daemon overrides", map[string]any{
		"app": map[string]any{"replicas": 3, "name": nil, "ratio": 0.5, "big": int64(1 << 40), "tags": []any{"a", true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := layers.Merge(base, over)
	if got, want := toJSON(t, m), `{"app":{"replicas":3,"big":1099511627776,"ratio":0.5,"tags":["a",true]}}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if o, _ := m.Origin("app.replicas"); o.String() != "daemon overrides" {
		t.Errorf("override origin = %v", o)
	}
	if _, err := layers.FromValues("x", map[string]any{"c": make(chan int)}); err == nil {
		t.Error("unsupported type accepted")
	}
}

// Split undoes Join for any keys: plain ones, and ones with dots, quotes, backslashes,
// spaces or no characters at all, which Join quotes.
func TestSplitUndoesJoin(t *testing.T) {
	for _, keys := range [][]string{
		{"db", "password"},
		{"a.b", "c"},
		{`say "hi"`, "x.y.z", `back\slash`},
		{"", "ünïcode key", "-lead"},
		{"services", "api-v2", "0"},
	} {
		path := ""
		for _, k := range keys {
			path = layers.Join(path, k)
		}
		if got := layers.Split(path); !slices.Equal(got, keys) {
			t.Errorf("Split(%q) = %q, want %q", path, got, keys)
		}
	}
	// What Join did not write is split as far as it reads.
	if got := layers.Split(`a."unterminated`); !slices.Equal(got, []string{"a", `"unterminated`}) {
		t.Errorf("an unterminated quote: %q", got)
	}
}

func FuzzSplitJoin(f *testing.F) {
	f.Add("a", "b.c")
	f.Add(`q"uote`, "")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got := layers.Split(layers.Join(layers.Join("", a), b)); !slices.Equal(got, []string{a, b}) {
			t.Errorf("Split(Join(%q, %q)) = %q", a, b, got)
		}
	})
}
