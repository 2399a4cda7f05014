package apply

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

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
	if live, err = a.liveVersions(ctx, env, objects, false); err != nil {
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
// where it was read before this apply and the apply then found nothing to change (skipped,
// or unchanged by the server-side dry run): the object was as Git says at that version.
// Objects this apply created or changed get the version read after it only when settled
// vouches for it; the others none, so the next apply looks at them in full once.
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

// settled reads, after an apply, the resourceVersions of the objects it created or
// changed that no one else has written since Circle did: every other field manager's entry
// is older than Circle's own (both stamped by the API server's clock, so no clock of ours is
// trusted). An edit made between the apply and this read (kubectl, a controller writing
// status) leaves its manager's entry at or after Circle's, so that version is not taken in
// as Circle's and the next apply looks at the object in full. Without this, the first apply
// after a cold start dry-ran every object it had just created.
func (a *Applier) settled(ctx context.Context, env string, objects []*unstructured.Unstructured, changed map[object.ObjMetadata]bool) map[object.ObjMetadata]string {
	var touched []*unstructured.Unstructured
	for _, u := range objects {
		if changed[object.UnstructuredToObjMetadata(u)] {
			touched = append(touched, u)
		}
	}
	if len(touched) == 0 {
		return nil
	}
	live, err := a.liveVersions(ctx, env, touched, true)
	if err != nil {
		return nil // the next apply looks at them in full, as before
	}
	out := map[object.ObjMetadata]string{}
	for id, rv := range live {
		if changed[id] {
			out[id] = rv
		}
	}
	return out
}

// lastWriterIsCircle reports whether Circle's managedFields entry is newer than every other
// manager's. Entries carry whole seconds, so another's in the same second counts as newer.
func lastWriterIsCircle(fields []metav1.ManagedFieldsEntry) bool {
	var ours time.Time
	for _, f := range fields {
		if f.Manager == Owner.Field && f.Time != nil && f.Time.After(ours) {
			ours = f.Time.Time
		}
	}
	if ours.IsZero() {
		return false
	}
	for _, f := range fields {
		if f.Manager != Owner.Field && (f.Time == nil || !f.Time.Time.Before(ours)) {
			return false
		}
	}
	return true
}

// liveVersions lists, metadata only, the objects of env's kinds and namespaces that carry
// its owner labels, and returns their resourceVersions; with settledOnly, only of those
// Circle wrote last (lastWriterIsCircle).
func (a *Applier) liveVersions(ctx context.Context, env string, objects []*unstructured.Unstructured, settledOnly bool) (map[object.ObjMetadata]string, error) {
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
			if settledOnly && !lastWriterIsCircle(item.ManagedFields) {
				continue
			}
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
