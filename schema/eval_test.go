package schema_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"testing/fstest"

	"cuelang.org/go/cue/parser"

	"github.com/circlecore/circle/schema"
)

const derivingSchema = `package shop

import (
	"strings"
	"encoding/base64"
)

#Config: {
	db: password: string
	db: port:     int & <65536 | *5432
	dsn:    "pw=\(db.password)"
	b64:    base64.Encode(null, db.password)
	upper:  strings.ToUpper(db.password)
	split:  strings.Split(db.password, "")
	n:      len(db.password)
	prefix: strings.HasPrefix(db.password, "a")
	url:    "db:\(db.port)"
	nested: {a: db.password, b: {c: strings.ToUpper(db.password)}, d: "plain"}
	plain:  "hello"
	...
}
`

// Eval is Validate's result where the data decides, and Unknown where it does not: a
// value computed from `_` is not concrete, whatever the function.
func TestEval(t *testing.T) {
	s, err := schema.Load(fstest.MapFS{"schema/app.cue": {Data: []byte(derivingSchema)}}, "schema")
	if err != nil {
		t.Fatal(err)
	}
	real, issues := s.Validate("#Config", data(t, "a.yaml", "db:\n  password: abc\n"))
	if issues != nil {
		t.Fatal(issues)
	}
	same, issues := s.Eval("#Config", data(t, "a.yaml", "db:\n  password: abc\n"), nil)
	if issues != nil || !reflect.DeepEqual(real, same) {
		t.Errorf("Eval of concrete data differs from Validate:\n%#v\n%#v", same, real)
	}
	abstract, issues := s.Eval("#Config", data(t, "a.cue", "db: password: _\n"), nil)
	if issues != nil {
		t.Fatal(issues)
	}
	u := schema.Unknown
	want := map[string]any{
		"db":  map[string]any{"password": u, "port": json.Number("5432")},
		"dsn": u, "b64": u, "upper": u, "split": u, "n": u, "prefix": u,
		"url":    "db:5432",
		"nested": map[string]any{"a": u, "b": map[string]any{"c": u}, "d": "plain"},
		"plain":  "hello",
	}
	if !reflect.DeepEqual(abstract, want) {
		t.Errorf("abstract evaluation:\n%#v\nwant\n%#v", abstract, want)
	}
	// A value that fails its constraint is Unknown, and so is what reads it; the rest of
	// the struct is still there.
	broken, _ := s.Eval("#Config", data(t, "a.yaml", "db:\n  password: abc\n  port: 70000\n"), nil)
	m := broken.(map[string]any)
	if m["url"] != u || m["plain"] != "hello" || m["db"].(map[string]any)["port"] != u {
		t.Errorf("with a broken port: %#v", broken)
	}
	// A struct whose fields depend on `_` is Unknown whole, not listed without them.
	// (Config layers drop both forms; a schema can write them.)
	for _, src := range []string{
		`{db: password: _, sub: {y: 1, if db.password == "x" {leak: 1}}}`,
		`{db: password: _, sub: {y: 1, "\(db.password)": 1}}`,
	} {
		e, err := parser.ParseExpr("a.cue", src)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := s.Eval("#Config", e, nil)
		if v.(map[string]any)["sub"] != u {
			t.Errorf("%s: sub = %#v", src, v.(map[string]any)["sub"])
		}
	}
	if _, issues := s.Eval("#Nope", data(t, "a.yaml", "a: 1\n"), nil); issues == nil {
		t.Error("Eval of a missing definition")
	}
	if v, issues := s.Eval("", data(t, "a.yaml", "a: [1]\n"), nil); issues != nil || !reflect.DeepEqual(v, map[string]any{"a": []any{json.Number("1")}}) {
		t.Errorf("Eval without a definition: %#v %v", v, issues)
	}
	// Scalars of every kind read as Validate gives them.
	scalars := "f: 1.5\nn: null\nbig: 123456789012345678901234567890\nl: [1, [true]]\ne: {}\n"
	want2, issues := s.Validate("", data(t, "s.cue", scalars))
	got2, issues2 := s.Eval("", data(t, "s.cue", scalars), nil)
	if issues != nil || issues2 != nil || !reflect.DeepEqual(got2, want2) {
		t.Errorf("scalars: %#v, want %#v (%v %v)", got2, want2, issues, issues2)
	}
	// skip leaves a field unwalked.
	v, _ := s.Eval("#Config", data(t, "a.yaml", "db:\n  password: abc\n"), func(p []string) bool { return len(p) == 2 && p[0] == "nested" })
	if n := v.(map[string]any)["nested"]; !reflect.DeepEqual(n, map[string]any{"a": schema.Skipped, "b": schema.Skipped, "d": schema.Skipped}) {
		t.Errorf("skipped nested = %#v", n)
	}
	if pos := s.Position("#Config", []string{"nested", "b", "nope"}); pos.Filename != "schema/app.cue" || pos.Line != 18 {
		t.Errorf("Position = %v", pos)
	}
}
