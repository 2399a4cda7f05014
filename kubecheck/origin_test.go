package kubecheck_test

import (
	"os"
	"testing"

	"github.com/circlecore/circle/kubecheck"
	"github.com/circlecore/circle/render"
)

// Rendered with origins, problems name the file each object was written in and the line
// of the field there; a field an overlay changed points at the nearest field the file has.
// Circle's generated ConfigMap is not held to the required labels, which no user could
// add. An Ingress host served by two environments is reported in the second.
func TestCheck_Origins(t *testing.T) {
	fsys := os.DirFS("testdata/repo")
	var envs []kubecheck.Environment
	for _, env := range []string{"dev", "prod"} {
		y, err := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: env, Origins: true,
			Config: map[string]any{"greeting": "hello"}})
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, kubecheck.Environment{Name: env, Manifests: y, Source: "deploy/" + env, Policy: kubecheck.DefaultPolicy(env)})
	}
	r := check(t, kubecheck.Options{FS: fsys, GeneratedDir: render.GeneratedDir}, envs...)
	equal(t, "problems", lines(r.Problems), []string{
		`deploy/base/deployment.yaml:7:3: Deployment/web spec.replica: unknown field "replica" [schema]`,
		`deploy/base/deployment.yaml:7:3: Deployment/prod-web spec.replica: unknown field "replica" [schema]`,
		`deploy/base/deployment.yaml:15:11: Deployment/prod-web spec.template.spec.containers[1].image: image tag "latest" is not allowed in prod [no-latest-tag]`,
		`deploy/base/deployment.yaml:15:11: Deployment/prod-web spec.template.spec.containers[1].securityContext.privileged: container "web" is privileged [no-privileged]`,
		`deploy/base/ingress.yaml:7:7: Ingress/prod-web spec.rules[0].host: host "web.example.com" is also served in dev by Ingress/web [unique-ingress-hosts]`,
	})
	if r.Objects["dev"] != 3 || r.Objects["prod"] != 3 {
		t.Errorf("checked %v objects, want 3 in each (a ConfigMap, a Deployment and an Ingress)", r.Objects)
	}
	for _, p := range r.Problems {
		if p.Env == "" || p.Namespace == "" {
			t.Errorf("%s: no environment or namespace: %+v", p, p)
		}
	}

	// Without the files, the same problems have no line; without origins, they have the
	// line in the stream.
	r = check(t, kubecheck.Options{GeneratedDir: render.GeneratedDir}, envs[1])
	if got := r.Problems[0].String(); got != `deploy/base/deployment.yaml: Deployment/prod-web spec.replica: unknown field "replica" [schema]` {
		t.Errorf("without FS: %s", got)
	}
	y, err := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	r = check(t, kubecheck.Options{}, kubecheck.Environment{Name: "prod", Manifests: y, Source: "deploy/prod (rendered)", Policy: kubecheck.DefaultPolicy("prod")})
	if got := r.Problems[0].String(); got != `deploy/prod (rendered):9:3: Deployment/prod-web spec.replica: unknown field "replica" [schema]` {
		t.Errorf("without origins: %s\n%s", got, y)
	}

	// Without origins, the generated objects are told by name, as the daemon's check does.
	y, err = render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: "prod", Config: map[string]any{"greeting": "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	prod := kubecheck.Environment{Name: "prod", Manifests: y, Source: "deploy/prod (rendered)", Policy: kubecheck.DefaultPolicy("prod")}
	labels := func(r *kubecheck.Report) (n int) {
		for _, p := range r.Problems {
			if p.Check == kubecheck.CheckRequiredLabels {
				n++
			}
		}
		return n
	}
	if n := labels(check(t, kubecheck.Options{}, prod)); n != 1 {
		t.Errorf("without a way to tell generated objects: %d label problems, want the ConfigMap's", n)
	}
	if n := labels(check(t, kubecheck.Options{Generated: render.IsGenerated}, prod)); n != 0 {
		t.Errorf("with Generated: %d label problems, want none", n)
	}
}

// Disabling a check for an environment, or skipping it on an object, takes that object
// out of the comparison of Ingress hosts.
func TestCheck_IngressHostsSkipped(t *testing.T) {
	ingress := func(name, host, skip string) string {
		y := "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name + "\n  labels: {app.kubernetes.io/name: web}\n"
		if skip != "" {
			y += "  annotations: {circle.circlecore.io/skip-checks: " + skip + "}\n"
		}
		return y + "spec:\n  rules:\n    - host: " + host + "\n"
	}
	dev := kubecheck.Environment{Name: "dev", Source: "dev.yaml", Manifests: []byte(ingress("a", "a.example.com", "") + "---\n" + ingress("b", "B.example.com", "unique-ingress-hosts")), Policy: kubecheck.DefaultPolicy("dev")}
	staging := kubecheck.Environment{Name: "staging", Source: "staging.yaml", Manifests: []byte(ingress("a", "A.Example.com", "") + "---\n" + ingress("b", "b.example.com", "")), Policy: kubecheck.DefaultPolicy("staging")}
	prod := kubecheck.Environment{Name: "prod", Source: "prod.yaml", Manifests: []byte(ingress("a", "a.example.com", "")), Policy: kubecheck.Policy{Disabled: []string{kubecheck.CheckUniqueIngressHosts}}}
	r := check(t, kubecheck.Options{}, dev, staging, prod)
	equal(t, "problems", lines(r.Problems), []string{
		`staging.yaml:8:7: Ingress/a spec.rules[0].host: host "A.Example.com" is also served in dev by Ingress/a [unique-ingress-hosts]`,
	})
}
