package license

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	cuejson "cuelang.org/go/encoding/json"
)

// schemaSource is license.cue: the payload definitions #License and #Revocations, the
// normative description of version 1 payloads.
//
//go:embed license.cue
var schemaSource []byte

const (
	defLicense     = "#License"
	defRevocations = "#Revocations"
	// schemaReuse is how many checks one CUE context serves before it is replaced: a
	// cue.Context only grows, and compiling the schema again costs about as much as a
	// few dozen checks.
	schemaReuse = 256
)

// compiled is the schema in one CUE context. CUE values are not safe for concurrent use,
// so checks take turns (schemaMu).
type compiled struct {
	ctx  *cue.Context
	root cue.Value
	uses int
}

var (
	schemaMu  sync.Mutex
	schemaNow *compiled
)

func compileSchema() (*compiled, error) {
	ctx := cuecontext.New()
	v := ctx.CompileBytes(schemaSource, cue.Filename("license.cue"))
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("schema: compile license.cue: %w", err)
	}
	return &compiled{ctx: ctx, root: v}, nil
}

// checkSchema validates a JSON payload against a definition of license.cue and reports
// every problem CUE found, one "path: message" each.
func checkSchema(def string, payload []byte) error {
	schemaMu.Lock()
	defer schemaMu.Unlock()
	if schemaNow == nil || schemaNow.uses >= schemaReuse {
		c, err := compileSchema()
		if err != nil {
			return err
		}
		schemaNow = c
	}
	c := schemaNow
	c.uses++
	expr, err := cuejson.Extract("payload", payload)
	if err != nil {
		return fmt.Errorf("schema %s: %w", def, err)
	}
	v := c.root.LookupPath(cue.ParsePath(def)).Unify(c.ctx.BuildExpr(expr))
	// Hidden fields carry the list checks (#Revocations._ids).
	if err := v.Validate(cue.Concrete(true), cue.Hidden(true)); err != nil {
		var msgs []string
		for _, e := range cueerrors.Errors(err) {
			format, args := e.Msg()
			path := strings.Join(e.Path(), ".")
			path = strings.TrimPrefix(strings.TrimPrefix(path, def), ".")
			msg := fmt.Sprintf(format, args...)
			if path != "" {
				msg = path + ": " + msg
			}
			msgs = append(msgs, msg)
		}
		if len(msgs) == 0 {
			msgs = append(msgs, err.Error())
		}
		return fmt.Errorf("schema %s: %w", def, errors.New(strings.Join(msgs, "; ")))
	}
	return nil
}
