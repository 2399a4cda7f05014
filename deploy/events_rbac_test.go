package deploy_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/fluxcd/pkg/ssa/utils"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/testenv"
)

// The circle-apply ClusterRole, bound in a namespace as the overlays bind it, is enough for
// the daemon's Kubernetes Events there: as the circle ServiceAccount, the event recorder
// reads the inventory ConfigMap, creates an event on it, and patches it when the same event
// comes again (count 2; a patch RBAC refused would leave it at 1).
func TestClusterRole_AllowsEvents(t *testing.T) {
	kube := testenv.StartKube(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	ns := kube.Namespace(t)

	raw, err := os.ReadFile("base/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objects, err := utils.ReadObjects(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	for _, o := range objects {
		if o.GetKind() == "ClusterRole" && o.GetName() == "circle-apply" {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(role.Rules) == 0 {
		t.Fatal("no ClusterRole circle-apply in base/rbac.yaml")
	}
	role.ObjectMeta = metav1.ObjectMeta{Name: "circle-apply-" + ns} // cluster-wide: one per test namespace
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{}) })
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "circle-apply"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "circle", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The inventory, as an apply leaves it (written here as the admin).
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, "dev", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: "+ns+"\n"),
		apply.Options{InventoryNamespace: ns}); err != nil {
		t.Fatal(err)
	}

	as := rest.CopyConfig(kube.Config)
	as.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":circle", Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "circle-inventory-dev", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err := apply.NewRecorder(as, apply.RecorderOptions{InventoryNamespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	var last []corev1.Event
	for i := range 2 {
		if err := rec.Event(ctx, "dev", apply.EventNormal, "Applied", "Applied revision r1: 1 created"); err != nil {
			t.Fatalf("event %d as the ServiceAccount: %v", i+1, err)
		}
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			l, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=circle-inventory-dev"})
			if err != nil {
				t.Fatal(err)
			}
			if last = l.Items; len(last) == 1 && int(last[0].Count) == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after event %d as the ServiceAccount: %+v", i+1, last)
			}
		}
	}
}
