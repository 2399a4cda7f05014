package schema_test

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"

	"github.com/circlecore/circle/schema"
)

func partialSchema(t *testing.T) *schema.Schema {
	t.Helper()
	s, err := schema.Load(fstest.MapFS{"schema/a.cue": {Data: []byte(`package circle
#Config: {
	db: {host: string, password: string & =~"^.{8,}$", port: int | *5432, dsn: "pw=\(password)"}
	replicas: int & >=1 | *1
	tags?: [...string]
}
`)}}, "schema")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// filled gives each type in src a concrete value of it, as repo does with the stand-ins.
func filled(t *testing.T, src string) ast.Expr {
	t.Helper()
	r := strings.NewReplacer("password: string", `password: ""`, "password: int", "password: 0", "a: string", `a: ""`)
	return expr(t, r.Replace(src))
}

func expr(t *testing.T, src string) ast.Expr {
	t.Helper()
	x, err := parser.ParseExpr("data", src)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// A value given only as its type is not a problem, and neither is what the schema computes
// from it: both are NotDecrypted and listed; the rest is checked and evaluated as Validate
// does, defaults included.
func TestValidatePartial(t *testing.T) {
	s := partialSchema(t)
	out, unknown, issues := s.ValidatePartial("#Config", expr(t, `{db: {host: "h", password: string}, tags: ["a"]}`), filled(t, `{db: {host: "h", password: string}, tags: ["a"]}`))
	if issues != nil {
		t.Fatalf("issues: %v", issues)
	}
	db := out.(map[string]any)["db"].(map[string]any)
	if db["host"] != "h" || db["password"] != schema.NotDecrypted || db["dsn"] != schema.NotDecrypted || db["port"] == schema.NotDecrypted {
		t.Errorf("db: %v", db)
	}
	if out.(map[string]any)["replicas"] == schema.NotDecrypted {
		t.Error("a default was not applied")
	}
	var paths []string
	for _, p := range unknown {
		paths = append(paths, strings.Join(p, "."))
	}
	slices.Sort(paths)
	if strings.Join(paths, ",") != "db.dsn,db.password" {
		t.Errorf("unknown %v", paths)
	}

	for src, want := range map[string]string{
		`{db: {host: 5, password: string}}`:                  "db.host",     // a plain value of the wrong type
		`{db: {password: string}}`:                           "db.host",     // a required field missing
		`{db: {host: "h", password: int}}`:                   "db.password", // the type tag conflicts
		`{db: {host: "h", password: string}, replicas: 0}`:   "replicas",    // a bound
		`{db: {host: "h", password: string}, replics: 2}`:    "replics",     // not allowed
		`{db: {host: "h", password: string, nope: true}}`:    "db.nope",
		`{db: {host: "h", password: string}, tags: [1]}`:     "tags",
		`{db: {host: "h", password: "short"}}`:               "db.password", // a plain value against the pattern
		`{db: {host: "h", password: string}, replicas: 1.5}`: "replicas",
	} {
		if _, _, issues := s.ValidatePartial("#Config", expr(t, src), filled(t, src)); !strings.Contains(issues.Error(), want) {
			t.Errorf("%s: issues %v, want one at %s", src, issues, want)
		}
	}
	if _, _, issues := s.ValidatePartial("#Nope", expr(t, `{}`), expr(t, `{}`)); issues == nil {
		t.Error("a missing definition: no issue")
	}
	// Without a definition, the data is only evaluated.
	out, unknown, issues = s.ValidatePartial("", expr(t, `{a: string, b: 1}`), filled(t, `{a: string, b: 1}`))
	if issues != nil || out.(map[string]any)["a"] != schema.NotDecrypted || len(unknown) != 1 {
		t.Errorf("no definition: %v %v %v", out, unknown, issues)
	}
}
