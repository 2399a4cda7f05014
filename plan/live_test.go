package plan_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/plan"
	"github.com/circlecore/circle/redact"
)

func obj(kind, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": "shop", "resourceVersion": "7", "uid": "u",
			"managedFields": []any{map[string]any{"manager": "circle"}}}}}
	for k, v := range spec {
		u.Object[k] = v
	}
	return u
}

// What the targets hold becomes the plan's objects and files: a field another manager set
// is drifted (a key, a list item by name, its parent for what the paths cannot spell), one
// Circle set is not; Secret data is masked; a prune and a creation are flagged; the files
// against the current build; an unreadable target fails its environment.
func TestCompareLive(t *testing.T) {
	red := redact.New()
	head := revisionOf(t, examplesFS(t), red)
	dep := func(replicas int64, image string) *unstructured.Unstructured {
		u := obj("Deployment", "shop-api", map[string]any{"spec": map[string]any{"replicas": replicas,
			"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "api", "image": image}}}}}})
		u.SetAPIVersion("apps/v1")
		return u
	}
	secret := func(v string) *unstructured.Unstructured {
		return obj("Secret", "creds", map[string]any{"data": map[string]any{"token": v}})
	}
	live := map[string]*plan.Live{
		"prod": {Clusters: map[string][]apply.LiveObject{"east": {
			{Live: dep(7, "api:1"), Merged: dep(4, "api:2"), Foreign: map[string][]byte{"kubectl-scale (Update)": []byte(`{"f:spec":{"f:replicas":{}}}`)}},
			{Live: secret("b2xk"), Merged: secret("bmV3"), Foreign: map[string][]byte{"x (Update)": []byte(`{"f:data":{"v:odd":{}}}`)}},
			{Merged: obj("ConfigMap", "new", nil)},
			{Live: obj("ConfigMap", "gone", nil)},
		}}, Storage: true},
		"staging": {Errors: map[string]string{"east": "connection refused"}},
	}
	p := plan.CompareLive(context.Background(), head, live, plan.Options{Redactor: red, HeadRevision: "HEAD"})
	var prod, staging *plan.Env
	for _, e := range p.Environments {
		switch e.Name {
		case "prod":
			prod = e
		case "staging":
			staging = e
		}
	}
	if staging.Status != plan.StatusFailed || !strings.Contains(staging.Error, "target east: connection refused") {
		t.Errorf("staging: %s %q", staging.Status, staging.Error)
	}
	byID := map[string]plan.ObjectChange{}
	for _, o := range prod.Objects {
		byID[o.ID] = o
		if o.Target != "east" {
			t.Errorf("%s: target %q", o.ID, o.Target)
		}
	}
	d := byID["Deployment/shop/shop-api"]
	if !d.Drifted || len(d.Fields) != 2 {
		t.Fatalf("the Deployment: %+v", d)
	}
	for _, f := range d.Fields {
		if (f.Path == "spec.replicas") != f.Drifted {
			t.Errorf("%s drifted %v", f.Path, f.Drifted)
		}
	}
	s := byID["Secret/shop/creds"]
	if len(s.Fields) != 1 || strings.Contains(s.Fields[0].From+s.Fields[0].To, "b2xk") || !s.Fields[0].Drifted {
		t.Errorf("the Secret: %+v", s)
	}
	if byID["ConfigMap/shop/new"].Action != plan.Created || !byID["ConfigMap/shop/gone"].Prune {
		t.Errorf("created and pruned: %+v %+v", byID["ConfigMap/shop/new"], byID["ConfigMap/shop/gone"])
	}
	if len(prod.Storage) == 0 || prod.Storage[0].Action != plan.Added {
		t.Errorf("no current build: every file is added: %+v", prod.Storage)
	}
	if !p.Summary.Invalid || !p.Summary.HasChanges || p.Base != "live" {
		t.Errorf("summary %+v, base %q", p.Summary, p.Base)
	}
	var text strings.Builder
	if err := p.WriteText(&text, false); err != nil || !strings.Contains(text.String(), "DRIFTED") || !strings.Contains(text.String(), "(on east)") {
		t.Errorf("text: %v\n%s", err, text.String())
	}
}
