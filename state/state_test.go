package state_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/state"
)

func TestDocsAndHistory(t *testing.T) {
	dir := t.TempDir()
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Keep = 3
	var got struct{ Serial int }
	if ok, err := s.Get("licenses", &got); ok || err != nil {
		t.Errorf("Get of nothing: %v %v", ok, err)
	}
	if err := s.Put("licenses", map[string]int{"Serial": 7}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Append(map[string]state.Entry{"dev": {Revision: fmt.Sprint("r", i), Ready: i%2 == 0, At: time.Now()}, "prod": {Revision: fmt.Sprint("p", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.History("dev", 0)
	if err != nil || len(h) != 3 || h[0].Revision != "r4" || h[2].Revision != "r2" || !h[0].Ready {
		t.Errorf("dev history = %+v %v", h, err)
	}
	if h, _ := s.History("prod", 1); len(h) != 1 || h[0].Revision != "p4" {
		t.Errorf("prod's last = %+v", h)
	}
	if h, _ := s.History("none", 0); len(h) != 0 {
		t.Errorf("unknown env history = %+v", h)
	}

	// Another process cannot open the same state while this one holds it.
	if os.Getenv("STATE_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run", "TestLockedChild")
		cmd.Env = append(os.Environ(), "STATE_CHILD="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("child: %v\n%s", err, out)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened: what was committed is there.
	s, err = state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.Get("licenses", &got); !ok || err != nil || got.Serial != 7 {
		t.Errorf("after reopening: %+v %v %v", got, ok, err)
	}
	if h, _ := s.History("dev", 0); len(h) != 3 {
		t.Errorf("history after reopening: %d entries", len(h))
	}
}

// TestLockedChild runs in a child process of TestDocsAndHistory.
func TestLockedChild(t *testing.T) {
	dir := os.Getenv("STATE_CHILD")
	if dir == "" {
		t.Skip("run by TestDocsAndHistory in a child process")
	}
	if _, err := state.Open(dir); !errors.Is(err, state.ErrLocked) {
		t.Fatalf("a second process opened the state: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, []byte("x"), 0o600)
	if _, err := state.Open(filepath.Join(f, "sub")); err == nil {
		t.Error("a state under a file opened")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, state.FileName), []byte("not a database"), 0o600)
	if _, err := state.Open(dir); err == nil {
		t.Error("a corrupt database opened")
	}
}

// What cannot be stored is refused, and a store that is closed says so, for every call.
func TestRefusals(t *testing.T) {
	s, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put("k", make(chan int)); err == nil {
		t.Error("a value JSON cannot hold was stored")
	}
	if err := s.Append(map[string]state.Entry{"": {Revision: "r"}}); err == nil {
		t.Error("an environment with no name got a history")
	}
	s.Close()
	var v string
	if err := s.Put("k", "v"); err == nil {
		t.Error("Put on a closed store")
	}
	if _, err := s.Get("k", &v); err == nil {
		t.Error("Get on a closed store")
	}
	if err := s.PutAll(map[string]any{"k": "v"}); err == nil {
		t.Error("PutAll on a closed store")
	}
	if err := s.Append(map[string]state.Entry{"dev": {Revision: "r"}}); err == nil {
		t.Error("Append on a closed store")
	}
	if _, err := s.History("dev", 1); err == nil {
		t.Error("History on a closed store")
	}
}

// PutAll writes every document or none: one that JSON cannot hold stores none of the
// others, and what was there stays.
func TestPutAll(t *testing.T) {
	s, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutAll(map[string]any{"a": 1, "b": "two"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAll(map[string]any{"a": 3, "b": make(chan int)}); err == nil {
		t.Error("a value JSON cannot hold was stored")
	}
	var a int
	var b string
	if ok, err := s.Get("a", &a); !ok || err != nil || a != 1 {
		t.Errorf("a after a refused PutAll: %d %v %v", a, ok, err)
	}
	if ok, err := s.Get("b", &b); !ok || err != nil || b != "two" {
		t.Errorf("b after a refused PutAll: %q %v %v", b, ok, err)
	}
}

// A process killed with SIGKILL while writing two documents with PutAll, again and again,
// leaves them equal: never one written and the other not. Each run kills a child (this
// test again, in the child's role) at another moment of its loop. Written as two Puts in a
// row, PutAll was torn in 3 of the 8 runs.
func TestPutAll_KillNine(t *testing.T) {
	if dir := os.Getenv("STATE_PUTALL_CHILD"); dir != "" {
		putAllUntilKilled(t, dir)
		return
	}
	dir := t.TempDir()
	torn, written := 0, 0
	for run := range 8 {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestPutAll_KillNine$")
		cmd.Env = append(os.Environ(), "STATE_PUTALL_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The child prints a line once it holds the store; from then on it only writes.
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "writing\n" {
			t.Fatalf("run %d: the child did not start: %q %v", run, line, err)
		}
		time.Sleep(time.Duration(20+run*17) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()

		s, err := state.Open(dir)
		if err != nil {
			t.Fatalf("run %d: the store after kill -9: %v", run, err)
		}
		var a, b int
		_, errA := s.Get("a", &a)
		_, errB := s.Get("b", &b)
		s.Close()
		if errA != nil || errB != nil {
			t.Fatalf("run %d: %v %v", run, errA, errB)
		}
		if a != b {
			torn++
			t.Errorf("run %d: a = %d, b = %d: half of a PutAll survived the kill", run, a, b)
		}
		written = a
	}
	if written == 0 {
		t.Error("the children never wrote: the test proves nothing")
	}
	t.Logf("%d torn of 8 runs; the children wrote %d pairs", torn, written)
}

// putAllUntilKilled is TestPutAll_KillNine's child: it writes a and b, equal and growing,
// until it is killed.
func putAllUntilKilled(t *testing.T, dir string) {
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if _, err := s.Get("a", &n); err != nil {
		t.Fatal(err)
	}
	fmt.Println("writing")
	for n++; ; n++ {
		if err := s.PutAll(map[string]any{"a": n, "b": n}); err != nil {
			t.Fatal(err)
		}
	}
}

// What the store refuses says which directory or document it is about, and leaves the store
// usable: a state directory that is a file, a database file that is not one, a document read
// into the wrong shape, a value that cannot be written, a history without an environment.
func TestErrorsNameWhatFailed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := state.Open(file); !errorsContain(err, file) {
		t.Errorf("a file as the state directory: %v", err)
	}
	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, state.FileName), []byte("not a bolt database, but long enough to be read as one's header"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := state.Open(garbage); err == nil || !errorsContain(err, garbage) {
		t.Errorf("a corrupt database: %v", err)
	}

	s, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put("status", map[string]any{"ready": true}); err != nil {
		t.Fatal(err)
	}
	var wrong []string
	if ok, err := s.Get("status", &wrong); ok || err == nil || !errorsContain(err, "status") {
		t.Errorf("a document read into the wrong shape: %v, %v", ok, err)
	}
	if err := s.Put("fn", func() {}); err == nil {
		t.Error("a function stored")
	}
	if err := s.PutAll(map[string]any{"a": 1, "fn": func() {}}); err == nil || !errorsContain(err, "fn") {
		t.Errorf("PutAll of a function: %v", err)
	}
	if err := s.Append(map[string]state.Entry{"": {}}); err == nil {
		t.Error("a history entry without an environment was stored")
	}
	var st map[string]any
	if ok, err := s.Get("status", &st); !ok || err != nil || st["ready"] != true {
		t.Errorf("the store after the refusals: %v %v %v", st, ok, err)
	}
}

func errorsContain(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}
