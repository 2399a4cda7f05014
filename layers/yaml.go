package layers

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
	"go.yaml.in/yaml/v3"
)

// MaxAliasNodes bounds the values YAML aliases and merge keys may copy into one file, so a
// few lines of anchors cannot expand into millions of nodes ("billion laughs"). It is the
// same bound CUE's own YAML decoder uses; real configuration files use a handful.
const MaxAliasNodes = 50_000

// ExtractYAML reads one YAML file into CUE syntax, every value carrying its file:line:col:
// the same result as cuelang.org/go/encoding/yaml.Extract (same tags, same numbers, same
// merge-key and alias rules), in time linear in the input.
//
// CUE's decoder is not used for two reasons found on repository content: a mapping with a
// merge key (<<) looks each later key up by scanning every field before it, so its time
// grows with the square of the mapping's size (a 512 KiB file took 86 s), and a merge key
// naming its own anchor (`a: &a {<<: *a}`) recurses until the Go stack overflows, which
// kills the process rather than returning an error.
//
// Several documents come back as one list, as Extract does, for the caller to refuse.
// Errors are CUE errors (cuelang.org/go/cue/errors) at the file:line:col they concern, so
// a caller can place them; their Error text is the message alone.
func ExtractYAML(name string, data []byte) (*ast.File, error) {
	c := newYAMLConv(name, data)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []ast.Expr
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, c.syntaxError(err)
		}
		e, err := c.document(&n)
		if err != nil {
			return nil, err
		}
		docs = append(docs, e)
	}
	f := &ast.File{Filename: name}
	switch len(docs) {
	case 0:
		// An empty file, or one of comments only, is `*null | _` in CUE's reading.
		pos := c.file.Pos(0, token.NoRelPos)
		f.Decls = []ast.Decl{&ast.EmbedDecl{Expr: &ast.BinaryExpr{Op: token.OR, OpPos: pos,
			X: &ast.UnaryExpr{Op: token.MUL, OpPos: pos, X: &ast.BasicLit{Kind: token.NULL, ValuePos: pos, Value: "null"}},
			Y: &ast.Ident{Name: "_", NamePos: pos}}}}
	case 1:
		if s, ok := docs[0].(*ast.StructLit); ok {
			f.Decls = s.Elts
		} else {
			f.Decls = []ast.Decl{&ast.EmbedDecl{Expr: docs[0]}}
		}
	default:
		f.Decls = []ast.Decl{&ast.EmbedDecl{Expr: &ast.ListLit{Lbrack: docs[1].Pos(), Elts: docs}}}
	}
	return f, nil
}

// yamlConv turns yaml.v3's node tree into CUE syntax.
type yamlConv struct {
	name  string
	size  int
	file  *token.File
	lines []int // the offset of each line's start, then the input's length
	// expanding holds the anchors being copied right now, so one that contains itself is
	// an error instead of an endless recursion.
	expanding map[*yaml.Node]bool
	// aliasDepth is positive while an alias or a merge key is being copied; aliasNodes
	// counts the nodes those copies make (see MaxAliasNodes). Nodes outside a copy map
	// one-to-one to the input and are bounded by its size.
	aliasDepth, aliasNodes int
}

func newYAMLConv(name string, data []byte) *yamlConv {
	// yaml.v3 may place a node just past the input's end: one more byte keeps that a valid
	// position, as CUE's decoder does.
	// The line table is built once and shared with the token.File: its Lines method
	// returns a copy, which on a 10 MB file is 60 MB more to allocate. Lines break where
	// yaml.v3 breaks them, or its line numbers would point elsewhere: at \n, \r\n, a lone
	// \r, and NEL, LS and PS.
	lines := make([]int, 0, bytes.Count(data, []byte{'\n'})+2)
	if len(data) > 0 {
		lines = append(lines, 0)
	}
	for i := 0; i < len(data); i++ {
		next := -1
		switch b := data[i]; {
		case b == '\n', b == '\r' && (i+1 == len(data) || data[i+1] != '\n'):
			next = i + 1
		case b == 0xC2 && i+1 < len(data) && data[i+1] == 0x85:
			next = i + 2
		case b == 0xE2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xA8 || data[i+2] == 0xA9):
			next = i + 3
		}
		if next > 0 && next < len(data) {
			lines = append(lines, next)
			i = next - 1
		}
	}
	f := token.NewFile(name, 0, len(data)+1)
	if !f.SetLines(lines) {
		f.SetLinesForContent(data) // not reached: the table is ascending and in range
	}
	return &yamlConv{name: name, size: len(data), file: f, lines: append(lines, len(data))}
}

// syntaxError turns yaml.v3's error ("yaml: line 3: did not find expected key") into a
// CUE error at the start of that line, or at the file when yaml.v3 gave no line.
func (c *yamlConv) syntaxError(err error) error {
	msg, _ := strings.CutPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil && line >= 1 && line <= len(c.lines) {
				return cueerrors.Newf(c.pos(&yaml.Node{Line: line, Column: 1}, token.NoRelPos), "%s", text)
			}
		}
	}
	return cueerrors.Newf(token.NoPos, "%s: %s", c.name, msg)
}

// errorf is an error at node n's file:line:col.
func (c *yamlConv) errorf(n *yaml.Node, format string, args ...any) error {
	return cueerrors.Newf(c.pos(n, token.NoRelPos), format, args...)
}

// pos is the position of a node. yaml.v3 counts columns in characters and CUE in bytes;
// like CUE's decoder, the column is taken as bytes (exact for ASCII lines), clamped to
// the input so a position is always valid.
func (c *yamlConv) pos(n *yaml.Node, rel token.RelPos) token.Pos {
	off := 0
	if l := n.Line - 1; l >= 0 && l < len(c.lines) {
		off = c.lines[l] + max(n.Column-1, 0)
	}
	off = min(off, c.size)
	return c.file.Pos(off, rel)
}

func (c *yamlConv) document(n *yaml.Node) (ast.Expr, error) {
	if n.Kind != yaml.DocumentNode {
		return c.value(n, token.NoRelPos)
	}
	switch len(n.Content) {
	case 0:
		return &ast.StructLit{}, nil
	case 1:
		return c.value(n.Content[0], token.NoRelPos)
	}
	return nil, c.errorf(n, "a document holds %d values", len(n.Content))
}

func (c *yamlConv) value(n *yaml.Node, rel token.RelPos) (ast.Expr, error) {
	if c.aliasDepth > 0 {
		if c.aliasNodes++; c.aliasNodes > MaxAliasNodes {
			return nil, c.errorf(n, "aliases and merge keys expand to more than %d values", MaxAliasNodes)
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		return c.mapping(n, rel)
	case yaml.SequenceNode:
		return c.sequence(n, rel)
	case yaml.ScalarNode:
		return c.scalar(n, rel)
	case yaml.AliasNode:
		return c.alias(n, rel)
	case yaml.DocumentNode:
		return c.document(n)
	}
	return nil, c.errorf(n, "unknown YAML node kind %d", n.Kind)
}

// elemRel is how an element sits after the previous one: on its own line in block style.
func elemRel(n *yaml.Node) token.RelPos {
	if n.Style&yaml.FlowStyle != 0 {
		return token.Blank
	}
	return token.Newline
}

func (c *yamlConv) sequence(n *yaml.Node, rel token.RelPos) (ast.Expr, error) {
	l := &ast.ListLit{Lbrack: c.pos(n, rel), Elts: make([]ast.Expr, 0, len(n.Content))}
	er := elemRel(n)
	for _, x := range n.Content {
		e, err := c.value(x, er)
		if err != nil {
			return nil, err
		}
		l.Elts = append(l.Elts, e)
	}
	l.Rbrack = l.Lbrack
	return l, nil
}

// structBuilder collects a mapping's fields. Once a merge key has been seen, a key already
// present has its value replaced rather than a second field added (CUE's rule), found
// through an index instead of a scan of every earlier field.
type structBuilder struct {
	s     *ast.StructLit
	index map[string]*ast.Field // built at the first merge key
}

func (b *structBuilder) startMerging() {
	if b.index != nil {
		return
	}
	b.index = make(map[string]*ast.Field, len(b.s.Elts))
	for _, d := range b.s.Elts {
		f := d.(*ast.Field)
		if name, _, err := ast.LabelName(f.Label); err == nil {
			if _, dup := b.index[name]; !dup { // the first field of a name is the one replaced
				b.index[name] = f
			}
		}
	}
}

func (c *yamlConv) mapping(n *yaml.Node, rel token.RelPos) (ast.Expr, error) {
	b := &structBuilder{s: &ast.StructLit{Lbrace: c.pos(n, rel), Elts: make([]ast.Decl, 0, len(n.Content)/2)}}
	if err := c.insert(b, n, false); err != nil {
		return nil, err
	}
	b.s.Rbrace = b.s.Lbrace
	return b.s, nil
}

// insert adds the pairs of mapping n to b; merging says a merge key brought them (or came
// before them), so existing keys are replaced.
func (c *yamlConv) insert(b *structBuilder, n *yaml.Node, merging bool) error {
	if len(n.Content)%2 != 0 {
		return c.errorf(n, "a mapping with an odd number of nodes")
	}
	er := elemRel(n)
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			merging = true
			b.startMerging()
			if err := c.merge(b, v); err != nil {
				return err
			}
			continue
		}
		label, name, err := c.label(k, er)
		if err != nil {
			return err
		}
		if merging {
			if f, ok := b.index[name]; ok {
				if f.Value, err = c.value(v, token.Blank); err != nil {
					return err
				}
				continue
			}
		}
		val, err := c.value(v, token.Blank)
		if err != nil {
			return err
		}
		f := &ast.Field{Label: label, Value: val}
		b.s.Elts = append(b.s.Elts, f)
		if b.index != nil {
			if _, dup := b.index[name]; !dup {
				b.index[name] = f
			}
		}
	}
	return nil
}

// merge applies a merge key's value: a mapping, an alias of one, or a list of them, the
// earlier ones taking precedence (so applied last).
func (c *yamlConv) merge(b *structBuilder, v *yaml.Node) error {
	switch v.Kind {
	case yaml.MappingNode:
		return c.insert(b, v, true)
	case yaml.AliasNode:
		return c.copyAnchor(v, func(target *yaml.Node) error {
			if target.Kind != yaml.MappingNode {
				return c.errorf(v, "map merge requires map or sequence of maps as the value")
			}
			return c.insert(b, target, true)
		})
	case yaml.SequenceNode:
		for i := len(v.Content) - 1; i >= 0; i-- {
			if err := c.merge(b, v.Content[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return c.errorf(v, "map merge requires map or sequence of maps as the value")
}

func isMergeKey(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && (n.Tag == "" || n.Tag == "!" || n.ShortTag() == mergeTag)
}

// copyAnchor runs fn on the node alias a names, counting what it makes against
// MaxAliasNodes and refusing an anchor that contains itself.
func (c *yamlConv) copyAnchor(a *yaml.Node, fn func(*yaml.Node) error) error {
	if a.Alias == nil {
		return c.errorf(a, "unknown anchor %q", a.Value)
	}
	if c.expanding[a.Alias] {
		return c.errorf(a, "anchor %q value contains itself", a.Value)
	}
	if c.expanding == nil {
		c.expanding = map[*yaml.Node]bool{}
	}
	c.expanding[a.Alias] = true
	c.aliasDepth++
	err := fn(a.Alias)
	c.aliasDepth--
	delete(c.expanding, a.Alias)
	return err
}

func (c *yamlConv) alias(n *yaml.Node, rel token.RelPos) (ast.Expr, error) {
	var out ast.Expr
	err := c.copyAnchor(n, func(target *yaml.Node) error {
		var err error
		out, err = c.value(target, rel)
		return err
	})
	if err != nil {
		return nil, err
	}
	// A copied map or list opens where the alias stands, which is where it means something.
	switch x := out.(type) {
	case *ast.StructLit:
		x.Lbrace = c.pos(n, rel)
		x.Rbrace = x.Lbrace
	case *ast.ListLit:
		x.Lbrack = c.pos(n, rel)
		x.Rbrack = x.Lbrack
	}
	return out, nil
}

// label is a mapping key as CUE reads it: a string, or the CUE spelling of a number, bool
// or null (`1: x` is the field "1", `~: x` the field "null"). name is its unquoted text.
func (c *yamlConv) label(k *yaml.Node, rel token.RelPos) (ast.Label, string, error) {
	pos := c.pos(k, rel)
	var e ast.Expr
	var err error
	var name string
	switch k.Kind {
	case yaml.ScalarNode:
		e, err = c.scalar(k, rel)
		name = k.Value
	case yaml.AliasNode:
		if k.Alias == nil || k.Alias.Kind != yaml.ScalarNode {
			return nil, "", c.errorf(k, "invalid map key: %v", k.ShortTag())
		}
		err = c.copyAnchor(k, func(target *yaml.Node) error {
			var err error
			e, err = c.scalar(target, rel)
			return err
		})
		name = k.Alias.Value
	default:
		return nil, "", c.errorf(k, "invalid map key: %v", k.ShortTag())
	}
	if err != nil {
		return nil, "", err
	}
	lit, ok := e.(*ast.BasicLit)
	if !ok {
		return nil, "", c.errorf(k, "invalid label %s", name)
	}
	if lit.Kind != token.STRING {
		name = lit.Value
	}
	l := ast.NewStringLabel(name)
	ast.SetPos(l, pos)
	return l, name, nil
}

// The YAML tags, as yaml.v3 shortens them.
const (
	nullTag      = "!!null"
	boolTag      = "!!bool"
	strTag       = "!!str"
	intTag       = "!!int"
	floatTag     = "!!float"
	timestampTag = "!!timestamp"
	binaryTag    = "!!binary"
	mergeTag     = "!!merge"
)

// yaml11Octal matches YAML 1.1's octal integers, 8 and 9 included: yaml.v3 takes 0123 for
// a float, and CUE's decoder (so this one) reads such a value as a string instead.
var yaml11Octal = regexp.MustCompile(`^[-+]?0[0-9_]+$`)

// scalar follows CUE's YAML decoder value for value, so a file means what it meant.
func (c *yamlConv) scalar(n *yaml.Node, rel token.RelPos) (ast.Expr, error) {
	tag := n.ShortTag()
	if n.Style&yaml.TaggedStyle == 0 && tag == floatTag && yaml11Octal.MatchString(n.Value) {
		tag = strTag
	}
	pos := c.pos(n, rel)
	switch tag {
	case strTag, timestampTag:
		return &ast.BasicLit{ValuePos: pos, Kind: token.STRING, Value: literal.String.Quote(n.Value)}, nil
	case binaryTag:
		data, err := base64.StdEncoding.DecodeString(n.Value)
		if err != nil {
			return nil, c.errorf(n, "!!binary value contains invalid base64 data")
		}
		return &ast.BasicLit{ValuePos: pos, Kind: token.STRING, Value: literal.Bytes.Quote(string(data))}, nil
	case boolTag:
		b := ast.NewBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
		b.ValuePos = pos
		return b, nil
	case intTag:
		v := n.Value
		if len(v) > 1 && v[0] == '0' && v[1] <= '9' { // YAML 1.1 octal to CUE's 0o
			v = "0o" + v[1:]
		}
		var info literal.NumInfo
		if err := literal.ParseNum(v, &info); err != nil {
			return nil, c.errorf(n, "cannot decode %q as %s: %v", v, tag, err)
		}
		if !info.IsInt() {
			return nil, c.errorf(n, "cannot decode %q as %s: not a literal number", v, tag)
		}
		return number(pos, v, token.INT), nil
	case floatTag:
		v := n.Value
		switch v {
		case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF":
			v = "+Inf"
		case "-.inf", "-.Inf", "-.INF":
			v = "-Inf"
		case ".nan", ".NaN", ".NAN":
			v = "NaN"
		default:
			if len(v) > 1 && v[0] == '0' && v[1] >= '0' && v[1] <= '9' {
				v = "0o" + v[1:]
			}
			var info literal.NumInfo
			if err := literal.ParseNum(v, &info); err != nil {
				return nil, c.errorf(n, "cannot decode %q as %s: %v", v, tag, err)
			}
			// `!!float 1` is a number that may not be an int: CUE's decoder spells it so.
			if n.Tag != "" && !strings.ContainsAny(v, ".eEiInN") {
				v = "number & " + v
			}
		}
		return number(pos, v, token.FLOAT), nil
	case nullTag:
		return &ast.BasicLit{ValuePos: pos.WithRel(token.Blank), Kind: token.NULL, Value: "null"}, nil
	}
	return nil, c.errorf(n, "cannot unmarshal tag %s", strconv.Quote(tag))
}

func number(pos token.Pos, v string, kind token.Token) ast.Expr {
	v, negative := strings.CutPrefix(v, "-")
	lit := &ast.BasicLit{ValuePos: pos, Kind: kind, Value: v}
	if !negative {
		return lit
	}
	return &ast.UnaryExpr{OpPos: pos, Op: token.SUB, X: lit}
}
