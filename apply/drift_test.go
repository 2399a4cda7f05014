package apply_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/testenv"
)

// Against a real kube-apiserver: Health tells each object's kstatus (a ConfigMap is
// Current at once; a Deployment no controller rolls out stays InProgress; an object gone
// is NotFound), and Drift names the objects edited since the apply with the paths of the
// fields that differ (a data key with a dot in it; not a label someone else added, which
// the apply keeps), or missing for one deleted, without putting anything back; the apply
// after it does.
func TestApplier_HealthAndDrift(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	deploy := fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: %s\nspec:\n  replicas: 1\n"+
		"  selector:\n    matchLabels: {app: api}\n  template:\n    metadata:\n      labels: {app: api}\n    spec:\n"+
		"      containers:\n      - name: api\n        image: registry.example.com/api:1.0\n", ns)
	conf := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\n  namespace: %s\ndata:\n  config.json: '{\"a\":1}'\n", ns)
	m := manifests(conf, cm(ns, "b", "1"), deploy)
	opts := apply.Options{InventoryNamespace: ns}
	if _, err := a.Apply(ctx, "dev", m, opts); err != nil {
		t.Fatal(err)
	}
	health, err := a.Health(ctx, "dev", m)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range health {
		got[h.Subject] = h.Status
	}
	if got["ConfigMap/"+ns+"/conf"] != "Current" || got["ConfigMap/"+ns+"/b"] != "Current" || got["Deployment/"+ns+"/api"] != "InProgress" {
		t.Errorf("health: %+v", health)
	}
	if d, err := a.Drift(ctx, "dev", m); err != nil || len(d) != 0 {
		t.Errorf("drift right after the apply: %+v %v", d, err)
	}

	c, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "conf", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Data["config.json"] = "{}"
	c.Labels["team"] = "ops"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	d, err := a.Drift(ctx, "dev", m)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || d[0].Subject != "ConfigMap/"+ns+"/b" || !d[0].Missing ||
		d[1].Subject != "ConfigMap/"+ns+"/conf" || !slices.Equal(d[1].Fields, []string{`data.config\.json`}) {
		t.Errorf("drift: %+v", d)
	}
	if health, err = a.Health(ctx, "dev", m); err != nil || health[0].Subject != "ConfigMap/"+ns+"/b" || health[0].Status != "NotFound" {
		t.Errorf("health of a deleted object: %+v %v", health, err)
	}
	if c, _ := cs.CoreV1().ConfigMaps(ns).Get(ctx, "conf", metav1.GetOptions{}); c.Data["config.json"] != "{}" {
		t.Error("Drift changed the cluster")
	}
	if res, err := a.Apply(ctx, "dev", m, opts); err != nil || len(res.Created)+len(res.Configured) != 2 {
		t.Errorf("the correcting apply: %+v %v", res, err)
	}
	if d, err := a.Drift(ctx, "dev", m); err != nil || len(d) != 0 {
		t.Errorf("drift after the correction: %+v %v", d, err)
	}
}
