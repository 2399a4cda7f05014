package dir_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/dir"
)

func write(t testing.TB, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSource_Snapshot(t *testing.T) {
	root := t.TempDir()
	write(t, root, "circle.yaml", "environments: []\n")
	write(t, root, "config/base/app.yaml", "a: 1\n")
	write(t, root, ".git/HEAD", "ref: refs/heads/main\n")
	write(t, root, "config/base/app.yaml~", "backup\n")
	write(t, root, "config/base/.app.yaml.swp", "swap\n")

	src, err := dir.New(root, dir.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s1, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	_ = fs.WalkDir(s1.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if !d.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	if got := strings.Join(paths, ","); got != "circle.yaml,config/base/app.yaml" {
		t.Errorf("files = %s, want circle.yaml and config/base/app.yaml only", got)
	}
	if !strings.HasPrefix(s1.Revision, "sha256:") {
		t.Errorf("revision = %q", s1.Revision)
	}

	// Ignored files do not move the revision; a real change does.
	write(t, root, ".git/HEAD", "ref: refs/heads/other\n")
	write(t, root, "config/base/#app.yaml#", "emacs\n")
	s2, _ := src.Snapshot(ctx)
	if s2.Revision != s1.Revision {
		t.Error("revision changed for an ignored file")
	}
	write(t, root, "config/base/app.yaml", "a: 2\n")
	s3, _ := src.Snapshot(ctx)
	if s3.Revision == s1.Revision {
		t.Error("revision did not change with the content")
	}
	// The first snapshot is immune to the edit.
	if b, _ := fs.ReadFile(s1.FS, "config/base/app.yaml"); string(b) != "a: 1\n" {
		t.Errorf("old snapshot now reads %q", b)
	}
	// Moving content between files changes the revision even if the bytes are the same.
	write(t, root, "x", "ab")
	a, _ := src.Snapshot(ctx)
	os.Remove(filepath.Join(root, "x"))
	write(t, root, "xa", "b")
	b, _ := src.Snapshot(ctx)
	if a.Revision == b.Revision {
		t.Error("different trees share a revision")
	}
}

func TestNew_Errors(t *testing.T) {
	if _, err := dir.New(filepath.Join(t.TempDir(), "missing"), dir.DefaultOptions()); err == nil {
		t.Error("missing folder accepted")
	}
	f := filepath.Join(t.TempDir(), "file")
	write(t, filepath.Dir(f), "file", "x")
	if _, err := dir.New(f, dir.DefaultOptions()); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file accepted as a folder: %v", err)
	}
}

func TestSource_Watch(t *testing.T) {
	root := t.TempDir()
	write(t, root, "circle.yaml", "v: 1\n")
	src, err := dir.New(root, dir.Options{Debounce: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan *sources.Snapshot, 10)
	done := make(chan error, 1)
	go func() {
		done <- src.Watch(ctx, func(s *sources.Snapshot) error { got <- s; return nil })
	}()
	next := func() *sources.Snapshot {
		t.Helper()
		select {
		case s := <-got:
			return s
		case <-ctx.Done():
			t.Fatal("no snapshot")
			return nil
		}
	}
	first := next()

	// A burst of writes, including in a folder created after the watch began, settles into
	// one new revision.
	write(t, root, "config/prod/db.yaml", "port: 1\n")
	time.Sleep(20 * time.Millisecond)
	write(t, root, "config/prod/db.yaml", "port: 2\n")
	write(t, root, "config/prod/app.yaml", "replicas: 3\n")
	second := next()
	if second.Revision == first.Revision {
		t.Fatal("revision did not change")
	}
	if b, err := fs.ReadFile(second.FS, "config/prod/db.yaml"); err != nil || string(b) != "port: 2\n" {
		// The debounce may have fired between the writes; wait for the settled state.
		third := next()
		if b, _ := fs.ReadFile(third.FS, "config/prod/db.yaml"); string(b) != "port: 2\n" {
			t.Errorf("db.yaml = %q, want the last write", b)
		}
	}
	// A file in the new subfolder is seen: the folder was added to the watch.
	write(t, root, "config/prod/extra.yaml", "x: 1\n")
	for {
		s := next()
		if _, err := fs.Stat(s.FS, "config/prod/extra.yaml"); err == nil {
			break
		}
	}
	// An editor's temp file alone produces no snapshot.
	write(t, root, "config/prod/.db.yaml.swp", "swap")
	select {
	case s := <-got:
		t.Errorf("snapshot %s for an ignored file", s.Revision)
	case <-time.After(400 * time.Millisecond):
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch returned %v after cancel", err)
	}
}

func TestSource_WatchStopsOnCallbackError(t *testing.T) {
	root := t.TempDir()
	write(t, root, "a", "1")
	src, _ := dir.New(root, dir.DefaultOptions())
	stop := errors.New("stop here")
	err := src.Watch(context.Background(), func(*sources.Snapshot) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("err = %v, want the callback's error", err)
	}
}

func TestSource_SnapshotCancelled(t *testing.T) {
	root := t.TempDir()
	write(t, root, "a/b", "1")
	src, _ := dir.New(root, dir.DefaultOptions())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Snapshot(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestSource_SymlinksNotFollowed(t *testing.T) {
	root := t.TempDir()
	write(t, root, "config/a.yaml", "a: 1\n")
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(root, "config", "up")); err != nil {
		t.Fatal(err)
	}
	src, _ := dir.New(root, dir.DefaultOptions())
	snap, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"passwd", "config/up", "config/up/config/a.yaml"} {
		if _, err := fs.Stat(snap.FS, p); err == nil {
			t.Errorf("%s is in the snapshot: symlinks must not be followed", p)
		}
	}
}

// A .git folder is neither watched nor read: a commit made in the folder's own repository
// produces no snapshot, only a change to the files does.
func TestSource_WatchSkipsGitFolder(t *testing.T) {
	root := t.TempDir()
	write(t, root, "circle.yaml", "v: 1\n")
	write(t, root, ".git/objects/ab/cdef", "blob")
	src, err := dir.New(root, dir.Options{Debounce: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan *sources.Snapshot, 10)
	done := make(chan error, 1)
	go func() { done <- src.Watch(ctx, func(s *sources.Snapshot) error { got <- s; return nil }) }()
	first := <-got
	if _, err := fs.Stat(first.FS, ".git/objects/ab/cdef"); err == nil {
		t.Error(".git is in the snapshot")
	}
	write(t, root, ".git/objects/ab/0123", "another blob")
	write(t, root, ".git/refs/heads/main", "0123\n")
	select {
	case s := <-got:
		t.Errorf("snapshot %s for a change under .git", s.Revision)
	case <-time.After(300 * time.Millisecond):
	}
	write(t, root, "circle.yaml", "v: 2\n")
	if s := <-got; s.Revision == first.Revision {
		t.Error("a change to circle.yaml made no new revision")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch: %v", err)
	}
}

// A folder that disappears between New and Watch is an error naming it, not a silent watch
// of nothing.
func TestSource_WatchGoneFolder(t *testing.T) {
	root := filepath.Join(t.TempDir(), "repo")
	write(t, root, "circle.yaml", "v: 1\n")
	src, err := dir.New(root, dir.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	err = src.Watch(context.Background(), func(*sources.Snapshot) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "repo") {
		t.Errorf("watch of a removed folder: %v", err)
	}
}
