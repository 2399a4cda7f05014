package repo

import (
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"

	"github.com/circlecore/circle/layers"
	"github.com/circlecore/circle/schema"
)

// A repository's schema can compute plain values from secret ones: `dsn: "pw=\(db.password)"`,
// `base64.Encode(null, db.password)`, `strings.Split(db.password, "")`, `len(db.password)`,
// or a value chosen by a comparison with one. Such a value is as secret as its source, and
// no list of CUE functions can say which values are: the repository writes the schema.
//
// So Load asks CUE itself, by evaluating the environment's data again against the schema
// with every sensitive leaf (a SOPS value, a value under a secret-looking key) replaced by
// a stand-in that is not concrete:
//
//   - a string by `=~"a^"`, a string that no string matches: every value computed from it,
//     by any function, injective or not (len, a prefix test, a comparison, an `if`), is not
//     concrete, and no default (`*"public" | string`) can stand in for it, since every
//     concrete default conflicts with it;
//   - anything else (a number, a bool, a list, bytes, an expression of a CUE layer) by `_`.
//     `_` takes a default where the schema gives one, so when there is such a leaf, a second
//     pass replaces each by a random concrete stand-in of its kind (another number, a list
//     one element longer), drawn afresh for each load: a value that follows the default in
//     the first pass follows the stand-in in the second.
//
// A leaf of the real configuration is derived unless every pass gives exactly its value. A
// derived leaf is sensitive like a SOPS one: masked in every output, registered with the
// Redactor, and put in the Secret by Split, never in the ConfigMap. Lists are leaves here,
// as in layers: a list computed from a secret (strings.Split) is derived whole.
//
// Field names are not values: they are never masked (a Secret's keys, plan's paths), so a
// struct whose field names or fields' presence are not the same in every pass as in the
// real configuration is a problem at the schema's line, and the revision is refused.
//
// The passes never see a secret; a leaf the first pass finds concrete was computed without
// reading any string secret. What a schema can still observe is whether the revision
// validates at all: it can make validation fail on a property of a secret (one bit per
// revision, seen in the problem list, never the value). A value that the schema computes
// from a secret's sibling field when the random stand-in breaks a constraint of the
// schema's (say a secret port above 65535) is counted as derived too: the safe side.

// derive finds e's derived leaves (see above), registers their values with the Redactor,
// and returns the problems of names computed from secrets. It costs nothing for an
// environment without sensitive leaves, one evaluation more when they are all strings (the
// usual case), two otherwise.
func (e *Env) derive(sch *schema.Schema, def string) schema.Issues {
	if !slices.ContainsFunc(e.Merged.Origins(), e.sensitive) {
		return nil
	}
	fixed := map[string]bool{}
	needConcrete := false
	abstract, n := e.substitute(fixed, abstractStandIn(&needConcrete))
	if n == 0 {
		return nil
	}
	// A leaf the data gives as a literal (or a sensitive one, hidden anyway) is what it is
	// in every pass: unification with a concrete scalar yields that scalar or an error, and
	// the real evaluation had none. Not walking them saves most of the passes' cost.
	skip := func(segs []string) bool { return fixed[dotted(segs)] }
	a, issues := sch.Eval(def, abstract, skip)
	if issues != nil {
		return issues
	}
	b := a
	if needConcrete {
		si := newStandIns()
		concrete, _ := e.substitute(nil, si.expr)
		if b, issues = sch.Eval(def, concrete, skip); issues != nil {
			return issues
		}
	}
	d := &deriver{paths: map[string]bool{}}
	d.walk(nil, "", e.Config, a, b)
	var out schema.Issues
	for _, p := range d.names {
		pos := sch.Position(def, p)
		out = append(out, schema.Issue{File: pos.Filename, Line: pos.Line, Column: pos.Column, Path: dotted(p),
			Message: "the schema computes field names here from a secret value; a field name is never masked, so compute values from secrets, not names"})
	}
	if len(out) > 0 {
		return out
	}
	var values []string
	for p := range d.paths {
		values = appendScalars(values, lookupPath(e.Config, d.segments[p]))
	}
	e.redactor.Add(values...)
	e.derived = d.paths
	return nil
}

// abstractStandIn is the first pass's stand-in (see above); it sets *needConcrete when it
// gives `_`, which only a second pass makes safe.
func abstractStandIn(needConcrete *bool) func(ast.Expr) ast.Expr {
	return func(x ast.Expr) ast.Expr {
		if isString(x) {
			return noString()
		}
		*needConcrete = true
		return ast.NewIdent("_")
	}
}

// withheldMessage replaces CUE's message of an issue about a value computed from a secret.
const withheldMessage = "the schema rejects a value it computes from a secret; CUE's message is withheld, since it would quote the value"

// withhold returns issues with the message of each issue that depends on a secret
// replaced: a schema that rejects a value computed from a secret (strings.ToUpper of a
// password against a constant) gets a message from CUE that quotes the computed value,
// which the Redactor does not know, since Load never registers the values of an
// environment that failed. An issue depends on a secret unless validating the data with
// the stand-ins of derive gives the same issue, same path and message: then its text is
// the same whatever the secrets are. Issues at a sensitive leaf itself keep their message,
// in which the Redactor masks the secret ("conflicting values **redacted:…** and int").
func (e *Env) withhold(sch *schema.Schema, def string, issues schema.Issues) schema.Issues {
	if !slices.ContainsFunc(e.Merged.Origins(), e.sensitive) {
		return issues
	}
	key := func(is schema.Issue) string { return is.Path + "\x00" + is.Message }
	needConcrete := false
	abstract, _ := e.substitute(nil, abstractStandIn(&needConcrete))
	_, ai := sch.Validate(def, abstract)
	same := map[string]bool{}
	for _, is := range ai {
		same[key(is)] = true
	}
	if needConcrete {
		concrete, _ := e.substitute(nil, newStandIns().expr)
		_, bi := sch.Validate(def, concrete)
		both := map[string]bool{}
		for _, is := range bi {
			both[key(is)] = same[key(is)]
		}
		same = both
	}
	out := make(schema.Issues, len(issues))
	for i, is := range issues {
		if o, ok := e.Merged.Origin(is.Path); !same[key(is)] && !(ok && e.sensitive(o)) {
			is.Message = withheldMessage
		}
		out[i] = is
	}
	return out
}

// isString reports whether e is a string literal (not bytes).
func isString(e ast.Expr) bool {
	b, ok := e.(*ast.BasicLit)
	return ok && b.Kind == token.STRING && !strings.HasPrefix(strings.TrimLeft(b.Value, "#"), "'")
}

// noString is `=~"a^"`: a string, matched by none ("a" then the start of the text), so not
// concrete and in conflict with every concrete default. A bound rather than `string & …`,
// since the identifier string could name one of the data's own fields.
func noString() ast.Expr {
	return &ast.UnaryExpr{Op: token.MAT, X: ast.NewString("a^")}
}

// substitute returns the environment's merged data with each sensitive leaf replaced by
// standIn's answer, and how many were; fixed, when not nil, gets the paths of the leaves
// that are sensitive or literal scalars. Merged.Expr builds its structs afresh on each
// call and only shares the leaves, so replacing a field's value here changes no other
// caller's tree.
func (e *Env) substitute(fixed map[string]bool, standIn func(ast.Expr) ast.Expr) (ast.Expr, int) {
	return e.substituteIf(e.sensitive, fixed, standIn)
}

// substituteWhere is substitute for the leaves whose origin satisfies pick.
func (e *Env) substituteWhere(pick func(layers.Origin) bool, standIn func(ast.Expr) ast.Expr) (ast.Expr, int) {
	return e.substituteIf(pick, nil, standIn)
}

func (e *Env) substituteIf(pick func(layers.Origin) bool, fixed map[string]bool, standIn func(ast.Expr) ast.Expr) (ast.Expr, int) {
	root := e.Merged.Expr()
	n := 0
	var walk func(st *ast.StructLit, prefix string)
	walk = func(st *ast.StructLit, prefix string) {
		for _, d := range st.Elts {
			f, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			name, _, err := ast.LabelName(f.Label)
			if err != nil {
				continue
			}
			p := layers.Join(prefix, name)
			if o, ok := e.Merged.Origin(p); ok {
				if pick(o) {
					f.Value = standIn(f.Value)
					n++
					if fixed != nil {
						fixed[p] = true
					}
				} else if fixed != nil && isLiteral(f.Value) {
					fixed[p] = true
				}
				continue
			}
			if sub, ok := f.Value.(*ast.StructLit); ok {
				walk(sub, p)
			}
		}
	}
	if st, ok := root.(*ast.StructLit); ok {
		walk(st, "")
	}
	return root, n
}

// isLiteral reports whether e is a scalar literal or a list of them: what YAML and JSON
// layers give, and what no schema can change but only accept or refuse. A list with a
// struct in it is not: the schema may add fields to the struct.
func isLiteral(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.UnaryExpr:
		_, ok := e.X.(*ast.BasicLit)
		return ok && (e.Op == token.SUB || e.Op == token.ADD)
	case *ast.ListLit:
		for _, x := range e.Elts {
			if !isLiteral(x) {
				return false
			}
		}
		return true
	}
	return false
}

// deriver compares the real configuration with the two substituted evaluations.
type deriver struct {
	// paths are the derived leaves, as layers spells paths; segments the same paths split.
	paths    map[string]bool
	segments map[string][]string
	// names are the structs whose field names depend on a secret.
	names [][]string
}

func (d *deriver) walk(segs []string, p string, real, a, b any) {
	if rm, ok := real.(map[string]any); ok {
		am, _ := a.(map[string]any)
		bm, _ := b.(map[string]any)
		if !sameKeys(rm, am) || !sameKeys(rm, bm) {
			d.names = append(d.names, segs)
			return
		}
		for k, rv := range rm {
			s := append(segs[:len(segs):len(segs)], k)
			d.walk(s, layers.Join(p, k), rv, am[k], bm[k])
		}
		return
	}
	if a == schema.Skipped && b == schema.Skipped {
		return
	}
	if !reflect.DeepEqual(real, a) || !reflect.DeepEqual(real, b) {
		d.paths[p] = true
		if d.segments == nil {
			d.segments = map[string][]string{}
		}
		d.segments[p] = segs
	}
}

func sameKeys(a, b map[string]any) bool {
	if b == nil || len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

func lookupPath(v any, segs []string) any {
	for _, s := range segs {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[s]
	}
	return v
}

// appendScalars adds the text a redactor must hunt in v: strings, numbers, and the names
// inside a list's structs (the list is masked whole, but free text may quote it). Booleans
// and null are left out: hunting "true" would blank every log line.
func appendScalars(out []string, v any) []string {
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case json.Number:
		out = append(out, v.String())
	case []any:
		for _, x := range v {
			out = appendScalars(out, x)
		}
	case map[string]any:
		for k, x := range v {
			out = append(out, k)
			out = appendScalars(out, x)
		}
	}
	return out
}

func dotted(segs []string) string {
	p := ""
	for _, s := range segs {
		p = layers.Join(p, s)
	}
	return p
}

// standIns draws the second pass's values from a generator seeded by crypto/rand for each
// load, so a schema cannot know them in advance.
type standIns struct{ r *rand.Rand }

func newStandIns() *standIns {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		panic("repo: no randomness: " + err.Error())
	}
	return &standIns{r: rand.New(rand.NewChaCha8(seed))}
}

const standInAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func (s *standIns) text() string {
	b := make([]byte, 16+s.r.IntN(32))
	for i := range b {
		b[i] = standInAlphabet[s.r.IntN(len(standInAlphabet))]
	}
	return string(b)
}

// expr is a stand-in of e's kind. What it cannot mimic becomes `_`, which makes whatever
// depends on it derived: the safe side.
func (s *standIns) expr(e ast.Expr) ast.Expr {
	switch e := e.(type) {
	case *ast.BasicLit:
		switch e.Kind {
		case token.STRING:
			if isString(e) {
				return noString() // as in the first pass: never concrete
			}
			return &ast.BasicLit{Kind: token.STRING, Value: literal.Bytes.Quote(s.text())}
		case token.INT:
			// Within a port's range, which schemas constrain most; never the real value,
			// or a default equal to it would go unseen.
			for {
				if v := strconv.Itoa(1 + s.r.IntN(65535)); v != e.Value {
					return ast.NewLit(token.INT, v)
				}
			}
		case token.FLOAT:
			for {
				if v := fmt.Sprintf("%d.%d", s.r.IntN(10000), 1+s.r.IntN(999)); v != e.Value {
					return ast.NewLit(token.FLOAT, v)
				}
			}
		case token.TRUE, token.FALSE:
			return ast.NewBool(e.Kind == token.FALSE) // the other one
		case token.NULL:
			return ast.NewNull()
		}
	case *ast.UnaryExpr:
		if e.Op == token.SUB || e.Op == token.ADD {
			return &ast.UnaryExpr{Op: e.Op, X: s.expr(e.X)}
		}
	case *ast.ListLit:
		l := &ast.ListLit{}
		for _, x := range e.Elts {
			l.Elts = append(l.Elts, s.expr(x))
		}
		// One element more: the list's length is not the secret's either.
		var last ast.Expr = ast.NewString("")
		if len(e.Elts) > 0 {
			last = e.Elts[len(e.Elts)-1]
		}
		l.Elts = append(l.Elts, s.expr(last))
		return l
	case *ast.StructLit:
		st := &ast.StructLit{}
		for _, d := range e.Elts {
			if f, ok := d.(*ast.Field); ok {
				st.Elts = append(st.Elts, &ast.Field{Label: f.Label, Value: s.expr(f.Value)})
			}
		}
		return st
	}
	return ast.NewIdent("_")
}
