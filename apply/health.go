package apply

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ObjectHealth is one object of an environment as the cluster holds it now.
type ObjectHealth struct {
	// Subject is "Kind/namespace/name", as in Result.
	Subject string `json:"subject"`
	// Status is kstatus' word for it: Current, InProgress, Failed, Terminating, NotFound
	// or Unknown.
	Status string `json:"status"`
	// Message is kstatus' reason, when it gives one ("Deployment does not have minimum
	// availability").
	Message string `json:"message,omitempty"`
}

// Health reads the kstatus of each object of env's manifests as the cluster holds it now,
// sorted by subject as Result's lists are. It reads one LIST per kind and namespace (objects carrying env's
// owner labels), not a GET per object, so the drift check can afford it on every tick. An
// object the cluster does not hold is NotFound; one whose status kstatus cannot compute
// is Unknown, with why.
func (a *Applier) Health(ctx context.Context, env string, manifests []byte) ([]ObjectHealth, error) {
	objects, err := utils.ReadObjects(bytes.NewReader(manifests))
	if err != nil {
		return nil, fmt.Errorf("health %s: read manifests: %w", env, err)
	}
	type scope struct {
		gvk schema.GroupVersionKind
		ns  string
	}
	scopes := map[scope]bool{}
	for _, u := range objects {
		scopes[scope{u.GroupVersionKind(), u.GetNamespace()}] = true
	}
	live := map[object.ObjMetadata]*unstructured.Unstructured{}
	for s := range scopes {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(s.gvk.GroupVersion().WithKind(s.gvk.Kind + "List"))
		opts := []client.ListOption{client.MatchingLabels(a.rm.GetOwnerLabels(env, "circle"))}
		if s.ns != "" {
			opts = append(opts, client.InNamespace(s.ns))
		}
		if err := a.client.List(ctx, list, opts...); err != nil {
			return nil, fmt.Errorf("health %s: list %s: %w", env, s.gvk.Kind, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			live[object.ObjMetadata{Namespace: u.GetNamespace(), Name: u.GetName(), GroupKind: s.gvk.GroupKind()}] = u
		}
	}
	out := make([]ObjectHealth, 0, len(objects))
	for _, u := range objects {
		id := object.UnstructuredToObjMetadata(u)
		h := ObjectHealth{Subject: utils.FmtObjMetadata(id), Status: status.NotFoundStatus.String()}
		if l, ok := live[id]; ok {
			if res, err := status.Compute(l); err != nil {
				h.Status, h.Message = status.UnknownStatus.String(), err.Error()
			} else {
				h.Status, h.Message = res.Status.String(), res.Message
			}
		}
		out = append(out, h)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	return out, nil
}
