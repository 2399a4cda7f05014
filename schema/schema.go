// Package schema validates data with CUE: Circle's built-in definitions (embedded in the
// binary) unified with the definitions a repository keeps in its own schema/*.cue.
//
// Validation reports every problem at once, each as an Issue naming the file, line and
// column of the offending value (the data's position, not the schema's, when the data has
// one) and the constraint it broke. CUE defaults are applied to the value returned.
//
// A repository's CUE is hostile input (see Load): it is loaded from the snapshot alone, with
// no module registry, and every evaluation runs under a time limit (WithEvalLimit).
package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"
)

//go:embed *.cue
var builtinFS embed.FS

// BuiltinFile is the name the built-in definitions carry in positions.
const BuiltinFile = "circle:schema/circle.cue"

// Issue is one validation problem.
type Issue struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// String formats an issue the way compilers do: file:line:col: path: message.
func (i Issue) String() string {
	var b strings.Builder
	if i.File != "" {
		b.WriteString(i.File)
		if i.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", i.Line, i.Column)
		}
		b.WriteString(": ")
	}
	if i.Path != "" {
		b.WriteString(i.Path)
		b.WriteString(": ")
	}
	b.WriteString(i.Message)
	return b.String()
}

// Issues is a list of problems; as an error it prints one per line.
type Issues []Issue

// Error joins the issues, one per line.
func (is Issues) Error() string {
	lines := make([]string, len(is))
	for i, is := range is {
		lines[i] = is.String()
	}
	return strings.Join(lines, "\n")
}

// Schema is a compiled set of CUE definitions. It is safe for concurrent use: CUE values
// are not, so calls are serialised.
type Schema struct {
	mu    sync.Mutex
	ctx   *cue.Context
	value cue.Value
	// files are the schema's own source files; an error position in one of them is where a
	// constraint was written, not where the data broke it.
	files map[string]bool
	// own lists the files Load read from the repository, sorted: what a limit error names.
	own []string
	// limit bounds each evaluation (see bounded); broken is set once one exceeded it, since
	// the abandoned evaluation still holds ctx.
	limit  time.Duration
	broken Issues
}

// Option configures a Schema made by Load.
type Option func(*Schema)

// DefaultEvalLimit is how long one evaluation of a repository's CUE may run when
// WithEvalLimit does not say: far above what a real schema needs (the 1,000-file benchmark
// validates an environment in well under a second), far below a reconcile interval.
const DefaultEvalLimit = 10 * time.Second

// WithEvalLimit bounds the time of each CUE evaluation the Schema runs: loading the schema,
// and each Validate or Eval. Zero keeps DefaultEvalLimit; a negative limit disables the
// bound (for trusted CUE only). The daemon sets it; a repository cannot.
func WithEvalLimit(d time.Duration) Option {
	return func(s *Schema) {
		if d != 0 {
			s.limit = d
		}
	}
}

var (
	builtinOnce sync.Once
	builtinSrc  []byte
)

func builtinSource() []byte {
	builtinOnce.Do(func() {
		var err error
		builtinSrc, err = builtinFS.ReadFile("circle.cue")
		if err != nil {
			panic("schema: embedded circle.cue missing: " + err.Error())
		}
	})
	return builtinSrc
}

// Builtin returns Circle's own definitions: #Settings for circle.yaml.
func Builtin() *Schema {
	ctx := cuecontext.New()
	v := ctx.CompileBytes(builtinSource(), cue.Filename(BuiltinFile))
	if v.Err() != nil {
		panic("schema: embedded circle.cue does not compile: " + v.Err().Error())
	}
	return &Schema{ctx: ctx, value: v, files: map[string]bool{BuiltinFile: true}, limit: DefaultEvalLimit}
}

// Load compiles the CUE package in dir of fsys (a snapshot) and unifies it with the built-in
// definitions. A missing dir yields the built-in definitions alone.
//
// The repository's CUE is untrusted, so loading is confined by construction:
//
//   - CUE's loader reads through fsys only (load.Config.FS), never the host's file system
//     or CUE's module cache;
//   - the loader is given a module registry that refuses every request (noRegistry), so no
//     setting, CUE_REGISTRY included, can make it reach the network;
//   - before loading, a cue.mod/module.cue (or local-module.cue) declaring deps is a
//     problem at its line, and so is an import that is neither CUE's standard library nor
//     a package of the repository's own module; imports reached through the module's own
//     packages are checked the same way once they are known;
//   - the evaluation runs under a time limit (WithEvalLimit).
func Load(fsys fs.FS, dir string, opts ...Option) (*Schema, error) {
	s := Builtin()
	for _, o := range opts {
		o(s)
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return s, nil
		}
		return nil, fmt.Errorf("schema: read %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() && path.Ext(e.Name()) == ".cue" {
			f := path.Join(dir, e.Name())
			s.files[f] = true
			s.own = append(s.own, f)
		}
	}
	if len(s.own) == 0 {
		return s, nil
	}
	module, issues := checkModule(fsys)
	issues = append(issues, checkImports(fsys, dir, module)...)
	if len(issues) > 0 {
		sortIssues(issues)
		return nil, fmt.Errorf("schema: load %s: %w", dir, issues)
	}
	insts := load.Instances([]string{"./" + dir}, &load.Config{
		FS:  fsys,
		Dir: "/",
		// Positions then read "schema/app.cue", as the user wrote it.
		FromFSPath: func(p string) string { return strings.TrimPrefix(p, "/") },
		Registry:   noRegistry{},
		// Nothing of the process's environment (CUE_REGISTRY, CUE_CACHE_DIR) applies.
		Env: []string{},
	})
	if len(insts) != 1 {
		return nil, fmt.Errorf("schema: %s: want one CUE package, found %d", dir, len(insts))
	}
	// Files of parent folders and of the module's own imported packages join the
	// instance; their imports are checked here, before the loader's own error (which
	// would only say that the refusing registry refused).
	if issues := s.loaded(insts[0], module); len(issues) > 0 {
		return nil, fmt.Errorf("schema: load %s: %w", dir, issues)
	}
	if err := insts[0].Err; err != nil {
		return nil, fmt.Errorf("schema: load %s: %w", dir, s.issues(err, cue.Value{}))
	}
	var loadErr error
	if err := s.bounded("loading "+dir, func() {
		v := s.ctx.BuildInstance(insts[0])
		if err := v.Err(); err != nil {
			loadErr = fmt.Errorf("schema: compile %s: %w", dir, s.issues(err, cue.Value{}))
			return
		}
		s.value = s.value.Unify(v)
		if err := s.value.Err(); err != nil {
			loadErr = fmt.Errorf("schema: %s conflicts with the built-in definitions: %w", dir, s.issues(err, cue.Value{}))
		}
	}); err != nil {
		return nil, fmt.Errorf("schema: load %s: %w", dir, err)
	}
	if loadErr != nil {
		return nil, loadErr
	}
	return s, nil
}

// Has reports whether the schema defines def, e.g. "#Config". A schema whose evaluation
// exceeded its limit has nothing.
func (s *Schema) Has(def string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ok bool
	if err := s.bounded("looking up "+def, func() { ok = s.value.LookupPath(cue.ParsePath(def)).Exists() }); err != nil {
		return false
	}
	return ok
}

// Validate unifies data with the definition def and checks that the result is complete and
// concrete. It returns the result with defaults applied, as a Go value of maps, slices and
// scalars, and every issue found. An empty def checks the data alone. The evaluation runs
// under the schema's limit; exceeding it is an issue naming the schema's files.
func (s *Schema) Validate(def string, data ast.Expr) (any, Issues) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out any
	var issues Issues
	if err := s.bounded("validating", func() { out, issues = s.validate(def, data) }); err != nil {
		return nil, err
	}
	return out, issues
}

func (s *Schema) validate(def string, data ast.Expr) (any, Issues) {
	d, issues := s.definition(def)
	if issues != nil {
		return nil, issues
	}
	v := s.ctx.BuildExpr(data)
	if err := v.Err(); err != nil {
		return nil, s.issues(err, d)
	}
	u := v
	if def != "" {
		u = d.Unify(v)
	}
	if err := u.Validate(cue.Concrete(true)); err != nil {
		issues := s.issues(err, d)
		if def != "" {
			// CUE stops checking a struct's closedness once one of its fields fails, so a
			// misspelt key next to a wrong value would only surface on the next run.
			issues = merge(issues, notAllowed(d, data, nil))
			issues = merge(issues, s.missing(d, data, nil))
		}
		return nil, issues
	}
	b, err := u.MarshalJSON()
	if err != nil {
		return nil, s.issues(err, d)
	}
	out, err := decodeJSON(b)
	if err != nil {
		return nil, Issues{{Message: err.Error()}}
	}
	return out, nil
}

// definition looks def up; an empty def is no definition, and no issue.
func (s *Schema) definition(def string) (cue.Value, Issues) {
	if def == "" {
		return cue.Value{}, nil
	}
	d := s.value.LookupPath(cue.ParsePath(def))
	if !d.Exists() {
		return cue.Value{}, Issues{{Message: fmt.Sprintf("the schema has no definition %s", def)}}
	}
	return d, nil
}

// decodeJSON reads CUE's JSON the way every result of this package is given: numbers stay
// exact (json.Number), so a config value is published as written.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// notAllowed walks the data's fields beside the definition and reports each field the
// definition does not allow, at the field's own position.
func notAllowed(def cue.Value, data ast.Expr, path []string) Issues {
	st, ok := data.(*ast.StructLit)
	if !ok || def.IncompleteKind() != cue.StructKind {
		return nil
	}
	var out Issues
	for _, d := range st.Elts {
		f, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		name, _, err := ast.LabelName(f.Label)
		if err != nil {
			continue
		}
		p := append(path[:len(path):len(path)], name)
		if !def.Allows(cue.Str(name)) {
			pos := f.Label.Pos().Position()
			is := Issue{File: pos.Filename, Line: pos.Line, Column: pos.Column, Path: strings.Join(p, "."), Message: "field not allowed"}
			if best := closest(name, labels(def)); best != "" {
				is.Message = fmt.Sprintf("field not allowed; did you mean %q?", best)
			}
			out = append(out, is)
			continue
		}
		out = append(out, notAllowed(def.LookupPath(cue.MakePath(cue.Str(name))), f.Value, p)...)
	}
	return out
}

// fieldsOf is data's fields by name, when it is a struct.
func fieldsOf(data ast.Expr) map[string]ast.Expr {
	present := map[string]ast.Expr{}
	if st, ok := data.(*ast.StructLit); ok {
		for _, d := range st.Elts {
			if f, ok := d.(*ast.Field); ok {
				if name, _, err := ast.LabelName(f.Label); err == nil {
					present[name] = f.Value
				}
			}
		}
	}
	return present
}

// missing reports each regular field of the definition that the data lacks and the schema
// gives no default for: the other half of what CUE leaves out once a struct has an error.
func (s *Schema) missing(def cue.Value, data ast.Expr, path []string) Issues {
	if def.IncompleteKind() != cue.StructKind {
		return nil
	}
	present := fieldsOf(data)
	it, err := def.Fields()
	if err != nil {
		return nil
	}
	var out Issues
	for it.Next() {
		name := it.Selector().Unquoted()
		fv := it.Value()
		p := append(path[:len(path):len(path)], name)
		if sub, ok := present[name]; ok {
			out = append(out, s.missing(fv, sub, p)...)
			continue
		}
		if _, ok := fv.Default(); ok || fv.IsConcrete() && fv.IncompleteKind() != cue.StructKind {
			continue
		}
		if fv.IncompleteKind() == cue.StructKind {
			out = append(out, s.missing(fv, nil, p)...)
			continue
		}
		pos := fv.Pos().Position()
		out = append(out, Issue{File: pos.Filename, Line: pos.Line, Column: pos.Column, Path: strings.Join(p, "."),
			Message: fmt.Sprintf("required field is missing (%v)", fv)})
	}
	return out
}

// merge adds the issues of more that issues lacks, keeping the order by position.
func merge(issues, more Issues) Issues {
	seen := map[string]bool{}
	for _, is := range issues {
		seen[is.File+":"+strconv.Itoa(is.Line)+":"+is.Path] = true
	}
	for _, is := range more {
		if !seen[is.File+":"+strconv.Itoa(is.Line)+":"+is.Path] {
			issues = append(issues, is)
		}
	}
	sortIssues(issues)
	return issues
}

func sortIssues(out Issues) {
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// issues converts CUE's errors into one issue per offending value, sorted by position, each
// at the data's position when it has one.
//
// A value that fails a disjunction such as `int & <65536 | *5432` gets an error per
// disjunct plus a summary; only the most telling one is kept: a broken bound or a type
// mismatch says more than "conflicts with the default 5432".
func (s *Schema) issues(err error, def cue.Value) Issues {
	type ranked struct {
		Issue
		rank int
	}
	best := map[string]ranked{}
	var order []string
	for _, e := range cueerrors.Errors(err) {
		p := e.Path()
		// Paths are the data's: "db.port", not "#Config.db.port".
		if len(p) > 0 && strings.HasPrefix(p[0], "#") {
			p = p[1:]
		}
		is := Issue{Path: strings.Join(p, ".")}
		format, args := e.Msg()
		is.Message = fmt.Sprintf(format, args...)
		if pos, ok := s.position(e); ok {
			pp := pos.Position()
			is.File, is.Line, is.Column = pp.Filename, pp.Line, pp.Column
		}
		is.Message = s.explain(is, p, def)
		r := rank(is.Message)
		key := is.Path
		if key == "" {
			key = is.String()
		}
		cur, ok := best[key]
		if !ok {
			order = append(order, key)
		}
		if !ok || r < cur.rank || r == cur.rank && cur.File == "" && is.File != "" {
			best[key] = ranked{is, r}
		}
	}
	out := make(Issues, 0, len(order))
	for _, k := range order {
		out = append(out, best[k].Issue)
	}
	sortIssues(out)
	return out
}

var typeNames = regexp.MustCompile(` and (int|float|number|string|bytes|bool|null|struct|list|_\|_)( |$)`)

func rank(msg string) int {
	switch {
	case strings.Contains(msg, "errors in empty disjunction"):
		return 9
	case strings.HasPrefix(msg, "conflicting values"):
		if typeNames.MatchString(msg) {
			return 1
		}
		return 3
	case strings.HasPrefix(msg, "required field is missing"):
		return 2
	}
	return 0
}

// position prefers a position in the data over one in the schema: "config/prod/db.yaml:4"
// is where the user fixes the problem.
func (s *Schema) position(e cueerrors.Error) (token.Pos, bool) {
	positions := cueerrors.Positions(e)
	for _, p := range positions {
		if !s.files[p.Filename()] {
			return p, true
		}
	}
	if len(positions) > 0 {
		return positions[0], true
	}
	return token.NoPos, false
}

// explain rewrites the two messages users meet most into ones that say what to do.
func (s *Schema) explain(is Issue, p []string, def cue.Value) string {
	msg := is.Message
	switch {
	case strings.HasPrefix(msg, "incomplete value"):
		return "required field is missing (" + strings.TrimPrefix(msg, "incomplete value ") + ")"
	case msg == "field not allowed" && len(p) > 0 && def.Exists():
		parent := def.LookupPath(cue.MakePath(selectors(p[:len(p)-1])...))
		if best := closest(p[len(p)-1], labels(parent)); best != "" {
			return fmt.Sprintf("field not allowed; did you mean %q?", best)
		}
	}
	return msg
}

func selectors(p []string) []cue.Selector {
	sel := make([]cue.Selector, 0, len(p))
	for _, e := range p {
		if strings.HasPrefix(e, "#") {
			sel = append(sel, cue.Def(e))
			continue
		}
		sel = append(sel, cue.Str(e))
	}
	return sel
}

func labels(v cue.Value) []string {
	if !v.Exists() {
		return nil
	}
	var out []string
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	for it.Next() {
		out = append(out, it.Selector().Unquoted())
	}
	return out
}

// closest returns the candidate within a small edit distance of name, or "". Written here
// because a did-you-mean needs twenty lines, not a dependency.
func closest(name string, candidates []string) string {
	best, bestD := "", len(name)/3+2
	for _, c := range candidates {
		if d := distance(strings.ToLower(name), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// NotDecrypted stands in the result of ValidatePartial for a value that is not known: one
// the data gives only as a type (a secret not decrypted), or one the schema computes from
// such. It is a string, so the result still encodes as the configuration would.
const NotDecrypted = "(not decrypted)"

// ValidatePartial judges data in which some values are given only as their type (`string`,
// `int`: secrets a review without keys cannot read). Every constraint that can be checked
// is: a type or bound that conflicts, a field not allowed, a required field missing. What
// is incomplete because of a value not given is not a problem: it is listed in unknown
// (each a path of field names), and stands as NotDecrypted in the returned document, so the rest can be built
// and checked.
//
// filled is the same data with each of those values given as any concrete value of its
// type: a required field is missing when the data lacks it and even then it is not
// concrete, which tells it from a field the schema computes from a value not given.
func (s *Schema) ValidatePartial(def string, data, filled ast.Expr) (out any, unknown [][]string, issues Issues) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.bounded("validating", func() { out, unknown, issues = s.validatePartial(def, data, filled) })
	if err != nil {
		return nil, nil, err
	}
	return out, unknown, issues
}

func (s *Schema) validatePartial(def string, data, filled ast.Expr) (any, [][]string, Issues) {
	d, issues := s.definition(def)
	if issues != nil {
		return nil, nil, issues
	}
	v := s.ctx.BuildExpr(data)
	if err := v.Err(); err != nil {
		return nil, nil, s.issues(err, d)
	}
	u := v
	if def != "" {
		u = d.Unify(v)
	}
	if err := u.Validate(cue.Concrete(false)); err != nil {
		issues := s.issues(err, d)
		if def != "" {
			issues = merge(issues, notAllowed(d, data, nil))
		}
		return nil, nil, issues
	}
	if def != "" {
		// Concrete(false) says nothing of a required field the data lacks.
		issues := notAllowed(d, data, nil)
		if f := s.ctx.BuildExpr(filled); f.Err() == nil {
			issues = merge(issues, missingIn(d, d.Unify(f), data, nil))
		}
		if issues != nil {
			return nil, nil, issues
		}
	}
	var unknown [][]string
	out, err := known(u, nil, &unknown)
	if err != nil {
		return nil, nil, Issues{{Message: err.Error()}}
	}
	return out, unknown, nil
}

// known is v with each value that is not concrete (after defaults) replaced by NotDecrypted,
// and its path recorded.
func known(v cue.Value, path []string, unknown *[][]string) (any, error) {
	if d, ok := v.Default(); ok {
		v = d
	}
	switch v.IncompleteKind() {
	case cue.StructKind:
		it, err := v.Fields()
		if err != nil {
			return nil, err
		}
		m := map[string]any{}
		for it.Next() {
			p := append(path[:len(path):len(path)], it.Selector().Unquoted())
			if m[it.Selector().Unquoted()], err = known(it.Value(), p, unknown); err != nil {
				return nil, err
			}
		}
		return m, nil
	case cue.ListKind:
		if !v.IsConcrete() {
			break
		}
		it, err := v.List()
		if err != nil {
			return nil, err
		}
		var l []any
		for i := 0; it.Next(); i++ {
			x, err := known(it.Value(), append(path[:len(path):len(path)], fmt.Sprint(i)), unknown)
			if err != nil {
				return nil, err
			}
			l = append(l, x)
		}
		return l, nil
	}
	if !v.IsConcrete() {
		*unknown = append(*unknown, path)
		return NotDecrypted, nil
	}
	b, err := v.MarshalJSON()
	if err != nil {
		*unknown = append(*unknown, path)
		return NotDecrypted, nil
	}
	return decodeJSON(b)
}

// missingIn reports each field of the definition def that the data lacks and that, in u
// (def unified with the filled data), is still not concrete nor an error: required, and
// given by nothing. The definition leads the walk: a struct with an error somewhere in it
// has no kind of its own in u.
func missingIn(def, u cue.Value, data ast.Expr, path []string) Issues {
	if def.IncompleteKind() != cue.StructKind {
		return nil
	}
	present := fieldsOf(data)
	it, err := def.Fields()
	if err != nil {
		return nil
	}
	var out Issues
	for it.Next() {
		name := it.Selector().Unquoted()
		fd := it.Value()
		fu := u.LookupPath(cue.MakePath(cue.Str(name)))
		p := append(path[:len(path):len(path)], name)
		sub, given := present[name]
		if fd.IncompleteKind() == cue.StructKind {
			out = append(out, missingIn(fd, fu, sub, p)...)
			continue
		}
		if given || fu.Err() != nil || fu.IsConcrete() {
			continue
		}
		if _, ok := fu.Default(); ok {
			continue
		}
		pos := fd.Pos().Position()
		out = append(out, Issue{File: pos.Filename, Line: pos.Line, Column: pos.Column, Path: strings.Join(p, "."),
			Message: fmt.Sprintf("required field is missing (%v)", fd)})
	}
	return out
}
