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
	"github.com/circlecore/circle/sources/dir"
)

// A stage that panics (the solver's invariant, or any bug) refuses its revision with
// reason Internal and the stack in the log; the daemon goes on serving and accepts the next
// good revision. Both kinds of stage are tried: one that runs in the reconcile's goroutine
// (load) and one that runs per environment in goroutines of its own (build), whose panic
// would end the process wherever it is recovered but there.
func TestRun_StagePanicIsInternal(t *testing.T) {
	for _, tc := range []struct{ stage, env, where string }{
		{"load", "", "the load stage"},
		{"build", "prod", "the build stage of prod"},
	} {
		t.Run(tc.stage, func(t *testing.T) {
			root := copyExamples(t)
			src, err := dir.New(root, dir.Options{Debounce: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			bucket := memStore(t)
			d := newDaemon(t, src, bucket, reconciler.Options{Keyring: exampleKeys(t)})
			var armed atomic.Bool
			reconciler.SetStageHook(d.Reconciler, func(stage, env string) {
				if stage == tc.stage && env == tc.env && armed.CompareAndSwap(true, false) {
					panic("solver: invariant broken: a selected version left the candidate set")
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()

			good := waitStatus(t, ctx, bucket, func(st *reconciler.Status) bool { return st.Ready })
			armed.Store(true)
			write(t, root, "config/base/extra.yaml", "replicas: 2\n")
			bad := waitStatus(t, ctx, bucket, func(st *reconciler.Status) bool { return st.Revision != good.Revision })
			if bad.Ready || bad.Reason != reconciler.ReasonInternal || !strings.Contains(bad.Message, "internal error in "+tc.where) ||
				!strings.Contains(bad.Message, "invariant broken") {
				t.Errorf("the panicking revision: ready %t, reason %q, message %q", bad.Ready, bad.Reason, bad.Message)
			}
			if len(bad.Environments) != 3 {
				t.Fatalf("environments: %+v", bad.Environments)
			}
			for _, e := range bad.Environments {
				if e.Ready || e.Reason != reconciler.ReasonInternal || e.LastGood == nil || e.LastGood.Revision != good.Revision {
					t.Errorf("%s after the panic: %+v (last good %+v)", e.Name, e, e.LastGood)
				}
			}
			logs := d.logs.String()
			var line string
			for l := range strings.SplitSeq(logs, "\n") {
				if strings.Contains(l, "a stage panicked") {
					line = l
				}
			}
			for _, want := range []string{`"level":"error"`, `"revision":"` + bad.Revision + `"`, `"stage":"` + tc.stage + `"`,
				`"stack":"goroutine `, "TestRun_StagePanicIsInternal", "invariant broken"} {
				if !strings.Contains(line, want) {
					t.Errorf("the panic's log line lacks %s:\n%s", want, line)
				}
			}
			if tc.env != "" && !strings.Contains(line, `"env":"`+tc.env+`"`) {
				t.Errorf("the panic's log line lacks its environment:\n%s", line)
			}

			// Still serving, and the next good revision is accepted.
			rec := httptest.NewRecorder()
			d.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("/healthz after the panic: %d", rec.Code)
			}
			write(t, root, "config/base/extra.yaml", "replicas: 3\n")
			next := waitStatus(t, ctx, bucket, func(st *reconciler.Status) bool { return st.Revision != bad.Revision })
			if !next.Ready || next.Reason != reconciler.ReasonSucceeded {
				t.Errorf("the revision after the panic: ready %t, reason %q, message %q", next.Ready, next.Reason, next.Message)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

// Options.Concurrency bounds the environments a stage works on at once: with 1, the three
// example environments build one after the other; with 3, they overlap.
func TestReconcile_ConcurrencyBound(t *testing.T) {
	for _, limit := range []int{1, 3} {
		d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t), Concurrency: limit})
		var now, peak atomic.Int32
		reconciler.SetStageHook(d.Reconciler, func(stage, env string) {
			if stage != "build" || env == "" {
				return
			}
			n := now.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(100 * time.Millisecond) // long enough for the others to start, if they may
			now.Add(-1)
		})
		st, err := d.Reconcile(context.Background(), snapshot(t, copyExamples(t)))
		if err != nil || !st.Ready {
			t.Fatalf("Concurrency %d: %v %+v", limit, err, st)
		}
		if int(peak.Load()) != limit {
			t.Errorf("Concurrency %d: %d environments built at once", limit, peak.Load())
		}
	}
}
