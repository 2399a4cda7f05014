// Package apply puts an environment's rendered manifests into a Kubernetes cluster the way
// Flux's kustomize-controller does, with fluxcd/pkg/ssa: server-side apply under one field
// manager, CRDs and Namespaces first, an inventory so that objects removed from the
// manifests are pruned, and a wait for every applied object to become healthy (kstatus).
//
// The inventory is a ConfigMap, circle-inventory-<env>, in Options.InventoryNamespace: the
// set of objects the last successful apply made. It is written after the apply and the
// prune succeed, so a failed apply prunes nothing and the next one still knows what it
// owns. Objects also carry owner labels (circle.circlecore.io/name=<env>), and a prune
// deletes only objects that still carry them: an object someone else adopted is left.
package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Owner is the field manager and label group Circle applies with.
var Owner = ssa.Owner{Field: "circle", Group: "circle.circlecore.io"}

// Options tune an apply.
type Options struct {
	// InventoryNamespace holds the inventory ConfigMaps; it must exist. Default "default".
	InventoryNamespace string
	// Prune deletes objects of the last inventory that the manifests no longer hold.
	Prune bool
	// Wait is how long to wait for the applied objects to become healthy; 0 skips waiting.
	Wait time.Duration
	// MaxDeleteFraction stops a prune that would delete more than this fraction of the
	// inventory (0 means 0.5), so a revision that suddenly drops most objects is reported
	// instead of wiping a cluster. 1 disables the guard.
	MaxDeleteFraction float64
}

// PruneAnnotation on an object in the cluster says whether a prune may delete it:
// "disabled" keeps any object; "enabled" lets Namespaces and PersistentVolumeClaims go,
// which are otherwise never pruned (deleting them deletes data).
const PruneAnnotation = "circle.circlecore.io/prune"

// ErrTooManyDeletions is returned when a prune would exceed Options.MaxDeleteFraction.
var ErrTooManyDeletions = errors.New("prune stopped: too many deletions")

// Result is what an apply changed, as "Kind/namespace/name" subjects.
type Result struct {
	Created    []string `json:"created,omitempty"`
	Configured []string `json:"configured,omitempty"`
	Unchanged  []string `json:"unchanged,omitempty"`
	Deleted    []string `json:"deleted,omitempty"`
}

// Applier applies to one cluster.
type Applier struct {
	client client.Client
	rm     *ssa.ResourceManager
	// seen is what the last apply of each environment left; see unchanged.
	mu   sync.Mutex
	seen map[string]map[object.ObjMetadata]seen
}

// New connects to the cluster at cfg. A config that sets no client-side rate limit gets
// 200 requests per second in bursts of 500 instead of client-go's 5 and 10, which
// made a cold apply of 45 objects take 13 s of waiting on the limiter.
func New(cfg *rest.Config) (*Applier, error) {
	if cfg.QPS == 0 && cfg.Burst == 0 && cfg.RateLimiter == nil {
		cfg = rest.CopyConfig(cfg)
		cfg.QPS, cfg.Burst = 200, 500
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return newWith(cfg, httpClient)
}

// ObjectConcurrency is how many objects of one environment an apply checks and applies at
// once.
const ObjectConcurrency = 8

func newWith(cfg *rest.Config, httpClient *http.Client) (*Applier, error) {
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	c, err := client.New(cfg, client.Options{Mapper: mapper, HTTPClient: httpClient})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	rm := ssa.NewResourceManager(c, polling.NewStatusPoller(c, mapper, polling.Options{}), Owner)
	// ssa checks and applies one object at a time by default; each takes a few round trips
	// to the API server, which wait on it, not on this process. Flux's kustomize-controller
	// runs 4 (--concurrent-ssa).
	rm.SetConcurrency(ObjectConcurrency)
	return &Applier{client: c, rm: rm, seen: map[string]map[object.ObjMetadata]seen{}}, nil
}

// Apply makes the cluster hold the manifests of env (a multi-document YAML stream).
func (a *Applier) Apply(ctx context.Context, env string, manifests []byte, opts Options) (*Result, error) {
	if opts.InventoryNamespace == "" {
		opts.InventoryNamespace = "default"
	}
	objects, err := utils.ReadObjects(bytes.NewReader(manifests))
	if err != nil {
		return nil, fmt.Errorf("apply %s: read manifests: %w", env, err)
	}
	a.rm.SetOwnerLabels(objects, env, "circle")
	if err := a.ignoreDrift(ctx, objects); err != nil {
		return nil, fmt.Errorf("apply %s: %w", env, err)
	}

	old, pending, err := a.inventory(ctx, env, opts.InventoryNamespace)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", env, err)
	}
	// Record what is about to be applied before applying it, as cli-utils does: a process
	// killed between the apply and the inventory write would otherwise leave objects no
	// inventory names, which no later prune could find (seen in the kill -9 test). They are
	// kept apart as pending: the last finished apply's set stays what the deletion guard
	// measures against, so abandoned applies do not look like a revision dropping objects.
	if next := pending.Union(object.UnstructuredSetToObjMetadataSet(objects).Diff(old)); !next.Equal(pending) {
		if err := a.saveInventory(ctx, env, opts.InventoryNamespace, old, next); err != nil {
			return nil, fmt.Errorf("apply %s: %w", env, err)
		}
		pending = next
	}
	toApply, skipped, live, err := a.unchanged(ctx, env, objects)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", env, err)
	}
	a.forget(env) // until this apply is known to have finished
	cs := ssa.NewChangeSet()
	if len(toApply) > 0 {
		if cs, err = a.rm.ApplyAllStaged(ctx, toApply, ssa.DefaultApplyOptions()); err != nil {
			return nil, fmt.Errorf("apply %s: %w", env, err)
		}
	}
	res := &Result{}
	changed := map[object.ObjMetadata]bool{}
	for _, e := range cs.Entries {
		if e.Action == ssa.CreatedAction || e.Action == ssa.ConfiguredAction {
			changed[e.ObjMetadata] = true
		}
	}
	// Read at once, so that as few other writers as possible come between.
	for id, rv := range a.settled(ctx, env, toApply, changed) {
		live[id], changed[id] = rv, false
	}
	for _, id := range skipped {
		res.Unchanged = append(res.Unchanged, utils.FmtObjMetadata(id))
	}
	for _, e := range cs.Entries {
		switch e.Action {
		case ssa.CreatedAction:
			res.Created = append(res.Created, e.Subject)
		case ssa.ConfiguredAction:
			res.Configured = append(res.Configured, e.Subject)
		default:
			res.Unchanged = append(res.Unchanged, e.Subject)
		}
	}
	current := cs.ToObjMetadataSet().Union(skipped)

	if opts.Prune {
		var stale []*unstructured.Unstructured
		for _, id := range old.Union(pending).Diff(current) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(id.GroupKind.WithVersion(""))
			u.SetNamespace(id.Namespace)
			u.SetName(id.Name)
			stale = append(stale, u)
		}
		if len(stale) > 0 {
			if err := a.resolveVersions(ctx, stale); err != nil {
				return nil, fmt.Errorf("apply %s: prune: %w", env, err)
			}
			frac := opts.MaxDeleteFraction
			if frac == 0 {
				frac = 0.5
			}
			if dropped := old.Diff(current); float64(len(dropped)) > frac*float64(len(old)) {
				// The new objects are applied; the old ones stay, and stay in the inventory
				// so that a later, smaller prune still knows them.
				if err := a.saveInventory(ctx, env, opts.InventoryNamespace, current.Union(dropped), pending.Diff(current)); err != nil {
					return nil, fmt.Errorf("apply %s: %w", env, err)
				}
				return res, fmt.Errorf("apply %s: %w: %d of %d objects would go (limit %.0f%%); applied, nothing deleted",
					env, ErrTooManyDeletions, len(dropped), len(old), frac*100)
			}
			if stale, err = a.prunable(ctx, stale); err != nil {
				return nil, fmt.Errorf("apply %s: prune: %w", env, err)
			}
			dcs, err := a.rm.DeleteAll(ctx, stale, ssa.DeleteOptions{
				PropagationPolicy: metav1.DeletePropagationBackground,
				Inclusions:        a.rm.GetOwnerLabels(env, "circle"),
			})
			if err != nil {
				return nil, fmt.Errorf("apply %s: prune: %w", env, err)
			}
			for _, e := range dcs.Entries {
				if e.Action == ssa.DeletedAction {
					res.Deleted = append(res.Deleted, e.Subject)
				}
			}
		}
	}
	if err := a.saveInventory(ctx, env, opts.InventoryNamespace, current, nil); err != nil {
		return nil, fmt.Errorf("apply %s: %w", env, err)
	}
	if opts.Wait > 0 {
		if err := a.rm.WaitForSetWithContext(ctx, current, ssa.WaitOptions{Interval: time.Second, Timeout: opts.Wait, FailFast: true}); err != nil {
			return res, fmt.Errorf("apply %s: health: %w", env, err)
		}
	}
	a.remember(env, objects, live, changed)
	for _, l := range [][]string{res.Created, res.Configured, res.Unchanged, res.Deleted} {
		sort.Strings(l)
	}
	return res, nil
}

// prunable keeps the stale objects a prune may delete: not opted out by annotation, and
// not a Namespace or PersistentVolumeClaim unless opted in.
func (a *Applier) prunable(ctx context.Context, stale []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, u := range stale {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(u.GroupVersionKind())
		err := a.client.Get(ctx, client.ObjectKeyFromObject(u), live)
		if apierrors.IsNotFound(err) {
			continue // gone already
		}
		if err != nil {
			return nil, err
		}
		switch mode := live.GetAnnotations()[PruneAnnotation]; {
		case mode == "disabled":
			continue
		case mode != "enabled" && (u.GetKind() == "Namespace" || u.GetKind() == "PersistentVolumeClaim") && u.GroupVersionKind().Group == "":
			continue
		}
		out = append(out, u)
	}
	return out, nil
}

// resolveVersions fills in a served version for each stale object's kind, which the
// inventory does not record.
func (a *Applier) resolveVersions(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		m, err := a.client.RESTMapper().RESTMapping(gvk.GroupKind())
		if err != nil {
			return fmt.Errorf("%s: %w", gvk.Kind, err)
		}
		u.SetGroupVersionKind(m.GroupVersionKind)
	}
	return nil
}

func inventoryName(env string) string { return "circle-inventory-" + env }

// inventory reads the objects the last finished apply of env made, and those an apply that
// did not finish may have made.
func (a *Applier) inventory(ctx context.Context, env, ns string) (objects, pending object.ObjMetadataSet, err error) {
	var cm corev1.ConfigMap
	err = a.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: inventoryName(env)}, &cm)
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read inventory %s/%s: %w", ns, inventoryName(env), err)
	}
	sets := [2]object.ObjMetadataSet{}
	for i, key := range []string{"objects", "pending"} {
		raw, ok := cm.Data[key]
		if !ok {
			continue
		}
		var ids []string
		if err := json.Unmarshal([]byte(raw), &ids); err != nil {
			return nil, nil, fmt.Errorf("inventory %s/%s %s: %w", ns, inventoryName(env), key, err)
		}
		for _, id := range ids {
			m, err := object.ParseObjMetadata(id)
			if err != nil {
				return nil, nil, fmt.Errorf("inventory %s/%s: %w", ns, inventoryName(env), err)
			}
			sets[i] = append(sets[i], m)
		}
	}
	return sets[0], sets[1], nil
}

func (a *Applier) saveInventory(ctx context.Context, env, ns string, objects, pending object.ObjMetadataSet) error {
	data := map[string]string{}
	for key, set := range map[string]object.ObjMetadataSet{"objects": objects, "pending": pending} {
		ids := make([]string, 0, len(set))
		for _, m := range set {
			ids = append(ids, m.String())
		}
		sort.Strings(ids)
		b, _ := json.Marshal(ids)
		data[key] = string(b)
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: inventoryName(env), Labels: a.rm.GetOwnerLabels(env, "circle")},
		Data:       data,
	}
	u, err := runtimeToUnstructured(cm)
	if err != nil {
		return err
	}
	if _, err := a.rm.Apply(ctx, u, ssa.DefaultApplyOptions()); err != nil {
		return fmt.Errorf("write inventory %s/%s: %w", ns, inventoryName(env), err)
	}
	return nil
}

func runtimeToUnstructured(obj any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	return u, u.UnmarshalJSON(b)
}
