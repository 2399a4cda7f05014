package apply

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/redact"
)

// Change is what applying one object would do.
type Change struct {
	// Subject is "Kind/namespace/name".
	Subject string `json:"subject"`
	// Action is create, configure, unchanged or delete (a prune).
	Action string `json:"action"`
	// Diff is a unified diff of the object's YAML, live against what the apply would make;
	// Secret values appear only as masks.
	Diff string `json:"diff,omitempty"`
}

// Masker turns a secret value into what output may show of it.
type Masker func(string) string

// Diff reports what Apply would change, by a server-side dry run of each object, without
// changing anything; with opts.Prune, the objects a prune would delete too. Secret data is
// passed through mask before it is shown.
func (a *Applier) Diff(ctx context.Context, env string, manifests []byte, opts Options, mask Masker) ([]Change, error) {
	if opts.InventoryNamespace == "" {
		opts.InventoryNamespace = "default"
	}
	objects, err := utils.ReadObjects(bytes.NewReader(manifests))
	if err != nil {
		return nil, fmt.Errorf("diff %s: read manifests: %w", env, err)
	}
	a.rm.SetOwnerLabels(objects, env, "circle")
	if err := a.ignoreDrift(ctx, objects); err != nil {
		return nil, fmt.Errorf("diff %s: %w", env, err)
	}
	var out []Change
	var current []string
	for _, o := range objects {
		entry, live, merged, err := a.rm.Diff(ctx, o, ssa.DiffOptions{})
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", env, err)
		}
		current = append(current, entry.ObjMetadata.String())
		c := Change{Subject: entry.Subject}
		switch entry.Action {
		case ssa.CreatedAction:
			c.Action, c.Diff = "create", unified(nil, o, mask)
		case ssa.ConfiguredAction:
			c.Action, c.Diff = "configure", unified(live, merged, mask)
		default:
			c.Action = "unchanged"
		}
		out = append(out, c)
	}
	if opts.Prune {
		old, pending, err := a.inventory(ctx, env, opts.InventoryNamespace)
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", env, err)
		}
		old = old.Union(pending)
		keep := map[string]bool{}
		for _, id := range current {
			keep[id] = true
		}
		for _, id := range old {
			if !keep[id.String()] {
				out = append(out, Change{Subject: fmt.Sprintf("%s/%s/%s", id.GroupKind.Kind, id.Namespace, id.Name), Action: "delete"})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	return out, nil
}

// unified diffs two objects' YAML without the fields the server manages.
func unified(from, to *unstructured.Unstructured, mask Masker) string {
	text := func(u *unstructured.Unstructured) string {
		if u == nil {
			return ""
		}
		u = u.DeepCopy()
		unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
		unstructured.RemoveNestedField(u.Object, "metadata", "resourceVersion")
		unstructured.RemoveNestedField(u.Object, "metadata", "uid")
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "metadata", "generation")
		unstructured.RemoveNestedField(u.Object, "status")
		if u.GetKind() == "Secret" {
			redact.MaskSecretData(u.Object, mask)
		}
		b, _ := yaml.Marshal(u.Object)
		return string(b)
	}
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(text(from)), B: difflib.SplitLines(text(to)),
		FromFile: "live", ToFile: "apply", Context: 3,
	})
	return d
}
