package reconciler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/state"
	"github.com/circlecore/circle/testenv"
)

// The apply stage puts dev's manifests, with the generated ConfigMap and Secret, into the
// cluster target circle.yaml names; a config change rolls the ConfigMap name and prunes
// the old one; an invalid revision touches nothing.
func TestReconcile_AppliesToCluster(t *testing.T) {
	kube := testenv.StartKube(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	ns := kube.Namespace(t)
	cluster, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	root := copyExamples(t)
	testenv.SetNamespace(t, root, "deploy/dev/kustomization.yaml", ns)
	settings := readFile(t, root, "circle.yaml") + "  - name: kind\n    kind: cluster\n    environments: [dev]\n"
	write(t, root, "circle.yaml", settings)
	encrypt(t, root, "secrets/dev.sops.yaml", "db:\n  password: "+canary+"\n")
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t),
		Clusters: map[string]reconciler.Cluster{"kind": cluster},
		Apply:    apply.Options{InventoryNamespace: ns, Prune: true}})

	st, err := d.Reconcile(ctx, snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	dev := envByName(st, "dev")
	if !st.Ready || !strings.HasSuffix(strings.Join(st.Stages, ","), "build,check,apply,record") || dev.Applied["kind"] == nil || dev.Applied["kind"].Objects != 5 {
		t.Fatalf("status = %+v; dev = %+v", st, dev)
	}
	if envByName(st, "prod").Applied != nil {
		t.Error("prod was applied to a target that does not list it")
	}
	first := kube.OnlyConfigMap(t, ns, "circle-config-", 10*time.Second)
	deploy, err := cs.AppsV1().Deployments(ns).Get(ctx, "shop-api", metav1.GetOptions{})
	if err != nil || !strings.Contains(deploy.Spec.Template.Spec.Volumes[0].Projected.Sources[0].ConfigMap.Name, first) {
		t.Fatalf("the Deployment does not use %s: %v", first, err)
	}

	write(t, root, "config/dev/extra.yaml", "replicas: 2\n")
	if st, err = d.Reconcile(ctx, snapshot(t, root)); err != nil || !st.Ready {
		t.Fatalf("second revision: %+v %v", st, err)
	}
	second := kube.OnlyConfigMap(t, ns, "circle-config-", 10*time.Second)
	if second == first {
		t.Error("the ConfigMap name did not roll with the config")
	}

	write(t, root, "config/dev/app.yaml", "app:\n  colour: blue\n")
	if st, _ = d.Reconcile(ctx, snapshot(t, root)); st.Ready || strings.Contains(strings.Join(st.Stages, ","), "apply") {
		t.Errorf("an invalid revision reached apply: %v", st.Stages)
	}
	if kube.OnlyConfigMap(t, ns, "circle-config-", 10*time.Second) != second {
		t.Error("the cluster changed on an invalid revision")
	}
	d.noSecret(t)
}

func readFile(t *testing.T, root, name string) string {
	t.Helper()
	b, err := osReadFile(root, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An object changed outside Git (as kubectl edit would) is put back by the drift check.
func TestRun_CorrectsDrift(t *testing.T) {
	kube := testenv.StartKube(t)
	cs := kube.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ns := kube.Namespace(t)
	cluster, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	root := copyExamples(t)
	testenv.SetNamespace(t, root, "deploy/staging/kustomization.yaml", ns)
	write(t, root, "circle.yaml", readFile(t, root, "circle.yaml")+"  - name: kind\n    kind: cluster\n    environments: [staging]\n")
	status := memStore(t)
	d := newDaemon(t, staticSource{snap: snapshot(t, root)}, status, reconciler.Options{Keyring: exampleKeys(t),
		Clusters: map[string]reconciler.Cluster{"kind": cluster}, DriftInterval: 200 * time.Millisecond,
		Apply: apply.Options{InventoryNamespace: ns, Prune: true}})
	go func() { _ = d.Run(ctx) }()
	waitStatus(t, ctx, status, func(st *reconciler.Status) bool { return envByName(st, "staging").Applied["kind"] != nil })

	name := kube.OnlyConfigMap(t, ns, "circle-config-", 10*time.Second)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := cm.Data["config.json"]
	cm.Data["config.json"] = "{}"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if after, _ := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); after.Data["config.json"] == want {
		t.Fatalf("the edit did not take: %q", after.Data)
	}
	for {
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && cm.Data["config.json"] == want {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the edited ConfigMap was not put back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The log line follows the API server's answer: give it a moment.
	for !strings.Contains(d.logs.String(), `"corrected":["ConfigMap/`+ns+`/`+name+`"]`) {
		if ctx.Err() != nil {
			t.Fatalf("the correction was not logged:\n%s", d.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A revision whose rollout does not become healthy fails its target, and with
// RollbackOnFailure the target's last good build is applied again: the new Deployment
// goes, the old ConfigMap is back.
func TestReconcile_RollsBackAFailedRollout(t *testing.T) {
	kube := testenv.StartKube(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	ns := kube.Namespace(t)
	cluster, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	root := copyExamples(t)
	write(t, root, "circle.yaml", readFile(t, root, "circle.yaml")+"  - name: kind\n    kind: cluster\n    environments: [dev]\n")
	// Revision 1: only ConfigMaps and Secrets, healthy as soon as they exist.
	write(t, root, "deploy/dev/kustomization.yaml", "namespace: "+ns+"\nresources:\n  - settings.yaml\n")
	write(t, root, "deploy/dev/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {app.kubernetes.io/name: shop}\ndata:\n  mode: calm\n")
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t),
		Clusters: map[string]reconciler.Cluster{"kind": cluster}, RollbackOnFailure: true,
		Apply: apply.Options{InventoryNamespace: ns, Prune: true, Wait: 3 * time.Second}})
	st, err := d.Reconcile(ctx, snapshot(t, root))
	if err != nil || !st.Ready {
		t.Fatalf("first revision: %+v %v", st, err)
	}
	firstRev := st.Revision
	good := kube.OnlyConfigMap(t, ns, "circle-config-", 10*time.Second)

	// Revision 2: a config change and a Deployment that never becomes ready (no kubelet).
	write(t, root, "config/dev/extra.yaml", "replicas: 2\n")
	write(t, root, "deploy/dev/deployment.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-api
  labels: {app.kubernetes.io/name: shop}
spec:
  selector:
    matchLabels: {app: shop-api}
  template:
    metadata:
      labels: {app: shop-api}
    spec:
      containers:
        - name: api
          image: registry.example.com/shop/api:1.2.0
          resources: {requests: {cpu: 10m, memory: 16Mi}}
`)
	write(t, root, "deploy/dev/kustomization.yaml", "namespace: "+ns+"\nresources:\n  - settings.yaml\n  - deployment.yaml\n")
	st, err = d.Reconcile(ctx, snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	dev := envByName(st, "dev")
	if st.Ready || dev.Reason != reconciler.ReasonRolledBack || !strings.Contains(dev.Message, "health") ||
		!strings.Contains(dev.Message, "rolled back to "+firstRev) {
		t.Fatalf("a failed rollout: %+v", dev)
	}
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "shop-api", metav1.GetOptions{}); err == nil {
		t.Error("the failed revision's Deployment is still there after the rollback")
	}
	if now := kube.OnlyConfigMap(t, ns, "circle-config-", 10*time.Second); now != good {
		t.Errorf("ConfigMap %s after the rollback, want the last good %s", now, good)
	}
	// The target's last good apply stays visible: the revision it runs again.
	if dev.Applied["kind"].Revision != firstRev || !strings.Contains(d.logs.String(), "rolled back to the last good build") {
		t.Errorf("applied %+v, want %s; log:\n%s", dev.Applied["kind"], firstRev, d.logs.String())
	}
}

// A cluster edited while the daemon was down is put back by its first reconcile after the
// restart, though the revision's inputs are those of its last good build (which the state
// store remembers): the first revision of a process is reconciled in full.
func TestRun_RestartReconcilesInFull(t *testing.T) {
	kube := testenv.StartKube(t)
	cs := kube.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ns := kube.Namespace(t)
	cluster, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	root := copyExamples(t)
	testenv.SetNamespace(t, root, "deploy/staging/kustomization.yaml", ns)
	write(t, root, "circle.yaml", readFile(t, root, "circle.yaml")+"  - name: kind\n    kind: cluster\n    environments: [staging]\n")
	dir := t.TempDir()
	start := func() (*reconciler.Status, func()) {
		store, err := state.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		status := memStore(t)
		d := newDaemon(t, staticSource{snap: snapshot(t, root)}, status, reconciler.Options{Keyring: exampleKeys(t), State: store,
			Clusters: map[string]reconciler.Cluster{"kind": cluster}, Apply: apply.Options{InventoryNamespace: ns, Prune: true}})
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = d.Run(runCtx); close(done) }()
		st := waitStatus(t, ctx, status, func(st *reconciler.Status) bool { return envByName(st, "staging").LastGood != nil })
		return st, func() { stop(); <-done; store.Close() }
	}
	_, stop := start()
	stop()

	name := kube.OnlyConfigMap(t, ns, "circle-config-", 10*time.Second)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := cm.Data["config.json"]
	cm.Data["config.json"] = "{}"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	st, stop := start()
	defer stop()
	if strings.Contains(strings.Join(st.Stages, ","), "unchanged") {
		t.Errorf("the first reconcile after the restart stopped as unchanged: %v", st.Stages)
	}
	if cm, _ := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); cm.Data["config.json"] != want {
		t.Errorf("the ConfigMap edited while the daemon was down was not put back: %q", cm.Data["config.json"])
	}
}
