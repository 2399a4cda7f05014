package apply_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/testenv"
)

// Live reads what a cluster holds against what an apply would make, changing nothing: an
// object edited by another field manager comes back with that manager's fields, a new one
// as Merged only, one a prune would delete as Live only, and one the apply leaves alone not
// at all.
func TestApplier_Live(t *testing.T) {
	kube := testenv.StartKube(t)
	ctx := context.Background()
	ns := kube.Namespace(t)
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	opts := apply.Options{InventoryNamespace: ns, Prune: true}
	if _, err := a.Apply(ctx, "dev", manifests(cm(ns, "a", "1"), cm(ns, "b", "1"), cm(ns, "gone", "1")), opts); err != nil {
		t.Fatal(err)
	}
	cs := kube.Clientset(t)
	if _, err := cs.CoreV1().ConfigMaps(ns).Patch(ctx, "a", types.MergePatchType, []byte(`{"data":{"v":"edited"}}`),
		metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	objs, err := a.Live(ctx, "dev", manifests(cm(ns, "a", "1"), cm(ns, "b", "1"), cm(ns, "new", "1")), opts)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]apply.LiveObject{}
	for _, o := range objs {
		name := ""
		if o.Live != nil {
			name = o.Live.GetName()
		} else {
			name = o.Merged.GetName()
		}
		got[name] = o
	}
	if len(got) != 3 {
		t.Fatalf("objects %v, want a (edited), new and gone", got)
	}
	edited := got["a"]
	if edited.Live == nil || edited.Merged == nil || edited.Live.Object["data"].(map[string]any)["v"] != "edited" ||
		edited.Merged.Object["data"].(map[string]any)["v"] != "1" {
		t.Errorf("the edited object: %+v", edited)
	}
	var foreign string
	for m, f := range edited.Foreign {
		foreign += m + string(f)
	}
	if !strings.Contains(foreign, "kubectl-edit") || !strings.Contains(foreign, `"f:v"`) {
		t.Errorf("the edit's manager and fields: %s", foreign)
	}
	if got["new"].Live != nil || got["new"].Merged == nil || got["gone"].Merged != nil || got["gone"].Live == nil {
		t.Errorf("new %+v, gone %+v", got["new"], got["gone"])
	}
	// Nothing changed on the cluster.
	if c, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "a", metav1.GetOptions{}); err != nil || c.Data["v"] != "edited" {
		t.Errorf("Live changed the cluster: %v %v", c.Data, err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "new", metav1.GetOptions{}); err == nil {
		t.Error("Live created an object")
	}
	// Bad manifests are an error naming the environment.
	if _, err := a.Live(ctx, "dev", []byte("kind: [\n"), opts); err == nil || !strings.Contains(err.Error(), "live dev") {
		t.Errorf("bad manifests: %v", err)
	}
}
