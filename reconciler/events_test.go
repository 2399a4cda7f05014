package reconciler_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/testenv"
)

// sinkEvent is one event a fakeSink took.
type sinkEvent struct{ env, typ, reason, message string }

// fakeSink keeps the events it is given.
type fakeSink struct {
	mu     sync.Mutex
	events []sinkEvent
}

func (s *fakeSink) Event(_ context.Context, env, typ, reason, message string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, sinkEvent{env, typ, reason, message})
	return nil
}

func (s *fakeSink) take() []sinkEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	return out
}

// fakeCluster fails every apply of the environments in fail, quoting what it was sent
// (as an API server's error can), and applies the others.
type fakeCluster struct{ fail map[string]string }

func (c fakeCluster) Apply(_ context.Context, env string, _ []byte, _ apply.Options) (*apply.Result, error) {
	if v, ok := c.fail[env]; ok {
		return nil, fmt.Errorf("apply %s: Secret/shop/circle-secrets: invalid value %q", env, v)
	}
	return &apply.Result{Created: []string{"ConfigMap/shop/a"}, Configured: []string{"Deployment/shop/api"}, Deleted: []string{"ConfigMap/shop/old"}}, nil
}

// Without a cluster: each environment of a cluster target gets one event per reconcile,
// which says what happened with the revision in it: Applied (and Pruned) for one that
// applied, ApplyFailed for one that failed (its error redacted: the secret it quoted never
// reaches the event), Refused for one that did not build. A target without a sink records
// nothing.
func TestReconcile_EventsPerEnvironment(t *testing.T) {
	root := copyExamples(t)
	write(t, root, "circle.yaml", readFile(t, root, "circle.yaml")+
		"  - name: east\n    kind: cluster\n    environments: [dev, staging, prod]\n  - name: west\n    kind: cluster\n    environments: [prod]\n")
	encrypt(t, root, "secrets/staging.sops.yaml", "db:\n  password: "+canary+"\n")
	write(t, root, "deploy/dev/kustomization.yaml", "resources:\n  - ../base\n  - https://example.com/remote.yaml\n")
	sink := &fakeSink{}
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t),
		Clusters: map[string]reconciler.Cluster{"east": fakeCluster{fail: map[string]string{"staging": canary}}, "west": fakeCluster{}},
		Events:   map[string]reconciler.EventSink{"east": sink}})
	st, err := d.Reconcile(context.Background(), snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if dev, staging := envByName(st, "dev"), envByName(st, "staging"); dev.Reason != reconciler.ReasonBuildFailed || staging.Reason != reconciler.ReasonApplyFailed {
		t.Fatalf("dev %+v, staging %+v", dev, staging)
	}
	got := map[string]sinkEvent{}
	events := sink.take()
	for _, e := range events {
		got[e.env+"/"+e.reason] = e
		if strings.Contains(e.message, canary) {
			t.Errorf("the secret is in an event: %+v", e)
		}
	}
	if !strings.Contains(got["staging/ApplyFailed"].message, "redacted") {
		t.Errorf("the apply error's secret was not masked: %+v", got["staging/ApplyFailed"])
	}
	if len(events) != 4 {
		t.Errorf("events = %+v", events)
	}
	rev := st.Revision
	for key, want := range map[string]sinkEvent{
		"prod/Applied":        {typ: apply.EventNormal, message: "Applied revision " + rev + ": 1 created, 1 configured, 0 unchanged, 1 deleted"},
		"prod/Pruned":         {typ: apply.EventNormal, message: "Pruned 1 object(s) no longer in revision " + rev + ": ConfigMap/shop/old"},
		"staging/ApplyFailed": {typ: apply.EventWarning, message: "Revision " + rev + " failed: apply staging: Secret/shop/circle-secrets: invalid value"},
		"dev/Refused":         {typ: apply.EventWarning, message: "Revision " + rev + " refused (BuildFailed); the last good build stays: render dev: deploy/dev/kustomization.yaml:3"},
	} {
		if e, ok := got[key]; !ok || e.typ != want.typ || !strings.HasPrefix(e.message, want.message) {
			t.Errorf("%s: got %+v, want %s %q…", key, e, want.typ, want.message)
		}
	}
	d.noSecret(t)

	// A revision the repository refuses whole (a schema problem) is refused on every
	// environment of the target, each keeping its last good build.
	write(t, root, "config/prod/db.yaml", "db:\n  port: \"x\"\n")
	if st, err := d.Reconcile(context.Background(), snapshot(t, root)); err != nil || st.Reason != reconciler.ReasonInvalid {
		t.Fatalf("an invalid revision: %+v %v", st, err)
	}
	refused := map[string]bool{}
	for _, e := range sink.take() {
		if e.reason == reconciler.EventRefused && strings.Contains(e.message, "refused (Invalid)") {
			refused[e.env] = true
		}
	}
	if !refused["dev"] || !refused["staging"] || !refused["prod"] {
		t.Errorf("Refused events for an invalid revision: %v", refused)
	}
}

// clusterEvents lists the events on env's inventory ConfigMap, by reason.
func clusterEvents(t *testing.T, cs kubernetes.Interface, ns, env string) map[string][]corev1.Event {
	t.Helper()
	l, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=ConfigMap,involvedObject.name=circle-inventory-" + env})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]corev1.Event{}
	for _, e := range l.Items {
		out[e.Reason] = append(out[e.Reason], e)
	}
	return out
}

// waitEvent waits for an event of reason and type on env's inventory ConfigMap whose
// message contains each of want (the recorder sends asynchronously).
func waitEvent(t *testing.T, cs kubernetes.Interface, ns, env, typ, reason string, want ...string) corev1.Event {
	t.Helper()
	var seen []corev1.Event
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		seen = clusterEvents(t, cs, ns, env)[reason]
	next:
		for _, e := range seen {
			if e.Type != typ {
				continue
			}
			for _, w := range want {
				if !strings.Contains(e.Message, w) {
					continue next
				}
			}
			return e
		}
	}
	t.Fatalf("no %s %s event on circle-inventory-%s with %q; saw %+v", typ, reason, env, want, seen)
	return corev1.Event{}
}

// Against a real kube-apiserver, with the recorder the daemon uses: an apply puts an
// Applied event with the revision on the environment's inventory ConfigMap; a config
// change prunes the old generated ConfigMap (Pruned); a rollout that never becomes healthy
// is rolled back (RolledBack, a Warning); a revision the API server cannot take, with no
// build to roll back to, is ApplyFailed. The environment's secret is in no event.
func TestReconcile_Events(t *testing.T) {
	kube := testenv.StartKube(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	ns := kube.Namespace(t)
	cluster, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := apply.NewRecorder(kube.Config, apply.RecorderOptions{InventoryNamespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	root := copyExamples(t)
	write(t, root, "circle.yaml", readFile(t, root, "circle.yaml")+"  - name: kind\n    kind: cluster\n    environments: [dev]\n")
	write(t, root, "deploy/dev/kustomization.yaml", "namespace: "+ns+"\nresources:\n  - settings.yaml\n")
	write(t, root, "deploy/dev/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {app.kubernetes.io/name: shop}\ndata:\n  mode: calm\n")
	encrypt(t, root, "secrets/dev.sops.yaml", "db:\n  password: "+canary+"\n")
	opts := reconciler.Options{Keyring: exampleKeys(t), RollbackOnFailure: true,
		Clusters: map[string]reconciler.Cluster{"kind": cluster}, Events: map[string]reconciler.EventSink{"kind": rec},
		Apply: apply.Options{InventoryNamespace: ns, Prune: true, Wait: 3 * time.Second}}
	d := newDaemon(t, nil, memStore(t), opts)

	st, err := d.Reconcile(ctx, snapshot(t, root))
	if err != nil || !st.Ready {
		t.Fatalf("first revision: %+v %v", st, err)
	}
	first := st.Revision
	e := waitEvent(t, cs, ns, "dev", corev1.EventTypeNormal, reconciler.EventApplied, "Applied revision "+first+": 4 created")
	inv, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "circle-inventory-dev", metav1.GetOptions{})
	if err != nil || e.InvolvedObject.UID != inv.UID {
		t.Errorf("the Applied event is not on the inventory ConfigMap %s: %+v %v", inv.UID, e.InvolvedObject, err)
	}
	old := kube.OnlyConfigMap(t, ns, "circle-config-", 10*time.Second)

	// A config change: a new generated ConfigMap, the old one pruned.
	write(t, root, "config/dev/extra.yaml", "replicas: 2\n")
	if st, err = d.Reconcile(ctx, snapshot(t, root)); err != nil || !st.Ready {
		t.Fatalf("second revision: %+v %v", st, err)
	}
	second := st.Revision
	waitEvent(t, cs, ns, "dev", corev1.EventTypeNormal, reconciler.EventApplied, "Applied revision "+second+": 1 created", "1 deleted")
	waitEvent(t, cs, ns, "dev", corev1.EventTypeNormal, reconciler.EventPruned, "revision "+second, "ConfigMap/"+ns+"/"+old)

	// A Deployment that never becomes ready (no kubelet): rolled back to the second.
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
	if st, err = d.Reconcile(ctx, snapshot(t, root)); err != nil || envByName(st, "dev").Reason != reconciler.ReasonRolledBack {
		t.Fatalf("third revision: %+v %v", st, err)
	}
	waitEvent(t, cs, ns, "dev", corev1.EventTypeWarning, reconciler.ReasonRolledBack, "Revision "+st.Revision+" failed", "rolled back to "+second, "health")

	// A kind the API server does not serve, on a daemon with no build to roll back to.
	write(t, root, "deploy/dev/widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  labels: {app.kubernetes.io/name: shop}\n")
	write(t, root, "deploy/dev/kustomization.yaml", "namespace: "+ns+"\nresources:\n  - settings.yaml\n  - widget.yaml\n")
	d2 := newDaemon(t, nil, memStore(t), opts)
	if st, err = d2.Reconcile(ctx, snapshot(t, root)); err != nil || envByName(st, "dev").Reason != reconciler.ReasonApplyFailed {
		t.Fatalf("fourth revision: %+v %v", st, err)
	}
	waitEvent(t, cs, ns, "dev", corev1.EventTypeWarning, reconciler.ReasonApplyFailed, "Revision "+st.Revision+" failed", "Widget")

	l, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l.Items {
		if strings.Contains(e.Message, canary) {
			t.Errorf("the secret is in an event: %s %s", e.Reason, e.Message)
		}
	}
	d.noSecret(t)
	d2.noSecret(t)
}
