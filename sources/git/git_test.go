package git_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/git"
	"github.com/circlecore/circle/sources/webhook"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func read(t *testing.T, s *sources.Snapshot, name string) string {
	t.Helper()
	b, err := fs.ReadFile(s.FS, name)
	if err != nil {
		t.Fatalf("%s at %s: %v", name, s.Revision, err)
	}
	return string(b)
}

func snapshot(t *testing.T, opts git.Options) *sources.Snapshot {
	t.Helper()
	src, err := git.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestSource_Transports(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"circle.yaml": "environments: [dev]\n"})
	head := repo.Commit(t, map[string]string{"config/base/app.yaml": "replicas: 2\n"}, "add config")
	h := testenv.StartGitHTTP(t)
	s := testenv.StartGitSSH(t)

	cases := map[string]git.Options{
		"file":       {URL: repo.FileURL()},
		"http":       {URL: h.PublicURL(repo)},
		"http-basic": {URL: h.PrivateURL(repo), Auth: git.Auth{Username: h.Username, Password: h.Password}},
		"ssh":        {URL: s.URL(repo), Auth: git.Auth{SSHKey: s.ClientKey, KnownHosts: []byte(s.KnownHosts)}},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			snap := snapshot(t, opts)
			if snap.Revision != head {
				t.Errorf("revision = %s, want %s", snap.Revision, head)
			}
			if got := read(t, snap, "config/base/app.yaml"); got != "replicas: 2\n" {
				t.Errorf("app.yaml = %q", got)
			}
		})
	}
}

func TestSource_AuthRefused(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"a": "1"})
	h := testenv.StartGitHTTP(t)
	s := testenv.StartGitSSH(t)
	ctx := context.Background()

	// Wrong password: refused, and the password is not in the error.
	url := strings.Replace(h.PrivateURL(repo), "http://", "http://circle:hunter2-secret@", 1)
	src, err := git.New(git.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Snapshot(ctx)
	if err == nil {
		t.Fatal("fetch with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "hunter2-secret") || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("err = %v: want the remote named without its password", err)
	}

	// SSH without known_hosts is refused before any connection.
	if _, err := git.New(git.Options{URL: s.URL(repo), Auth: git.Auth{SSHKey: s.ClientKey}}); err == nil || !strings.Contains(err.Error(), "known_hosts") {
		t.Errorf("ssh without known_hosts: %v", err)
	}
	// A known_hosts that names another key for this host is refused at connect.
	other := strings.Replace(s.KnownHosts, "127.0.0.1", "127.0.0.2", 1) + "\n" +
		"[127.0.0.1]:" + strings.Split(s.Addr, ":")[1] + " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	src, err = git.New(git.Options{URL: s.URL(repo), Auth: git.Auth{SSHKey: s.ClientKey, KnownHosts: []byte(other)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Snapshot(ctx); err == nil || !strings.Contains(err.Error(), "key mismatch") {
		t.Errorf("ssh with a mismatched host key: %v", err)
	}
}

func TestSource_Refs(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"v": "1\n"})
	first := repo.Commit(t, map[string]string{"v": "2\n"}, "two")
	repo.Tag(t, "v2.0.0")
	repo.Commit(t, map[string]string{"v": "3\n"}, "three")

	if got := read(t, snapshot(t, git.Options{URL: repo.FileURL()}), "v"); got != "3\n" {
		t.Errorf("main = %q", got)
	}
	tag := snapshot(t, git.Options{URL: repo.FileURL(), Ref: git.Ref{Tag: "v2.0.0"}})
	if tag.Revision != first || read(t, tag, "v") != "2\n" {
		t.Errorf("tag v2.0.0 = %s %q, want the commit it tags", tag.Revision, read(t, tag, "v"))
	}
	src, _ := git.New(git.Options{URL: repo.FileURL(), Ref: git.Ref{Branch: "nope"}})
	if _, err := src.Snapshot(context.Background()); err == nil {
		t.Error("a missing branch gave a snapshot")
	}
}

func TestSource_IncrementalAndWatch(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"a": "1\n", "b": "1\n"})
	var errs []error
	src, err := git.New(git.Options{URL: testenv.StartGitHTTP(t).PublicURL(repo), Interval: 50 * time.Millisecond,
		OnError: func(err error) { errs = append(errs, err) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan *sources.Snapshot, 4)
	done := make(chan error, 1)
	go func() { done <- src.Watch(ctx, func(s *sources.Snapshot) error { got <- s; return nil }) }()

	first := <-got
	second := repo.Commit(t, map[string]string{"a": "2\n", "b": ""}, "change a, delete b")
	var snap *sources.Snapshot
	select {
	case snap = <-got:
	case <-ctx.Done():
		t.Fatal("the new commit was never seen")
	}
	if snap.Revision != second || snap.Revision == first.Revision {
		t.Errorf("revision = %s, want %s", snap.Revision, second)
	}
	if read(t, snap, "a") != "2\n" {
		t.Error("a was not updated")
	}
	if _, err := fs.Stat(snap.FS, "b"); err == nil {
		t.Error("b was deleted upstream but is still in the snapshot")
	}
	// The head did not move: no further snapshot.
	select {
	case s := <-got:
		t.Errorf("unchanged head produced snapshot %s", s.Revision)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(errs) != 0 {
		t.Errorf("errors while watching a healthy remote: %v", errs)
	}
}

func TestSource_SemVerTags(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"v": "0\n"})
	for _, tag := range []string{"v1.2.0", "v1.10.0", "v2.0.0-rc.1", "v2.0.0", "not-a-version"} {
		repo.Commit(t, map[string]string{"v": tag + "\n"}, tag)
		repo.Tag(t, tag)
	}
	for rng, want := range map[string]string{"^1.2": "v1.10.0", "~1.2.0": "v1.2.0", ">=1.0 <3.0": "v2.0.0", ">=2.0.0-rc.0 <2.0.0": "v2.0.0-rc.1"} {
		if got := read(t, snapshot(t, git.Options{URL: repo.FileURL(), Ref: git.Ref{SemVer: rng}}), "v"); got != want+"\n" {
			t.Errorf("range %q picked %q, want %s", rng, got, want)
		}
	}
	src, _ := git.New(git.Options{URL: repo.FileURL(), Ref: git.Ref{SemVer: "^9"}})
	if _, err := src.Snapshot(context.Background()); err == nil || !strings.Contains(err.Error(), "no tag matches") {
		t.Errorf("range with no match: %v", err)
	}
	if _, err := git.New(git.Options{URL: repo.FileURL(), Ref: git.Ref{SemVer: "^^1"}}); err == nil {
		t.Error("a malformed range was accepted")
	}
}

func TestSource_SizeLimits(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"small": "ok\n", "config/big.yaml": strings.Repeat("x", 2000)})
	src, _ := git.New(git.Options{URL: repo.FileURL(), MaxFileSize: 1000})
	if _, err := src.Snapshot(context.Background()); err == nil || !strings.Contains(err.Error(), "config/big.yaml") || !strings.Contains(err.Error(), "file limit") {
		t.Errorf("over-size file: %v", err)
	}
	src, _ = git.New(git.Options{URL: repo.FileURL(), MaxTreeSize: 1500})
	if _, err := src.Snapshot(context.Background()); err == nil || !strings.Contains(err.Error(), "tree is over") {
		t.Errorf("over-size tree: %v", err)
	}
}

func TestSource_NoEscape(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"config/a.yaml": "a: 1\n"})
	snap := snapshot(t, git.Options{URL: repo.FileURL()})
	for _, p := range []string{"../etc/passwd", "/etc/passwd", "config/../../x"} {
		if _, err := fs.ReadFile(snap.FS, p); err == nil {
			t.Errorf("read %q outside the snapshot", p)
		}
	}
}

func TestSource_WebhookWakesWatch(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"a": "1\n"})
	recv, err := webhook.New(webhook.Generic, []byte("k"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(recv)
	defer hook.Close()
	src, err := git.New(git.Options{URL: testenv.StartGitHTTP(t).PublicURL(repo), Interval: time.Hour, Hints: recv.Hints()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan *sources.Snapshot, 4)
	go func() { _ = src.Watch(ctx, func(s *sources.Snapshot) error { got <- s; return nil }) }()
	<-got

	head := repo.Commit(t, map[string]string{"a": "2\n"}, "push")
	mac := hmac.New(sha256.New, []byte("k"))
	mac.Write([]byte("{}"))
	req, _ := http.NewRequest(http.MethodPost, hook.URL, strings.NewReader("{}"))
	req.Header.Set("X-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %v %v", resp, err)
	}
	select {
	case s := <-got:
		if s.Revision != head {
			t.Errorf("revision = %s, want %s", s.Revision, head)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("push seen %s after the webhook, want within 1s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the webhook did not wake the watch (the poll interval is an hour)")
	}
}

func TestSource_CommitRef(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"v": "1\n"})
	pinned := repo.Commit(t, map[string]string{"v": "2\n"}, "two")
	repo.Commit(t, map[string]string{"v": "3\n"}, "three")
	snap := snapshot(t, git.Options{URL: repo.FileURL(), Ref: git.Ref{Commit: pinned}})
	if snap.Revision != pinned || read(t, snap, "v") != "2\n" {
		t.Errorf("commit ref gave %s %q, want %s", snap.Revision, read(t, snap, "v"), pinned)
	}
	src, _ := git.New(git.Options{URL: repo.FileURL(), Ref: git.Ref{Commit: pinned}})
	if h, err := src.Head(context.Background()); err != nil || h != pinned {
		t.Errorf("Head of a pinned commit = %s, %v", h, err)
	}
}

func TestSource_CommitNotOnRemote(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"v": "1\n"})
	src, _ := git.New(git.Options{URL: repo.FileURL(), Ref: git.Ref{Commit: strings.Repeat("ab", 20)}})
	if _, err := src.Snapshot(context.Background()); err == nil || !strings.Contains(err.Error(), "not on any branch") {
		t.Errorf("unknown commit: %v", err)
	}
}

func TestSource_SymlinksNotFollowed(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"config/a.yaml": "a: 1\n"})
	// Symlink entries (mode 120000) whose blobs are their targets, as git stores them.
	for name, target := range map[string]string{"leak": "/etc/shadow", "passwd": "/etc/passwd", "up": "../.."} {
		repo.Git(t, nil, "update-index", "--add", "--cacheinfo", "120000,"+blob(t, repo, target)+","+name)
	}
	repo.Git(t, nil, "commit", "--quiet", "-m", "symlinks")
	repo.Git(t, nil, "push", "--quiet", "origin", "main")
	snap := snapshot(t, git.Options{URL: repo.FileURL()})
	for _, p := range []string{"leak", "passwd", "up", "up/etc/passwd"} {
		if _, err := fs.Stat(snap.FS, p); err == nil {
			t.Errorf("%s is in the snapshot: symlinks must not be followed", p)
		}
	}
	if read(t, snap, "config/a.yaml") != "a: 1\n" {
		t.Error("regular file lost")
	}
}

// blob stores content as a blob in the repository's work tree object store and returns its id.
func blob(t *testing.T, repo *testenv.GitRepo, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(repo.Git(t, nil, "hash-object", "-w", f))
}

// A remote that answers 503 twice is fetched on the third try; a remote that refuses the
// credentials is not tried again.
func TestSource_Retries(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"a": "1\n"})
	h := testenv.StartGitHTTP(t)
	var mu sync.Mutex
	calls := 0
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		r.URL.Scheme, r.URL.Host = "http", strings.TrimPrefix(h.URL, "http://")
		resp, err := http.DefaultTransport.RoundTrip(r.WithContext(r.Context()))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer flaky.Close()
	snap := snapshot(t, git.Options{URL: flaky.URL + "/public/" + repo.Name})
	if read(t, snap, "a") != "1\n" {
		t.Error("content wrong after retries")
	}

	src, _ := git.New(git.Options{URL: h.PrivateURL(repo), Auth: git.Auth{Username: "circle", Password: "wrong"}})
	start := time.Now()
	if _, err := src.Snapshot(context.Background()); err == nil {
		t.Fatal("wrong password accepted")
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("refused credentials took %s: they were retried", d)
	}
}

func TestSource_FullHistory(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"a": "1\n"})
	first := strings.TrimSpace(repo.Git(t, nil, "rev-parse", "HEAD"))
	repo.Commit(t, map[string]string{"a": "2\n"}, "two")
	for _, full := range []bool{false, true} {
		src, _ := git.New(git.Options{URL: repo.FileURL(), Full: full})
		if _, err := src.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Only a full fetch holds the parent; a shallow one stops at the head.
		has := src.HasCommit(first)
		if has != full {
			t.Errorf("full=%v: parent commit present = %v", full, has)
		}
	}
}

// A rewritten history (force-pushed, nothing in common with what the source holds) is
// followed by the next incremental fetch.
func TestSource_FollowsRewrittenHistory(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	src, err := git.New(git.Options{URL: repo.FileURL()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	repo.Git(t, nil, "checkout", "--quiet", "--orphan", "rewritten")
	repo.Git(t, nil, "rm", "--quiet", "-rf", ".")
	repo.Commit(t, map[string]string{"b.yaml": "b: 1\n"}, "unrelated history")
	repo.Git(t, nil, "push", "--quiet", "--force", "origin", "rewritten:main")
	head := strings.TrimSpace(repo.Git(t, nil, "rev-parse", "HEAD"))
	snap, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision != head || read(t, snap, "b.yaml") != "b: 1\n" {
		t.Errorf("snapshot %s, want %s with b.yaml", snap.Revision, head)
	}
	if _, err := fs.Stat(snap.FS, "a.yaml"); err == nil {
		t.Error("a file of the old history is in the new snapshot")
	}
}
