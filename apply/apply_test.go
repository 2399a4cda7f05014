package apply_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func cm(ns, name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  v: %q\n", name, ns, value)
}

func svc(ns, name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  ports:\n  - port: 80\n", name, ns)
}

func manifests(docs ...string) []byte { return []byte(strings.Join(docs, "---\n")) }

// Apply, re-apply, change and prune against a real kube-apiserver.
func TestApply_InventoryAndPrune(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	opts := apply.Options{InventoryNamespace: ns, Prune: true, Wait: 30 * time.Second}

	res, err := a.Apply(ctx, "dev", manifests(cm(ns, "a", "1"), cm(ns, "b", "1"), svc(ns, "web")), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 3 {
		t.Errorf("first apply: %+v", res)
	}
	got, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "b", metav1.GetOptions{})
	if err != nil || got.Data["v"] != "1" || got.Labels["circle.circlecore.io/name"] != "dev" {
		t.Fatalf("b in the cluster: %+v %v", got, err)
	}
	if !slices.ContainsFunc(got.ManagedFields, func(f metav1.ManagedFieldsEntry) bool { return f.Manager == "circle" }) {
		t.Error("not applied under the circle field manager")
	}

	if res, err = a.Apply(ctx, "dev", manifests(cm(ns, "a", "1"), cm(ns, "b", "1"), svc(ns, "web")), opts); err != nil || len(res.Unchanged) != 3 {
		t.Errorf("the same manifests again: %+v %v", res, err)
	}

	// b changes, a leaves the manifests: a is pruned.
	res, err = a.Apply(ctx, "dev", manifests(cm(ns, "b", "2"), svc(ns, "web")), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Configured, []string{"ConfigMap/" + ns + "/b"}) || !slices.Equal(res.Deleted, []string{"ConfigMap/" + ns + "/a"}) {
		t.Errorf("change and prune: %+v", res)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a was not pruned: %v", err)
	}
	inv, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "circle-inventory-dev", metav1.GetOptions{})
	if err != nil || strings.Contains(inv.Data["objects"], "_a_") || !strings.Contains(inv.Data["objects"], "_b_") {
		t.Errorf("inventory: %v %v", inv.Data, err)
	}

	// An object someone took over (owner labels removed) is not pruned.
	web, _ := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
	web.Labels = nil
	if _, err := cs.CoreV1().Services(ns).Update(ctx, web, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, "dev", manifests(cm(ns, "b", "2")), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("an adopted object was pruned: %v", err)
	}

	// Another environment's inventory is its own.
	if res, err := a.Apply(ctx, "prod", manifests(cm(ns, "p", "1")), opts); err != nil || len(res.Deleted) != 0 {
		t.Errorf("prod: %+v %v", res, err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "b", metav1.GetOptions{}); err != nil {
		t.Errorf("prod's apply touched dev's objects: %v", err)
	}
}

// Namespaces (and CRDs) go first: a manifest set that creates its own namespace applies.
func TestApply_NamespaceFirst(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := fmt.Sprintf("created-%d", time.Now().UnixNano()%1e9)
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	nsDoc := fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", ns)
	res, err := a.Apply(context.Background(), "dev", manifests(cm(ns, "x", "1"), nsDoc), apply.Options{InventoryNamespace: kube.Namespace(t)})
	if err != nil || len(res.Created) != 2 {
		t.Errorf("apply with its namespace: %+v %v", res, err)
	}
}

// A Deployment that never becomes available (no controllers run here) fails the health
// wait, naming it; the objects are applied all the same.
func TestApply_HealthWait(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	deploy := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: %s
spec:
  replicas: 1
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: registry.example.com/api:1.0
`, ns)
	res, err := a.Apply(context.Background(), "dev", manifests(deploy), apply.Options{InventoryNamespace: ns, Wait: 3 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "health") || res == nil || len(res.Created) != 1 {
		t.Errorf("unready deployment: %+v %v", res, err)
	}
}

func TestApply_BadManifests(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(context.Background(), "dev", []byte("kind: [\n"), apply.Options{InventoryNamespace: ns}); err == nil || !strings.Contains(err.Error(), "read manifests") {
		t.Errorf("bad YAML: %v", err)
	}
	unknown := fmt.Sprintf("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: %s\n", ns)
	if _, err := a.Apply(context.Background(), "dev", []byte(unknown), apply.Options{InventoryNamespace: ns}); err == nil || !strings.Contains(err.Error(), "Widget") {
		t.Errorf("unknown kind: %v", err)
	}
}

// Prune guards: a revision dropping most objects is stopped and reported; Namespaces and
// PVCs are never pruned unless opted in; an object annotated prune: disabled stays.
func TestApply_PruneGuards(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	opts := apply.Options{InventoryNamespace: ns, Prune: true}
	extraNS := fmt.Sprintf("guarded-%d", time.Now().UnixNano()%1e9)
	pvc := fmt.Sprintf("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: %s\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n", ns)
	all := manifests(cm(ns, "a", "1"), cm(ns, "b", "1"), cm(ns, "c", "1"), cm(ns, "keep", "1"), pvc,
		fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", extraNS))
	if _, err := a.Apply(ctx, "dev", all, opts); err != nil {
		t.Fatal(err)
	}

	// Dropping five of six objects at once is stopped; nothing is deleted.
	_, err = a.Apply(ctx, "dev", manifests(cm(ns, "a", "1")), opts)
	if !errors.Is(err, apply.ErrTooManyDeletions) || !strings.Contains(err.Error(), "5 of 6") {
		t.Fatalf("a mass deletion: %v", err)
	}
	for _, name := range []string{"b", "c", "keep"} {
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("%s was deleted by a stopped prune: %v", name, err)
		}
	}

	// Opt one object out, then allow the prune.
	keep, _ := cs.CoreV1().ConfigMaps(ns).Get(ctx, "keep", metav1.GetOptions{})
	keep.Annotations = map[string]string{apply.PruneAnnotation: "disabled"}
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, keep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	opts.MaxDeleteFraction = 1
	res, err := a.Apply(ctx, "dev", manifests(cm(ns, "a", "1")), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Deleted, []string{"ConfigMap/" + ns + "/b", "ConfigMap/" + ns + "/c"}) {
		t.Errorf("deleted = %v", res.Deleted)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "keep", metav1.GetOptions{}); err != nil {
		t.Errorf("an object annotated prune: disabled was deleted: %v", err)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{}); err != nil {
		t.Errorf("a PVC was pruned: %v", err)
	}
	if n, err := cs.CoreV1().Namespaces().Get(ctx, extraNS, metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
		t.Errorf("a Namespace was pruned: %v", err)
	}
}

// Diff says what an apply would do, by a server-side dry run, changing nothing; Secret
// values appear only masked.
func TestDiff(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	opts := apply.Options{InventoryNamespace: ns, Prune: true}
	secret := func(v string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: %s\nstringData:\n  password: %s\n", ns, v)
	}
	mask := func(s string) string { return "**masked:" + s + "**" }
	if _, err := a.Apply(ctx, "dev", manifests(cm(ns, "a", "1"), cm(ns, "gone", "1"), secret("hunter2-old")), opts); err != nil {
		t.Fatal(err)
	}
	changes, err := a.Diff(ctx, "dev", manifests(cm(ns, "a", "2"), cm(ns, "new", "1"), secret("hunter2-newer")), opts, mask)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]apply.Change{}
	for _, c := range changes {
		got[c.Subject] = c
	}
	if c := got["ConfigMap/"+ns+"/a"]; c.Action != "configure" || !strings.Contains(c.Diff, `-  v: "1"`) || !strings.Contains(c.Diff, `+  v: "2"`) {
		t.Errorf("a: %+v", c)
	}
	if c := got["ConfigMap/"+ns+"/new"]; c.Action != "create" {
		t.Errorf("new: %+v", c)
	}
	if c := got["ConfigMap/"+ns+"/gone"]; c.Action != "delete" {
		t.Errorf("gone: %+v", c)
	}
	s := got["Secret/"+ns+"/s"]
	// ssa's dry run already hides the values ("*** (before)"/"*** (after)"); the mask goes
	// over that, so the output shows a change and never a value.
	if s.Action != "configure" || strings.Contains(s.Diff, "hunter2") || !strings.Contains(s.Diff, "+  password: '**masked:") {
		t.Errorf("secret: %+v", s)
	}
	// Nothing changed in the cluster.
	if live, _ := cs.CoreV1().ConfigMaps(ns).Get(ctx, "a", metav1.GetOptions{}); live.Data["v"] != "1" {
		t.Error("diff changed the cluster")
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "new", metav1.GetOptions{}); err == nil {
		t.Error("diff created an object")
	}
}
