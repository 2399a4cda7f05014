package repo

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/parser"
)

func src(t *testing.T, e ast.Expr) string {
	t.Helper()
	b, err := format.Node(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The second pass's stand-ins keep the kind, never the value; strings stay abstract; what
// cannot be mimicked becomes _.
func TestStandIns(t *testing.T) {
	si := newStandIns()
	for in, check := range map[string]func(string) bool{
		`"secret"`: func(s string) bool { return s == `=~"a^"` },
		`'bytes'`:  func(s string) bool { return strings.HasPrefix(s, "'") && s != `'bytes'` },
		`5432`:     func(s string) bool { return s != "5432" && !strings.ContainsAny(s, `."'`) },
		`0.5`:      func(s string) bool { return s != "0.5" && strings.Contains(s, ".") },
		`true`:     func(s string) bool { return s == "false" },
		`false`:    func(s string) bool { return s == "true" },
		`null`:     func(s string) bool { return s == "null" },
		`-7`:       func(s string) bool { return strings.HasPrefix(s, "-") && s != "-7" },
		`!x`:       func(s string) bool { return s == "_" },
		`a + "b"`:  func(s string) bool { return s == "_" },
		`["a", 1]`: func(s string) bool { return strings.Count(s, ",") == 2 && strings.Contains(s, `=~"a^"`) },
		`[]`:       func(s string) bool { return s == `[=~"a^"]` },
		`[{k: 1}]`: func(s string) bool { return strings.Contains(s, "k:") && !strings.Contains(s, "k: 1\n") },
	} {
		e, err := parser.ParseExpr("x.cue", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := src(t, si.expr(e)); !check(got) {
			t.Errorf("stand-in of %s = %s", in, got)
		}
	}
	if a, b := si.text(), si.text(); a == b || len(a) < 16 {
		t.Errorf("text() = %q, %q", a, b)
	}
}

func TestIsLiteral(t *testing.T) {
	for in, want := range map[string]bool{
		`"a"`: true, `1`: true, `-1`: true, `[1, "a", [true]]`: true, `null`: true,
		`[{a: 1}]`: false, `a`: false, `"\(a)"`: false, `!true`: false, `1 + 1`: false,
	} {
		e, err := parser.ParseExpr("x.cue", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := isLiteral(e); got != want {
			t.Errorf("isLiteral(%s) = %v", in, got)
		}
	}
}

func TestAppendScalars(t *testing.T) {
	got := appendScalars(nil, []any{"a", json.Number("12345"), true, nil, map[string]any{"key": "v"}})
	sort.Strings(got)
	if want := []string{"12345", "a", "key", "v"}; !reflect.DeepEqual(got, want) {
		t.Errorf("appendScalars = %v", got)
	}
	if lookupPath(map[string]any{"a": "x"}, []string{"a", "b"}) != nil || sameKeys(map[string]any{"a": 1}, map[string]any{"b": 1}) {
		t.Error("lookupPath or sameKeys")
	}
}
