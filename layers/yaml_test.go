package layers_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	cueyaml "cuelang.org/go/encoding/yaml"

	"github.com/circlecore/circle/layers"
)

// yamlCases are YAML files whose meaning ExtractYAML must keep from CUE's decoder, which
// Circle used before: tags, number spellings, keys that are not strings, anchors, merge
// keys, several documents, and the errors.
var yamlCases = []string{
	"",
	"# only a comment\n",
	"---\n",
	"~\n",
	"a: 1\n",
	"a: 1\nb: two\nc: true\nd: ~\ne: 1.5\nf: -3\ng: 0x1F\nh: 0o17\ni: 017\nj: 0189\nk: 1e3\nl: .inf\nm: -.Inf\nn: .nan\n",
	"a: !!str 1\nb: !!float 1\nc: !!float 1.5\nd: !!int \"7\"\ne: !!binary aGVsbG8=\nf: 2001-12-14t21:59:43.10-05:00\ng: !!bool true\nh: !!null null\n",
	"a: yes\nb: on\nc: True\nd: FALSE\ne: Null\nf: NULL\n",
	"1: a\ntrue: b\n~: c\n1.5: d\n0x10: e\n\"quoted key\": f\n'x.y': g\n",
	"a: |\n  line one\n  line two\nb: >\n  folded\n  text\nc: \"tab\\there\"\nd: 'single ''quoted'''\n",
	"list:\n  - 1\n  - [2, 3]\n  - {x: y}\n  - - nested\n    - list\n",
	"base: &b\n  x: 1\n  y: [1, 2]\nuse: *b\nagain: *b\n",
	"base: &b {x: 1, y: 2}\nsvc:\n  <<: *b\n  y: 3\n  z: 4\n",
	"svc:\n  y: 0\n  <<: {x: 1, y: 2}\n",
	"a: &a {x: 1}\nb: &b {x: 2, w: 9}\nc:\n  <<: [*a, *b]\n  k: v\n",
	"svc:\n  <<: {x: 1}\n  x: 2\n  x: 3\n",
	"k: &k key\n*k : value\n",
	"a: 1\na: 2\n",
	"a: 1\n---\nb: 2\n",
	"- 1\n- 2\n",
	"just a string\n",
	"a: !custom x\n",
	"a: !!int 1.5\n",
	"a: !!binary '*'\n",
	"a: [1, 2\n",
	"a:\n  b: 1\n c: 2\n",
	"? [a, b]\n: c\n",
	"-1: x\n",
	"a: *undefined\n",
	"a: \"\\u00e9t\\u00e9\"\nb: été\nc: 日本: x\n",
	"a: &x 1\nb: *x\n<<: {c: 3}\n",
}

// TestExtractYAMLMatchesCUE holds ExtractYAML to CUE's decoder: the same errors (or none),
// the same values once evaluated, every scalar at the same line.
func TestExtractYAMLMatchesCUE(t *testing.T) {
	for _, src := range yamlCases {
		t.Run(fmt.Sprintf("%.30q", src), func(t *testing.T) {
			sameAsCUE(t, []byte(src))
		})
	}
}

func sameAsCUE(t testing.TB, src []byte) {
	t.Helper()
	want, wantErr := cueExtract(src)
	got, gotErr := layers.ExtractYAML("t.yaml", src)
	if (wantErr != nil) != (gotErr != nil) {
		t.Fatalf("CUE's decoder says %v, ExtractYAML %v", wantErr, gotErr)
	}
	if gotErr != nil {
		ps := cueerrors.Positions(gotErr)
		if !strings.Contains(gotErr.Error(), "t.yaml") && (len(ps) == 0 || ps[0].Filename() != "t.yaml") {
			t.Fatalf("error %q is not placed in the file", gotErr)
		}
		return
	}
	wantJSON, wantEvalErr := evalJSON(want)
	gotJSON, gotEvalErr := evalJSON(got)
	if wantJSON != gotJSON || (wantEvalErr == nil) != (gotEvalErr == nil) {
		t.Fatalf("values differ:\nCUE's decoder: %s (%v)\nExtractYAML:   %s (%v)", wantJSON, wantEvalErr, gotJSON, gotEvalErr)
	}
	// Where CUE's decoder knows a scalar's position (it gives up on some), it is ours,
	// unless the file breaks lines where only YAML does (a lone \r, NEL, LS, PS): CUE
	// then counts lines its own way and points elsewhere.
	if yamlOnlyBreaks.Match(src) {
		return
	}
	w, g := scalarPositions(want), scalarPositions(got)
	if len(w) != len(g) {
		t.Fatalf("%d scalars from CUE's decoder, %d from ExtractYAML", len(w), len(g))
	}
	for i := range w {
		if w[i].Kind != g[i].Kind || w[i].Pos().IsValid() && w[i].Pos().Position() != g[i].Pos().Position() {
			t.Fatalf("scalar %d: %s at %s from CUE's decoder, %s at %s from ExtractYAML", i, w[i].Kind, w[i].Pos().Position(), g[i].Kind, g[i].Pos().Position())
		}
	}
}

var yamlOnlyBreaks = regexp.MustCompile("\r[^\n]|\r$|\u0085|\u2028|\u2029")

func cueExtract(src []byte) (*ast.File, error) { return cueyaml.Extract("t.yaml", src) }

func evalJSON(f *ast.File) (string, error) {
	v := cuecontext.New().BuildFile(f)
	if v.Err() != nil {
		return "", v.Err()
	}
	b, err := v.MarshalJSON()
	return string(b), err
}

// scalarPositions lists every scalar in order.
func scalarPositions(f *ast.File) []*ast.BasicLit {
	var out []*ast.BasicLit
	ast.Walk(f, func(n ast.Node) bool {
		if l, ok := n.(*ast.BasicLit); ok {
			out = append(out, l)
		}
		return true
	}, nil)
	return out
}

// TestYAMLMergeKeyOfItself is a file that used to kill the process: CUE's decoder followed
// the merge key into its own anchor until the Go stack overflowed, which no recover stops.
func TestYAMLMergeKeyOfItself(t *testing.T) {
	for _, src := range []string{
		"a: &a\n  b: 1\n  <<: *a\n",
		"a: &a\n  b: &b\n    <<: *a\n",
		"a: &a [*a]\n",
		"a: &a {x: {<<: [*a]}}\n",
	} {
		_, err := layers.Parse("config/base/loop.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "config/base/loop.yaml:") || !strings.Contains(err.Error(), "contains itself") {
			t.Errorf("%q: %v, want an error at the file saying the anchor contains itself", src, err)
		}
	}
}

// TestYAMLAliasBomb: anchors that double at each level ("billion laughs") are refused once
// they copy MaxAliasNodes values, through aliases and through merge keys alike.
func TestYAMLAliasBomb(t *testing.T) {
	var aliases, merges strings.Builder
	aliases.WriteString("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	merges.WriteString("l0: &l0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&aliases, "l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
		fmt.Fprintf(&merges, "l%d: &l%d {", i, i)
		for j := 0; j < 10; j++ {
			fmt.Fprintf(&merges, "k%d: {<<: *l%d}, ", j, i-1)
		}
		merges.WriteString("z: 0}\n")
	}
	for name, src := range map[string]string{"aliases": aliases.String(), "merge keys": merges.String()} {
		start := time.Now()
		_, err := layers.Parse("config/base/bomb.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "config/base/bomb.yaml:") || !strings.Contains(err.Error(), fmt.Sprint(layers.MaxAliasNodes)) {
			t.Errorf("%s: %v, want the alias bound named at the file", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: refused after %v", name, d)
		}
	}
}

// TestYAMLMergeKeyLinear: a mapping with a merge key and many keys. CUE's decoder scanned
// every earlier key for each one: 14,000 keys took 5 s, and the time grew with the square.
func TestYAMLMergeKeyLinear(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("base: &b {x: 1}\nsvc:\n  <<: *b\n")
	for i := 0; i < 50_000; i++ {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	b.WriteString("  x: 2\n")
	start := time.Now()
	l, err := layers.Parse("config/base/merge.yaml", b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// CUE's decoder would take about a minute here; the bound leaves room for a busy machine.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("50,000 keys after a merge key took %v", d)
	}
	m := layers.Merge(l)
	if o, ok := m.Origin("svc.x"); !ok || o.Line != 50_004 {
		t.Errorf("svc.x comes from %v, want the explicit key on line 50004", o)
	}
	if n := len(m.Origins()); n != 50_002 {
		t.Errorf("%d values, want 50,002 (base.x, svc.x and the 50,000 keys)", n)
	}
}

// TestMergeManyNulls: deleting keys was a search and a copy of the key list each, so a
// layer of 40,000 nulls took 26 s.
func TestMergeManyNulls(t *testing.T) {
	var base, over bytes.Buffer
	for i := 0; i < 50_000; i++ {
		fmt.Fprintf(&base, "k%d: 1\n", i)
		fmt.Fprintf(&over, "k%d: null\n", i)
	}
	fmt.Fprintf(&over, "k7: 7\n") // deleted, then set again: it comes back, last
	bl := parse(t, "config/base/a.yaml", base.String())
	ol := parse(t, "config/prod/a.yaml", over.String())
	start := time.Now()
	m := layers.Merge(bl, ol)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("merging 50,000 nulls took %v", d)
	}
	if got := toJSON(t, m); got != `{"k7":7}` {
		t.Errorf("merged %s, want only k7", got)
	}
}

// TestMergeDeleteAndSetAgain: a key deleted and set again moves to the end, once.
func TestMergeDeleteAndSetAgain(t *testing.T) {
	a := parse(t, "a.yaml", "x: 1\ny: 2\nz: 3\n")
	b := parse(t, "b.yaml", "x: null\ny: null\n")
	c := parse(t, "c.yaml", "x: 4\ny: {q: 1}\n")
	d := parse(t, "d.yaml", "y: null\n")
	e := parse(t, "e.yaml", "y: 5\nz: 6\n")
	m := layers.Merge(a, b, c, d, e)
	if got := toJSON(t, m); got != `{"z":6,"x":4,"y":5}` {
		t.Errorf("merged %s", got)
	}
	var paths []string
	for _, o := range m.Origins() {
		paths = append(paths, o.Path+"@"+o.File)
	}
	if got := strings.Join(paths, " "); got != "z@e.yaml x@c.yaml y@e.yaml" {
		t.Errorf("origins %s", got)
	}
}

// TestParseTooLarge: a file over the cap is refused before it is parsed, by name.
func TestParseTooLarge(t *testing.T) {
	for _, ext := range []string{".yaml", ".json", ".cue"} {
		name := "config/base/huge" + ext
		data := bytes.Repeat([]byte("#"), layers.MaxFileSize+1)
		_, err := layers.Parse(name, data)
		if !errors.Is(err, layers.ErrTooLarge) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), fmt.Sprint(layers.MaxFileSize)) {
			t.Errorf("%s: %v, want ErrTooLarge naming the file and the limit", name, err)
		}
	}
	if _, err := layers.Parse("config/base/edge.yaml", append(bytes.Repeat([]byte("#"), layers.MaxFileSize-1), '\n')); err != nil {
		t.Errorf("a file of exactly the limit: %v", err)
	}
}

// TestYAMLLineBreaks: values are at the line yaml.v3 counts, whatever breaks the lines
// (FuzzParseYAML found a lone \r placing a value past the end of the file).
func TestYAMLLineBreaks(t *testing.T) {
	for _, src := range []string{"a: 1\nb: 2\n", "a: 1\r\nb: 2\r\n", "a: 1\rb: 2\r", "a: 1\u2028b: 2", "a: 1\u0085b: 2"} {
		m := layers.Merge(parse(t, "config/base/a.yaml", src))
		if o, ok := m.Origin("b"); !ok || o.Line != 2 || o.Column != 4 {
			t.Errorf("%q: b at %v, want line 2, column 4", src, o)
		}
	}
}
