package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/publish"
)

const canary = "canary-password-4711"

// TestService_EndToEnd builds the example service with go build, runs it against a file://
// store published as the daemon publishes, and publishes a new build: the service prints
// the value at start and one change line, never the secret beside it, and stops on SIGTERM.
func TestService_EndToEnd(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "service")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	ctx := context.Background()
	url := "file://" + filepath.Join(dir, "storage")
	ring, err := envelope.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ring.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	keyring := filepath.Join(dir, "keyring.json")
	if err := os.WriteFile(keyring, b, 0o600); err != nil {
		t.Fatal(err)
	}
	backend, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	target := publish.New(envelope.New(backend, ring, "circle test"), "")
	pub := func(rev, host string) {
		t.Helper()
		cfg := `{"db": {"host": "` + host + `", "password": "` + canary + `"}}`
		if _, _, err := target.Publish(ctx, "prod", rev, []publish.File{{Path: "config.json", Data: []byte(cfg)}}); err != nil {
			t.Fatal(err)
		}
	}
	pub("r1", "db-1")

	cmd := exec.Command(bin, "-poll", "50ms")
	cmd.Env = append(os.Environ(), "CIRCLE_STORAGE_URL="+url, "CIRCLE_ENV=prod", "CIRCLE_STORAGE_KEYRING="+keyring)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string)
	go func() {
		defer close(lines)
		for s := bufio.NewScanner(out); s.Scan(); {
			lines <- s.Text()
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the service stopped; stderr:\n%s", stderr.String())
			}
			if strings.Contains(l, canary) {
				t.Errorf("the service printed the secret: %q", l)
			}
			return l
		case <-time.After(20 * time.Second):
			t.Fatalf("no line from the service within 20s; stderr:\n%s", stderr.String())
			return ""
		}
	}

	if got, want := next(), "db.host = db-1 (env prod, revision r1)"; got != want {
		t.Errorf("start line %q, want %q", got, want)
	}
	pub("r2", "db-2")
	if got, want := next(), "db.host: db-1 → db-2 (revision r2)"; got != want {
		t.Errorf("change line %q, want %q", got, want)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit on SIGTERM: %v; stderr:\n%s", err, stderr.String())
	}
	if s := stderr.String(); s != "" {
		t.Errorf("stderr: %s", s)
	}
}

func TestService_Usage(t *testing.T) {
	for _, v := range []string{"CIRCLE_STORAGE_URL", "CIRCLE_ENV", "CIRCLE_STORAGE_KEYRING"} {
		t.Setenv(v, "")
	}
	var out, errb strings.Builder
	if err := run(context.Background(), nil, &out, &errb); err == nil || !strings.Contains(err.Error(), "-storage") {
		t.Errorf("run without flags = %v, want a usage error", err)
	}
	err := run(context.Background(), []string{"-storage", "mem://", "-env", "prod", "-keyring", "/nonexistent"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent") {
		t.Errorf("run with a missing keyring = %v, want an error naming the file", err)
	}
}
