package apply

import (
	"bytes"
	"context"
	"fmt"

	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LiveObject is one object of an environment as the cluster holds it, beside what applying
// the manifests would make of it (circle plan --live).
type LiveObject struct {
	// Live is the object on the cluster; nil when the apply would create it.
	Live *unstructured.Unstructured
	// Merged is what the apply would make of it (a server-side dry run); nil when a prune
	// would delete it.
	Merged *unstructured.Unstructured
	// Foreign are the fields of Live that field managers other than Circle set (kubectl
	// edit or scale, another controller), as each manager's FieldsV1 JSON: where Live
	// differs from Merged under one of them, the cluster drifted from what Circle applied.
	Foreign map[string][]byte
}

// Live reads what the cluster holds of env's manifests and what applying them would make,
// by a server-side dry run of each object, without changing anything; with opts.Prune, the
// objects of the inventory a prune would delete too. Objects the apply would leave as they
// are are not returned. Secret data is returned as the server has it: the caller masks it.
func (a *Applier) Live(ctx context.Context, env string, manifests []byte, opts Options) ([]LiveObject, error) {
	if opts.InventoryNamespace == "" {
		opts.InventoryNamespace = "default"
	}
	objects, err := utils.ReadObjects(bytes.NewReader(manifests))
	if err != nil {
		return nil, fmt.Errorf("live %s: read manifests: %w", env, err)
	}
	a.rm.SetOwnerLabels(objects, env, "circle")
	if err := a.ignoreDrift(ctx, objects); err != nil {
		return nil, fmt.Errorf("live %s: %w", env, err)
	}
	var out []LiveObject
	keep := map[string]bool{}
	for _, o := range objects {
		entry, live, merged, err := a.rm.Diff(ctx, o, ssa.DiffOptions{})
		if err != nil {
			return nil, fmt.Errorf("live %s: %s: %w", env, utils.FmtUnstructured(o), err)
		}
		keep[entry.ObjMetadata.String()] = true
		switch entry.Action {
		case ssa.CreatedAction:
			out = append(out, LiveObject{Merged: o})
		case ssa.ConfiguredAction:
			// ssa's Diff strips managedFields from what it returns; who set what is read
			// from the object itself.
			owners := live.DeepCopy()
			if err := a.client.Get(ctx, client.ObjectKeyFromObject(live), owners); err != nil {
				return nil, fmt.Errorf("live %s: %s: %w", env, utils.FmtUnstructured(o), err)
			}
			out = append(out, LiveObject{Live: live, Merged: merged, Foreign: foreign(owners)})
		}
	}
	if opts.Prune {
		old, pending, err := a.inventory(ctx, env, opts.InventoryNamespace)
		if err != nil {
			return nil, fmt.Errorf("live %s: %w", env, err)
		}
		for _, id := range old.Union(pending) {
			if keep[id.String()] {
				continue
			}
			u := &unstructured.Unstructured{}
			m, err := a.client.RESTMapper().RESTMapping(id.GroupKind)
			if err != nil {
				return nil, fmt.Errorf("live %s: %s: %w", env, id, err)
			}
			u.SetGroupVersionKind(m.GroupVersionKind)
			if err := a.client.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, u); err != nil {
				if errors.IsNotFound(err) {
					continue // gone already: nothing to prune
				}
				return nil, fmt.Errorf("live %s: %s: %w", env, id, err)
			}
			out = append(out, LiveObject{Live: u, Foreign: foreign(u)})
		}
	}
	return out, nil
}

// foreign is what field managers other than Circle own of the object's own fields (not
// its status or other subresources), by manager.
func foreign(u *unstructured.Unstructured) map[string][]byte {
	out := map[string][]byte{}
	for _, mf := range u.GetManagedFields() {
		if mf.Manager == Owner.Field || mf.Subresource != "" || mf.FieldsV1 == nil {
			continue
		}
		out[mf.Manager+" ("+string(mf.Operation)+")"] = mf.FieldsV1.Raw
	}
	return out
}
