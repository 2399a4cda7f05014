package reconciler_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/sources/dir"
)

func TestReconciler_RecordsEachRevision(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "circle.yaml"), []byte("a: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := dir.New(root, dir.Options{Debounce: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	var logs strings.Builder
	r := reconciler.New(src, bucket, zerolog.New(&syncWriter{b: &logs}))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	first := waitStatus(t, ctx, bucket, func(st *reconciler.Status) bool { return st.Files == 1 })
	if err := os.WriteFile(filepath.Join(root, "extra.yaml"), []byte("b: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := waitStatus(t, ctx, bucket, func(st *reconciler.Status) bool { return st.Files == 2 })
	if first.Revision == second.Revision {
		t.Error("a new revision was recorded under the old id")
	}
	if strings.Join(second.Stages, ",") != "snapshot,record" {
		t.Errorf("stages = %v", second.Stages)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitStatus(t *testing.T, ctx context.Context, b *blob.Bucket, ok func(*reconciler.Status) bool) *reconciler.Status {
	t.Helper()
	for {
		if st, err := reconciler.ReadStatus(ctx, b); err == nil && ok(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatal("status never reached the expected state")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestReconciler_FailedRecordKeepsRunning(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := dir.New(root, dir.Options{Debounce: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bucket := memblob.OpenBucket(nil)
	bucket.Close() // every write now fails
	var logs strings.Builder
	w := &syncWriter{b: &logs}
	r := reconciler.New(src, bucket, zerolog.New(w))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatalf("Run stopped on a failed revision: %v", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !strings.Contains(logs.String(), "reconcile failed") || !strings.Contains(logs.String(), `"revision":"sha256:`) {
		t.Errorf("log = %s", logs.String())
	}
}
