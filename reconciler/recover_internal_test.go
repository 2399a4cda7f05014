package reconciler

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rs/zerolog"

	"github.com/circlecore/circle/sources"
)

// lockedBuffer is a log the reconciler's goroutines write while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A drift check that panics (here a target without a connection, a nil Applier) is logged
// with its stack, and the loop checks again at the next tick instead of ending the daemon.
func TestDriftLoop_PanicIsLogged(t *testing.T) {
	var logs lockedBuffer
	r := New(nil, nil, zerolog.New(&logs), Options{Clusters: map[string]Cluster{"east": nil}, DriftInterval: 10 * time.Millisecond})
	r.applied["east/dev"] = appliedBuild{target: "east", env: "dev", revision: "r1"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); r.driftLoop(ctx) }()
	for strings.Count(logs.String(), "drift check panicked") < 2 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	out := logs.String()
	if n := strings.Count(out, "drift check panicked"); n < 2 {
		t.Fatalf("%d drift checks logged a panic, want at least 2 (the loop goes on):\n%s", n, out)
	}
	for _, want := range []string{`"env":"dev"`, `"target":"east"`, `"revision":"r1"`, `"stack":"goroutine `, "driftCheck", "nil pointer"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
}

// Recording runs again after a stage's panic; when recording itself panics (here a
// daemon without a publish bucket), the reconcile returns an error instead of panicking a
// second time out of the recovery, which nothing would catch.
func TestReconcile_PanicWhileRecording(t *testing.T) {
	var logs lockedBuffer
	r := New(nil, nil, zerolog.New(&logs), Options{})
	snap := &sources.Snapshot{Revision: "r1", FS: fstest.MapFS{"circle.yaml": {Data: []byte("x: 1\n")}}}
	st, err := r.Reconcile(context.Background(), snap)
	if st != nil || err == nil || !strings.Contains(err.Error(), "record r1: panic") {
		t.Fatalf("Reconcile = %+v, %v", st, err)
	}
	out := logs.String()
	for _, want := range []string{"a stage panicked", `"stage":"record"`, "recording an internal failure panicked", `"stack":"goroutine `} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
}
