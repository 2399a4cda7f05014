package plan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/circlecore/circle/layers"
	"github.com/circlecore/circle/repo"
)

// ConfigChange is one configuration value that differs between the revisions.
type ConfigChange struct {
	// Path is the dotted path, as layers spells it (a key that is not an identifier is
	// quoted).
	Path string `json:"path"`
	// Action is added, changed or removed.
	Action string `json:"action"`
	// From and To are the values as JSON, a sensitive one as its mask
	// (**redacted:<hash>**): the same salt on both sides, so a changed secret shows two
	// different masks. Empty for the side that has no value.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Sensitive reports whether either side is masked.
	Sensitive bool `json:"sensitive,omitempty"`
	// Origin is where head's value is set (file:line:col), or "schema default"; for a
	// removed value, where base set it.
	Origin string `json:"origin"`
}

// isMask matches what redact.Redactor.Mask returns.
var isMask = regexp.MustCompile(`^\*\*redacted:[0-9a-f]{8}\*\*$`)

// schemaDefault is the origin of a value no layer set: the schema supplied it.
const schemaDefault = "schema default"

// compareConfig diffs two environments' merged configuration, leaf by leaf (a list is one
// leaf, as layers merges it). Values are compared raw and shown redacted: Redacted masks
// exactly what Split puts in the generated Secret.
func compareConfig(base, head *repo.Env) []ConfigChange {
	var baseRaw, baseShown map[string]any
	if base != nil {
		baseRaw, baseShown = flatten(base.Config), flatten(base.Redacted())
	}
	headRaw, headShown := flatten(head.Config), flatten(head.Redacted())
	out := []ConfigChange{}
	for _, p := range sortedKeys(headRaw) {
		hv := headRaw[p]
		bv, had := baseRaw[p]
		if had && reflect.DeepEqual(bv, hv) {
			continue
		}
		c := ConfigChange{Path: p, Action: Added, To: jsonText(headShown[p]), Origin: origin(head, p)}
		c.Sensitive = masked(hv, headShown[p])
		if had {
			c.Action, c.From = Changed, jsonText(baseShown[p])
			c.Sensitive = c.Sensitive || masked(bv, baseShown[p])
		}
		out = append(out, c)
	}
	for _, p := range sortedKeys(baseRaw) {
		if _, ok := headRaw[p]; ok {
			continue
		}
		out = append(out, ConfigChange{Path: p, Action: Removed, From: jsonText(baseShown[p]),
			Sensitive: masked(baseRaw[p], baseShown[p]), Origin: origin(base, p)})
	}
	sortConfig(out)
	return out
}

// sortConfig orders by path; paths are unique across actions, so the order is total.
func sortConfig(cs []ConfigChange) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Path < cs[j].Path })
}

// masked reports whether the shown value is a mask standing in for the raw one.
func masked(raw, shown any) bool { return !reflect.DeepEqual(raw, shown) }

func origin(e *repo.Env, p string) string {
	if o, ok := e.Merged.Origin(p); ok {
		return o.String()
	}
	return schemaDefault
}

// flatten maps each leaf's dotted path to its value. Maps are walked; anything else (a
// scalar, a list) is a leaf, and so is an empty map, which has no leaf to stand for it.
func flatten(m map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			p := layers.Join(prefix, k)
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(p, sub)
				continue
			}
			out[p] = v
		}
	}
	walk("", m)
	return out
}

// jsonText is v as compact JSON. HTML characters are left alone: encoding/json's \u003c
// would make a value like "a<b" unreadable, and each renderer escapes for its own medium.
func jsonText(v any) string {
	if s, ok := v.(string); ok && isMask.MatchString(s) {
		return s // a mask reads better bare, and JSON quotes add nothing to it
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "?"
	}
	return strings.TrimSuffix(b.String(), "\n")
}
