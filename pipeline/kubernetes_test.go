package pipeline_test

import (
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/testenv"
)

const kubeBase = `kubernetes:
  volumes:
    shop-data:
      size: 1Gi
  ingresses:
    shop:
      host: shop.dev.example.com
      className: nginx
      paths:
        /: {service: shop-api, port: 80}
        /metrics: {service: shop-api, port: http}
`

// object returns the object of kind and name in a rendered stream, decoded.
func object(t *testing.T, manifests []byte, kind, name string) map[string]any {
	t.Helper()
	for _, doc := range strings.Split(string(manifests), "\n---\n") {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		md, _ := o["metadata"].(map[string]any)
		if o["kind"] == kind && md["name"] == name {
			return o
		}
	}
	t.Fatalf("no %s %s in\n%s", kind, name, manifests)
	return nil
}

func dig(o map[string]any, path ...any) any {
	var v any = o
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// The kubernetes key of the configuration layers becomes each environment's
// PersistentVolumeClaims and Ingresses: the base's values, an environment's override of one
// field, in the overlay's namespace, passing the check stage's Kubernetes schemas; and it
// is not part of the configuration the service reads.
func TestRun_KubernetesObjects(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	testenv.WriteFile(t, dir, "config/base/kubernetes.yaml", kubeBase)
	testenv.WriteFile(t, dir, "config/staging/kubernetes.yaml", "kubernetes:\n  ingresses:\n    shop: {host: shop.staging.example.com}\n")
	testenv.WriteFile(t, dir, "config/prod/kubernetes.yaml", `kubernetes:
  volumes:
    shop-data: {size: 20Gi, storageClassName: fast-ssd}
  ingresses:
    shop: {host: shop.example.com, tlsSecretName: shop-tls}
`)
	res, err := run(t, dir, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev, prod := res.Output("dev").Manifests, res.Output("prod").Manifests
	pvc := object(t, dev, "PersistentVolumeClaim", "shop-data")
	if dig(pvc, "spec", "resources", "requests", "storage") != "1Gi" || dig(pvc, "spec", "accessModes", 0) != "ReadWriteOnce" ||
		dig(pvc, "metadata", "namespace") != "shop-dev" || dig(pvc, "spec", "storageClassName") != nil {
		t.Errorf("dev's claim: %v", pvc)
	}
	pvc = object(t, prod, "PersistentVolumeClaim", "shop-data")
	if dig(pvc, "spec", "resources", "requests", "storage") != "20Gi" || dig(pvc, "spec", "storageClassName") != "fast-ssd" {
		t.Errorf("prod's claim: %v", pvc)
	}
	ing := object(t, prod, "Ingress", "shop")
	if dig(ing, "spec", "rules", 0, "host") != "shop.example.com" || dig(ing, "spec", "ingressClassName") != "nginx" ||
		dig(ing, "spec", "tls", 0, "secretName") != "shop-tls" || dig(ing, "spec", "tls", 0, "hosts", 0) != "shop.example.com" ||
		dig(ing, "metadata", "namespace") != "shop-prod" {
		t.Errorf("prod's Ingress: %v", ing)
	}
	if dig(ing, "spec", "rules", 0, "http", "paths", 0, "backend", "service", "port", "number") != float64(80) ||
		dig(ing, "spec", "rules", 0, "http", "paths", 1, "path") != "/metrics" ||
		dig(ing, "spec", "rules", 0, "http", "paths", 1, "backend", "service", "port", "name") != "http" {
		t.Errorf("prod's Ingress paths: %v", dig(ing, "spec", "rules", 0, "http", "paths"))
	}
	if dig(object(t, dev, "Ingress", "shop"), "spec", "tls") != nil {
		t.Error("dev's Ingress has TLS it was not given")
	}
	if _, ok := res.Repo.Env("prod").Config["kubernetes"]; ok {
		t.Error("the kubernetes key is in the service's configuration")
	}
	if strings.Contains(string(res.Output("prod").File("config.json").Data), "shop-data") {
		t.Error("config.json carries the kubernetes key")
	}
	if res.Objects["prod"] != 7 {
		t.Errorf("prod checked %d objects, want 7 (the example's 5, a claim, an Ingress)", res.Objects["prod"])
	}
}

// A mistake under the kubernetes key is a problem at its file and line, judged by Circle's
// schema whatever the repository's own; a value from a SOPS file is refused (it would be
// published in a plain object); two environments may not claim one host; a generated
// object may not stand in for one the overlay has.
func TestRun_KubernetesRefusals(t *testing.T) {
	for _, c := range []struct {
		name, file, content, want string
	}{
		{"bad size", "config/prod/kubernetes.yaml", "kubernetes:\n  volumes:\n    shop-data:\n      size: lots\n",
			`config/prod/kubernetes.yaml:4:13: kubernetes.volumes."shop-data".size`},
		{"unknown field", "config/prod/kubernetes.yaml", "kubernetes:\n  ingresses:\n    shop:\n      hots: x\n",
			"config/prod/kubernetes.yaml:4:7: kubernetes.ingresses.shop.hots"},
		{"bad host", "config/dev/kubernetes.yaml", "kubernetes:\n  ingresses:\n    shop: {host: \"Shop Example\"}\n",
			"config/dev/kubernetes.yaml:3:18: kubernetes.ingresses.shop.host"},
		// dev and staging both take the base's host.
		{"same host", "config/prod/kubernetes.yaml", "kubernetes:\n  ingresses:\n    shop: {host: shop.example.com}\n",
			`config/base/kubernetes.yaml:7:13: Ingress/shop spec.rules[0].host: host "shop.dev.example.com" is also served in dev`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := testenv.CopyTree(t, "../examples")
			testenv.WriteFile(t, dir, "config/base/kubernetes.yaml", kubeBase)
			testenv.WriteFile(t, dir, c.file, c.content)
			res, err := run(t, dir, pipeline.Options{})
			var invalid *repo.Invalid
			if !errors.As(err, &invalid) {
				t.Fatalf("err %v, want problems", err)
			}
			var all []string
			for _, p := range res.Problems {
				all = append(all, p.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), c.want) {
				t.Errorf("problems:\n%s\nwant one with %q", strings.Join(all, "\n"), c.want)
			}
		})
	}

	t.Run("from SOPS", func(t *testing.T) {
		dir := testenv.CopyTree(t, "../examples")
		testenv.SOPSEncrypt(t, dir, "secrets/prod.sops.yaml", "db:\n  password: hunter22\nkubernetes:\n  ingresses:\n    hidden: {host: secret-host.example.com, paths: {/: {service: x, port: 80}}}\n")
		res, err := run(t, dir, pipeline.Options{})
		if err == nil {
			t.Fatal("a kubernetes value from a SOPS file was accepted")
		}
		var all []string
		for _, p := range res.Problems {
			all = append(all, p.String())
		}
		joined := strings.Join(all, "\n")
		if !strings.Contains(joined, "cannot come from a SOPS file") || strings.Contains(joined, "secret-host.example.com") {
			t.Errorf("problems:\n%s\nwant the refusal, without the value", joined)
		}
	})

	t.Run("clash with the overlay", func(t *testing.T) {
		dir := testenv.CopyTree(t, "../examples")
		testenv.WriteFile(t, dir, "config/base/kubernetes.yaml", "kubernetes:\n  volumes:\n    shop-api: {size: 1Gi}\n  ingresses:\n    shop-api: {host: a.example.com, paths: {/: {service: shop-api, port: 80}}}\n")
		testenv.WriteFile(t, dir, "deploy/base/ingress.yaml", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: shop-api\nspec:\n  rules: [{host: b.example.com}]\n")
		k := readFile(t, dir+"/deploy/base/kustomization.yaml")
		testenv.WriteFile(t, dir, "deploy/base/kustomization.yaml", strings.Replace(k, "resources:\n", "resources:\n  - ingress.yaml\n", 1))
		res, _ := run(t, dir, pipeline.Options{})
		if f := res.Failed["prod"]; f.Stage != pipeline.StageBuild || !strings.Contains(f.Message, "Ingress shop-api, which the overlay has already") {
			t.Errorf("prod: %+v, want a build failure naming the Ingress", f)
		}
	})
}
