package apply_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/testenv"
)

// A field listed in the ignore-drift annotation is set from Git when the object is made,
// then left as the cluster has it: an edit outside Git stays through re-applies and
// diffs, while the fields not listed are put back.
func TestApply_IgnoreDrift(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	opts := apply.Options{InventoryNamespace: ns, Prune: true}
	doc := func(kept, fixed string) []byte {
		return []byte(fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: tuned
  namespace: %s
  annotations:
    %s: /data/kept, /data/absent~1key, /data/gone, /data/dropped
data:
  kept: %q
  fixed: %q
  dropped: "from git"
`, ns, apply.IgnoreDriftAnnotation, kept, fixed))
	}
	if _, err := a.Apply(ctx, "dev", doc("git", "git"), opts); err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "tuned", metav1.GetOptions{})
	if err != nil || cm.Data["kept"] != "git" {
		t.Fatalf("created: %v %v", cm.Data, err)
	}

	// Someone tunes both fields and adds one the annotation lists.
	cm.Data["kept"], cm.Data["fixed"], cm.Data["gone"] = "tuned", "tuned", "added"
	delete(cm.Data, "dropped")
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	changes, err := a.Diff(ctx, "dev", doc("git2", "git"), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || !strings.Contains(changes[0].Diff, "+  fixed: git") {
		t.Fatalf("diff: %+v", changes)
	}
	for _, line := range strings.Split(changes[0].Diff, "\n") {
		if (strings.HasPrefix(line, "+ ") || strings.HasPrefix(line, "- ")) && (strings.Contains(line, "kept") || strings.Contains(line, "gone")) {
			t.Errorf("the diff changes an ignored field: %s", line)
		}
	}
	if _, err := a.Apply(ctx, "dev", doc("git2", "git"), opts); err != nil {
		t.Fatal(err)
	}
	cm, err = cs.CoreV1().ConfigMaps(ns).Get(ctx, "tuned", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, back := cm.Data["dropped"]; back || cm.Data["kept"] != "tuned" || cm.Data["gone"] != "added" {
		t.Errorf("ignored fields were overridden: %v", cm.Data)
	}
	if cm.Data["fixed"] != "git" {
		t.Errorf("a field not listed was not put back: %v", cm.Data)
	}

	bad := strings.Replace(string(doc("x", "y")), "/data/kept", "data/kept", 1)
	if _, err := a.Apply(ctx, "dev", []byte(bad), opts); err == nil || !strings.Contains(err.Error(), "not a JSON pointer") {
		t.Errorf("a bad pointer: %v", err)
	}
}

// An apply killed before it finished leaves objects its inventory lists as pending: the
// next apply prunes those it no longer holds, without counting them against the deletion
// guard (ten abandoned ConfigMaps are not a revision dropping most of one object).
func TestApply_PendingFromAnAbandonedApply(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	opts := apply.Options{InventoryNamespace: ns, Prune: true}
	if _, err := a.Apply(ctx, "dev", manifests(cm(ns, "kept", "x")), opts); err != nil {
		t.Fatal(err)
	}
	// What an abandoned apply leaves: objects made under Circle's labels, listed as pending.
	var pending []string
	for i := range 10 {
		name := fmt.Sprintf("abandoned-%d", i)
		if _, err := a.Apply(ctx, "scratch", manifests(cm(ns, name, "x")), apply.Options{InventoryNamespace: ns}); err != nil {
			t.Fatal(err)
		}
		obj, _ := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		obj.Labels["circle.circlecore.io/name"] = "dev"
		if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		pending = append(pending, fmt.Sprintf("%q", ns+"_"+name+"__ConfigMap"))
	}
	inv, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "circle-inventory-dev", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inv.Data["pending"] = "[" + strings.Join(pending, ",") + "]"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, inv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	res, err := a.Apply(ctx, "dev", manifests(cm(ns, "kept", "x")), opts)
	if err != nil {
		t.Fatalf("the guard counted abandoned objects: %v", err)
	}
	if len(res.Deleted) != 10 {
		t.Errorf("deleted %v, want the 10 abandoned ConfigMaps", res.Deleted)
	}
	inv, _ = cs.CoreV1().ConfigMaps(ns).Get(ctx, "circle-inventory-dev", metav1.GetOptions{})
	if inv.Data["pending"] != "[]" || !strings.Contains(inv.Data["objects"], "_kept_") {
		t.Errorf("inventory after: %v", inv.Data)
	}
}

// A config without a rate limit gets the applier's own (the caller's config is left
// alone); an unreachable server and a corrupt inventory are errors that say where.
func TestNew_DefaultsAndErrors(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	cfg := rest.CopyConfig(kube.Config)
	cfg.QPS, cfg.Burst, cfg.RateLimiter = 0, 0, nil
	a, err := apply.New(cfg)
	if err != nil || cfg.QPS != 0 {
		t.Fatalf("New: %v (caller's QPS now %v)", err, cfg.QPS)
	}
	ctx := context.Background()
	if _, err := a.Apply(ctx, "dev", manifests(cm(ns, "x", "1")), apply.Options{InventoryNamespace: ns}); err != nil {
		t.Fatal(err)
	}
	cs := kube.Clientset(t)
	inv, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "circle-inventory-dev", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inv.Data["objects"] = "not json"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, inv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, "dev", []byte{}, apply.Options{InventoryNamespace: ns}); err == nil || !strings.Contains(err.Error(), "circle-inventory-dev") {
		t.Errorf("a corrupt inventory: %v", err)
	}
	inv, _ = cs.CoreV1().ConfigMaps(ns).Get(ctx, "circle-inventory-dev", metav1.GetOptions{})
	inv.Data["objects"] = `["not an id"]`
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, inv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, "dev", []byte{}, apply.Options{InventoryNamespace: ns}); err == nil {
		t.Error("an inventory with a bad id was read")
	}

	// Connecting is lazy: an unreachable cluster is the first apply's error.
	far, err := apply.New(&rest.Config{Host: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := far.Apply(ctx, "dev", manifests(cm(ns, "x", "1")), apply.Options{}); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("an unreachable cluster: %v", err)
	}
}
