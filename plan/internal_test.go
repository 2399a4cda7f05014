package plan

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/storage/publish"

	unstructuredpkg "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func paths(fc []FieldChange) string {
	var out []string
	for _, f := range fc {
		out = append(out, f.Action+" "+f.Path+" "+f.From+" "+f.To)
	}
	return strings.Join(out, "\n")
}

func TestDiffObject(t *testing.T) {
	a := map[string]any{
		"spec": map[string]any{
			"containers": []any{map[string]any{"name": "a", "image": "x:1"}, map[string]any{"name": "gone"}},
			"sources":    []any{map[string]any{"k": 1}, map[string]any{"k": 2}},
			"short":      []any{map[string]any{"k": 1}},
			"args":       []any{"--a", "--b"},
			"kept":       []any{"same"},
			"dup":        []any{map[string]any{"name": "d", "v": 1}, map[string]any{"name": "d", "v": 2}},
			"type":       "map",
			"old":        true,
		},
	}
	b := map[string]any{
		"spec": map[string]any{
			"containers": []any{map[string]any{"name": "new"}, map[string]any{"name": "a", "image": "x:2"}},
			"sources":    []any{map[string]any{"k": 1}},
			"short":      []any{map[string]any{"k": 1}, map[string]any{"k": 3}},
			"args":       []any{"--a", "--c"},
			"kept":       []any{"same"},
			"dup":        []any{map[string]any{"name": "d", "v": 1}, map[string]any{"name": "d", "v": 3}},
			"type":       []any{"now a list"},
			"extra":      map[string]any{"x": "<&>"},
		},
	}
	got := paths(diffObject(a, b, strings.NewReplacer()))
	want := strings.Join([]string{
		`changed spec.args ["--a","--b"] ["--a","--c"]`,
		`added spec.containers[name=new]  {"name":"new"}`,
		`changed spec.containers[name=a].image "x:1" "x:2"`,
		`removed spec.containers[name=gone] {"name":"gone"} `,
		`changed spec.dup[1].v 2 3`,
		`added spec.extra  {"x":"<&>"}`,
		`removed spec.old true `,
		`added spec.short[1]  {"k":3}`,
		`removed spec.sources[1] {"k":2} `,
		`changed spec.type "map" ["now a list"]`,
	}, "\n")
	if got != want {
		t.Errorf("diff:\n%s\nwant\n%s", got, want)
	}
	// An empty list is named (nothing to match), so items on the other side are added.
	if got := paths(diffObject(map[string]any{"l": []any{}}, map[string]any{"l": []any{map[string]any{"name": "x"}}}, strings.NewReplacer())); got != `added l[name=x]  {"name":"x"}` {
		t.Errorf("from an empty list: %s", got)
	}
}

func TestLineDiff(t *testing.T) {
	fc := fieldChange("data.x", "a\nb\nc\n", "a\nB\nc\n")
	if fc.Diff != "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c" || fc.From != "" {
		t.Errorf("%q", fc.Diff)
	}
}

func TestPairReplaced(t *testing.T) {
	obj := func(kind, name string) object {
		o := object{}
		o.u = newUnstructured(kind, name)
		return o
	}
	// Two candidates on one side: not a rename anyone can be sure of.
	created := []object{obj("ConfigMap", "cfg-aaaaaaaaaa"), obj("ConfigMap", "cfg-bbbbbbbbbb"), obj("ConfigMap", "plain")}
	deleted := []object{obj("ConfigMap", "cfg-cccccccccc")}
	if out := pairReplaced(&created, &deleted, strings.NewReplacer()); len(out) != 0 || len(created) != 3 || len(deleted) != 1 {
		t.Errorf("ambiguous pair: %v %d %d", out, len(created), len(deleted))
	}
}

func TestCompareObjects_Unreadable(t *testing.T) {
	red := redact.New()
	if _, err := compareObjects([]byte("a: [\n"), nil, red); err == nil {
		t.Error("unreadable base manifests")
	}
	if _, err := compareObjects(nil, []byte("a: [\n"), red); err == nil {
		t.Error("unreadable head manifests")
	}
	// A Secret with stringData and data that is not base64.
	head := []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  k: plain-secret\ndata:\n  d: '%%%'\n")
	out, err := compareObjects(nil, head, red)
	if err != nil || len(out) != 1 || out[0].Action != Created {
		t.Fatalf("%v %+v", err, out)
	}
}

func TestMarkdownHelpers(t *testing.T) {
	for in, want := range map[string]string{"a": "`a`", "a`b": "``a`b``", "`x": "`` `x ``", "l1\nl2": "`l1⏎l2`"} {
		if got := code(in); got != want {
			t.Errorf("code(%q) = %q, want %q", in, got, want)
		}
	}
	if got := cell("a|b"); got != "`a\\|b`" {
		t.Errorf("cell: %q", got)
	}
	if got := text("*a_b* <x> & [y]\nz"); got != `\*a\_b\* \<x\> \& \[y\] z` {
		t.Errorf("text: %q", got)
	}
	if got := html(`<b>"&"</b>`); got != "&lt;b&gt;&quot;&amp;&quot;&lt;/b&gt;" {
		t.Errorf("html: %q", got)
	}
	m := &md{opts: DefaultMarkdownOptions()}
	if got := m.clip("héllo", 2); got != "hé…" {
		t.Errorf("clip: %q", got)
	}
	if got := cutLines("one\ntwo\nthree", 9); got != "one\ntwo" {
		t.Errorf("cutLines: %q", got)
	}
	if got := cutLines("short", 9); got != "short" {
		t.Errorf("cutLines: %q", got)
	}
	if got := fence([]string{"a ``` b"}, ""); !strings.HasPrefix(got, "````diff\n") {
		t.Errorf("fence: %q", got)
	}
	if statusCell(StatusRemoved) != "🗑️ removed" || statusCell("odd") != "odd" {
		t.Error("statusCell")
	}
	if m.valueCell("1", "") != "~~`1`~~" || m.valueCell("", "2") != "`2`" {
		t.Error("valueCell")
	}
	if got := capList([]string{"a", "b", "c"}, 2, func(n int) string { return "+" + string(rune('0'+n)) }); strings.Join(got, "") != "ab+1" {
		t.Errorf("capList: %v", got)
	}
}

func TestWriteMarkdown_Cuts(t *testing.T) {
	var fields []FieldChange
	for i := 0; i < 40; i++ {
		fields = append(fields, FieldChange{Path: "f", Action: Changed, From: strings.Repeat("x", 300), To: "y"})
	}
	diff := strings.TrimSuffix(strings.Repeat("+line\n", 50), "\n")
	fields = append(fields[:1], FieldChange{Path: "data", Action: Changed, Diff: diff})
	for i := 0; i < 30; i++ {
		fields = append(fields, FieldChange{Path: "g", Action: Added, To: "1"})
	}
	p := &Plan{Summary: Summary{Environments: 1, Changed: 1, HasChanges: true}, Environments: []*Env{{
		Name: "e", Status: StatusChanged, Counts: Counts{Changed: 1},
		Objects: []ObjectChange{{ID: "Kind/n", Action: Changed, Fields: fields}},
	}}}
	var b strings.Builder
	if err := p.WriteMarkdown(&b, MarkdownOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"# … 20 more line(s)", "# … 7 more field(s)", strings.Repeat("x", 120) + "…"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	// A bound smaller than the header itself still holds.
	for i := 0; i < 200; i++ {
		p.Problems = append(p.Problems, Problem{Location: "f.yaml:1:1", Message: strings.Repeat("m", 300)})
	}
	b.Reset()
	if err := p.WriteMarkdown(&b, MarkdownOptions{MaxSize: 5000}); err != nil {
		t.Fatal(err)
	}
	if b.Len() > 5000 || !strings.Contains(b.String(), "cut to fit a comment") {
		t.Errorf("%d bytes:\n%s", b.Len(), b.String())
	}
}

func TestCompareFiles(t *testing.T) {
	base := &pipeline.Output{Files: []publish.File{{Path: "a", Data: []byte("1")}, {Path: "b", Data: []byte("2")}, {Path: "c", Data: []byte("3")}}}
	head := &pipeline.Output{Files: []publish.File{{Path: "a", Data: []byte("1")}, {Path: "b", Data: []byte("22")}, {Path: "d", Data: []byte("4")}}}
	var got []string
	for _, f := range compareFiles(base, head) {
		got = append(got, f.Action+" "+f.Path+" "+sizeChange(f))
	}
	if strings.Join(got, ", ") != "changed b 1 → 2 bytes, removed c was 1 bytes, added d 1 bytes" {
		t.Errorf("%v", got)
	}
}

func TestTermChanges(t *testing.T) {
	b := &license.License{Product: "p", NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Grace: time.Hour}
	h := &license.License{Product: "q", Grace: 2 * time.Hour, Binding: license.Binding{Domain: "example.com"}}
	if got := strings.Join(termChanges(b, h), "; "); got != `product: "p" → "q"; notBefore: 2026-01-01 → never; grace: 1h0m0s → 2h0m0s; binding changed` {
		t.Errorf("%s", got)
	}
	if len(termChanges(nil, h)) != 0 || stamp(time.Time{}) != "" {
		t.Error("nothing to compare")
	}
}

func TestPackageHelpers(t *testing.T) {
	if direction("1.2.0", "1.1.0") != Downgraded || direction("1.0.0", "2.0.0") != Upgraded || direction("x", "y") != Upgraded {
		t.Error("direction")
	}
	if rangeMove("requires", "^1", "") != "requires: ^1 (dropped)" {
		t.Error("rangeMove")
	}
	// A dependent dropped at head: its range on the package is dropped.
	bl := &registry.Lock{Packages: []registry.LockedPackage{{Name: "app", Version: "1.0.0", Dependencies: map[string]string{"lib": "^1"}}, {Name: "lib", Version: "1.0.0"}}}
	hi := &registry.Index{Lock: &registry.Lock{Packages: []registry.LockedPackage{{Name: "lib", Version: "0.9.0"}}}, Requires: map[string]string{"lib": "^0.9"}}
	bi := &registry.Index{Lock: bl, Requires: map[string]string{"app": "^1"}}
	if got := strings.Join(why("lib", bi, hi, bl), "; "); got != "requires: ^0.9 (new); app@1.0.0 depends on it: ^1 (dropped)" {
		t.Errorf("why: %s", got)
	}
	var p PackageChange
	p.Action, p.From, p.To = Downgraded, "1.0.0", "0.9.0"
	if versionChange(p) != "1.0.0 → 0.9.0" || severity(Advisory{Severity: "UNKNOWN", Score: -1}) != "UNKNOWN" {
		t.Error("versionChange, severity")
	}
	p.Action, p.To = Removed, ""
	if versionChange(p) != "1.0.0 (removed)" {
		t.Error("versionChange removed")
	}
}

func TestTextHelpers(t *testing.T) {
	if short("0123456789abcdef0123456789abcdef01234567") != "0123456789ab" || short("") != "(unnamed)" || short("main") != "main" ||
		short("worktree sha256:"+strings.Repeat("ab", 32)) != "worktree sha256:abababababab" {
		t.Error("short")
	}
	if valueChange("1", "") != "1 (removed)" {
		t.Error("valueChange")
	}
	for _, a := range []string{Removed, Replaced, Downgraded, Expiring, Upgraded} {
		if s, _ := mark(a); s == "~" {
			t.Errorf("mark(%s)", a)
		}
	}
	if (Problem{Message: "m", Environments: []string{"a", "b"}}).String() != "m [a, b]" {
		t.Error("Problem.String")
	}
	if DefaultOptions().ExpiryWindow != pipeline.ExpiryWarning {
		t.Error("DefaultOptions")
	}
	if jsonText(make(chan int)) != "?" {
		t.Error("jsonText of what JSON cannot hold")
	}
	e := &Env{Status: StatusRemoved}
	if envStatus(e) != "removed from circle.yaml" {
		t.Error("envStatus")
	}
}

func TestIndexFS(t *testing.T) {
	m := fstest.MapFS{"a/b.txt": {Data: []byte("b")}, "a/c.txt": {Data: []byte("c")}, "d.txt": {Data: []byte("d")}}
	x, err := newIndexFS(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(x, "a/b.txt", "a/c.txt", "d.txt"); err != nil {
		t.Error(err)
	}
	if _, err := x.Open("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open missing: %v", err)
	}
	if _, err := x.ReadDir("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("readdir missing: %v", err)
	}
	if _, err := x.Stat("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat missing: %v", err)
	}
	if _, err := x.Lstat("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lstat missing: %v", err)
	}
	if fi, err := x.Lstat("a"); err != nil || !fi.IsDir() || fi.Name() != "a" || fi.Size() != 0 || !fi.ModTime().IsZero() || fi.Sys() != nil {
		t.Errorf("lstat dir: %v %v", fi, err)
	}
	if fi, err := x.Lstat("d.txt"); err != nil || fi.IsDir() {
		t.Errorf("lstat file: %v %v", fi, err)
	}
	if _, err := x.ReadLink("d.txt"); err == nil {
		t.Error("a file read as a link")
	}
	f, err := x.Open("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(make([]byte, 1)); err == nil {
		t.Error("read of a folder")
	}
	d := f.(fs.ReadDirFile)
	if ents, err := d.ReadDir(1); err != nil || len(ents) != 1 {
		t.Errorf("ReadDir(1): %v %v", ents, err)
	}
	if ents, err := d.ReadDir(5); err != nil || len(ents) != 1 {
		t.Errorf("ReadDir(5): %v %v", ents, err)
	}
	if _, err := d.ReadDir(1); err != io.EOF {
		t.Errorf("ReadDir at the end: %v", err)
	}
	if _, err := newIndexFS(brokenFS{}); err == nil {
		t.Error("a tree that does not list")
	}
}

type brokenFS struct{}

func (brokenFS) Open(string) (fs.File, error) { return nil, fs.ErrPermission }

func TestRedactAll(t *testing.T) {
	red := redact.New(redact.WithSalt([]byte("s")))
	p := &Plan{Environments: []*Env{{Name: "e", Error: "dial db: password hunter22 refused"}}}
	redactAll(p, red) // knows nothing yet: untouched
	red.Add("hunter22")
	redactAll(p, red)
	if strings.Contains(p.Environments[0].Error, "hunter22") || !strings.Contains(p.Environments[0].Error, red.Mask("hunter22")) {
		t.Errorf("%q", p.Environments[0].Error)
	}
}

func newUnstructured(kind, name string) *unstructuredpkg.Unstructured {
	u := &unstructuredpkg.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": kind, "metadata": map[string]any{"name": name}}}
	return u
}
