package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
)

// Schema validates the merged configuration against the CUE definition
// named definition (for example "#Config") in src, the same schema Circle
// checks the document with before publishing it. Checking again in the
// service catches what Circle cannot see: environment overrides and local
// files. Defaults in the schema (field: *value | ...) fill keys no source
// set. An empty definition uses the whole of src.
//
// A definition is closed, so keys it does not declare are reported;
// end it with "..." to allow them.
func Schema(src []byte, definition string) Option {
	return func(o *options) {
		s := &schemaSpec{src: append([]byte(nil), src...), def: definition}
		if _, err := s.compile(cuecontext.New()); err != nil {
			o.errs = append(o.errs, err)
			return
		}
		o.schema = s
	}
}

// A ValidationError lists every way the configuration fails its schema,
// so one deployment shows all the problems instead of one per attempt.
type ValidationError struct {
	// Definition is the name given to [Schema].
	Definition string
	// Problems are sorted by path.
	Problems []Problem
}

// A Problem is one failure of the schema at one key.
type Problem struct {
	// Path is the dotted key ("db.port"); list elements are numbered
	// ("hosts.1"). It is empty for a problem with the whole document.
	Path string
	// Message is CUE's description, such as
	// "invalid value 0 (out of bound >0)".
	Message string
}

// Error puts every problem on one line, because the message usually ends
// up in a single log entry.
func (e *ValidationError) Error() string {
	var b strings.Builder
	name := e.Definition
	if name == "" {
		name = "schema"
	}
	fmt.Fprintf(&b, "config: does not match %s:", name)
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString(";")
		}
		b.WriteString(" ")
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

type schemaSpec struct {
	src []byte
	def string
}

// compile is run for every load with a fresh context, because a
// cue.Context only grows and is not meant to be shared between goroutines.
// Schema compiles once as well, so that New reports a broken schema
// before reading any file.
func (s *schemaSpec) compile(ctx *cue.Context) (cue.Value, error) {
	v := ctx.CompileBytes(s.src)
	if err := v.Err(); err != nil {
		return v, fmt.Errorf("config: compile schema: %w", err)
	}
	if s.def != "" {
		v = v.LookupPath(cue.ParsePath(s.def))
		if !v.Exists() {
			return v, fmt.Errorf("config: schema has no %s", s.def)
		}
	}
	return v, nil
}

// maxRounds bounds the re-validation in apply; every round removes at
// least one value, so this only matters for enormous documents.
const maxRounds = 20

// apply validates data against def, compiled in ctx, and returns it with
// the schema's defaults filled in.
func (s *schemaSpec) apply(ctx *cue.Context, def cue.Value, data map[string]any) (map[string]any, error) {
	u := def.Unify(ctx.Encode(data))
	verr := u.Validate(cue.Concrete(true))
	if verr == nil {
		var out map[string]any
		if err := u.Decode(&out); err != nil {
			return nil, fmt.Errorf("config: apply schema %s: %w", s.def, err)
		}
		return out, nil
	}

	// CUE stops short of some errors once it found others (a key the
	// definition does not allow hides a missing one, for instance), so
	// drop the values found wrong and validate again until nothing new
	// turns up.
	prefix := def.Path().Selectors()
	seen := map[string]bool{}
	var problems []Problem
	for range maxRounds {
		progress := false
		for _, e := range cueerrors.Errors(verr) {
			path := relPath(e.Path(), prefix)
			key := strings.Join(path, ".")
			if seen[key] {
				continue
			}
			seen[key] = true
			format, args := e.Msg()
			problems = append(problems, Problem{Path: key, Message: fmt.Sprintf(format, args...)})
			if remove(data, path) {
				progress = true
			}
		}
		if !progress {
			break
		}
		if verr = def.Unify(ctx.Encode(data)).Validate(cue.Concrete(true)); verr == nil {
			break
		}
	}
	slices.SortStableFunc(problems, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
	return nil, &ValidationError{Definition: s.def, Problems: problems}
}

// relPath strips the definition's own selectors from an error path, so
// paths read like the keys of the document.
func relPath(path []string, prefix []cue.Selector) []string {
	for _, sel := range prefix {
		if len(path) == 0 || path[0] != sel.String() {
			break
		}
		path = path[1:]
	}
	return path
}

// remove deletes the value at path from data. A path into a list removes
// the whole list, as removing one element would renumber the rest.
func remove(data map[string]any, path []string) bool {
	m := data
	for i, key := range path {
		v, ok := m[key]
		if !ok {
			return false
		}
		if i == len(path)-1 {
			delete(m, key)
			return true
		}
		switch v := v.(type) {
		case map[string]any:
			m = v
		case []any:
			delete(m, key)
			return true
		default:
			return false
		}
	}
	return false
}

// coerce converts the strings in m, read from the environment, to the
// kind the schema declares at their key: an environment variable cannot
// say "this is a number" and CUE does not convert on its own.
func coerce(def cue.Value, m map[string]any, path []string) {
	for k, v := range m {
		p := append(path[:len(path):len(path)], k)
		switch v := v.(type) {
		case map[string]any:
			coerce(def, v, p)
		case string:
			if want, ok := lookup(def, p); ok {
				if c, ok := convert(v, want.IncompleteKind()); ok {
					m[k] = c
				}
			}
		}
	}
}

// lookup finds the schema for a key, whether the schema declares it as
// a regular, optional (key?:) or required (key!:) field or only through a
// pattern ([string]: T).
func lookup(v cue.Value, path []string) (cue.Value, bool) {
	for _, p := range path {
		sel := cue.Str(p)
		next := v
		for _, s := range []cue.Selector{sel, sel.Optional(), sel.Required(), cue.AnyString} {
			if next = v.LookupPath(cue.MakePath(s)); next.Exists() {
				break
			}
		}
		if !next.Exists() {
			return next, false
		}
		v = next
	}
	return v, true
}

// convert parses s as the first non-string kind that kind allows.
func convert(s string, kind cue.Kind) (any, bool) {
	if kind&cue.StringKind != 0 {
		return nil, false
	}
	if kind&cue.IntKind != 0 {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, true
		}
	}
	if kind&cue.FloatKind != 0 {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, true
		}
	}
	if kind&cue.BoolKind != 0 {
		if b, err := strconv.ParseBool(s); err == nil {
			return b, true
		}
	}
	return nil, false
}
