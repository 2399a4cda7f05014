package mirror_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/mirror"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newStore(t testing.TB, url string) *envelope.Store {
	t.Helper()
	b, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	keys, err := envelope.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return envelope.New(b, keys, "test")
}

func sync(t *testing.T, dir string, s *envelope.Store, prefix string, opts mirror.Options) *mirror.Result {
	t.Helper()
	res, err := mirror.Sync(context.Background(), dir, s, prefix, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// remote reads every object under prefix (index excluded) back through the envelope.
func remote(t *testing.T, s *envelope.Store, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for a, err := range s.Backend().Walk(context.Background(), prefix+"/") {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(a.Key, mirror.IndexName) {
			continue
		}
		rc, _, err := s.Get(context.Background(), a.Key)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(a.Key, prefix+"/")] = string(b)
	}
	return out
}

func same(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("remote has %d objects, want %d: %v", len(got), len(want), keys(got))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

var tree = map[string]string{
	"config.json":            `{"a": 1}`,
	"env/prod/values.yaml":   "replicas: 3\n",
	"env/dev/values.yaml":    "replicas: 1\n",
	"empty":                  "",
	"deep/a/b/c/d.txt":       "deep",
	"unicodé name/ü.txt":     "ü",
	"with space/file 1.yaml": "x: 1\n",
}

func TestSync(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, tree)
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, "mem://")

	var last atomic.Value
	res := sync(t, dir, s, "site", mirror.Options{Progress: func(p mirror.Progress) { last.Store(p) }})
	if res.Uploaded != len(tree) || res.Skipped != 0 || res.Deleted != 0 {
		t.Errorf("first sync: %+v", res)
	}
	if p := last.Load().(mirror.Progress); p.Files != len(tree) || p.TotalFiles != len(tree) || p.Bytes != p.TotalBytes {
		t.Errorf("last progress = %+v", p)
	}
	same(t, remote(t, s, "site"), tree)
	if st, err := s.Stat(context.Background(), "site/config.json"); err != nil || st.ContentType != "application/json" {
		t.Errorf("stat: %+v %v", st, err)
	}

	// Nothing changed: nothing uploaded.
	if res := sync(t, dir, s, "site", mirror.Options{}); res.Uploaded != 0 || res.Skipped != len(tree) {
		t.Errorf("re-sync: %+v", res)
	}

	// One file changed (same size, so only the mtime and content tell), one touched, one
	// removed, one added.
	writeTree(t, dir, map[string]string{"env/prod/values.yaml": "replicas: 4\n", "new.txt": "new"})
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "config.json"), future, future); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "empty")); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for k, v := range tree {
		want[k] = v
	}
	want["env/prod/values.yaml"], want["new.txt"] = "replicas: 4\n", "new"
	delete(want, "empty")

	dry := sync(t, dir, s, "site", mirror.Options{DryRun: true})
	if strings.Join(dry.Changes, " ") != "-site/empty +site/env/prod/values.yaml +site/new.txt" {
		t.Errorf("dry run changes = %v", dry.Changes)
	}
	if got := remote(t, s, "site"); got["env/prod/values.yaml"] != "replicas: 3\n" || got["empty"] != "" || len(got) != len(tree) {
		t.Error("a dry run changed the remote")
	}
	res = sync(t, dir, s, "site", mirror.Options{})
	if res.Uploaded != 2 || res.Deleted != 1 || res.Bytes != int64(len("replicas: 4\n")+len("new")) {
		t.Errorf("sync of changes: %+v", res)
	}
	same(t, remote(t, s, "site"), want)

	// Without the index, objects are recognised by their digests, not uploaded again.
	if err := s.Backend().Delete(context.Background(), "site/"+mirror.IndexName); err != nil {
		t.Fatal(err)
	}
	if res := sync(t, dir, s, "site", mirror.Options{}); res.Uploaded != 0 {
		t.Errorf("sync without an index uploaded %d", res.Uploaded)
	}

	// KeepExtra leaves objects that have no file.
	other := t.TempDir()
	writeTree(t, other, map[string]string{"only.txt": "1"})
	if res := sync(t, other, s, "site", mirror.Options{KeepExtra: true}); res.Deleted != 0 || res.Uploaded != 1 {
		t.Errorf("keep extra: %+v", res)
	}
}

func TestSyncErrors(t *testing.T) {
	s := newStore(t, "mem://")
	if _, err := mirror.Sync(context.Background(), filepath.Join(t.TempDir(), "missing"), s, "", mirror.Options{}); err == nil {
		t.Error("a missing folder synced")
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a": "1"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := mirror.Sync(ctx, dir, s, "", mirror.Options{}); err == nil {
		t.Error("a cancelled sync succeeded")
	}
	// No prefix: keys are the relative paths.
	if res := sync(t, dir, s, "", mirror.Options{}); res.Uploaded != 1 {
		t.Errorf("%+v", res)
	}
	rc, _, err := s.Get(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, []byte("1")) {
		t.Errorf("a = %q", b)
	}
}

// The same sync against the real S3 server, and a re-sync that uploads nothing.
func TestSyncS3(t *testing.T) {
	srv := testenv.StartS3(t)
	s := newStore(t, srv.NewBucket(t))
	dir := t.TempDir()
	writeTree(t, dir, tree)
	if res := sync(t, dir, s, "site", mirror.Options{}); res.Uploaded != len(tree) {
		t.Errorf("first sync: %+v", res)
	}
	same(t, remote(t, s, "site"), tree)
	if res := sync(t, dir, s, "site", mirror.Options{}); res.Uploaded != 0 || res.Skipped != len(tree) {
		t.Errorf("re-sync: %+v", res)
	}
}
