package schema_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"cuelang.org/go/cue/ast"

	"github.com/circlecore/circle/layers"
	"github.com/circlecore/circle/schema"
)

func data(t *testing.T, name, src string) ast.Expr {
	t.Helper()
	l, err := layers.Parse(name, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return layers.Merge(l).Expr()
}

func TestBuiltinSettings(t *testing.T) {
	s := schema.Builtin()
	v, issues := s.Validate("#Settings", data(t, "circle.yaml", "apiVersion: circle/v1\nenvironments:\n  - name: dev\n"))
	if issues != nil {
		t.Fatal(issues)
	}
	paths := v.(map[string]any)["paths"].(map[string]any)
	if paths["config"] != "config" || paths["manifests"] != "deploy" {
		t.Errorf("defaults not applied: %v", paths)
	}
	_, issues = s.Validate("#Settings", data(t, "circle.yaml", "apiVersion: circle/v2\nenvironments: []\npahts: {}\n"))
	got := issues.Error()
	for _, want := range []string{
		`circle.yaml:1:13: apiVersion: conflicting values "circle/v2" and "circle/v1"`,
		`circle.yaml:3:1: pahts: field not allowed; did you mean "paths"?`,
		`environments: `,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("issues lack %q:\n%s", want, got)
		}
	}
	if _, issues := s.Validate("#Nope", data(t, "x.yaml", "a: 1\n")); issues == nil || !strings.Contains(issues.Error(), "no definition #Nope") {
		t.Errorf("unknown definition: %v", issues)
	}
}

const appSchema = `package shop

#Config: {
	db: #DB
	replicas: int & >=1 | *1
	...
}
`

const dbSchema = `package shop

#DB: {
	host: string
	port: int & <65536 | *5432
}
`

// A schema split over files of one package loads through the snapshot, with positions
// naming the repository's files.
func TestLoadRepoSchema(t *testing.T) {
	fsys := fstest.MapFS{
		"schema/app.cue":   {Data: []byte(appSchema)},
		"schema/db.cue":    {Data: []byte(dbSchema)},
		"schema/README.md": {Data: []byte("docs")},
	}
	s, err := schema.Load(fsys, "schema")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Has("#Config") || !s.Has("#Settings") || s.Has("#Missing") {
		t.Error("Has is wrong")
	}
	v, issues := s.Validate("#Config", data(t, "config/base/db.yaml", "db:\n  host: h\n"))
	if issues != nil {
		t.Fatal(issues)
	}
	if got := v.(map[string]any)["db"].(map[string]any)["port"]; got.(interface{ String() string }).String() != "5432" {
		t.Errorf("default port = %v", got)
	}
	_, issues = s.Validate("#Config", data(t, "config/prod/db.yaml", "db:\n  hots: h\n  port: 99999\nreplicas: 0\n"))
	want := []string{
		`config/prod/db.yaml:2:3: db.hots: field not allowed; did you mean "host"?`,
		`config/prod/db.yaml:3:9: db.port: invalid value 99999 (out of bound <65536)`,
		`config/prod/db.yaml:4:11: replicas: invalid value 0 (out of bound >=1)`,
		`schema/db.cue:4:2: db.host: required field is missing (string)`,
	}
	if got := issues.Error(); got != strings.Join(want, "\n") {
		t.Errorf("issues:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestLoadRepoSchemaErrors(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"syntax":    {"schema/a.cue": {Data: []byte("package shop\n#Config: {\n")}},
		"two pkgs":  {"schema/a.cue": {Data: []byte("package a\n")}, "schema/b.cue": {Data: []byte("package b\n")}},
		"conflict":  {"schema/a.cue": {Data: []byte("package shop\n#Settings: 5\n")}},
		"bad value": {"schema/a.cue": {Data: []byte("package shop\nx: 1 & 2\n")}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := schema.Load(fsys, "schema"); err == nil || !strings.Contains(err.Error(), "schema") {
				t.Errorf("err = %v", err)
			} else {
				t.Log(err)
			}
		})
	}
	// No schema folder, or one without CUE files: the built-in definitions alone.
	for _, fsys := range []fstest.MapFS{{}, {"schema/README.md": {Data: []byte("x")}}} {
		s, err := schema.Load(fsys, "schema")
		if err != nil || s.Has("#Config") || !s.Has("#Settings") {
			t.Errorf("Load = %v, %v", s, err)
		}
	}
	if _, err := schema.Load(fstest.MapFS{"schema": {Data: []byte("a file")}}, "schema"); err == nil {
		t.Error("a file named schema was read as a folder")
	}
}

func TestValidateWithoutDefinition(t *testing.T) {
	s := schema.Builtin()
	v, issues := s.Validate("", data(t, "a.yaml", "a: [1, 2]\n"))
	if issues != nil || len(v.(map[string]any)["a"].([]any)) != 2 {
		t.Fatalf("%v %v", v, issues)
	}
	is := schema.Issue{Message: "m"}
	if is.String() != "m" {
		t.Errorf("bare issue = %q", is.String())
	}
	if (schema.Issue{File: "f", Message: "m"}).String() != "f: m" {
		t.Error("file-only issue")
	}
}
