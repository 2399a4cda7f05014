package mirror_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"gocloud.dev/blob"

	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/mirror"
	"github.com/circlecore/circle/testenv"
)

func download(t *testing.T, s *envelope.Store, prefix, dir string, opts mirror.DownloadOptions) *mirror.DownloadResult {
	t.Helper()
	res, err := mirror.Download(context.Background(), s, prefix, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// readTree reads every regular file under dir, keyed by its slash-separated relative path.
func readTree(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails unless the two folders hold the same files, byte for byte.
func sameTree(t testing.TB, got, want string) {
	t.Helper()
	g, w := readTree(t, got), readTree(t, want)
	if len(g) != len(w) {
		t.Errorf("%s has %d files, %s has %d", got, len(g), want, len(w))
	}
	for k, v := range w {
		if gv, ok := g[k]; !ok || !bytes.Equal(gv, v) {
			t.Errorf("%s: %d bytes (present %v), want %d bytes identical", k, len(gv), ok, len(v))
		}
	}
}

// bigTree is tree plus files of several 64 KiB segments, so downloads cross the envelope's
// segment boundaries.
func bigTree(t testing.TB, dir string) {
	t.Helper()
	writeTree(t, dir, tree)
	for name, size := range map[string]int{"bin/one.bin": 64 << 10, "bin/three.bin": 3*64<<10 + 17, "bin/odd.bin": 1000003} {
		b := make([]byte, size)
		rand.Read(b)
		writeTree(t, dir, map[string]string{name: string(b)})
	}
}

// The round trip, on a folder store and the real S3 server: upload a tree, download it to
// an empty folder, byte for byte; a second download fetches nothing; a changed or removed
// file is fetched again; extra files stay unless Delete, which removes only them.
func TestDownload(t *testing.T) {
	srv := testenv.StartS3(t)
	for name, url := range map[string]string{"file": "file://" + t.TempDir(), "s3": srv.NewBucket(t)} {
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			bigTree(t, src)
			s := newStore(t, url)
			sync(t, src, s, "site", mirror.Options{})
			files := len(readTree(t, src))

			dst := filepath.Join(t.TempDir(), "new", "folder") // made by the download
			var last atomic.Value
			res := download(t, s, "site", dst, mirror.DownloadOptions{Progress: func(p mirror.Progress) { last.Store(p) }})
			if res.Downloaded != files || res.Skipped != 0 || res.Deleted != 0 || len(res.Changes) != files {
				t.Errorf("first download: %+v", res)
			}
			if p := last.Load().(mirror.Progress); p.Files != files || p.TotalFiles != files || p.Bytes != p.TotalBytes || p.Bytes == 0 {
				t.Errorf("last progress = %+v", p)
			}
			sameTree(t, dst, src)
			if _, err := os.Stat(filepath.Join(dst, mirror.IndexName)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the index was downloaded as a file: %v", err)
			}
			st, _ := os.Stat(filepath.Join(dst, "config.json"))
			if want, _ := os.Stat(filepath.Join(src, "config.json")); st.Mode().Perm() != 0o600 || !st.ModTime().Equal(want.ModTime()) {
				t.Errorf("config.json: mode %v mtime %v, want 0600 and the uploaded file's %v", st.Mode(), st.ModTime(), want.ModTime())
			}

			// Nothing changed: nothing fetched. And the downloaded folder, synced back, uploads
			// nothing and reads no file (the index's sizes and mtimes match).
			if res := download(t, s, "site", dst, mirror.DownloadOptions{}); res.Downloaded != 0 || res.Skipped != files {
				t.Errorf("second download: %+v", res)
			}
			if res := sync(t, dst, s, "site", mirror.Options{}); res.Uploaded != 0 || res.Deleted != 0 {
				t.Errorf("sync of the downloaded folder back: %+v", res)
			}

			// A file changed at the same size, one removed, one extra: the first two are
			// fetched, the extra stays.
			writeTree(t, dst, map[string]string{"env/prod/values.yaml": "replicas: 9\n", "extra/local.txt": "mine"})
			if err := os.Remove(filepath.Join(dst, "deep/a/b/c/d.txt")); err != nil {
				t.Fatal(err)
			}
			res = download(t, s, "site", dst, mirror.DownloadOptions{})
			if strings.Join(res.Changes, " ") != "+deep/a/b/c/d.txt +env/prod/values.yaml" || res.Skipped != files-2 {
				t.Errorf("download of changes: %+v", res)
			}
			if got := readTree(t, dst); string(got["extra/local.txt"]) != "mine" || len(got) != files+1 {
				t.Errorf("without Delete: %d files, extra/local.txt = %q", len(got), got["extra/local.txt"])
			}

			// Delete removes the extra file (and the folder it emptied), only inside dst: a
			// symlink in dst to a file outside is neither followed nor removed.
			outside := filepath.Join(t.TempDir(), "outside.txt")
			os.WriteFile(outside, []byte("keep"), 0o644)
			if err := os.Symlink(outside, filepath.Join(dst, "link")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Dir(outside), filepath.Join(dst, "linkdir")); err != nil {
				t.Fatal(err)
			}
			dry := download(t, s, "site", dst, mirror.DownloadOptions{Delete: true, DryRun: true})
			if strings.Join(dry.Changes, " ") != "-extra/local.txt" {
				t.Errorf("dry run changes = %v", dry.Changes)
			}
			if _, err := os.Stat(filepath.Join(dst, "extra/local.txt")); err != nil {
				t.Errorf("a dry run deleted: %v", err)
			}
			if res := download(t, s, "site", dst, mirror.DownloadOptions{Delete: true}); res.Deleted != 1 || res.Downloaded != 0 {
				t.Errorf("delete: %+v", res)
			}
			if _, err := os.Lstat(filepath.Join(dst, "extra")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the emptied folder stayed: %v", err)
			}
			if b, err := os.ReadFile(outside); err != nil || string(b) != "keep" {
				t.Errorf("outside file: %q %v", b, err)
			}
			if _, err := os.Lstat(filepath.Join(dst, "link")); err != nil {
				t.Errorf("the symlink was removed: %v", err)
			}
			os.Remove(filepath.Join(dst, "link"))
			os.Remove(filepath.Join(dst, "linkdir"))
			sameTree(t, dst, src)
		})
	}
}

// Without an index every object's digest comes from its metadata: identical files are
// still not fetched.
func TestDownload_NoIndex(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, tree)
	s := newStore(t, "mem://")
	sync(t, src, s, "", mirror.Options{}) // no prefix: keys are the relative paths
	dst := t.TempDir()
	download(t, s, "", dst, mirror.DownloadOptions{Concurrency: 1})
	if err := s.Backend().Delete(context.Background(), mirror.IndexName); err != nil {
		t.Fatal(err)
	}
	if res := download(t, s, "", dst, mirror.DownloadOptions{}); res.Downloaded != 0 || res.Skipped != len(tree) {
		t.Errorf("download without an index: %+v", res)
	}
	sameTree(t, dst, src)
	// A dry run into a folder that does not exist makes nothing.
	missing := filepath.Join(t.TempDir(), "missing")
	if res := download(t, s, "", missing, mirror.DownloadOptions{DryRun: true, Delete: true}); res.Downloaded != len(tree) {
		t.Errorf("dry run: %+v", res)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a dry run made the folder: %v", err)
	}
}

// A tampered object fails the download naming its key, and leaves neither a partial file
// nor a temporary one; a file it would have replaced keeps its old content.
func TestDownload_Corrupt(t *testing.T) {
	store := t.TempDir()
	s := newStore(t, "file://"+store)
	src := t.TempDir()
	bigTree(t, src)
	sync(t, src, s, "site", mirror.Options{})

	for _, victim := range []string{"bin/three.bin", "config.json"} {
		t.Run(victim, func(t *testing.T) {
			obj := filepath.Join(store, "site", filepath.FromSlash(victim))
			good, err := os.ReadFile(obj)
			if err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(good)
			copy(bad[len(bad)/2:], "garbage")
			os.WriteFile(obj, bad, 0o644)
			defer os.WriteFile(obj, good, 0o644)

			for _, existing := range []bool{false, true} {
				dst := t.TempDir()
				if existing {
					// An older file of the same size: fetched, and kept when the fetch fails.
					old, _ := os.ReadFile(filepath.Join(src, filepath.FromSlash(victim)))
					old[0] ^= 0xff
					writeTree(t, dst, map[string]string{victim: string(old)})
				}
				before := readTree(t, dst)[victim]
				_, err := mirror.Download(context.Background(), s, "site", dst, mirror.DownloadOptions{})
				if !errors.Is(err, envelope.ErrCorrupt) || !strings.Contains(err.Error(), "site/"+victim) {
					t.Fatalf("download of a tampered object: %v", err)
				}
				got := readTree(t, dst)
				if !bytes.Equal(got[victim], before) {
					t.Errorf("%s was changed: %d bytes, had %d", victim, len(got[victim]), len(before))
				}
				for p := range got {
					if strings.Contains(p, ".circle-tmp-") {
						t.Errorf("a temporary file was left: %s", p)
					}
				}
			}
		})
	}
}

// Keys that are not paths inside the folder, written by a client other than Circle's
// (Circle's storage API refuses them), are refused by name before anything is written;
// so is a key that would go through a symlink in the folder to outside it.
func TestDownload_HostileKeys(t *testing.T) {
	srv := testenv.StartS3(t)
	cases := []struct {
		name, url, key string
	}{
		{"file dotdot", "file://" + t.TempDir(), "site/../escape"},
		{"file absolute", "file://" + t.TempDir(), "site//escape"},
		{"s3 dotdot", srv.NewBucket(t), "site/../escape"},
		{"s3 nested dotdot", srv.NewBucket(t), "site/a/../../escape"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t, c.url)
			src := t.TempDir()
			writeTree(t, src, map[string]string{"ok.txt": "fine"})
			sync(t, src, s, "site", mirror.Options{})
			raw, err := blob.OpenBucket(context.Background(), c.url)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if err := raw.WriteAll(context.Background(), c.key, []byte("pwned"), nil); err != nil {
				t.Fatal(err)
			}

			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			_, err = mirror.Download(context.Background(), s, "site", dst, mirror.DownloadOptions{})
			if !errors.Is(err, mirror.ErrUnsafeKey) || !strings.Contains(err.Error(), `"`+c.key+`"`) {
				t.Fatalf("download of %q: %v", c.key, err)
			}
			if got := readTree(t, parent); len(got) != 0 {
				t.Errorf("files written: %v", keys(stringify(got)))
			}
			if _, err := os.Stat("/escape"); err == nil {
				t.Error("/escape exists")
			}
		})
	}

	t.Run("symlink", func(t *testing.T) {
		s := newStore(t, "mem://")
		src := t.TempDir()
		writeTree(t, src, map[string]string{"sub/x": "x"})
		sync(t, src, s, "site", mirror.Options{})
		outside := t.TempDir()
		dst := t.TempDir()
		if err := os.Symlink(outside, filepath.Join(dst, "sub")); err != nil {
			t.Fatal(err)
		}
		_, err := mirror.Download(context.Background(), s, "site", dst, mirror.DownloadOptions{})
		if err == nil || !strings.Contains(err.Error(), "site/sub/x") {
			t.Fatalf("download through a symlink out of the folder: %v", err)
		}
		if got := readTree(t, outside); len(got) != 0 {
			t.Errorf("written outside: %v", keys(stringify(got)))
		}
	})
}

func stringify(m map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}
