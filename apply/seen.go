package apply

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/object"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// seen is one object as the last apply of its environment left it: a digest of what was
// applied and the resourceVersion the API server then gave it.
type seen struct {
	digest [32]byte
	rv     string
}

// unchanged splits objects into those that may need applying and those that cannot have
// changed: the same as last applied, and with the resourceVersion the last apply saw them
// at (so no one edited, deleted or re-created them since). Telling that takes one
// metadata-only LIST per kind and namespace instead of a server-side dry-run per object,
// which is what makes a no-op apply (a drift check, a revision that does not touch this
// environment) cheap. live is that LIST, for remember. The memory is the process's: after
// a start, the first apply is a full one.
func (a *Applier) unchanged(ctx context.Context, env string, objects []*unstructured.Unstructured) (apply []*unstructured.Unstructured, skipped object.ObjMetadataSet, live map[object.ObjMetadata]string, err error) {
	a.mu.Lock()
	prev := a.seen[env]
	a.mu.Unlock()
	if live, err = a.liveVersions(ctx, env, objects); err != nil {
		return nil, nil, nil, err
	}
	for _, u := range objects {
		id := object.UnstructuredToObjMetadata(u)
		p, ok := prev[id]
		if ok && p.rv != "" && live[id] == p.rv && p.digest == digestOf(u) {
			skipped = append(skipped, id)
			continue
		}
		apply = append(apply, u)
	}
	return apply, skipped, live, nil
}

// remember records what env's apply left, for the next one. A resourceVersion is kept
// only where it was read before this apply and the apply then found nothing to change
// (skipped, or unchanged by the server-side dry run): the object was as Git says at that
// version. Objects this apply created or changed get none, so the next apply looks at
// them in full once; reading their new version after the apply instead would take in an
// edit made in between, and that drift would never be corrected.
func (a *Applier) remember(env string, objects []*unstructured.Unstructured, live map[object.ObjMetadata]string, changed map[object.ObjMetadata]bool) {
	m := make(map[object.ObjMetadata]seen, len(objects))
	for _, u := range objects {
		id := object.UnstructuredToObjMetadata(u)
		e := seen{digest: digestOf(u)}
		if !changed[id] {
			e.rv = live[id]
		}
		m[id] = e
	}
	a.mu.Lock()
	a.seen[env] = m
	a.mu.Unlock()
}

// forget drops env's memory, so the next apply is a full one (after a failed apply, whose
// effects are not known).
func (a *Applier) forget(env string) {
	a.mu.Lock()
	delete(a.seen, env)
	a.mu.Unlock()
}

// liveVersions lists, metadata only, the objects of env's kinds and namespaces that carry
// its owner labels, and returns their resourceVersions.
func (a *Applier) liveVersions(ctx context.Context, env string, objects []*unstructured.Unstructured) (map[object.ObjMetadata]string, error) {
	type scope struct {
		gvk schema.GroupVersionKind
		ns  string
	}
	scopes := map[scope]bool{}
	for _, u := range objects {
		scopes[scope{u.GroupVersionKind(), u.GetNamespace()}] = true
	}
	out := map[object.ObjMetadata]string{}
	for s := range scopes {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(s.gvk.GroupVersion().WithKind(s.gvk.Kind + "List"))
		opts := []client.ListOption{client.MatchingLabels(a.rm.GetOwnerLabels(env, "circle"))}
		if s.ns != "" {
			opts = append(opts, client.InNamespace(s.ns))
		}
		if err := a.client.List(ctx, list, opts...); err != nil {
			return nil, fmt.Errorf("list %s: %w", s.gvk.Kind, err)
		}
		for _, item := range list.Items {
			id := object.ObjMetadata{Namespace: item.Namespace, Name: item.Name, GroupKind: s.gvk.GroupKind()}
			out[id] = item.ResourceVersion
		}
	}
	return out, nil
}

func digestOf(u *unstructured.Unstructured) [32]byte {
	b, _ := json.Marshal(u.Object) // maps marshal in key order: the same object, the same bytes
	return sha256.Sum256(b)
}
