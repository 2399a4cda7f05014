package repo

import (
	"context"
	"fmt"
	"io/fs"
	"slices"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"

	"github.com/circlecore/circle/layers"
	"github.com/circlecore/circle/schema"
	"github.com/circlecore/circle/secrets"
)

// A review without keys (Options.NoDecrypt) is what a pull request from a fork gets: its CI
// must never hold the SOPS keys. A secrets file's key names and type tags are in the clear,
// so it still says which paths the environment gets and of what type. Each value stands in
// as its type (`string`, `int`, `number`, `bool`), CUE checks every constraint it can
// against that, and a value the schema computes from a secret is left unknown instead of
// wrong. Everything else (the other layers, the schema, licenses, packages, manifests, with
// the generated Secret's keys) is checked as usual.
//
// What is not checked, and cannot be without the key: the secrets' values against the
// schema's bounds and patterns, the values computed from them, and the files' MACs (a file
// edited by hand passes here and fails where it is decrypted). Env.NotDecrypted lists the
// paths; the callers say so.

// readStandIns is decrypt for a review without keys: the file's structure with typed stand-ins,
// as a sensitive layer at the encrypted file's positions.
func readStandIns(_ context.Context, fsys fs.FS, name string, _ *secrets.Keyring) (*layers.Layer, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	if !secrets.IsEncrypted(name, data) {
		return nil, fmt.Errorf("%s: not encrypted with SOPS; files under the secrets folder must be", name)
	}
	plain, err := secrets.StandIns(name, data)
	if err != nil {
		return nil, secretIssues(err)
	}
	return layers.FromSOPS(name, data, plain)
}

// validateWithoutKeys judges the environment with each SOPS value standing in as its type,
// and keeps what CUE can compute as the configuration, schema.NotDecrypted elsewhere.
func (e *Env) validateWithoutKeys(sch *schema.Schema, def string) schema.Issues {
	expr, _ := e.substituteWhere(func(o layers.Origin) bool { return o.Sensitive }, typeStandIn)
	// The stand-ins themselves ("" for a string, 0 for an int) are the filled data: any
	// concrete value of the type tells a computed field from a missing one.
	cfg, unknown, issues := sch.ValidatePartial(def, expr, e.Merged.Expr())
	if issues != nil {
		return issues
	}
	e.Config, _ = cfg.(map[string]any)
	if e.Config == nil {
		e.Config = map[string]any{}
	}
	e.derived = map[string]bool{}
	for _, p := range unknown {
		joined := ""
		for _, k := range p {
			joined = layers.Join(joined, k)
		}
		e.derived[joined] = true
		e.NotDecrypted = append(e.NotDecrypted, joined)
	}
	// A secret's own value is unknown even where the schema's default would fill its type
	// (`port: int | *5432`): the default is not the secret. (A value the schema computes
	// from a secret through such a default is shown with the default: wrong, never secret.)
	for _, o := range e.Merged.Origins() {
		if o.Sensitive && !e.derived[o.Path] {
			e.derived[o.Path] = true
			e.NotDecrypted = append(e.NotDecrypted, o.Path)
			setPath(e.Config, layers.Split(o.Path), schema.NotDecrypted)
		}
	}
	slices.Sort(e.NotDecrypted)
	return nil
}

// setPath sets the value at path in m, where the maps exist.
func setPath(m map[string]any, path []string, v any) {
	for i, k := range path {
		if i == len(path)-1 {
			if _, ok := m[k]; ok {
				m[k] = v
			}
			return
		}
		next, ok := m[k].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
}

// typeStandIn is a stand-in's type: what StandIns wrote for a tag, as a CUE type at the
// value's place in the secrets file, so a conflict is reported there.
func typeStandIn(x ast.Expr) ast.Expr {
	t := typeOf(x)
	ast.SetPos(t, x.Pos())
	return t
}

func typeOf(x ast.Expr) ast.Expr {
	switch l := x.(type) {
	case *ast.BasicLit:
		switch l.Kind {
		case token.INT:
			return ast.NewIdent("int")
		case token.FLOAT:
			return ast.NewIdent("number")
		case token.TRUE, token.FALSE:
			return ast.NewIdent("bool")
		case token.STRING:
			return ast.NewIdent("string")
		}
	case *ast.Ident:
		if l.Name == "true" || l.Name == "false" {
			return ast.NewIdent("bool")
		}
	case *ast.ListLit:
		return &ast.ListLit{Elts: []ast.Expr{&ast.Ellipsis{}}}
	}
	return ast.NewIdent("_")
}
