package apply_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/testenv"
)

// inventoryEvents lists the events on env's inventory ConfigMap in ns, by reason.
func inventoryEvents(t *testing.T, cs kubernetes.Interface, ns, env string) map[string][]corev1.Event {
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

// counted sums the counts of events (one event patched n times counts n).
func counted(events []corev1.Event) int {
	n := 0
	for _, e := range events {
		n += int(max(e.Count, 1))
	}
	return n
}

// settle waits until the events of reason on env's inventory stop changing (the recorder
// sends asynchronously) and returns them.
func settle(t *testing.T, cs kubernetes.Interface, ns, env, reason string, want func([]corev1.Event) bool) []corev1.Event {
	t.Helper()
	var got []corev1.Event
	last, stable := -1, 0
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got = inventoryEvents(t, cs, ns, env)[reason]
		if n := counted(got); n == last && want(got) {
			if stable++; stable == 5 { // unchanged for half a second
				return got
			}
		} else {
			last, stable = n, 0
		}
	}
	t.Fatalf("%s events on circle-inventory-%s did not settle: %+v", reason, env, got)
	return nil
}

// An event lands on the environment's inventory ConfigMap, with its UID (what `kubectl
// describe` matches on); an environment without one gets none, and says so.
func TestRecorder_EventOnInventory(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := apply.NewRecorder(kube.Config, apply.RecorderOptions{InventoryNamespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()

	if err := rec.Event(ctx, "dev", apply.EventWarning, "ApplyFailed", "before any apply"); !errors.Is(err, apply.ErrNoInventory) {
		t.Errorf("an event before any inventory: %v, want ErrNoInventory", err)
	}
	if _, err := a.Apply(ctx, "dev", manifests(cm(ns, "a", "1")), apply.Options{InventoryNamespace: ns}); err != nil {
		t.Fatal(err)
	}
	long := "Applied revision abc123: " + strings.Repeat("é", 2000)
	if err := rec.Event(ctx, "dev", apply.EventNormal, "Applied", long); err != nil {
		t.Fatal(err)
	}
	inv, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "circle-inventory-dev", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := settle(t, cs, ns, "dev", "Applied", func(e []corev1.Event) bool { return len(e) == 1 })
	e := got[0]
	if e.Type != corev1.EventTypeNormal || e.InvolvedObject.UID != inv.UID || e.Source.Component != "circle" ||
		!strings.HasPrefix(e.Message, "Applied revision abc123: é") || len(e.Message) > apply.MaxEventMessage || !strings.HasSuffix(e.Message, "é…") {
		t.Errorf("event = %+v", e)
	}
	if n := len(inventoryEvents(t, cs, ns, "dev")["ApplyFailed"]); n != 0 {
		t.Errorf("%d ApplyFailed events from before the inventory existed", n)
	}
}

// A burst does not flood the API server: 50 identical events are one Event whose count
// stops at the spam filter's burst (25); 50 with different messages (a revision each) are
// at most 9 Events plus one that combines the rest, 25 in all; and a warning after such a
// burst still gets through, since each reason has its own allowance.
func TestRecorder_Burst(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	cs := kube.Clientset(t)
	ctx := context.Background()
	a, err := apply.New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := apply.NewRecorder(kube.Config, apply.RecorderOptions{InventoryNamespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	for _, env := range []string{"same", "revs"} {
		if _, err := a.Apply(ctx, env, manifests(cm(ns, env, "1")), apply.Options{InventoryNamespace: ns}); err != nil {
			t.Fatal(err)
		}
	}

	for range 50 {
		if err := rec.Event(ctx, "same", apply.EventNormal, "Applied", "Applied revision r1: 0 created, 1 configured, 0 unchanged, 0 deleted"); err != nil {
			t.Fatal(err)
		}
	}
	same := settle(t, cs, ns, "same", "Applied", func(e []corev1.Event) bool { return counted(e) >= apply.DefaultEventBurst })
	// One token may come back while the test runs (one per 5 minutes).
	if len(same) != 1 || same[0].Count > apply.DefaultEventBurst+1 {
		t.Errorf("50 identical events: %d Events, counts %d", len(same), counted(same))
	}

	for i := range 50 {
		if err := rec.Event(ctx, "revs", apply.EventNormal, "Applied", fmt.Sprintf("Applied revision r%d: 1 configured", i)); err != nil {
			t.Fatal(err)
		}
	}
	revs := settle(t, cs, ns, "revs", "Applied", func(e []corev1.Event) bool { return counted(e) >= apply.DefaultEventBurst })
	combined := 0
	for _, e := range revs {
		if strings.Contains(e.Message, "combined from similar events") {
			combined++
		}
	}
	t.Logf("50 identical: %d Event, count %d; 50 revisions: %d Events (%d combined), counts %d", len(same), counted(same), len(revs), combined, counted(revs))
	if len(revs) > 10 || combined != 1 || counted(revs) > apply.DefaultEventBurst+1 {
		t.Errorf("50 events of different revisions: %d Events (%d combined), counts %d", len(revs), combined, counted(revs))
	}

	if err := rec.Event(ctx, "revs", apply.EventWarning, "ApplyFailed", "Revision r50 failed"); err != nil {
		t.Fatal(err)
	}
	settle(t, cs, ns, "revs", "ApplyFailed", func(e []corev1.Event) bool { return len(e) == 1 })
}
