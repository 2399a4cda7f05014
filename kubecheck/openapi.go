package kubecheck

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// seg is one step of a field path: a key, or an index into a list (with the element's
// name, when it has one, so the step can be found again in the file it came from, where
// patches may have put it at another index).
type seg struct {
	key   string
	index int // -1 for a key
	name  string
}

// formatPath spells a path as Kubernetes does: spec.containers[0].image, with keys that
// are not identifiers in brackets: metadata.labels[app.kubernetes.io/name].
func formatPath(p []seg) string {
	var b strings.Builder
	for _, s := range p {
		switch {
		case s.index >= 0:
			fmt.Fprintf(&b, "[%d]", s.index)
		case isIdent(s.key):
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		default:
			fmt.Fprintf(&b, "[%s]", s.key)
		}
	}
	return b.String()
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// finding is a problem inside one object, before the object and its file are known.
type finding struct {
	path []seg
	at   *yaml.Node // where in the rendered stream
	// val is the rendered value at path, when the finding is about a scalar: the line of
	// the field in the object's file is reported only if the file has that value there
	// (else a patch changed it, and the enclosing field is reported).
	val *yaml.Node
	msg string
}

// validator walks one object's YAML against a compiled schema.
type validator struct {
	meta     *node // the built-in ObjectMeta, for embeddedMeta
	hide     bool  // the object is a Secret: never show a value
	path     []seg
	findings []finding
}

func (v *validator) add(at, val *yaml.Node, extra []seg, format string, args ...any) {
	p := make([]seg, 0, len(v.path)+len(extra))
	p = append(append(p, v.path...), extra...)
	if val != nil && val.Kind != yaml.ScalarNode {
		val = nil
	}
	v.findings = append(v.findings, finding{path: p, at: at, val: val, msg: fmt.Sprintf(format, args...)})
}

// jsonType is the JSON type a YAML value becomes when kubectl, or Circle's apply, reads it
// (both read YAML 1.1: a plain yes/no/on/off is a boolean there, though YAML 1.2 and
// kustomize keep it a string). yaml11 reports that case, for the message.
func jsonType(v *yaml.Node) (t typeSet, null, yaml11 bool) {
	switch v.Kind {
	case yaml.MappingNode:
		return tObject, false, false
	case yaml.SequenceNode:
		return tArray, false, false
	}
	switch v.ShortTag() {
	case "!!null":
		return 0, true, false
	case "!!bool":
		return tBoolean, false, false
	case "!!int":
		return tInteger | tNumber, false, false
	case "!!float":
		if f, err := strconv.ParseFloat(v.Value, 64); err == nil && f == math.Trunc(f) && !math.IsInf(f, 0) {
			return tInteger | tNumber, false, false // 1.0 reaches the API server as 1
		}
		return tNumber, false, false
	}
	if v.Style == 0 && isYAML11Bool(v.Value) {
		return tBoolean, false, true
	}
	return tString, false, false
}

func isYAML11Bool(s string) bool {
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF":
		return true
	}
	return false
}

// typeName names a value's type in messages: 1.0 is a number there, though it is also an
// integer to the API server.
func typeName(val *yaml.Node, t typeSet) string {
	if val.ShortTag() == "!!float" {
		return "number"
	}
	switch {
	case t&tObject != 0:
		return "object"
	case t&tArray != 0:
		return "array"
	case t&tBoolean != 0:
		return "boolean"
	case t&tInteger != 0:
		return "integer"
	case t&tNumber != 0:
		return "number"
	}
	return "string"
}

func resolve(v *yaml.Node) *yaml.Node {
	for v != nil && v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	return v
}

// value checks val against n; at is the node problems about val point to (its key, when val is
// a mapping value).
func (v *validator) value(n *node, val, at *yaml.Node) {
	if n == nil {
		return
	}
	if n == embeddedMeta {
		n = v.meta
	}
	val = resolve(val)
	t, null, yaml11 := jsonType(val)
	if null {
		return // null is "unset" to the API server's decoder
	}
	if n.types != 0 && n.types&t == 0 {
		msg := fmt.Sprintf("expected %s, got %s", n.types, typeName(val, t))
		if yaml11 {
			msg += fmt.Sprintf(" (a plain %s is a boolean in YAML 1.1, as kubectl reads it: quote it)", val.Value)
		}
		v.add(at, val, nil, "%s", msg)
		return
	}
	if n.enum != nil && val.Kind == yaml.ScalarNode && !inEnum(n.enum, val, t) {
		v.add(at, val, nil, "unsupported value %s: supported values: %s", v.show(val), enumList(n.enum))
	}
	switch val.Kind {
	case yaml.MappingNode:
		v.object(n, val, at)
	case yaml.SequenceNode:
		v.array(n, val, at)
	case yaml.ScalarNode:
		v.scalar(n, val, at, t)
	}
	for _, a := range n.allOf {
		v.value(a, val, at)
	}
	if len(n.anyOf) > 0 {
		if matched := v.matches(n.anyOf, val); matched == 0 {
			v.noAlternative(n.anyOf, val, at, t)
		}
	}
	if len(n.oneOf) > 0 {
		switch matched := v.matches(n.oneOf, val); {
		case matched == 0:
			v.noAlternative(n.oneOf, val, at, t)
		case matched > 1:
			v.add(at, nil, nil, "matches more than one of the schemas oneOf allows")
		}
	}
}

// show is a value as a message may show it: never a Secret's.
func (v *validator) show(val *yaml.Node) string {
	if v.hide {
		return "(value hidden)"
	}
	s := val.Value
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return strconv.Quote(s)
}

func inEnum(enum []any, val *yaml.Node, t typeSet) bool {
	for _, e := range enum {
		switch e := e.(type) {
		case string:
			if t == tString && val.Value == e {
				return true
			}
		case bool:
			if t == tBoolean && strconv.FormatBool(e) == strings.ToLower(val.Value) {
				return true
			}
		case float64:
			if f, err := strconv.ParseFloat(val.Value, 64); err == nil && t&tNumber != 0 && f == e {
				return true
			}
		case nil:
		default:
			if fmt.Sprint(e) == val.Value {
				return true
			}
		}
	}
	return false
}

func enumList(enum []any) string {
	parts := make([]string, len(enum))
	for i, e := range enum {
		if s, ok := e.(string); ok {
			parts[i] = strconv.Quote(s)
		} else {
			parts[i] = fmt.Sprint(e)
		}
	}
	return strings.Join(parts, ", ")
}

// matches counts the alternatives val satisfies.
func (v *validator) matches(alts []*node, val *yaml.Node) int {
	matched := 0
	for _, a := range alts {
		sub := validator{meta: v.meta, hide: v.hide}
		sub.value(a, val, val)
		if len(sub.findings) == 0 {
			matched++
		}
	}
	return matched
}

func (v *validator) noAlternative(alts []*node, val, at *yaml.Node, t typeSet) {
	var types typeSet
	for _, a := range alts {
		if !a.onlyTypes {
			sub := validator{meta: v.meta, hide: v.hide, path: v.path}
			sub.value(a, val, at)
			msg := "does not match any of the allowed schemas"
			if len(sub.findings) > 0 {
				msg += " (the first: " + sub.findings[0].msg + ")"
			}
			v.add(at, val, nil, "%s", msg)
			return
		}
		types |= a.types
	}
	v.add(at, val, nil, "expected %s, got %s", types, typeName(val, t))
}

func (v *validator) object(n *node, m, at *yaml.Node) {
	var seen map[string]bool
	if len(m.Content) > 16 {
		seen = make(map[string]bool, len(m.Content)/2)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, val := m.Content[i], m.Content[i+1]
		key := k.Value
		if seen != nil {
			if seen[key] {
				v.add(k, nil, []seg{{key: key, index: -1}}, "duplicate field %q", key)
			}
			seen[key] = true
		} else {
			for j := 0; j < i; j += 2 {
				if m.Content[j].Value == key {
					v.add(k, nil, []seg{{key: key, index: -1}}, "duplicate field %q", key)
					break
				}
			}
		}
		sub, known := n.props[key]
		if !known && n.additional != nil {
			sub, known = n.additional, true
		}
		if !known {
			if n.closed {
				v.add(k, nil, []seg{{key: key, index: -1}}, "unknown field %q", key)
			}
			continue
		}
		v.path = append(v.path, seg{key: key, index: -1})
		v.value(sub, val, k)
		v.path = v.path[:len(v.path)-1]
	}
	for _, r := range n.required {
		if f := field(m, r); f == nil || f.ShortTag() == "!!null" {
			v.add(at, nil, nil, "missing required field %q", r)
		}
	}
}

func (v *validator) array(n *node, s, at *yaml.Node) {
	if n.minItems != nil && int64(len(s.Content)) < *n.minItems {
		v.add(at, nil, nil, "must have at least %d items", *n.minItems)
	}
	if n.maxItems != nil && int64(len(s.Content)) > *n.maxItems {
		v.add(at, nil, nil, "must have at most %d items", *n.maxItems)
	}
	var keys map[string]int
	for i, item := range s.Content {
		item = resolve(item)
		st := seg{index: i}
		if item.Kind == yaml.MappingNode {
			if name := field(item, "name"); name != nil {
				st.name = name.Value
			}
		}
		v.path = append(v.path, st)
		if n.items != nil {
			v.value(n.items, item, item)
		}
		if id, ok := v.listKey(n, item); ok {
			if keys == nil {
				keys = map[string]int{}
			}
			if first, dup := keys[id]; dup {
				v.add(item, nil, nil, "duplicate entry %s: also at [%d] (the list is keyed by %s)", v.keyText(id), first, keyNames(n))
			} else {
				keys[id] = i
			}
		}
		v.path = v.path[:len(v.path)-1]
	}
}

// listKey is an element's identity in a list the API server merges by key
// (x-kubernetes-list-type map or set); server-side apply refuses duplicates.
func (v *validator) listKey(n *node, item *yaml.Node) (string, bool) {
	switch n.listType {
	case "set":
		if item.Kind != yaml.ScalarNode {
			return "", false
		}
		return strconv.Quote(item.Value), true
	case "map":
		if item.Kind != yaml.MappingNode || len(n.listKeys) == 0 {
			return "", false
		}
		parts := make([]string, len(n.listKeys))
		for i, k := range n.listKeys {
			f := field(item, k)
			switch {
			case f != nil && f.Kind == yaml.ScalarNode && f.ShortTag() != "!!null":
				parts[i] = k + "=" + strconv.Quote(f.Value)
			case n.items != nil && n.items.props[k] != nil && n.items.props[k].defaultVal != nil:
				parts[i] = k + "=" + strconv.Quote(fmt.Sprint(n.items.props[k].defaultVal))
			default:
				return "", false // a missing key is reported as a missing field, if required
			}
		}
		return strings.Join(parts, ", "), true
	}
	return "", false
}

func (v *validator) keyText(id string) string {
	if v.hide {
		return "(value hidden)"
	}
	return id
}

func keyNames(n *node) string {
	if n.listType == "set" {
		return "value"
	}
	return strings.Join(n.listKeys, ", ")
}

func (v *validator) scalar(n *node, s, at *yaml.Node, t typeSet) {
	if t == tString {
		l := int64(len([]rune(s.Value)))
		if n.minLength != nil && l < *n.minLength {
			v.add(at, nil, nil, "must be at least %d characters long", *n.minLength)
		}
		if n.maxLength != nil && l > *n.maxLength {
			v.add(at, nil, nil, "must be at most %d characters long", *n.maxLength)
		}
		if n.pattern != nil && !n.pattern.MatchString(s.Value) {
			v.add(at, s, nil, "%s does not match %s", v.show(s), n.pattern)
		}
		return
	}
	if t&tInteger != 0 && n.format != "" && !fitsFormat(s.Value, n.format) {
		lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
		if n.format == "int64" {
			lo, hi = math.MinInt64, math.MaxInt64
		}
		v.add(at, s, nil, "%s is out of range for format %s (%d to %d)", v.show(s), n.format, lo, hi)
	}
	if t&tNumber == 0 || n.minimum == nil && n.maximum == nil {
		return
	}
	f, err := strconv.ParseFloat(s.Value, 64)
	if err != nil {
		return
	}
	if m := n.minimum; m != nil && (f < *m || n.exclMin && f == *m) {
		v.add(at, nil, nil, "must be %s %v", map[bool]string{false: "at least", true: "greater than"}[n.exclMin], *m)
	}
	if m := n.maximum; m != nil && (f > *m || n.exclMax && f == *m) {
		v.add(at, nil, nil, "must be %s %v", map[bool]string{false: "at most", true: "less than"}[n.exclMax], *m)
	}
}

// fitsFormat reports whether an integer as YAML spells it (decimal, 0x, 0o, a whole number
// written as a fraction or with an exponent) fits the format, int32 or int64.
func fitsFormat(s, format string) bool {
	bits := 64
	if format == "int32" {
		bits = 32
	}
	if _, err := strconv.ParseInt(s, 0, bits); err == nil {
		return true
	} else if errors.Is(err, strconv.ErrRange) {
		return false
	}
	// Not an integer literal Go reads (2.0, 1e3, YAML 1.1's 0b and 0 octal forms): as a
	// float, compared to the bounds 2^(bits-1), which a float64 holds exactly.
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil {
		return true // the type check speaks for a value that is no number
	}
	limit := math.Ldexp(1, bits-1)
	return f >= -limit && f < limit
}

// field is the value of key in a mapping node, or nil.
func field(m *yaml.Node, key string) *yaml.Node {
	m = resolve(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return resolve(m.Content[i+1])
		}
	}
	return nil
}

// keyOf is the key node of key in a mapping node, or nil.
func keyOf(m *yaml.Node, key string) *yaml.Node {
	m = resolve(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}
