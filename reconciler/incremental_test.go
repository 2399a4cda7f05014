package reconciler_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/sources"
)

// chanSource gives the snapshots sent on its channel, one Watch call each.
type chanSource chan *sources.Snapshot

func (c chanSource) Snapshot(context.Context) (*sources.Snapshot, error) { return nil, nil }

func (c chanSource) Watch(ctx context.Context, fn func(*sources.Snapshot) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-c:
			if err := fn(s); err != nil {
				return err
			}
		}
	}
}

// The loop builds an environment again only when a file it reads changed: a change outside
// every build is nothing to do; a change to dev's config rebuilds and republishes dev only;
// a change to the base config rebuilds all three.
func TestRun_SkipsUnchangedInputs(t *testing.T) {
	root := copyExamples(t)
	target, _ := newTarget(t, "mem://")
	status := memStore(t)
	src := make(chanSource)
	d := newDaemon(t, src, status, reconciler.Options{Keyring: exampleKeys(t), Target: target})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() { _ = d.Run(ctx) }()

	send := func() *reconciler.Status {
		snap := snapshot(t, root)
		src <- snap
		return waitStatus(t, ctx, status, func(st *reconciler.Status) bool { return st.Revision == snap.Revision })
	}
	seqs := func(st *reconciler.Status) (out [3]int64) {
		for i, env := range []string{"dev", "staging", "prod"} {
			out[i] = envByName(st, env).Published.Seq
		}
		return out
	}

	first := send()
	if !first.Ready || seqs(first) != [3]int64{1, 1, 1} {
		t.Fatalf("first: %+v", first)
	}

	write(t, root, "NOTES.md", "not read by any build\n")
	st := send()
	if !st.Ready || !strings.Contains(strings.Join(st.Stages, ","), "unchanged") || seqs(st) != [3]int64{1, 1, 1} {
		t.Errorf("an unrelated change: stages %v, seqs %v", st.Stages, seqs(st))
	}
	if envByName(st, "prod").LastGood.Revision != st.Revision || envByName(st, "prod").Published.Revision != first.Revision {
		t.Errorf("an unchanged environment should move its last good revision on and keep its publish: %+v", envByName(st, "prod"))
	}

	write(t, root, "config/dev/extra.yaml", "replicas: 2\n")
	st = send()
	if !st.Ready || seqs(st) != [3]int64{2, 1, 1} || strings.Contains(strings.Join(st.Stages, ","), "unchanged") {
		t.Errorf("a dev change: stages %v, seqs %v", st.Stages, seqs(st))
	}

	write(t, root, "config/base/extra.yaml", "replicas: 3\n")
	if st = send(); !st.Ready || seqs(st) != [3]int64{3, 2, 2} {
		t.Errorf("a base change: seqs %v", seqs(st))
	}
}

// POST /api/v1/reconcile needs the token; with it, the current revision is reconciled
// again in full (not skipped as unchanged) and the source is poked.
func TestHandler_Trigger(t *testing.T) {
	root := copyExamples(t)
	status := memStore(t)
	src := make(chanSource)
	var pokes atomic.Int32
	d := newDaemon(t, src, status, reconciler.Options{Keyring: exampleKeys(t), TriggerToken: "s3cret", Poke: func() { pokes.Add(1) }})
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	post := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/reconcile", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("s3cret"); code != http.StatusAccepted || pokes.Load() != 1 {
		t.Errorf("before the first revision: %d, pokes %d", code, pokes.Load())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { _ = d.Run(ctx) }()
	snap := snapshot(t, root)
	src <- snap
	first := waitStatus(t, ctx, status, func(st *reconciler.Status) bool { return st.Revision == snap.Revision })

	for _, token := range []string{"", "wrong"} {
		if code := post(token); code != http.StatusUnauthorized {
			t.Errorf("token %q: %d", token, code)
		}
	}
	if code := post("s3cret"); code != http.StatusAccepted {
		t.Fatalf("trigger: %d", code)
	}
	again := waitStatus(t, ctx, status, func(st *reconciler.Status) bool { return st.ReconciledAt.After(first.ReconciledAt) })
	if again.Revision != first.Revision || strings.Contains(strings.Join(again.Stages, ","), "unchanged") {
		t.Errorf("triggered reconcile: %+v", again)
	}
	_, metrics := get(t, srv, "/metrics")
	if !strings.Contains(metrics, `circle_trigger_requests_total{result="refused"} 2`) {
		t.Error("refused triggers are not counted")
	}
	// Nothing changed: the three environments' manifests came from the render cache.
	if !strings.Contains(metrics, "circle_render_cache_hits_total 3") {
		t.Errorf("a triggered reconcile of the same inputs rendered again:\n%s", grepLines(metrics, "circle_render_cache"))
	}

	off := newDaemon(t, src, status, reconciler.Options{})
	srv2 := httptest.NewServer(off.Handler())
	defer srv2.Close()
	resp, err := http.Post(srv2.URL+"/api/v1/reconcile", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("without a token configured: %d", resp.StatusCode)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
