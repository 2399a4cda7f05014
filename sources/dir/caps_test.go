package dir_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/dir"
)

func snapshotWith(t *testing.T, root string, opts dir.Options) (*sources.Snapshot, error) {
	t.Helper()
	src, err := dir.New(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	return src.Snapshot(context.Background())
}

// sparse makes a file of size bytes that takes no room on disk: reading it whole would.
func sparse(t *testing.T, root, rel string, size int64) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

func wantTooLarge(t *testing.T, err error, parts ...string) {
	t.Helper()
	if !errors.Is(err, dir.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}

func TestSnapshot_FileCap(t *testing.T) {
	root := t.TempDir()
	write(t, root, "circle.yaml", "environments: []\n")
	write(t, root, "config/base/ok.yaml", strings.Repeat("a", 1024))
	opts := dir.Options{MaxFileSize: 1024}
	if _, err := snapshotWith(t, root, opts); err != nil {
		t.Fatalf("a file of exactly the cap: %v", err)
	}
	write(t, root, "config/base/big.yaml", strings.Repeat("a", 1025))
	_, err := snapshotWith(t, root, opts)
	wantTooLarge(t, err, "config/base/big.yaml", "1025 bytes", "1024-byte file limit")
}

// TestSnapshot_TreeCap: no file is over its cap, but together they are over the tree's.
func TestSnapshot_TreeCap(t *testing.T) {
	root := t.TempDir()
	for i := range 200 {
		write(t, root, fmt.Sprintf("config/env%d/f%03d.yaml", i%10, i), strings.Repeat("x", 100))
	}
	if _, err := snapshotWith(t, root, dir.Options{MaxFileSize: 100, MaxTreeSize: 20_000}); err != nil {
		t.Fatalf("a tree of exactly the cap: %v", err)
	}
	_, err := snapshotWith(t, root, dir.Options{MaxFileSize: 100, MaxTreeSize: 19_999})
	wantTooLarge(t, err, "the tree is over the 19999-byte limit", "(20000 bytes with this file)")
}

// TestSnapshot_SparseFile: a terabyte that is all holes is refused from its size, at once
// and without memory, by the default caps.
func TestSnapshot_SparseFile(t *testing.T) {
	root := t.TempDir()
	write(t, root, "circle.yaml", "environments: []\n")
	sparse(t, root, "config/base/holes.yaml", 1<<40)
	start := time.Now()
	_, err := snapshotWith(t, root, dir.Options{}) // zero caps are the defaults
	wantTooLarge(t, err, "config/base/holes.yaml", "1099511627776 bytes", fmt.Sprintf("%d-byte file limit", dir.DefaultMaxFileSize))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refused after %v", d)
	}

	// Just over the default: still refused by name.
	if err := os.Truncate(filepath.Join(root, "config/base/holes.yaml"), dir.DefaultMaxFileSize+1); err != nil {
		t.Fatal(err)
	}
	_, err = snapshotWith(t, root, dir.DefaultOptions())
	wantTooLarge(t, err, "config/base/holes.yaml", "16777217 bytes")
}

// TestDefaultCaps: the folder source has the Git source's defaults. (Reading 256 MiB to
// see the tree's would cost the test run that much memory; TestSnapshot_TreeCap holds the
// mechanism.)
func TestDefaultCaps(t *testing.T) {
	o := dir.DefaultOptions()
	if o.MaxFileSize != 16<<20 || o.MaxTreeSize != 256<<20 {
		t.Errorf("defaults %d and %d, want 16 MiB and 256 MiB", o.MaxFileSize, o.MaxTreeSize)
	}
}

// TestSnapshot_IgnoredFilesNotCounted: Git's own folder is no part of the tree, however
// large its packs.
func TestSnapshot_IgnoredFilesNotCounted(t *testing.T) {
	root := t.TempDir()
	write(t, root, "circle.yaml", "environments: []\n")
	sparse(t, root, ".git/objects/pack/pack-1.pack", 1<<30)
	sparse(t, root, "config/base/app.yaml~", 1<<30)
	if _, err := snapshotWith(t, root, dir.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
}

// TestWatch_CapReportedAndWatched: an oversized file does not stop the daemon's watch: it
// is reported, and the edit that removes it brings the next snapshot.
func TestWatch_CapReportedAndWatched(t *testing.T) {
	root := t.TempDir()
	write(t, root, "circle.yaml", "environments: []\n")
	write(t, root, "config/big.yaml", strings.Repeat("a", 2048))
	var mu sync.Mutex
	var reported []error
	src, err := dir.New(root, dir.Options{Debounce: 50 * time.Millisecond, MaxFileSize: 1024,
		OnError: func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *sources.Snapshot, 4)
	done := make(chan error, 1)
	go func() {
		done <- src.Watch(ctx, func(s *sources.Snapshot) error { got <- s; return nil })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(reported)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the oversized file was not reported")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	wantTooLarge(t, reported[0], "config/big.yaml")
	mu.Unlock()
	if err := os.Remove(filepath.Join(root, "config/big.yaml")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if _, err := s.FS.Open("circle.yaml"); err != nil {
			t.Errorf("snapshot without circle.yaml: %v", err)
		}
	case err := <-done:
		t.Fatalf("watch ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot after the oversized file was removed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch returned %v", err)
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1000": 1000, "16Mi": 16 << 20, "16MiB": 16 << 20, " 256 MiB ": 256 << 20,
		"512Ki": 512 << 10, "512KiB": 512 << 10, "1Gi": 1 << 30, "2GiB": 2 << 30, "7B": 7,
	} {
		var s dir.Size
		if err := s.Set(in); err != nil || int64(s) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "16M", "16MB", "1.5Gi", "-1", "x", "9223372036854775807Ki"} {
		var s dir.Size
		if err := s.Set(in); err == nil {
			t.Errorf("Set(%q) = %d, want an error", in, s)
		}
	}
	for s, want := range map[dir.Size]string{0: "0B", 1000: "1000B", 16 << 20: "16MiB", 256 << 20: "256MiB", 1536: "1536B", 2048: "2KiB", 1 << 30: "1GiB"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(s), got, want)
		}
	}
	if (new(dir.Size)).Type() != "size" {
		t.Error("Type")
	}
}
