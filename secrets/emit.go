package secrets

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/cmd/sops/formats"
)

// emit writes a decrypted tree in its file's format, as `sops decrypt` does.
//
// JSON is written here rather than by sops' JSON store, whose encoder appends each entry to
// a string it copies every time: a 1.6 MB file took 84 s, and anyone can make a large
// sops file for the repository's public age recipient. This writes the same bytes (the
// sops-made test files are compared with `sops decrypt`) in time linear in the output.
// The other formats are sops' own.
func emit(name string, format formats.Format, branches sops.TreeBranches) ([]byte, error) {
	if format != formats.Json {
		return store(name).EmitPlainFile(branches)
	}
	if len(branches) != 1 {
		return nil, errors.New("a JSON file has one document")
	}
	var compact bytes.Buffer
	if err := emitJSON(&compact, branches[0], 0); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(compact.Len() * 2)
	if err := json.Indent(&out, compact.Bytes(), "", "\t"); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// emitJSON is sops' stores/json encodeValue: maps as {"key": value, …} in order, lists as
// […], comments dropped, every other value as encoding/json marshals it.
func emitJSON(b *bytes.Buffer, v any, depth int) error {
	if depth > 10000 {
		return errors.New("nested too deep")
	}
	switch v := v.(type) {
	case sops.TreeBranch:
		b.WriteByte('{')
		first := true
		for _, item := range v {
			if _, ok := item.Key.(sops.Comment); ok {
				continue
			}
			key, ok := item.Key.(string)
			if !ok {
				return errors.New("a key that is not a string")
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			k, err := json.Marshal(key)
			if err != nil {
				return err
			}
			b.Write(k)
			b.WriteString(": ")
			if err := emitJSON(b, item.Value, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		first := true
		for _, item := range v {
			if _, ok := item.(sops.Comment); ok {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			if err := emitJSON(b, item, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default:
		out, err := json.Marshal(v)
		if err != nil {
			// Its text quotes the value (json: unsupported value: NaN); the caller's
			// message does not use it.
			return err
		}
		b.Write(out)
	}
	return nil
}
