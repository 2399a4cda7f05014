package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/circlecore/circle/dashboard"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/state"
)

const (
	benchEnvs    = 50
	benchHistory = 1000 // per environment
)

// bigStatus is a status of n environments, each on a storage and two cluster targets, a
// third of them failed with a long message, and a few licenses expiring.
func bigStatus(n int) *reconciler.Status {
	st := &reconciler.Status{Revision: revNew, ReconciledAt: now.Add(-time.Minute), Reason: reconciler.ReasonApplyFailed,
		Message: "env-001: target east: " + strings.Repeat("timeout waiting for Deployment ", 20), Files: 4000}
	for i := range n {
		name := fmt.Sprintf("env-%03d", i)
		e := reconciler.EnvStatus{Name: name, Ready: i%3 != 1, Reason: reconciler.ReasonSucceeded,
			LastGood:  &reconciler.Good{Revision: revNew, At: now.Add(-time.Hour), Values: 200, Secrets: 20},
			Published: &reconciler.Published{Revision: revNew, Seq: int64(i), Files: 30},
			Applied: map[string]*reconciler.Applied{
				"east": {Revision: revNew, At: now.Add(-time.Hour), Objects: 40},
				"west": {Revision: revOld, At: now.Add(-5 * time.Hour), Objects: 40},
			}}
		if !e.Ready {
			e.Reason, e.Message = reconciler.ReasonApplyFailed, "target west: "+strings.Repeat("Deployment not ready; ", 30)
		}
		st.Environments = append(st.Environments, e)
		st.Licenses = append(st.Licenses, pipeline.LicenseStatus{File: "licenses/" + name + ".lic", Licensee: "Acme",
			ExpiresAt: now.Add(time.Duration(i) * 24 * time.Hour), Expiring: i < 30, Environments: []string{name}})
	}
	return st
}

func bigHistory(env string, n int) []state.Entry {
	h := make([]state.Entry, n)
	for i := range h {
		h[i] = state.Entry{Revision: fmt.Sprintf("%040x", i), At: now.Add(-time.Duration(i) * time.Minute), Duration: 2 * time.Second,
			Ready: i%4 != 0, Reason: reconciler.ReasonSucceeded}
		if !h[i].Ready {
			h[i].Reason, h[i].Message = reconciler.ReasonBuildFailed, "build "+env+": "+strings.Repeat("x", 200)
		}
	}
	return h
}

func benchOverview(b *testing.B, h http.Handler) {
	b.Helper()
	if _, page := get(b, h, "/ui/"); !strings.Contains(page, fmt.Sprintf(`data-env="env-%03d"`, benchEnvs-1)) {
		b.Fatal("the overview lacks the last environment")
	}
	start := time.Now()
	for b.Loop() {
		if resp, _ := get(b, h, "/ui/"); resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/page")
}

// The overview of 50 environments, each with 1,000 reconciles in its history, from an
// in-memory Source: the dashboard's own cost.
func BenchmarkOverview(b *testing.B) {
	src := &fakeSource{st: bigStatus(benchEnvs), hist: map[string][]state.Entry{}}
	for _, e := range src.st.Environments {
		src.hist[e.Name] = bigHistory(e.Name, benchHistory)
	}
	benchOverview(b, newDashboard(src, dashboard.Options{}))
}

// The same through what the daemon runs: the reconciler's HTTP API (status as JSON) and
// its bbolt state store holding 1,000 reconciles per environment.
func BenchmarkOverview_Daemon(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := state.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	store.Keep = benchHistory
	st := bigStatus(benchEnvs)
	hist := map[string][]state.Entry{}
	for _, e := range st.Environments {
		hist[e.Name] = bigHistory(e.Name, benchHistory)
	}
	for i := benchHistory - 1; i >= 0; i-- { // oldest first, as the daemon appends
		batch := map[string]state.Entry{}
		for env, h := range hist {
			batch[env] = h[i]
		}
		if err := store.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	// The reconciler resumes from the status.json it finds in its publish bucket.
	bucket := memStore(b)
	raw, _ := json.Marshal(st)
	if err := bucket.Put(ctx, reconciler.StatusKey, bytes.NewReader(raw), nil); err != nil {
		b.Fatal(err)
	}
	rec := reconciler.New(idleSource{}, bucket, zerolog.Nop(), reconciler.Options{State: store})
	go func() { _ = rec.Run(ctx) }()
	api := rec.Handler()
	for {
		rr := httptest.NewRecorder()
		api.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rr.Code == http.StatusOK {
			break
		}
		time.Sleep(time.Millisecond)
	}
	benchOverview(b, newDashboard(dashboard.API(api), dashboard.Options{}))
}

// idleSource never has a new revision: the benchmark's reconciler only serves.
type idleSource struct{}

func (idleSource) Snapshot(context.Context) (*sources.Snapshot, error) { return nil, context.Canceled }

func (idleSource) Watch(ctx context.Context, _ func(*sources.Snapshot) error) error {
	<-ctx.Done()
	return nil
}
