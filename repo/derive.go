package repo

import (
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
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
// So Load asks CUE itself, by evaluating the environment's data twice more against the
// schema, each time with every sensitive leaf (a SOPS value, a value under a secret-looking
// key) replaced:
//
//   - abstractly, by `_` (top): a value that depends on a secret in any way, injective or
//     not (len, a prefix test, a comparison, an `if` on it), is then not concrete;
//   - concretely, by random stand-ins of the same kind (a string of another length and
//     content, another number, a list one element longer): this catches what the abstract
//     pass cannot, a default (`*"public" | string`) that `_` resolves to while the secret
//     replaces it.
//
// A leaf of the real configuration is derived unless both passes give exactly its value:
// then it is the same whatever the secrets are. A derived leaf is sensitive like a SOPS one:
// masked in every output, registered with the Redactor, and put in the Secret by Split,
// never in the ConfigMap. Lists are leaves here, as in layers: a list computed from a secret
// (strings.Split) is derived whole.
//
// Field names are not values: they are never masked (a Secret's keys, plan's paths), so a
// struct whose field names are not the same in both passes as in the real configuration is
// a problem at the schema's line, and the revision is refused.
//
// Neither pass sees a secret, so which leaves are derived does not depend on the secrets'
// values (the concrete stand-ins are drawn at random for each load, so a schema cannot aim
// at them). What remains observable is whether the revision validates at all: a schema can
// make validation fail on a property of a secret. The reference for what a repository can
// and cannot make Circle do is the threat model.

// derive finds e's derived leaves (see above), registers their values with the Redactor,
// and returns the problems of names computed from secrets. It costs nothing for an
// environment without sensitive leaves.
func (e *Env) derive(sch *schema.Schema, def string) schema.Issues {
	abstract, n := e.substitute(func(ast.Expr) ast.Expr { return ast.NewIdent("_") })
	if n == 0 {
		return nil
	}
	si := newStandIns()
	concrete, _ := e.substitute(si.expr)
	a, issues := sch.Eval(def, abstract)
	if issues != nil {
		return issues
	}
	b, issues := sch.Eval(def, concrete)
	if issues != nil {
		return issues
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

// substitute returns the environment's merged data with each sensitive leaf replaced by
// standIn's answer, and how many were. Merged.Expr builds its structs afresh on each call
// and only shares the leaves, so replacing a field's value here changes no other caller's
// tree.
func (e *Env) substitute(standIn func(ast.Expr) ast.Expr) (ast.Expr, int) {
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
				if e.sensitive(o) {
					f.Value = standIn(f.Value)
					n++
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

// standIns draws the concrete pass's values from a generator seeded by crypto/rand for
// each load, so a schema cannot know them in advance.
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
			if strings.HasPrefix(strings.TrimLeft(e.Value, "#"), "'") {
				return &ast.BasicLit{Kind: token.STRING, Value: literal.Bytes.Quote(s.text())}
			}
			return ast.NewString(s.text())
		case token.INT:
			return ast.NewLit(token.INT, strconv.Itoa(1+s.r.IntN(60000)))
		case token.FLOAT:
			return ast.NewLit(token.FLOAT, fmt.Sprintf("%d.%d", s.r.IntN(10000), 1+s.r.IntN(999)))
		case token.TRUE, token.FALSE:
			return ast.NewBool(s.r.IntN(2) == 0)
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
