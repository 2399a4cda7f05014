package schema

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

// unknown is the type of Unknown.
type unknown struct{}

// Unknown stands, in what Eval returns, for a value that is not concrete or is an error. It
// equals (reflect.DeepEqual) nothing Validate returns.
var Unknown any = unknown{}

// skipped is the type of Skipped.
type skipped struct{}

// Skipped stands, in what Eval returns, for a field the caller asked not to evaluate.
var Skipped any = skipped{}

// Eval unifies data with the definition def, as Validate does, and returns the result with
// defaults applied as the same Go values (maps, slices, json.Number, strings, bools, nil),
// except that it never fails on the data: a value that is not concrete, or is an error, is
// Unknown, and so is a struct or list whose elements cannot be listed. It is how a caller
// learns which values depend on some of the data: Eval with that data replaced by `_` (or
// by another value) and compare. Its issues are the schema's own: no definition def, or the
// limit exceeded.
//
// skip, when not nil, is asked for each field of a struct (by its path of unquoted labels,
// which the caller must not keep): a field it approves is Skipped, its value not walked.
// A caller that knows a value cannot change (a literal of the data) saves most of the cost
// that way.
func (s *Schema) Eval(def string, data ast.Expr, skip func(path []string) bool) (any, Issues) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out any
	var issues Issues
	if err := s.bounded("evaluating", func() {
		var d cue.Value
		if d, issues = s.definition(def); issues != nil {
			return
		}
		u := s.ctx.BuildExpr(data)
		if def != "" {
			u = d.Unify(u)
		}
		w := walker{skip: skip}
		out = w.tree(u)
	}); err != nil {
		return nil, err
	}
	return out, issues
}

// walker turns values into Go values for Eval.
type walker struct {
	skip func([]string) bool
	path []string
}

// tree is v as Go values, Unknown where v is not concrete.
//
// An error inside a struct makes CUE report it on every enclosing struct too (Err, and a
// kind of bottom), while the struct's fields can still be listed: such a struct is walked,
// and only its failing leaves become Unknown. A struct whose own fields are not known (an
// `if` or a dynamic field name on a value that is not concrete) has an error at its own
// path, and is Unknown whole: listing its fields would silently drop the undecided ones.
func (w *walker) tree(v cue.Value) any {
	if d, ok := v.Default(); ok {
		v = d
	}
	k := v.IncompleteKind()
	if k == cue.BottomKind && ownError(v) {
		return Unknown
	}
	if k == cue.StructKind || k == cue.BottomKind {
		if it, err := v.Fields(); err == nil {
			m := map[string]any{}
			for it.Next() {
				name := it.Selector().Unquoted()
				w.path = append(w.path, name)
				if w.skip != nil && w.skip(w.path) {
					m[name] = Skipped
				} else {
					m[name] = w.tree(it.Value())
				}
				w.path = w.path[:len(w.path)-1]
			}
			return m
		}
	}
	if k == cue.ListKind || k == cue.BottomKind {
		if it, err := v.List(); err == nil {
			l := []any{}
			for it.Next() {
				// Elements are not fields: skip is not asked below a list.
				inner := walker{}
				l = append(l, inner.tree(it.Value()))
			}
			return l
		}
	}
	if k == cue.StructKind || k == cue.ListKind || k == cue.BottomKind || !v.IsConcrete() || v.Err() != nil {
		return Unknown
	}
	// The common scalars directly, as decodeJSON would give them; the rest through JSON.
	switch v.Kind() {
	case cue.StringKind:
		if s, err := v.String(); err == nil && utf8.ValidString(s) {
			return s
		}
	case cue.BoolKind:
		if b, err := v.Bool(); err == nil {
			return b
		}
	case cue.NullKind:
		return nil
	case cue.IntKind:
		if i, err := v.Int64(); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
	}
	b, err := v.MarshalJSON()
	if err != nil {
		return Unknown
	}
	out, err := decodeJSON(b)
	if err != nil {
		return Unknown
	}
	return out
}

// ownError reports whether one of v's errors is v's own (or an enclosing value's) rather
// than a descendant's: its path is v's path or a prefix of it.
func ownError(v cue.Value) bool {
	sels := v.Path().Selectors()
	vp := make([]string, len(sels))
	for i, s := range sels {
		vp[i] = unquote(s.String())
	}
	for _, e := range cueerrors.Errors(v.Err()) {
		ep := e.Path()
		if len(ep) > len(vp) {
			continue
		}
		own := true
		for i := range ep {
			own = own && unquote(ep[i]) == vp[i]
		}
		if own {
			return true
		}
	}
	return false
}

func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

// Position is where the schema writes the value at path (field names) under the
// definition def, for a problem about it; the zero Position when the schema does not say.
func (s *Schema) Position(def string, path []string) token.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pos token.Position
	if err := s.bounded("locating", func() {
		v := s.value
		if def != "" {
			v = v.LookupPath(cue.ParsePath(def))
		}
		sel := make([]cue.Selector, len(path))
		for i, p := range path {
			sel[i] = cue.Str(p)
		}
		for len(sel) > 0 && !v.LookupPath(cue.MakePath(sel...)).Exists() {
			sel = sel[:len(sel)-1] // the nearest the schema names
		}
		pos = v.LookupPath(cue.MakePath(sel...)).Pos().Position()
	}); err != nil {
		return token.Position{} // pos belongs to the abandoned evaluation now
	}
	return pos
}
