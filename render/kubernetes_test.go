package render_test

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/circlecore/circle/render"
)

// The configuration's claims and Ingresses render as the objects a user would write by
// hand: in the overlay's namespace, labelled, each port a number or a name as given.
func TestRender_KubernetesObjects(t *testing.T) {
	k, err := render.KubernetesFrom(map[string]any{
		"volumes": map[string]any{"data": map[string]any{"size": "5Gi", "storageClassName": "fast", "accessModes": []any{"ReadWriteMany"}}},
		"ingresses": map[string]any{"shop": map[string]any{"host": "shop.example.com", "className": "nginx", "tlsSecretName": "shop-tls",
			"paths": map[string]any{"/": map[string]any{"service": "shop-api", "port": float64(80)},
				"/admin": map[string]any{"service": "shop-api", "port": "8080"},
				"/api":   map[string]any{"service": "shop-api", "port": "http"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := render.Render(render.Input{FS: os.DirFS("../examples"), Manifests: "deploy", Env: "prod", Kubernetes: k})
	if err != nil {
		t.Fatal(err)
	}
	y := string(out)
	for _, want := range []string{
		"kind: PersistentVolumeClaim\nmetadata:\n  labels:\n    app.kubernetes.io/managed-by: circle\n    app.kubernetes.io/name: data\n  name: data\n  namespace: shop-prod",
		"  - ReadWriteMany", "storage: 5Gi", "storageClassName: fast",
		"kind: Ingress", "ingressClassName: nginx", "secretName: shop-tls",
		"path: /\n        pathType: Prefix", "number: 80", "number: 8080", "name: http",
	} {
		if !strings.Contains(y, want) {
			t.Errorf("rendered output lacks %q:\n%s", want, y)
		}
	}
	// The generated objects come before the overlay's, claims before Ingresses.
	if pvc, ing, dep := strings.Index(y, "kind: PersistentVolumeClaim"), strings.Index(y, "kind: Ingress"), strings.Index(y, "kind: Deployment"); !(pvc < ing && ing < dep) {
		t.Errorf("order: claim at %d, Ingress at %d, Deployment at %d", pvc, ing, dep)
	}

	// A claim without access modes gets ReadWriteOnce, and an Ingress without TLS has none.
	k.Volumes["data"] = render.Volume{Size: "1Gi"}
	k.Ingresses["shop"] = render.Ingress{Host: "shop.example.com", Paths: map[string]render.Backend{"/": {Service: "shop-api", Port: 80}}}
	out, err = render.Render(render.Input{FS: os.DirFS("../examples"), Manifests: "deploy", Env: "prod", Kubernetes: k})
	if err != nil {
		t.Fatal(err)
	}
	if y = string(out); !strings.Contains(y, "- ReadWriteOnce") || strings.Contains(y, "tls:") || strings.Contains(y, "storageClassName") {
		t.Errorf("defaults:\n%s", y)
	}

	// An Ingress with no path, and an object the overlay has already, are refused.
	k.Ingresses["shop"] = render.Ingress{Host: "shop.example.com"}
	if _, err := render.Render(render.Input{FS: os.DirFS("../examples"), Manifests: "deploy", Env: "prod", Kubernetes: k}); err == nil ||
		!strings.Contains(err.Error(), "kubernetes.ingresses.shop.paths") {
		t.Errorf("an Ingress without paths: %v", err)
	}
	clash := &render.Kubernetes{Volumes: map[string]render.Volume{"x": {Size: "1Gi"}},
		Ingresses: map[string]render.Ingress{"shop-api": {Host: "a.example.com", Paths: map[string]render.Backend{"/": {Service: "shop-api", Port: 80}}}}}
	// Service shop-api is the overlay's; an Ingress of that name is not, so no clash.
	if _, err := render.Render(render.Input{FS: os.DirFS("../examples"), Manifests: "deploy", Env: "prod", Kubernetes: clash}); err != nil {
		t.Errorf("an Ingress named like the overlay's Service: %v", err)
	}
	withIngress := fstest.MapFS{
		"deploy/prod/kustomization.yaml": {Data: []byte("namespace: shop\nresources: [ingress.yaml]\n")},
		"deploy/prod/ingress.yaml":       {Data: []byte("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: shop-api\n")},
	}
	if _, err := render.Render(render.Input{FS: withIngress, Manifests: "deploy", Env: "prod", Kubernetes: clash}); err == nil ||
		!strings.Contains(err.Error(), "generates Ingress shop-api, which the overlay has already") {
		t.Errorf("a clash with the overlay's Ingress: %v", err)
	}
}

func TestKubernetesFrom(t *testing.T) {
	if k, err := render.KubernetesFrom(nil); k != nil || err != nil {
		t.Errorf("nothing: %v %v", k, err)
	}
	if _, err := render.KubernetesFrom(map[string]any{"volumes": "not a map"}); err == nil || !strings.Contains(err.Error(), "the kubernetes key") {
		t.Errorf("a wrong shape: %v", err)
	}
	if _, err := render.KubernetesFrom(map[string]any{"x": func() {}}); err == nil {
		t.Error("an unencodable value: no error")
	}
}
