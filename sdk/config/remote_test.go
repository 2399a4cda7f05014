package config_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circlecore/circle/sdk/config"
)

// fakeSource is a Source whose document, change flag and errors the test sets, and which
// counts its calls.
type fakeSource struct {
	mu                  sync.Mutex
	doc                 string
	changed             bool
	readErr, changedErr error
	reads, polls        int
}

func (s *fakeSource) Name() string { return "fake://prod" }

func (s *fakeSource) Read(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.readErr != nil {
		return nil, s.readErr
	}
	s.changed = false
	return []byte(s.doc), nil
}

func (s *fakeSource) Changed(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls++
	return s.changed, s.changedErr
}

func (s *fakeSource) set(f func(s *fakeSource)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *fakeSource) counts() (reads, polls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads, s.polls
}

// TestRemote_Precedence: a Remote stands where a File would: over the files before it,
// under the files after it and the environment.
func TestRemote_Precedence(t *testing.T) {
	dir := t.TempDir()
	before := write(t, filepath.Join(dir, "before.yaml"), "a: file\nb: file\nc: file\n")
	after := write(t, filepath.Join(dir, "after.yaml"), "b: override\n")
	src := &fakeSource{doc: `{"a": "remote", "b": "remote", "c": "remote", "n": 5}`}
	c := mustNew(t, config.File(before), config.Remote(src), config.File(after),
		config.Env("X_"), config.Environ([]string{"X_C=env"})).Current()
	if got := c.String("a") + "," + c.String("b") + "," + c.String("c"); got != "remote,override,env" {
		t.Errorf("a,b,c = %s, want remote,override,env", got)
	}
	if v, ok := c.Get("n").(int64); !ok || v != 5 {
		t.Errorf("n = %#v, want int64 5 (JSON integers stay integers)", c.Get("n"))
	}
}

func TestRemote_Errors(t *testing.T) {
	src := &fakeSource{readErr: errors.New("connection refused")}
	_, err := config.New(config.Remote(src))
	if err == nil || !strings.Contains(err.Error(), "fake://prod") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("New with a failing Remote = %v, want the error naming the source", err)
	}
	if _, err := config.New(config.Remote(&fakeSource{doc: `{"a": 1} x`})); err == nil || !strings.Contains(err.Error(), "fake://prod") {
		t.Errorf("New with a malformed document = %v, want an error naming the source", err)
	}
	if _, err := config.New(config.Remote(nil)); err == nil {
		t.Error("Remote(nil) accepted")
	}
	if _, err := config.New(config.PollInterval(0)); err == nil {
		t.Error("PollInterval(0) accepted")
	}
}

// TestRemote_Watch: Watch polls a Remote, reads it only when it says it changed, reports
// a failing Changed or Read through OnError and keeps the configuration, and stop ends the
// polling.
func TestRemote_Watch(t *testing.T) {
	src := &fakeSource{doc: `{"db": {"host": "a"}}`}
	changes := make(chan [2]string, 10)
	errs := make(chan error, 10)
	l := mustNew(t, config.Remote(src), config.PollInterval(5*time.Millisecond),
		config.OnChange(func(old, new *config.Config) { changes <- [2]string{old.String("db.host"), new.String("db.host")} }),
		config.OnError(func(err error) { errs <- err }))
	stop, err := l.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	time.Sleep(60 * time.Millisecond)
	if reads, polls := src.counts(); reads != 1 || polls < 3 {
		t.Errorf("idle: %d reads (want only New's), %d polls (want several)", reads, polls)
	}

	src.set(func(s *fakeSource) { s.doc, s.changed = `{"db": {"host": "b"}}`, true })
	select {
	case got := <-changes:
		if got != [2]string{"a", "b"} {
			t.Errorf("OnChange %v, want a → b", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OnChange")
	}

	src.set(func(s *fakeSource) { s.changedErr = errors.New("timeout") })
	if err := <-errs; !strings.Contains(err.Error(), "poll fake://prod") {
		t.Errorf("OnError %v, want the poll's error naming the source", err)
	}
	src.set(func(s *fakeSource) { s.changedErr, s.changed, s.readErr = nil, true, errors.New("object corrupt") })
	for deadline := time.After(5 * time.Second); ; {
		select {
		case err := <-errs:
			if !strings.Contains(err.Error(), "object corrupt") {
				continue
			}
		case <-deadline:
			t.Fatal("the failing Read was not reported")
		}
		break
	}
	if h := l.Current().String("db.host"); h != "b" {
		t.Errorf("db.host = %s after failed reads, want b kept", h)
	}

	stop()
	_, polls := src.counts()
	time.Sleep(30 * time.Millisecond)
	if _, after := src.counts(); after != polls {
		t.Errorf("%d polls after stop", after-polls)
	}
}

// TestRemote_WatchFilesAndRemote: with both, a file change and a Remote change each reload.
func TestRemote_WatchFilesAndRemote(t *testing.T) {
	dir := t.TempDir()
	f := write(t, filepath.Join(dir, "local.yaml"), "local: 1\n")
	src := &fakeSource{doc: `{"remote": 1}`}
	l := mustNew(t, config.Remote(src), config.File(f), config.PollInterval(5*time.Millisecond))
	stop, err := l.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	write(t, f, "local: 2\n")
	src.set(func(s *fakeSource) { s.doc, s.changed = `{"remote": 2}`, true })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c := l.Current()
		if c.Int("local") == 2 && c.Int("remote") == 2 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("after both changed: %v", l.Current().Map())
}
