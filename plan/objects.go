package plan

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/fluxcd/pkg/ssa/utils"
	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/circlecore/circle/layers"
	"github.com/circlecore/circle/redact"
)

// ObjectChange is one Kubernetes object the environment's apply would create, change or
// delete.
type ObjectChange struct {
	// ID is "Kind/namespace/name", or "Kind/name" for a cluster-scoped object, as
	// `circle diff` names objects.
	ID         string `json:"id"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Action is created, changed, deleted, or replaced: an object whose name carries a
	// content hash (kustomize's generated ConfigMaps and Secrets) changed, so a new name
	// is created and the old one, PreviousName, pruned.
	Action       string `json:"action"`
	PreviousName string `json:"previousName,omitempty"`
	// Prune marks a deletion: the object is in base's build and not in head's, so the
	// apply's inventory prunes it from the cluster.
	Prune bool `json:"prune,omitempty"`
	// Fields are the differences of a changed or replaced object, in document order.
	Fields []FieldChange `json:"fields"`
	// Target is the cluster target the object is on, in a plan against what is live
	// (circle plan --live).
	Target string `json:"target,omitempty"`
	// Drifted marks, in a plan against what is live, an object that a field manager other
	// than Circle changed (kubectl edit, another controller): at least one of Fields is
	// Drifted. Applying the head puts those fields back.
	Drifted bool `json:"drifted,omitempty"`
}

// FieldChange is one field that differs within an object.
type FieldChange struct {
	// Path is dotted (keys that are not identifiers quoted); a list of maps that each have
	// a distinct "name" is matched by name, `containers[name=api]`, any other list of maps
	// by index, `ports[0]`; a list of scalars is one value.
	Path string `json:"path"`
	// Action is added, changed or removed.
	Action string `json:"action"`
	// From and To are the values as compact JSON. A Secret's data and stringData values
	// are masks (**redacted:<hash>**).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Diff is a line diff ("-old", "+new", " context" lines) instead of From and To, when
	// both are strings and either spans several lines: a ConfigMap's config.json, say.
	Diff string `json:"diff,omitempty"`
	// Drifted marks a field that, live, a field manager other than Circle set (plan --live).
	Drifted bool `json:"drifted,omitempty"`
}

// hashSuffix matches a name with kustomize's content-hash suffix (ten characters of its
// alphabet), as the generated circle-config, circle-secrets and circle-licenses carry.
var hashSuffix = regexp.MustCompile(`^(.+)-[a-z0-9]{10}$`)

type object struct {
	u   *unstructured.Unstructured
	key string // group/Kind/namespace/name
}

func readObjects(manifests []byte) ([]object, error) {
	if len(manifests) == 0 {
		return nil, nil
	}
	us, err := utils.ReadObjects(bytes.NewReader(manifests))
	if err != nil {
		return nil, err
	}
	out := make([]object, len(us))
	for i, u := range us {
		gv := u.GroupVersionKind()
		out[i] = object{u: u, key: gv.Group + "/" + gv.Kind + "/" + u.GetNamespace() + "/" + u.GetName()}
	}
	return out, nil
}

// compareObjects diffs two rendered manifest streams object by object.
//
// The field diff is a small structural differ over the objects' map[string]any rather than
// a library: dyff (homeport/dyff) reads YAML documents into its own node trees and
// reports for a terminal, and would add a dozen modules for what is here one recursive
// function; wI2L/jsondiff (in the module graph through fluxcd/pkg/ssa) emits RFC 6902
// patches with positional list indexes and without old values. Here named lists are
// matched by name, as dyff does, and each change keeps both values as data for the three
// output formats.
func compareObjects(baseManifests, headManifests []byte, red *redact.Redactor) ([]ObjectChange, error) {
	base, err := readObjects(baseManifests)
	if err != nil {
		return nil, fmt.Errorf("read base manifests: %w", err)
	}
	head, err := readObjects(headManifests)
	if err != nil {
		return nil, fmt.Errorf("read head manifests: %w", err)
	}
	names := secretNames(red, base, head)
	for _, list := range [][]object{base, head} {
		for _, o := range list {
			if o.u.GetKind() == "Secret" && o.u.GroupVersionKind().Group == "" {
				redact.MaskSecretData(o.u.Object, red.Mask)
			}
		}
	}
	byKey := make(map[string]*unstructured.Unstructured, len(base))
	for _, o := range base {
		byKey[o.key] = o.u
	}
	inHead := make(map[string]bool, len(head))
	var out []ObjectChange
	var created []object
	for _, o := range head {
		inHead[o.key] = true
		b, ok := byKey[o.key]
		if !ok {
			created = append(created, o)
			continue
		}
		if reflect.DeepEqual(b.Object, o.u.Object) {
			continue
		}
		oc := newChange(o.u, Changed, names)
		oc.Fields = diffObject(b.Object, o.u.Object, names)
		out = append(out, oc)
	}
	var deleted []object
	for _, o := range base {
		if !inHead[o.key] {
			deleted = append(deleted, o)
		}
	}
	out = append(out, pairReplaced(&created, &deleted, names)...)
	for _, o := range created {
		out = append(out, newChange(o.u, Created, names))
	}
	for _, o := range deleted {
		oc := newChange(o.u, Deleted, names)
		oc.Prune = true
		out = append(out, oc)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].APIVersion < out[j].APIVersion
	})
	return out, nil
}

// pairReplaced takes out of created and deleted the objects that are one hash-named
// object renamed: same group, kind, namespace and name before the suffix, exactly one on
// each side.
func pairReplaced(created, deleted *[]object, names *strings.Replacer) []ObjectChange {
	stem := func(o object) string {
		m := hashSuffix.FindStringSubmatch(o.u.GetName())
		if m == nil {
			return ""
		}
		gvk := o.u.GroupVersionKind()
		return gvk.Group + "/" + gvk.Kind + "/" + o.u.GetNamespace() + "/" + m[1]
	}
	count := func(list []object) map[string]int {
		n := map[string]int{}
		for _, o := range list {
			if s := stem(o); s != "" {
				n[s]++
			}
		}
		return n
	}
	nc, nd := count(*created), count(*deleted)
	old := map[string]object{}
	for _, o := range *deleted {
		if s := stem(o); s != "" && nc[s] == 1 && nd[s] == 1 {
			old[s] = o
		}
	}
	var out []ObjectChange
	keepCreated := (*created)[:0]
	paired := map[string]bool{}
	for _, o := range *created {
		s := stem(o)
		b, ok := old[s]
		if s == "" || !ok {
			keepCreated = append(keepCreated, o)
			continue
		}
		paired[s] = true
		oc := newChange(o.u, Replaced, names)
		oc.PreviousName = names.Replace(b.u.GetName())
		bo, ho := withoutName(b.u), withoutName(o.u)
		oc.Fields = diffObject(bo, ho, names)
		out = append(out, oc)
	}
	*created = keepCreated
	keepDeleted := (*deleted)[:0]
	for _, o := range *deleted {
		if !paired[stem(o)] {
			keepDeleted = append(keepDeleted, o)
		}
	}
	*deleted = keepDeleted
	return out
}

// withoutName is the object with metadata.name removed: a replaced object's rename is
// its PreviousName, not a field change.
func withoutName(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "name")
	return c.Object
}

func newChange(u *unstructured.Unstructured, action string, names *strings.Replacer) ObjectChange {
	name := names.Replace(u.GetName())
	id := u.GetKind() + "/" + name
	if ns := u.GetNamespace(); ns != "" {
		id = u.GetKind() + "/" + ns + "/" + name
	}
	return ObjectChange{ID: id, APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: name,
		Action: action, Fields: []FieldChange{}}
}

// secretNames replaces the hash suffix of every Secret's name with a mask. Kustomize's
// suffix is a hash of the Secret's data, unsalted: shown as is, it would let a reader test
// guesses of a low-entropy secret offline. The mask is salted like every other, so a
// changed Secret still shows a changed name, and references to it (a Deployment's
// volumes) read the same.
func secretNames(red *redact.Redactor, lists ...[]object) *strings.Replacer {
	seen := map[string]bool{}
	var pairs []string
	for _, list := range lists {
		for _, o := range list {
			name := o.u.GetName()
			m := hashSuffix.FindStringSubmatch(name)
			if o.u.GetKind() != "Secret" || m == nil || seen[name] {
				continue
			}
			seen[name] = true
			pairs = append(pairs, name, m[1]+"-"+red.Mask(name))
		}
	}
	return strings.NewReplacer(pairs...)
}

// diffObject lists the fields that differ between two objects.
func diffObject(a, b map[string]any, names *strings.Replacer) []FieldChange {
	out := []FieldChange{}
	diffMap("", a, b, &out)
	for i := range out {
		out[i].From = names.Replace(out[i].From)
		out[i].To = names.Replace(out[i].To)
		out[i].Diff = names.Replace(out[i].Diff)
	}
	return out
}

func diffValue(p string, a, b any, out *[]FieldChange) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			diffMap(p, av, bv, out)
			return
		}
	case []any:
		if bv, ok := b.([]any); ok {
			diffList(p, av, bv, out)
			return
		}
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, fieldChange(p, a, b))
	}
}

func diffMap(p string, a, b map[string]any, out *[]FieldChange) {
	keys := make(map[string]bool, len(a)+len(b))
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		av, aok := a[k]
		bv, bok := b[k]
		kp := layers.Join(p, k)
		switch {
		case !aok:
			*out = append(*out, FieldChange{Path: kp, Action: Added, To: jsonText(bv)})
		case !bok:
			*out = append(*out, FieldChange{Path: kp, Action: Removed, From: jsonText(av)})
		default:
			diffValue(kp, av, bv, out)
		}
	}
}

// diffList matches list items: by name when every item of both lists is a map with a
// distinct string "name" (containers, ports, volumes, env), else by index for maps; a list
// holding anything else is compared whole.
func diffList(p string, a, b []any, out *[]FieldChange) {
	if reflect.DeepEqual(a, b) {
		return
	}
	an, aok := named(a)
	bn, bok := named(b)
	if aok && bok {
		for i, item := range b {
			n := bn[i]
			ip := fmt.Sprintf("%s[name=%s]", p, n)
			j := indexOf(an, n)
			if j < 0 {
				*out = append(*out, FieldChange{Path: ip, Action: Added, To: jsonText(item)})
				continue
			}
			diffValue(ip, a[j], item, out)
		}
		for j, item := range a {
			if indexOf(bn, an[j]) < 0 {
				*out = append(*out, FieldChange{Path: fmt.Sprintf("%s[name=%s]", p, an[j]), Action: Removed, From: jsonText(item)})
			}
		}
		return
	}
	if !allMaps(a) || !allMaps(b) {
		*out = append(*out, fieldChange(p, a, b))
		return
	}
	for i := 0; i < len(a) || i < len(b); i++ {
		ip := fmt.Sprintf("%s[%d]", p, i)
		switch {
		case i >= len(a):
			*out = append(*out, FieldChange{Path: ip, Action: Added, To: jsonText(b[i])})
		case i >= len(b):
			*out = append(*out, FieldChange{Path: ip, Action: Removed, From: jsonText(a[i])})
		default:
			diffValue(ip, a[i], b[i], out)
		}
	}
}

// named returns the items' names when each is a map with a string "name", all distinct.
func named(list []any) ([]string, bool) {
	if len(list) == 0 {
		return nil, true
	}
	names := make([]string, len(list))
	seen := map[string]bool{}
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, false
		}
		n, ok := m["name"].(string)
		if !ok || seen[n] {
			return nil, false
		}
		seen[n] = true
		names[i] = n
	}
	return names, true
}

func allMaps(list []any) bool {
	for _, item := range list {
		if _, ok := item.(map[string]any); !ok {
			return false
		}
	}
	return true
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// fieldChange is a changed value; two strings of which one spans lines become a line diff.
func fieldChange(p string, a, b any) FieldChange {
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok && (strings.Contains(as, "\n") || strings.Contains(bs, "\n")) {
		return FieldChange{Path: p, Action: Changed, Diff: lineDiff(as, bs)}
	}
	return FieldChange{Path: p, Action: Changed, From: jsonText(a), To: jsonText(b)}
}

// lineDiff is a unified diff of two texts with one line of context, without its headers.
func lineDiff(a, b string) string {
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: difflib.SplitLines(a), B: difflib.SplitLines(b), Context: 1})
	var out []string
	for _, l := range strings.Split(d, "\n") {
		if strings.HasPrefix(l, "---") || strings.HasPrefix(l, "+++") || l == "" {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
