package registry

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"

	"github.com/circlecore/circle/layers"
	"github.com/circlecore/circle/schema"
)

// The registry's CUE definitions (#Manifest, #Environments), embedded so the binary checks
// manifests the same way wherever it runs.
//
//go:embed cue/*.cue
var cueFS embed.FS

// SchemaFile is the name the registry's definitions carry in positions.
const SchemaFile = "cue/registry.cue"

var (
	schemaOnce sync.Once
	schemaVal  *schema.Schema
	schemaErr  error
)

// registrySchema compiles the embedded definitions once, through the same loader the
// repository's own schemas use, so issues read the same way as `circle validate`'s.
func registrySchema() (*schema.Schema, error) {
	schemaOnce.Do(func() {
		schemaVal, schemaErr = schema.Load(cueFS, "cue")
	})
	return schemaVal, schemaErr
}

// document is one parsed YAML file: its syntax tree (values keep their positions) and the
// position of every field, keyed by dotted path ("artifacts.0.sha256").
type document struct {
	file string
	expr ast.Expr
	pos  map[string]token.Pos
}

// parseYAML reads a YAML file whose top level is a mapping.
// readDocument reads a YAML file of the repository and decodes it into out through the
// schema definition def: what every registry file goes through before its own checks.
func readDocument(fsys fs.FS, file, def string, out any) (*document, schema.Issues) {
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, schema.Issues{{File: file, Message: fmt.Sprintf("read: %v", err)}}
	}
	doc, err := parseYAML(file, data)
	if err != nil {
		return nil, asIssues(file, err)
	}
	if err := doc.validate(def, out); err != nil {
		return nil, asIssues(file, err)
	}
	return doc, nil
}

// parseYAML goes through layers.ExtractYAML, not CUE's own YAML decoder: the same syntax
// tree, but a merge key naming its own anchor is an error rather than a stack overflow that
// kills the process, and merge keys cost linear time.
func parseYAML(file string, data []byte) (*document, error) {
	f, err := layers.ExtractYAML(file, data)
	if err != nil {
		return nil, issueFromError(file, err)
	}
	st := &ast.StructLit{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.Field:
			st.Elts = append(st.Elts, d)
		case *ast.EmbedDecl:
			switch e := d.Expr.(type) {
			case *ast.StructLit:
				st.Elts = append(st.Elts, e.Elts...)
			case *ast.BinaryExpr: // an empty document
			default:
				return nil, schema.Issues{at(file, e.Pos(), "", "the top level must be a mapping")}
			}
		}
	}
	doc := &document{file: file, expr: st, pos: map[string]token.Pos{}}
	doc.walk(st, "")
	return doc, nil
}

func (d *document) walk(e ast.Expr, prefix string) {
	switch e := e.(type) {
	case *ast.StructLit:
		for _, el := range e.Elts {
			f, ok := el.(*ast.Field)
			if !ok {
				continue
			}
			name, _, err := ast.LabelName(f.Label)
			if err != nil {
				continue
			}
			p := join(prefix, name)
			d.pos[p] = f.Label.Pos()
			d.pos[p+"="] = f.Value.Pos()
			d.walk(f.Value, p)
		}
	case *ast.ListLit:
		for i, el := range e.Elts {
			p := join(prefix, strconv.Itoa(i))
			d.pos[p] = el.Pos()
			d.pos[p+"="] = el.Pos()
			d.walk(el, p)
		}
	}
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// validate unifies the document with definition def and decodes the result into out.
func (d *document) validate(def string, out any) error {
	s, err := registrySchema()
	if err != nil {
		return fmt.Errorf("registry schema: %w", err)
	}
	v, issues := s.Validate(def, d.expr)
	if issues != nil {
		for i := range issues {
			// A required field the file lacks has only the schema's position, or none (a
			// field of a list element); the file is where it is fixed.
			if issues[i].File == SchemaFile || issues[i].File == "" {
				issues[i].File, issues[i].Line, issues[i].Column = d.file, 0, 0
			}
		}
		return issues
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(out); err != nil {
		return schema.Issues{{File: d.file, Message: err.Error()}}
	}
	return nil
}

// issue is a problem at the value of the field at path (its key when value is false),
// or at the file when the document does not have that field.
func (d *document) issue(path string, value bool, format string, args ...any) schema.Issue {
	key := path
	if value {
		key += "="
	}
	return at(d.file, d.pos[key], path, fmt.Sprintf(format, args...))
}

func at(file string, pos token.Pos, path, msg string) schema.Issue {
	is := schema.Issue{File: file, Path: path, Message: msg}
	if pos.IsValid() {
		p := pos.Position()
		is.Line, is.Column = p.Line, p.Column
	}
	return is
}

// issueFromError turns a YAML syntax error into an issue at its position.
func issueFromError(file string, err error) schema.Issues {
	var out schema.Issues
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		if len(args) == 0 && strings.Contains(format, "%") {
			msg = e.Error() // an error CUE wrapped: its Msg has no arguments to format
		}
		is := schema.Issue{File: file, Message: msg}
		if ps := cueerrors.Positions(e); len(ps) > 0 {
			p := ps[0].Position()
			is.Line, is.Column = p.Line, p.Column
		}
		out = append(out, is)
	}
	if len(out) == 0 {
		out = schema.Issues{{File: file, Message: err.Error()}}
	}
	return out
}

// sortIssues orders issues by file, line and column, the order a reader fixes them in.
func sortIssues(is schema.Issues) {
	sort.SliceStable(is, func(i, j int) bool {
		a, b := is[i], is[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return strings.Compare(a.Message, b.Message) < 0
	})
}
