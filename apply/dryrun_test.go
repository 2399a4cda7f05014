package apply_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/ssa/utils"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/testenv"
)

// Against a real kube-apiserver: an object the server accepts, one it refuses (with its
// reason), one in a namespace the same objects create and one of a kind their CRD defines
// (neither tried), and nothing is created.
func TestDryRun(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := utils.ReadObjects(bytes.NewReader(manifests(
		cm(ns, "fine", "1"),
		"apiVersion: v1\nkind: Service\nmetadata:\n  name: Bad_Name\n  namespace: "+ns+"\nspec:\n  ports:\n  - port: 80\n",
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: brand-new\n",
		cm("brand-new", "inside", "1"),
		"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n",
		"apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: "+ns+"\n",
	)))
	if err != nil {
		t.Fatal(err)
	}
	verdicts, err := a.DryRun(context.Background(), "dev", objects, func(s string) string { return "***" })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]apply.Verdict{}
	for i, v := range verdicts {
		got[objects[i].GetKind()+"/"+objects[i].GetName()] = v
	}
	if v := got["ConfigMap/fine"]; v.Refused != nil || v.NotTried != "" {
		t.Errorf("an acceptable ConfigMap: %+v", v)
	}
	if v := got["Service/Bad_Name"]; v.Refused == nil || !strings.Contains(v.Refused.Error(), "Bad_Name") {
		t.Errorf("a Service with an invalid name: %+v", v)
	}
	if v := got["ConfigMap/inside"]; v.Refused != nil || !strings.Contains(v.NotTried, "namespace brand-new does not exist yet") {
		t.Errorf("an object in a namespace the manifests create: %+v", v)
	}
	if v := got["Widget/w"]; v.Refused != nil || !strings.Contains(v.NotTried, "CustomResourceDefinition") {
		t.Errorf("an object of a kind the manifests define: %+v", v)
	}
	if _, err := kube.Clientset(t).CoreV1().ConfigMaps(ns).Get(context.Background(), "fine", metav1.GetOptions{}); err == nil {
		t.Error("a dry run created the ConfigMap")
	}
}
