package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/layers"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/redact"
)

// Live is what the targets hold of one environment now, for CompareLive.
type Live struct {
	// Clusters are, by cluster target, the objects an apply of the head would change
	// (apply.Applier.Live).
	Clusters map[string][]apply.LiveObject
	// Current is the storage target's current build as an output (its files), nil when
	// there is none; Storage says whether the environment has a storage target at all.
	Current *pipeline.Output
	Storage bool
	// Errors are the targets that could not be read, by target name: the plan says so
	// and the environment is failed, never planned as if the target were empty.
	Errors map[string]string
}

// CompareLive plans the move from what the targets hold now to the head: per environment,
// each cluster target's objects as a server-side dry run of the head would change them
// (drifted fields, set by another field manager, flagged), and the storage target's files
// against its current build. Configuration, packages and licenses are not compared: what
// is live has no revision of its own. It never fails; what does not build at head is the
// plan's Problems and its environments' Error.
func CompareLive(ctx context.Context, head *pipeline.Result, live map[string]*Live, opts Options) *Plan {
	red := opts.Redactor
	if red == nil && head.Repo != nil {
		red = head.Repo.Redactor()
	}
	if red == nil {
		red = redact.New()
	}
	c := &comparer{ctx: ctx, base: &pipeline.Result{}, head: head, opts: opts, red: red}
	p := &Plan{Schema: SchemaVersion, Base: "live", Head: opts.HeadRevision, Problems: []Problem{}, Environments: []*Env{}}
	for _, pr := range head.Problems {
		p.Problems = append(p.Problems, problemOf(pr))
	}
	var names []string
	if head.Settings != nil {
		names = head.Settings.EnvNames()
	}
	for _, name := range names {
		if len(opts.Envs) > 0 && !slices.Contains(opts.Envs, name) {
			continue
		}
		e := &Env{Name: name, Config: []ConfigChange{}, Packages: []PackageChange{}, Advisories: []Advisory{},
			Licenses: []LicenseChange{}, Objects: []ObjectChange{}, Storage: []FileChange{}, Secrets: []string{}}
		e.Error = failure(head, name)
		l := live[name]
		if l != nil {
			for _, t := range sortedKeys(l.Errors) {
				if e.Error == "" {
					e.Error = fmt.Sprintf("target %s: %s", t, l.Errors[t])
				}
			}
			for _, t := range sortedKeys(l.Clusters) {
				e.Objects = append(e.Objects, liveChanges(t, l.Clusters[t], red)...)
			}
			if out := head.Output(name); out != nil && l.Storage {
				e.Storage = compareFiles(l.Current, out)
			}
		}
		c.count(e)
		switch {
		case e.Error != "":
			e.Status = StatusFailed
		case e.Counts.Total() > 0:
			e.Status = StatusChanged
		default:
			e.Status = StatusUnchanged
		}
		p.Environments = append(p.Environments, e)
	}
	c.summarize(p)
	redactAll(p, red)
	return p
}

// liveChanges are one cluster target's objects as plan changes: created, deleted (a
// prune), or changed field by field from live to the dry run's result, Secret values as
// masks, drifted fields flagged.
func liveChanges(target string, objects []apply.LiveObject, red *redact.Redactor) []ObjectChange {
	var out []ObjectChange
	for _, o := range objects {
		live, merged := comparable(o.Live, red), comparable(o.Merged, red)
		var oc ObjectChange
		switch {
		case live == nil:
			oc = newChange(merged, Created, strings.NewReplacer())
		case merged == nil:
			oc = newChange(live, Deleted, strings.NewReplacer())
			oc.Prune = true
		default:
			oc = newChange(merged, Changed, strings.NewReplacer())
			oc.Fields = diffObject(live.Object, merged.Object, strings.NewReplacer())
			owned := foreignPaths(o.Foreign)
			for i := range oc.Fields {
				if under(oc.Fields[i].Path, owned) {
					oc.Fields[i].Drifted = true
					oc.Drifted = true
				}
			}
		}
		oc.Target = target
		out = append(out, oc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// comparable is a copy of u without what the server manages (managedFields, versions,
// status), Secret data masked.
func comparable(u *unstructured.Unstructured, red *redact.Redactor) *unstructured.Unstructured {
	if u == nil {
		return nil
	}
	u = u.DeepCopy()
	for _, f := range [][]string{{"metadata", "managedFields"}, {"metadata", "resourceVersion"}, {"metadata", "uid"},
		{"metadata", "creationTimestamp"}, {"metadata", "generation"}, {"status"},
		{"metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"}} {
		unstructured.RemoveNestedField(u.Object, f...)
	}
	if a := u.GetAnnotations(); a != nil && len(a) == 0 {
		unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
	}
	if u.GetKind() == "Secret" && u.GroupVersionKind().Group == "" {
		redact.MaskSecretData(u.Object, red.Mask)
	}
	return u
}

// foreignPaths are the fields the FieldsV1 trees own, in the paths FieldChange uses:
// f:key is a key, k:{"name":…} a list item matched by name, i:N an index; an entry the
// paths cannot spell (a set value, a list keyed otherwise) stands for its parent.
func foreignPaths(trees map[string][]byte) []string {
	var out []string
	var walk func(m map[string]any, p string)
	walk = func(m map[string]any, p string) {
		for k, v := range m {
			q := p
			switch {
			case k == ".":
				out = append(out, p)
				continue
			case strings.HasPrefix(k, "f:"):
				q = layers.Join(p, k[2:])
			case strings.HasPrefix(k, "k:"):
				var key map[string]any
				if json.Unmarshal([]byte(k[2:]), &key) == nil && len(key) == 1 {
					if n, ok := key["name"].(string); ok {
						q = fmt.Sprintf("%s[name=%s]", p, n)
					}
				}
			case strings.HasPrefix(k, "i:"):
				q = fmt.Sprintf("%s[%s]", p, k[2:])
			}
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 && q != p {
				walk(sub, q)
				continue
			}
			out = append(out, q)
		}
	}
	for _, raw := range trees {
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil {
			walk(m, "")
		}
	}
	return out
}

// under reports whether the field at p is, contains, or is inside one of the paths.
func under(p string, paths []string) bool {
	for _, o := range paths {
		if o == "" {
			continue
		}
		if p == o || within(p, o) || within(o, p) {
			return true
		}
	}
	return false
}

func within(p, parent string) bool {
	return strings.HasPrefix(p, parent) && len(p) > len(parent) && (p[len(parent)] == '.' || p[len(parent)] == '[')
}
