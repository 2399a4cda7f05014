// Package deploy_test checks Circle's own manifests: each overlay renders with Circle's
// renderer and is accepted, object by object, by a real kube-apiserver in a server-side
// dry run; and the policies the manifests promise hold.
package deploy_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/ssa/utils"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/circlecore/circle/manifests"
	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestOverlaysDryRun(t *testing.T) {
	kube := testenv.StartKube(t)
	ctx := context.Background()
	c, err := client.New(kube.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"circle-system", "shop-dev", "shop-staging", "shop-prod"} {
		err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		t.Run(env, func(t *testing.T) {
			y, err := render.Render(render.Input{FS: os.DirFS(".."), Manifests: "deploy", Env: env})
			if err != nil {
				t.Fatal(err)
			}
			objects, err := utils.ReadObjects(bytes.NewReader(y))
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]int{}
			for _, o := range objects {
				kinds[o.GetKind()]++
				o.SetManagedFields(nil)
				if err := c.Patch(ctx, o, client.Apply, client.DryRunAll, client.FieldOwner("circle"), client.ForceOwnership); err != nil {
					t.Errorf("%s/%s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			}
			for _, k := range []string{"Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ConfigMap", "Secret",
				"PersistentVolumeClaim", "Deployment", "Service", "Ingress"} {
				if kinds[k] == 0 {
					t.Errorf("no %s in deploy/%s", k, env)
				}
			}
			// What the README promises of the Deployment.
			for _, want := range []string{"path: /healthz", "path: /readyz", "readOnlyRootFilesystem: true", "runAsNonRoot: true",
				"host: circle." + env + ".example.com", "namespace: shop-" + env, "claimName: circle-state"} {
				if !bytes.Contains(y, []byte(want)) {
					t.Errorf("deploy/%s lacks %q", env, want)
				}
			}
			if bytes.Contains(y, []byte(":latest")) {
				t.Errorf("deploy/%s uses a latest tag", env)
			}
		})
	}
}

// Every overlay passes Circle's own validation framework: Kubernetes' schemas and every
// policy with its defaults (required labels, resource requests, no latest tags in prod,
// no privileged containers or host namespaces, one Ingress host per environment).
func TestOverlaysValidate(t *testing.T) {
	fsys := os.DirFS("..")
	var envs []manifests.Environment
	for _, env := range []string{"dev", "staging", "prod"} {
		y, err := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: env, Origins: true})
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, manifests.Environment{Name: env, Manifests: y, Source: "deploy/" + env, Policy: manifests.DefaultPolicy(env)})
	}
	r, err := manifests.Check(envs, manifests.Options{FS: fsys, GeneratedDir: render.GeneratedDir})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(r.Problems, r.Notes...) {
		t.Errorf("%s [%s]", p, p.Env)
	}
	for _, e := range envs {
		if r.Objects[e.Name] < 12 {
			t.Errorf("%s: %d objects checked", e.Name, r.Objects[e.Name])
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/circle.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=circle", "ProtectSystem=strict", "NoNewPrivileges=yes", "ExecStart=/usr/local/bin/circle serve"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("circle.service lacks %s", want)
		}
	}
}
