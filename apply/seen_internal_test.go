package apply

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa/utils"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/circlecore/circle/testenv"
)

// patches counts the PATCH requests an Applier sends for the objects it applies (its own
// inventory apart), dry runs apart.
type patches struct {
	next          http.RoundTripper
	dryRun, write atomic.Int64
}

func (p *patches) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPatch && !strings.Contains(r.URL.Path, "circle-inventory-") {
		if strings.Contains(r.URL.RawQuery, "dryRun=All") {
			p.dryRun.Add(1)
		} else {
			p.write.Add(1)
		}
	}
	return p.next.RoundTrip(r)
}

func configMaps(ns string, n int, value string) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\n  namespace: %s\ndata:\n  v: %q\n", i, ns, value)
	}
	return []byte(b.String())
}

// The apply after a cold one sends nothing for objects the cold one created and no one
// touched since (it used to dry-run every one of them), and still corrects one edited
// after it.
func TestApply_TrustsWhatItJustWrote(t *testing.T) {
	kube := testenv.StartKube(t)
	ctx := context.Background()
	ns := kube.Namespace(t)
	cfg := rest.CopyConfig(kube.Config)
	count := &patches{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { count.next = rt; return count })
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{InventoryNamespace: ns, Prune: true}
	if res, err := a.Apply(ctx, "dev", configMaps(ns, 20, "a"), opts); err != nil || len(res.Created) != 20 {
		t.Fatalf("cold apply: %v %+v", err, res)
	}
	count.dryRun.Store(0)
	count.write.Store(0)
	res, err := a.Apply(ctx, "dev", configMaps(ns, 20, "a"), opts)
	if err != nil || len(res.Unchanged) != 20 {
		t.Fatalf("second apply: %v %+v", err, res)
	}
	if d, w := count.dryRun.Load(), count.write.Load(); d != 0 || w != 0 {
		t.Errorf("second apply sent %d dry runs and %d writes, want none for objects it had just created", d, w)
	}

	// An edit by someone else is put back by the next apply.
	cs := kubernetes.NewForConfigOrDie(kube.Config)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "cm-3", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["v"] = "edited"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	if res, err := a.Apply(ctx, "dev", configMaps(ns, 20, "a"), opts); err != nil || len(res.Configured) != 1 {
		t.Fatalf("apply after an edit: %v %+v, want cm-3 configured", err, res)
	}
}

// An edit that lands between Circle's write and the read after it (the window settled
// reads in) is not taken for Circle's: that object's version is not trusted, the others' are.
func TestSettled_EditInBetween(t *testing.T) {
	kube := testenv.StartKube(t)
	ctx := context.Background()
	ns := kube.Namespace(t)
	a, err := New(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	y := configMaps(ns, 3, "a")
	if _, err := a.Apply(ctx, "dev", y, Options{InventoryNamespace: ns}); err != nil {
		t.Fatal(err)
	}
	objects, err := utils.ReadObjects(strings.NewReader(string(y)))
	if err != nil {
		t.Fatal(err)
	}
	a.rm.SetOwnerLabels(objects, "dev", "circle")
	changed := map[object.ObjMetadata]bool{}
	for _, u := range objects {
		changed[object.UnstructuredToObjMetadata(u)] = true
	}
	// The edit comes in the same second as Circle's write or later: not older than it.
	cs := kubernetes.NewForConfigOrDie(kube.Config)
	cm, _ := cs.CoreV1().ConfigMaps(ns).Get(ctx, "cm-1", metav1.GetOptions{})
	cm.Data["v"] = "edited"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	got := a.settled(ctx, "dev", objects, changed)
	if len(got) != 2 {
		t.Errorf("settled %v, want cm-0 and cm-2 only", got)
	}
	for id := range got {
		if id.Name == "cm-1" {
			t.Error("the edited object's version was taken in as Circle's")
		}
	}
}

func TestLastWriterIsCircle(t *testing.T) {
	at := func(s int) *metav1.Time { v := metav1.NewTime(time.Date(2026, 12, 3, 7, 0, s, 0, time.UTC)); return &v }
	for name, tc := range map[string]struct {
		fields []metav1.ManagedFieldsEntry
		want   bool
	}{
		"only Circle":                {[]metav1.ManagedFieldsEntry{{Manager: "circle", Time: at(5)}}, true},
		"another before Circle":      {[]metav1.ManagedFieldsEntry{{Manager: "kubectl-edit", Time: at(4)}, {Manager: "circle", Time: at(5)}}, true},
		"another in Circle's second": {[]metav1.ManagedFieldsEntry{{Manager: "circle", Time: at(5)}, {Manager: "kubectl-edit", Time: at(5)}}, false},
		"another after Circle":       {[]metav1.ManagedFieldsEntry{{Manager: "circle", Time: at(5)}, {Manager: "kube-controller-manager", Time: at(6)}}, false},
		"another without a time":     {[]metav1.ManagedFieldsEntry{{Manager: "circle", Time: at(5)}, {Manager: "x"}}, false},
		"not Circle's":               {[]metav1.ManagedFieldsEntry{{Manager: "kubectl-edit", Time: at(4)}}, false},
	} {
		if got := lastWriterIsCircle(tc.fields); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}
