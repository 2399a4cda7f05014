package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-openapi/jsonpointer"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// IgnoreDriftAnnotation on an object in Git lists JSON pointers (RFC 6901), separated by
// commas, of fields Circle sets when it creates the object but leaves alone afterwards:
// `/spec/replicas` for a Deployment an autoscaler scales, say. The drift check does not
// put such a field back, and a new revision does not override it, like Argo CD's
// ignoreDifferences with RespectIgnoreDifferences.
const IgnoreDriftAnnotation = "circle.circlecore.io/ignore-drift"

// ignoreDrift sets each ignored field of an object that already exists in the cluster to
// the value the cluster has (or drops it where the cluster has none), so the server-side
// apply leaves it as it is. Dropping the field instead would not do: a field Circle alone
// owned and stops sending is removed by the API server, not kept. A new object keeps
// Git's values, so it is created whole.
func (a *Applier) ignoreDrift(ctx context.Context, objects []*unstructured.Unstructured) error {
	for _, u := range objects {
		list := u.GetAnnotations()[IgnoreDriftAnnotation]
		if list == "" {
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(u.GroupVersionKind())
		err := a.client.Get(ctx, client.ObjectKeyFromObject(u), live)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if err := keepLive(u, live, strings.Split(list, ",")); err != nil {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// keepLive makes desired hold live's value at each JSON pointer. Pointers are parsed by
// go-openapi/jsonpointer and the change is a JSON Patch (evanphx/json-patch), which escape
// and apply them as RFC 6901 and 6902 say.
func keepLive(desired, live *unstructured.Unstructured, pointers []string) error {
	doc, err := json.Marshal(desired.Object)
	if err != nil {
		return err
	}
	for _, p := range pointers {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		ptr, err := jsonpointer.New(p)
		if err != nil || !strings.HasPrefix(p, "/") {
			return fmt.Errorf("%s: %q is not a JSON pointer", IgnoreDriftAnnotation, p)
		}
		liveValue, _, liveErr := ptr.Get(live.Object)
		_, _, wantErr := ptr.Get(desired.Object)
		var op map[string]any
		switch {
		case liveErr == nil && wantErr == nil:
			op = map[string]any{"op": "replace", "path": p, "value": liveValue}
		case liveErr == nil:
			op = map[string]any{"op": "add", "path": p, "value": liveValue}
		case wantErr == nil:
			op = map[string]any{"op": "remove", "path": p}
		default:
			continue
		}
		raw, _ := json.Marshal([]any{op})
		patch, err := jsonpatch.DecodePatch(raw)
		if err != nil {
			return err
		}
		out, err := patch.Apply(doc)
		if err != nil {
			continue // the parent is missing in Git: Git's object is kept as it is
		}
		doc = out
	}
	obj := map[string]any{}
	if err := json.Unmarshal(doc, &obj); err != nil {
		return err
	}
	desired.Object = obj
	return nil
}
