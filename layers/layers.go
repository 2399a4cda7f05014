// Package layers merges configuration files into one document per environment and remembers
// where every value came from.
//
// The rules, applied layer by layer in the order given (base, then the environment, then its
// secrets, then the daemon's overrides):
//
//   - maps deep-merge: a key present in a later layer replaces or extends the earlier map;
//   - anything else (a scalar, a list) is replaced whole by the later layer: lists are not
//     concatenated, so a layer always says the full list;
//   - an explicit null deletes the key, whatever it held.
//
// Values are kept as CUE syntax trees read from each file, so every value carries its own
// file:line:col into validation errors and into `circle plan`'s provenance lines.
package layers

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	cuejson "cuelang.org/go/encoding/json"
)

// Layer is the values of one file.
type Layer struct {
	// File is the file's path in the snapshot, or a name such as "daemon overrides".
	File string
	// Sensitive marks every value as secret: the layer came from a SOPS file.
	Sensitive bool
	fields    []*ast.Field
}

// MaxFileSize is the largest config file Parse reads, in bytes: the Git source's per-file
// default. Parsing costs memory in proportion to the input (about 45 bytes for each byte of
// dense YAML), so the bound holds whatever a source was configured to let through.
const MaxFileSize = 16 << 20

// ErrTooLarge is wrapped by the error for a file over MaxFileSize.
var ErrTooLarge = errors.New("file too large")

// Parse reads a YAML (.yaml, .yml), JSON (.json) or CUE (.cue) file. The top level must be
// a mapping; an empty file is an empty layer. A file over MaxFileSize is refused unread.
func Parse(name string, data []byte) (*Layer, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes is over the %d-byte limit for a config file: %w", name, len(data), MaxFileSize, ErrTooLarge)
	}
	var fields []*ast.Field
	var err error
	switch ext := path.Ext(name); ext {
	case ".yaml", ".yml":
		fields, err = parseYAML(name, data)
	case ".json":
		fields, err = parseJSON(name, data)
	case ".cue":
		fields, err = parseCUE(name, data)
	default:
		return nil, fmt.Errorf("%s: unsupported config format %q (want .yaml, .yml, .json or .cue)", name, ext)
	}
	if err != nil {
		return nil, err
	}
	return &Layer{File: name, fields: fields}, nil
}

func parseYAML(name string, data []byte) ([]*ast.Field, error) {
	f, err := ExtractYAML(name, data)
	if err != nil {
		return nil, located(name, err)
	}
	return topFields(name, f.Decls)
}

func parseJSON(name string, data []byte) ([]*ast.Field, error) {
	e, err := cuejson.Extract(name, data)
	if err != nil {
		return nil, located(name, err)
	}
	return topFields(name, []ast.Decl{&ast.EmbedDecl{Expr: e}})
}

func parseCUE(name string, data []byte) ([]*ast.Field, error) {
	f, err := parser.ParseFile(name, data, parser.ParseComments)
	if err != nil {
		return nil, located(name, err)
	}
	var decls []ast.Decl
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.Package, *ast.CommentGroup, *ast.Attribute:
		case *ast.ImportDecl:
			// An import would make a layer's meaning depend on more than its own text.
			return nil, fmt.Errorf("%s: imports are not allowed in a config layer", d.Pos())
		default:
			decls = append(decls, d)
		}
	}
	return topFields(name, decls)
}

// topFields accepts a file whose top level is a mapping: fields, one embedded struct
// literal, or nothing (an empty YAML document is `*null | _` in CUE's reading).
func topFields(name string, decls []ast.Decl) ([]*ast.Field, error) {
	var out []*ast.Field
	for _, d := range decls {
		switch d := d.(type) {
		case *ast.Field:
			out = append(out, d)
		case *ast.EmbedDecl:
			switch e := d.Expr.(type) {
			case *ast.StructLit:
				fs, err := topFields(name, e.Elts)
				if err != nil {
					return nil, err
				}
				out = append(out, fs...)
			case *ast.BinaryExpr: // empty YAML document
			case *ast.BasicLit:
				if e.Kind != token.NULL {
					return nil, fmt.Errorf("%s: the top level must be a mapping, not a %s", position(e.Pos(), name), strings.ToLower(e.Kind.String()))
				}
			case *ast.ListLit:
				return nil, fmt.Errorf("%s: the top level must be a single mapping, not a list or several documents", position(e.Pos(), name))
			default:
				return nil, fmt.Errorf("%s: the top level must be a mapping", position(e.Pos(), name))
			}
		default:
			return nil, fmt.Errorf("%s: only fields are allowed at the top of a config layer", position(d.Pos(), name))
		}
	}
	return out, nil
}

// located prefixes a parse error with the file:line:col CUE knows for it, when its message
// lacks it.
func located(name string, err error) error {
	where := name
	if ps := cueerrors.Positions(err); len(ps) > 0 {
		where = ps[0].String()
	}
	if strings.Contains(err.Error(), name) {
		return err
	}
	return fmt.Errorf("%s: %w", where, err)
}

func position(p token.Pos, name string) string {
	if p.IsValid() {
		return p.String()
	}
	return name
}

// FromSOPS builds the layer of a decrypted SOPS file: the values of plaintext, at the
// positions of the same keys in encrypted, since the encrypted file is the one users read
// and edit. Every value is sensitive.
func FromSOPS(name string, encrypted, plaintext []byte) (*Layer, error) {
	enc, err := Parse(name, encrypted)
	if err != nil {
		return nil, err
	}
	plain, err := Parse(name, plaintext)
	if err != nil {
		// The parse error would quote decrypted text.
		return nil, fmt.Errorf("%s: decrypted content does not parse as %s", name, path.Ext(name))
	}
	where := map[string]token.Pos{}
	walkFields(enc.fields, "", func(p string, f *ast.Field) { where[p] = f.Value.Pos() })
	walkFields(plain.fields, "", func(p string, f *ast.Field) {
		if pos, ok := where[p]; ok {
			ast.SetPos(f.Label, pos)
			setValuePos(f.Value, pos)
		}
	})
	plain.Sensitive = true
	return plain, nil
}

// setValuePos moves a leaf (and a list's elements) to pos; maps keep their own fields'
// positions, which walkFields sets one by one.
func setValuePos(e ast.Expr, pos token.Pos) {
	switch e := e.(type) {
	case *ast.StructLit:
	case *ast.ListLit:
		ast.SetPos(e, pos)
		for _, x := range e.Elts {
			setValuePos(x, pos)
		}
	case *ast.UnaryExpr:
		ast.SetPos(e, pos)
		setValuePos(e.X, pos)
	default:
		ast.SetPos(e, pos)
	}
}

func walkFields(fields []*ast.Field, prefix string, fn func(string, *ast.Field)) {
	for _, f := range fields {
		name, ok := labelName(f.Label)
		if !ok {
			continue
		}
		p := join(prefix, name)
		fn(p, f)
		if s, ok := f.Value.(*ast.StructLit); ok {
			walkFields(structFields(s), p, fn)
		}
	}
}

func structFields(s *ast.StructLit) []*ast.Field {
	var out []*ast.Field
	for _, d := range s.Elts {
		if f, ok := d.(*ast.Field); ok {
			out = append(out, f)
		}
	}
	return out
}

func labelName(l ast.Label) (string, bool) {
	name, _, err := ast.LabelName(l)
	return name, err == nil
}

// Join appends key to a dotted path the way Origins spells paths.
func Join(prefix, key string) string { return join(prefix, key) }

// Split is the keys of a path Join built: dots separate them, and a quoted key (Go syntax)
// may hold dots and quotes. A path Join did not build is split as far as it reads.
func Split(path string) []string {
	var out []string
	for path != "" {
		if path[0] == '"' {
			q, err := strconv.QuotedPrefix(path)
			if err != nil {
				return append(out, path)
			}
			k, _ := strconv.Unquote(q) // QuotedPrefix accepted it
			out = append(out, k)
			path = strings.TrimPrefix(path[len(q):], ".")
			continue
		}
		k, rest, _ := strings.Cut(path, ".")
		out = append(out, k)
		path = rest
	}
	return out
}

// join builds a dotted path, quoting a key that is not a plain identifier so "a.b" the key
// and a.b the path never meet.
func join(prefix, key string) string {
	if !plainKey(key) {
		key = strconv.Quote(key)
	}
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		if r == '_' || r == '-' && i > 0 || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' && i > 0 {
			continue
		}
		return false
	}
	return true
}

// FromValues builds a layer from Go values (the daemon's overrides), which have no file;
// origin names them in provenance.
func FromValues(origin string, values map[string]any) (*Layer, error) {
	e, err := toExpr(values)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", origin, err)
	}
	return &Layer{File: origin, fields: structFields(e.(*ast.StructLit))}, nil
}

func toExpr(v any) (ast.Expr, error) {
	switch v := v.(type) {
	case nil:
		return ast.NewNull(), nil
	case string:
		return ast.NewString(v), nil
	case bool:
		return ast.NewBool(v), nil
	case int:
		return ast.NewLit(token.INT, strconv.Itoa(v)), nil
	case int64:
		return ast.NewLit(token.INT, strconv.FormatInt(v, 10)), nil
	case float64:
		return ast.NewLit(token.FLOAT, strconv.FormatFloat(v, 'g', -1, 64)), nil
	case []any:
		l := &ast.ListLit{}
		for _, x := range v {
			e, err := toExpr(x)
			if err != nil {
				return nil, err
			}
			l.Elts = append(l.Elts, e)
		}
		return l, nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s := &ast.StructLit{}
		for _, k := range keys {
			e, err := toExpr(v[k])
			if err != nil {
				return nil, err
			}
			s.Elts = append(s.Elts, &ast.Field{Label: ast.NewStringLabel(k), Value: e})
		}
		return s, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

// Origin says where a value was set.
type Origin struct {
	Path      string `json:"path"`
	Key       string `json:"-"` // the last element of Path, unquoted
	File      string `json:"file"`
	Line      int    `json:"line,omitempty"`
	Column    int    `json:"column,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

// String is "config/prod/db.yaml:4:9", or the layer's name for values without a file.
func (o Origin) String() string {
	if o.Line == 0 {
		return o.File
	}
	return fmt.Sprintf("%s:%d:%d", o.File, o.Line, o.Column)
}

// Merged is the result of merging layers.
type Merged struct {
	root    *node
	origins []Origin
	leaves  map[string]ast.Expr
	index   map[string]int
}

type node struct {
	// keys is the order children were set in. A removed key stays in it, skipped: a child
	// is listed only at its own slot, so a key removed and set again appears once, last.
	keys     []string
	children map[string]*node
	slot     int // the index of this node's key in its parent's keys
	label    ast.Label
	value    ast.Expr // nil for a map
	layer    *Layer
}

func newMap() *node { return &node{children: map[string]*node{}} }

// Merge applies layers in order with the rules in the package comment.
func Merge(layers ...*Layer) *Merged {
	root := newMap()
	for _, l := range layers {
		mergeFields(root, l.fields, l)
	}
	m := &Merged{root: root, leaves: map[string]ast.Expr{}, index: map[string]int{}}
	m.collect(root, "")
	return m
}

func mergeFields(dst *node, fields []*ast.Field, l *Layer) {
	for _, f := range fields {
		name, ok := labelName(f.Label)
		if !ok {
			continue
		}
		if isNull(f.Value) {
			dst.remove(name)
			continue
		}
		cur := dst.children[name]
		if s, ok := f.Value.(*ast.StructLit); ok {
			if cur == nil || cur.value != nil {
				cur = newMap()
				dst.set(name, cur)
			}
			cur.label = f.Label
			mergeFields(cur, structFields(s), l)
			continue
		}
		dst.set(name, &node{label: f.Label, value: f.Value, layer: l})
	}
}

func isNull(e ast.Expr) bool {
	b, ok := e.(*ast.BasicLit)
	return ok && b.Kind == token.NULL
}

func (n *node) set(name string, child *node) {
	if old, ok := n.children[name]; ok {
		child.slot = old.slot
	} else {
		child.slot = len(n.keys)
		n.keys = append(n.keys, name)
	}
	n.children[name] = child
}

// remove deletes a key in constant time. Searching keys and copying the rest of it made a
// layer of many nulls take time with the square of its size (40,000 nulls: 26 s).
func (n *node) remove(name string) {
	delete(n.children, name)
}

// each calls fn for every live key in order.
func (n *node) each(fn func(string, *node)) {
	for i, k := range n.keys {
		if c, ok := n.children[k]; ok && c.slot == i {
			fn(k, c)
		}
	}
}

func (m *Merged) collect(n *node, prefix string) {
	n.each(func(k string, c *node) {
		p := join(prefix, k)
		if c.value == nil {
			m.collect(c, p)
			return
		}
		pos := c.value.Pos().Position()
		o := Origin{Path: p, Key: k, File: c.layer.File, Line: pos.Line, Column: pos.Column, Sensitive: c.layer.Sensitive}
		if pos.Filename != "" {
			o.File = pos.Filename
		}
		m.index[p] = len(m.origins)
		m.origins = append(m.origins, o)
		m.leaves[p] = c.value
	})
}

// scalars lists the text of every scalar in e, strings unquoted: what a redactor must hunt.
func scalars(e ast.Expr) []string {
	var out []string
	ast.Walk(e, func(n ast.Node) bool {
		if b, ok := n.(*ast.BasicLit); ok {
			s := b.Value
			if b.Kind == token.STRING {
				if u, err := literal.Unquote(s); err == nil {
					s = u
				}
			}
			out = append(out, s)
		}
		return true
	}, nil)
	return out
}

// Expr is the merged document as CUE syntax, ready for validation; each value keeps the
// position of the file it came from.
func (m *Merged) Expr() ast.Expr { return m.root.expr() }

func (n *node) expr() ast.Expr {
	if n.value != nil {
		return n.value
	}
	s := &ast.StructLit{}
	n.each(func(k string, c *node) {
		label := c.label
		if label == nil {
			label = ast.NewStringLabel(k)
		}
		s.Elts = append(s.Elts, &ast.Field{Label: label, Value: c.expr()})
	})
	return s
}

// Cut removes the top-level key from m and returns its value as a Merged of its own, with
// paths relative to key and origins keeping their files and lines: a part of the document
// that a different schema judges (Circle's "kubernetes" key). nil when m has no key.
func (m *Merged) Cut(key string) *Merged {
	c, ok := m.root.children[key]
	if !ok {
		return nil
	}
	m.root.remove(key)
	m.origins, m.leaves, m.index = nil, map[string]ast.Expr{}, map[string]int{}
	m.collect(m.root, "")
	sub := &Merged{root: c, leaves: map[string]ast.Expr{}, index: map[string]int{}}
	sub.collect(c, "")
	return sub
}

// Origins lists where each leaf value (a scalar or a whole list) was set, in document order.
func (m *Merged) Origins() []Origin { return m.origins }

// Origin returns the origin of the value at a dotted path.
func (m *Merged) Origin(p string) (Origin, bool) {
	i, ok := m.index[p]
	if !ok {
		return Origin{}, false
	}
	return m.origins[i], true
}

// SecretValues lists the plaintext of every value that came from a sensitive layer, for the
// redactor.
func (m *Merged) SecretValues() []string {
	return m.ScalarsWhere(func(o Origin) bool { return o.Sensitive })
}

// ScalarsWhere lists the text of every scalar (strings unquoted; list elements too) of the
// leaves whose origin satisfies keep: the values a redactor must hunt.
func (m *Merged) ScalarsWhere(keep func(Origin) bool) []string {
	var out []string
	for _, o := range m.origins {
		if keep(o) {
			out = append(out, scalars(m.leaves[o.Path])...)
		}
	}
	return out
}

// SensitivePaths lists the dotted paths whose values came from a sensitive layer.
func (m *Merged) SensitivePaths() []string {
	var out []string
	for _, o := range m.origins {
		if o.Sensitive {
			out = append(out, o.Path)
		}
	}
	return out
}
