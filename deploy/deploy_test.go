// Package deploy_test checks Circle's own manifests: each overlay renders with Circle's
// renderer and is accepted, object by object, by a real kube-apiserver in a server-side
// dry run; and the policies the manifests promise hold.
package deploy_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/ssa/utils"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/kubecheck"
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
				"PersistentVolumeClaim", "Deployment", "Service", "Ingress", "NetworkPolicy"} {
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
	var envs []kubecheck.Environment
	for _, env := range []string{"dev", "staging", "prod"} {
		y, err := render.Render(render.Input{FS: fsys, Manifests: "deploy", Env: env, Origins: true})
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, kubecheck.Environment{Name: env, Manifests: y, Source: "deploy/" + env, Policy: kubecheck.DefaultPolicy(env)})
	}
	r, err := kubecheck.Check(envs, kubecheck.Options{FS: fsys, GeneratedDir: render.GeneratedDir})
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
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=circle", "ProtectSystem=strict", "NoNewPrivileges=yes", "ExecStart=/usr/local/bin/circle serve",
		// The API on loopback only; the storage keyring a credential (read-only, private to
		// the service), not a file in the state directory beside what it opens.
		"--listen 127.0.0.1:", "--storage-keyring %d/storage-keyring",
		// The state store (history, revocations, signing keys) in the unit's own directory.
		"--state-dir %S/circle/state", "LoadCredential=storage-keyring:/etc/circle/"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("circle.service lacks %s", want)
		}
	}
	if bytes.Contains(b, []byte("--storage-keyring /var/lib/")) {
		t.Error("circle.service keeps the storage keyring in the state directory")
	}
}

// overlay is one rendered overlay, typed where the tests below look inside.
type overlay struct {
	deployment appsv1.Deployment
	services   map[string]corev1.Service
	ingresses  []networkingv1.Ingress
	policies   []networkingv1.NetworkPolicy
	config     daemonConfig
}

// daemonConfig is what the tests read of the circle-config ConfigMap's config.yaml.
type daemonConfig struct {
	Listen  string `json:"listen"`
	Publish string `json:"publish"`
	State   string `json:"state_dir"`
	Webhook struct {
		Addr string `json:"addr"`
	} `json:"webhook"`
	Keys struct {
		StorageKeyring string `json:"storage_keyring"`
	} `json:"keys"`
}

func renderOverlay(t *testing.T, env string) overlay {
	t.Helper()
	y, err := render.Render(render.Input{FS: os.DirFS(".."), Manifests: "deploy", Env: env})
	if err != nil {
		t.Fatal(err)
	}
	objects, err := utils.ReadObjects(bytes.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	o := overlay{services: map[string]corev1.Service{}}
	into := func(u *unstructured.Unstructured, v any) {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, v); err != nil {
			t.Fatalf("%s/%s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	deployments := 0
	for _, u := range objects {
		switch u.GetKind() {
		case "Deployment":
			into(u, &o.deployment)
			deployments++
		case "Service":
			var s corev1.Service
			into(u, &s)
			o.services[s.Name] = s
		case "Ingress":
			var i networkingv1.Ingress
			into(u, &i)
			o.ingresses = append(o.ingresses, i)
		case "NetworkPolicy":
			var p networkingv1.NetworkPolicy
			into(u, &p)
			o.policies = append(o.policies, p)
		case "ConfigMap":
			if u.GetName() != "circle-config" {
				continue
			}
			var cm corev1.ConfigMap
			into(u, &cm)
			if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &o.config); err != nil {
				t.Fatalf("circle-config config.yaml: %v", err)
			}
		}
	}
	if deployments != 1 || len(o.deployment.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("deploy/%s: %d Deployments, want one of one container", env, deployments)
	}
	return o
}

// addrPort is the port of a listen address such as ":9090".
func addrPort(t *testing.T, what, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	return int32(n)
}

// containerPort resolves a targetPort (a name or a number) to the daemon's container port.
func (o overlay) containerPort(t *testing.T, target intstr.IntOrString) int32 {
	t.Helper()
	if target.Type == intstr.Int {
		return target.IntVal
	}
	for _, p := range o.deployment.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == target.StrVal {
			return p.ContainerPort
		}
	}
	t.Fatalf("no container port named %q", target.StrVal)
	return 0
}

// servicePort resolves an Ingress backend to the container port it reaches.
func (o overlay) servicePort(t *testing.T, b *networkingv1.IngressServiceBackend) int32 {
	t.Helper()
	s, ok := o.services[b.Name]
	if !ok {
		t.Fatalf("an Ingress routes to Service %q, which the overlay does not hold", b.Name)
	}
	for _, p := range s.Spec.Ports {
		if b.Port.Name != "" && p.Name == b.Port.Name || b.Port.Name == "" && p.Port == b.Port.Number {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			return o.containerPort(t, target)
		}
	}
	t.Fatalf("Service %s has no port %+v", b.Name, b.Port)
	return 0
}

// What the README promises of the shipped install's network surface: the Ingress reaches
// the webhook listener and nothing else (never --listen's API, metrics or dashboard); no
// Service puts the API on a node or load balancer; a NetworkPolicy lets anyone reach the
// webhook port and only named namespaces reach the API port.
func TestOverlaysExposeOnlyTheWebhook(t *testing.T) {
	for _, env := range []string{"dev", "staging", "prod"} {
		t.Run(env, func(t *testing.T) {
			o := renderOverlay(t, env)
			api := addrPort(t, "listen", o.config.Listen)
			hook := addrPort(t, "webhook.addr", o.config.Webhook.Addr)
			if api == hook {
				t.Fatalf("listen and webhook.addr share port %d", api)
			}
			secret := false
			for _, e := range o.deployment.Spec.Template.Spec.Containers[0].Env {
				secret = secret || e.Name == "CIRCLE_WEBHOOK_SECRET" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
			}
			if !secret {
				t.Error("CIRCLE_WEBHOOK_SECRET does not come from a Secret: the webhook listener would not start")
			}

			if len(o.ingresses) == 0 {
				t.Fatal("no Ingress: the webhook is not reachable")
			}
			routes := 0
			for _, ing := range o.ingresses {
				var backends []*networkingv1.IngressServiceBackend
				if ing.Spec.DefaultBackend != nil {
					backends = append(backends, ing.Spec.DefaultBackend.Service)
				}
				for _, r := range ing.Spec.Rules {
					if r.HTTP == nil {
						continue
					}
					for _, p := range r.HTTP.Paths {
						backends = append(backends, p.Backend.Service)
					}
				}
				for _, b := range backends {
					if b == nil {
						t.Errorf("Ingress %s routes to a resource backend", ing.Name)
						continue
					}
					routes++
					if port := o.servicePort(t, b); port != hook {
						t.Errorf("Ingress %s routes to container port %d (Service %s), want only the webhook's %d (listen is %d)",
							ing.Name, port, b.Name, hook, api)
					}
				}
			}
			if routes == 0 {
				t.Error("the Ingress routes nothing")
			}
			for _, s := range o.services {
				if s.Spec.Type != "" && s.Spec.Type != corev1.ServiceTypeClusterIP {
					for _, p := range s.Spec.Ports {
						if o.containerPort(t, p.TargetPort) == api {
							t.Errorf("Service %s (%s) exposes the API port %d outside the cluster", s.Name, s.Spec.Type, api)
						}
					}
				}
			}

			// The NetworkPolicy: it selects the daemon's pods, and a rule admitting every
			// source names ports, none of them the API's; the API's sources are named.
			pod := o.deployment.Spec.Template.Labels
			selected := false
			for _, p := range o.policies {
				sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
				if err != nil {
					t.Fatal(err)
				}
				if !sel.Matches(labels.Set(pod)) || !hasIngressType(p) {
					continue
				}
				selected = true
				hookOpen := false
				for i, r := range p.Spec.Ingress {
					if len(r.Ports) == 0 && len(r.From) == 0 {
						t.Errorf("NetworkPolicy %s rule %d admits every source on every port, the API's included", p.Name, i)
					}
					for _, port := range r.Ports {
						n := o.containerPort(t, *port.Port)
						if n == hook && len(r.From) == 0 {
							hookOpen = true
						}
						if n != api {
							continue
						}
						if len(r.From) == 0 {
							t.Errorf("NetworkPolicy %s rule %d admits every source to the API port %d", p.Name, i, api)
						}
						for _, from := range r.From {
							if from.IPBlock != nil || from.NamespaceSelector != nil && len(from.NamespaceSelector.MatchLabels)+len(from.NamespaceSelector.MatchExpressions) == 0 {
								t.Errorf("NetworkPolicy %s rule %d admits the API port from beyond named namespaces: %+v", p.Name, i, from)
							}
						}
					}
				}
				if !hookOpen {
					t.Errorf("NetworkPolicy %s does not admit the webhook port %d from the Ingress controller's pods", p.Name, hook)
				}
			}
			if !selected {
				t.Error("no NetworkPolicy of type Ingress selects the daemon's pods")
			}
		})
	}
}

func hasIngressType(p networkingv1.NetworkPolicy) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return true // Ingress is implied
	}
	for _, t := range p.Spec.PolicyTypes {
		if t == networkingv1.PolicyTypeIngress {
			return true
		}
	}
	return false
}

// The storage keyring comes from a Secret mounted read-only, never from the volume that
// holds the state and the file:// builds it opens.
func TestOverlaysKeyringFromSecret(t *testing.T) {
	for _, env := range []string{"dev", "staging", "prod"} {
		t.Run(env, func(t *testing.T) {
			o := renderOverlay(t, env)
			ring := o.config.Keys.StorageKeyring
			if ring == "" || !path.IsAbs(ring) {
				t.Fatalf("keys.storage_keyring = %q, want an absolute path", ring)
			}
			under := func(p, dir string) bool {
				return dir != "" && (p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/"))
			}
			spec := o.deployment.Spec.Template.Spec
			var mount *corev1.VolumeMount
			for i, m := range spec.Containers[0].VolumeMounts {
				if under(ring, m.MountPath) && (mount == nil || len(m.MountPath) > len(mount.MountPath)) {
					mount = &spec.Containers[0].VolumeMounts[i]
				}
			}
			if mount == nil {
				t.Fatalf("keys.storage_keyring %s is on no volume: the root file system", ring)
			}
			if !mount.ReadOnly {
				t.Errorf("the keyring's volume %s is mounted writable at %s", mount.Name, mount.MountPath)
			}
			for _, v := range spec.Volumes {
				if v.Name != mount.Name {
					continue
				}
				if v.Secret == nil {
					t.Errorf("keys.storage_keyring %s is on volume %s, which is not a Secret", ring, v.Name)
				} else if v.Secret.DefaultMode != nil && *v.Secret.DefaultMode&0o222 != 0 {
					t.Errorf("the keyring Secret's files are writable (mode %o)", *v.Secret.DefaultMode)
				}
			}
			if p := strings.TrimPrefix(o.config.Publish, "file://"); p != o.config.Publish && under(ring, p) || under(ring, o.config.State) {
				t.Errorf("keys.storage_keyring %s is beside the data (publish %s, state_dir %s)", ring, o.config.Publish, o.config.State)
			}
			// No other mount of the same place: the data volume must not shadow or hold it.
			for _, m := range spec.Containers[0].VolumeMounts {
				for _, v := range spec.Volumes {
					if v.Name == m.Name && v.PersistentVolumeClaim != nil && (under(ring, m.MountPath) || under(m.MountPath, mount.MountPath)) {
						t.Errorf("the data volume %s at %s holds the keyring's place %s", m.Name, m.MountPath, ring)
					}
				}
			}
		})
	}
}
