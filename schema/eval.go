package schema

import (
	"strconv"

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

// Eval unifies data with the definition def, as Validate does, and returns the result with
// defaults applied as the same Go values (maps, slices, json.Number, strings, bools, nil),
// except that it never fails on the data: a value that is not concrete, or is an error, is
// Unknown, and so is a struct or list whose elements cannot be listed. It is how a caller
// learns which values depend on some of the data: Eval with that data replaced by `_` (or
// by another value) and compare. Its issues are the schema's own: no definition def, or the
// limit exceeded.
func (s *Schema) Eval(def string, data ast.Expr) (any, Issues) {
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
		out = tree(u)
	}); err != nil {
		return nil, err
	}
	return out, issues
}

// tree is v as Go values, Unknown where v is not concrete.
//
// An error inside a struct makes CUE report it on every enclosing struct too (Err, and a
// kind of bottom), while the struct's fields can still be listed: such a struct is walked,
// and only its failing leaves become Unknown. A struct whose own fields are not known (an
// `if` or a dynamic field name on a value that is not concrete) has an error at its own
// path, and is Unknown whole: listing its fields would silently drop the undecided ones.
func tree(v cue.Value) any {
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
				m[it.Selector().Unquoted()] = tree(it.Value())
			}
			return m
		}
	}
	if k == cue.ListKind || k == cue.BottomKind {
		if it, err := v.List(); err == nil {
			l := []any{}
			for it.Next() {
				l = append(l, tree(it.Value()))
			}
			return l
		}
	}
	if k == cue.StructKind || k == cue.ListKind || k == cue.BottomKind || !v.IsConcrete() || v.Err() != nil {
		return Unknown
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
	_ = s.bounded("locating", func() {
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
	})
	return pos
}
