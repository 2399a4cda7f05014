package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A new user's path, with the built binaries: circle init in an empty folder, circle
// validate, a configuration edit that circle plan shows as the Ingress host it moves,
// circle serve publishing the repository, and the example service reading its value from
// the published build, and the next one when the configuration changes.
func TestNewUser_InitValidatePlanServeService(t *testing.T) {
	circle := buildBinary(t)
	service := filepath.Join(t.TempDir(), "service")
	if out, err := exec.Command("go", "build", "-o", service, "../../examples/service").CombinedOutput(); err != nil {
		t.Fatalf("go build examples/service: %v\n%s", err, out)
	}
	work := t.TempDir()
	repo, keys := filepath.Join(work, "shop-config"), filepath.Join(work, "keys")
	ageKey := filepath.Join(keys, "age.agekey")
	run := func(wantCode int, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "HOME="+work, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		if code != wantCode {
			t.Fatalf("%s %s: exit %d, want %d\n%s", filepath.Base(name), strings.Join(args, " "), code, wantCode, out)
		}
		return string(out)
	}

	// Bad input first: nothing is written.
	if out := run(2, circle, "init", repo, "--env", "dev,Prod!", "--key-dir", keys); !strings.Contains(out, `--env "Prod!"`) {
		t.Errorf("a bad environment name: %s", out)
	}
	if _, err := os.Stat(repo); err == nil {
		t.Error("a refused init left the folder behind")
	}
	if out := run(2, circle, "init", repo, "--key-dir", filepath.Join(repo, "keys")); !strings.Contains(out, "inside the repository") {
		t.Errorf("keys inside the repository: %s", out)
	}
	dry := run(0, circle, "init", repo, "--service", "shop", "--key-dir", keys, "--dry-run")
	if !strings.Contains(dry, filepath.Join(repo, "circle.yaml")) || !strings.Contains(dry, ageKey) {
		t.Errorf("--dry-run lists:\n%s", dry)
	}
	if _, err := os.Stat(repo); err == nil {
		t.Error("--dry-run wrote")
	}

	out := run(0, circle, "init", repo, "--service", "shop", "--key-dir", keys)
	if !strings.Contains(out, ageKey) {
		t.Errorf("init does not print the key's path:\n%s", out)
	}
	if b, _ := os.ReadFile(ageKey); !strings.Contains(string(b), "AGE-SECRET-KEY-") {
		t.Error("no age key at the printed path")
	}
	for _, f := range []string{"secrets/dev.sops.yaml", "deploy/prod/kustomization.yaml", ".sops.yaml", ".github/workflows/circle.yml", "licenses/shop.lic"} {
		if _, err := os.Stat(filepath.Join(repo, f)); err != nil {
			t.Errorf("init made no %s", f)
		}
	}
	// Into a folder that holds one of its files: refused, naming it, nothing written.
	other := filepath.Join(work, "other")
	os.MkdirAll(filepath.Join(other, "schema"), 0o755)
	os.WriteFile(filepath.Join(other, "schema", "app.cue"), []byte("package x\n"), 0o644)
	if out := run(2, circle, "init", other, "--key-dir", filepath.Join(work, "otherkeys")); !strings.Contains(out, filepath.Join(other, "schema", "app.cue")) {
		t.Errorf("init over a file: %s", out)
	}
	if entries, _ := os.ReadDir(other); len(entries) != 1 {
		t.Errorf("a refused init wrote into %s: %v", other, entries)
	}

	if out := run(0, circle, "validate", repo, "--key-file", ageKey); strings.Count(out, ": valid") != 3 {
		t.Errorf("validate:\n%s", out)
	}

	run(0, "git", "-C", repo, "init", "-q", "-b", "main")
	run(0, "git", "-C", repo, "add", "-A")
	run(0, "git", "-C", repo, "commit", "-q", "-m", "circle init")
	os.WriteFile(filepath.Join(repo, "config/dev/kubernetes.yaml"), []byte("kubernetes:\n  ingresses:\n    shop:\n      host: shop-dev.example.com\n"), 0o644)
	plan := run(2, circle, "plan", repo, "--base", "HEAD", "--worktree", "--key-file", ageKey, "-o", "json")
	if !strings.Contains(plan, `"path": "spec.rules[0].host"`) || !strings.Contains(plan, `shop-dev.example.com`) || !strings.Contains(plan, `shop.dev.example.com`) {
		t.Errorf("the plan does not show the Ingress host moving:\n%s", plan)
	}

	// The daemon publishes the folder; the example service reads dev's db.host from it.
	store, ring := filepath.Join(work, "storage"), filepath.Join(work, "keyring.json")
	run(0, circle, "storage", "keyring", "init", ring)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	serve := exec.CommandContext(ctx, circle, "serve", "--source", repo, "--publish", "file://"+store, "--storage-keyring", ring,
		"--key-file", ageKey, "--listen", "", "--state-dir", filepath.Join(work, "state"), "--log-format", "json")
	serve.Stdout, serve.Stderr = io.Discard, io.Discard
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { serve.Process.Kill(); serve.Wait() }()
	lines := make(chan string, 16)
	var svcOut strings.Builder
	for {
		if _, err := os.Stat(filepath.Join(store, "envs", "dev", "current.json")); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("circle serve published nothing")
		}
		time.Sleep(100 * time.Millisecond)
	}
	svc := exec.CommandContext(ctx, service, "-storage", "file://"+store, "-env", "dev", "-keyring", ring, "-key", "db.host", "-poll", "100ms")
	pipe, _ := svc.StdoutPipe()
	svc.Stderr = &svcOut
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { svc.Process.Kill(); svc.Wait() }()
	go func() {
		s := bufio.NewScanner(pipe)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the service stopped: %s", svcOut.String())
			}
			return l
		case <-ctx.Done():
			t.Fatalf("the service printed nothing more: %s", svcOut.String())
		}
		return ""
	}
	if l := next(); !strings.HasPrefix(l, "db.host = db.internal (env dev") {
		t.Errorf("the service's first line: %q", l)
	}
	os.WriteFile(filepath.Join(repo, "config/dev/db.yaml"), []byte("db:\n  host: dev-db.internal\n"), 0o644)
	if l := next(); !strings.HasPrefix(l, "db.host: db.internal → dev-db.internal") {
		t.Errorf("the service's line after the edit: %q", l)
	}
}
