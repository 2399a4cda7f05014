package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/circlecore/circle/state"
	"github.com/circlecore/circle/testenv"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestMain(m *testing.M) { testenv.Main(m) }

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version", "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, out)
	}
	if v.GoVersion != runtime.Version() || v.Version == "" {
		t.Errorf("version = %+v", v)
	}
	if code, out, _ := run(t, "version"); code != 0 || !strings.HasPrefix(out, "circle ") {
		t.Errorf("text version = %q", out)
	}
	if code, out, _ := run(t, "version", "-o", "yaml"); code != 0 || !strings.Contains(out, "goVersion: "+runtime.Version()) {
		t.Errorf("yaml version = %q", out)
	}
	if code, _, errOut := run(t, "version", "-o", "xml"); code != exitUsage || !strings.Contains(errOut, "unknown output format") {
		t.Errorf("bad -o: exit %d, %q", code, errOut)
	}
}

func TestHelpListsCommandTree(t *testing.T) {
	code, out, _ := run(t, "--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, c := range []string{"serve", "validate", "plan", "render", "storage", "package", "license", "version", "completion", "Exit codes"} {
		if !strings.Contains(out, c) {
			t.Errorf("--help does not mention %q", c)
		}
	}
}

// Every command of the tree is implemented now; notImplemented stays for the next one.
func TestNotImplementedExitsThree(t *testing.T) {
	root := newRootCmd(io.Discard, io.Discard)
	root.AddCommand(&cobra.Command{Use: "later", RunE: notImplemented})
	root.SetArgs([]string{"later"})
	var ee *exitError
	if err := root.Execute(); !errors.As(err, &ee) || ee.code != exitNotImplemented || !strings.Contains(err.Error(), "not implemented yet") {
		t.Errorf("circle later: %v", err)
	}
}

func TestCompletion(t *testing.T) {
	code, out, _ := run(t, "completion", "bash")
	if code != exitOK || !strings.Contains(out, "__start_circle") {
		t.Errorf("completion bash: exit %d", code)
	}
}

func TestServe(t *testing.T) {
	if code, _, errOut := run(t, "serve", "--source", filepath.Join(t.TempDir(), "missing")); code != exitUsage || !strings.Contains(errOut, "missing") {
		t.Errorf("missing source: exit %d, %q", code, errOut)
	}

	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "circle.yaml"), []byte("x: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := serveUntil(t, `"reason": "Invalid"`, "--source", src, "--log-format", "json")
	// The status is written through the storage package like every published object: the
	// object and its attributes, and no temporary files left in the user's folder.
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "status.json,status.json.attrs" {
		t.Errorf("publish folder holds %v, want status.json and its attributes only", names)
	}
}

// make run: the daemon on the examples with the example key accepts every environment and
// publishes each one's configuration, encrypted, readable with its keyring.
func TestServe_Examples(t *testing.T) {
	ring := newKeyringFile(t)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var api string
	out := serveUntilThen(t, `"ready": true`, func() {
		resp, err := http.Get("http://" + addr + "/api/v1/status")
		if err != nil {
			t.Errorf("the HTTP API: %v", err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		api = string(b)
	}, "--source", examplesDir, "--key-file", exampleKey, "--storage-keyring", ring, "--listen", addr)
	if !strings.Contains(api, `"reason": "Succeeded"`) {
		t.Errorf("/api/v1/status = %s", api)
	}
	code, cfg, errOut := run(t, "storage", "build", "file://"+out, "prod", "config.json", "--keyring", ring)
	if code != exitOK || !strings.Contains(cfg, `"host": "db.prod.internal"`) {
		t.Errorf("the published prod config: exit %d\n%s%s", code, cfg, errOut)
	}
	if code, m, _ := run(t, "storage", "build", "file://"+out, "prod", "--keyring", ring); code != exitOK || !strings.Contains(m, "config.json") {
		t.Errorf("the prod build: exit %d\n%s", code, m)
	}
	// The whole target verifies and rewraps, status.json (in the clear by design) skipped.
	for _, c := range []string{"verify", "rewrap"} {
		if code, m, errOut := run(t, "storage", c, "file://"+out, "--keyring", ring); code != exitOK || !strings.Contains(m, "skip  status.json") {
			t.Errorf("storage %s of the publish target: exit %d\n%s%s", c, code, m, errOut)
		}
	}
	if code, _, errOut := run(t, "storage", "build", "file://"+out, "nope"); code != exitFailed || !strings.Contains(errOut, "no build") {
		t.Errorf("an environment never published: exit %d %q", code, errOut)
	}
	st, err := os.ReadFile(filepath.Join(out, "status.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{`"name": "dev"`, `"name": "staging"`, `"name": "prod"`, `"reason": "Succeeded"`} {
		if !strings.Contains(string(st), env) {
			t.Errorf("status.json lacks %s:\n%s", env, st)
		}
	}
	if !strings.Contains(string(st), `"id": "lic_example_corp"`) || !strings.Contains(string(st), `"state": "valid"`) {
		t.Errorf("status.json lacks the example license:\n%s", st)
	}
	if code, _, errOut := run(t, "serve", "--source", examplesDir, "--license-keyring", "/nonexistent.pub"); code != exitUsage || !strings.Contains(errOut, "/nonexistent.pub") {
		t.Errorf("missing license keyring: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, "serve", "--source", examplesDir, "--trusted-ssh-keys", "/nonexistent.pub"); code != exitUsage || !strings.Contains(errOut, "/nonexistent.pub") {
		t.Errorf("missing trusted keys file: exit %d, %q", code, errOut)
	}
}

func TestServe_GitSource(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"circle.yaml": "x: 1\n", "config/base/a.yaml": "a: 1\n"})
	head := repo.Commit(t, map[string]string{"config/base/a.yaml": "a: 2\n"}, "bump")
	serveUntil(t, head, "--source", repo.FileURL(), "--interval", "100ms")

	if code, _, errOut := run(t, "serve", "--source", "ssh://git@127.0.0.1:1/x.git", "--ssh-key", "/nonexistent"); code != exitUsage || !strings.Contains(errOut, "/nonexistent") {
		t.Errorf("missing ssh key file: exit %d, %q", code, errOut)
	}
	if !isRemote("git@github.com:org/repo.git") || isRemote("examples") || isRemote("./a:b") {
		t.Error("isRemote misreads a source")
	}
}

func TestServe_WebhookNeedsSecret(t *testing.T) {
	t.Setenv("CIRCLE_WEBHOOK_SECRET", "")
	code, _, errOut := run(t, "serve", "--source", "file:///nonexistent.git", "--webhook-addr", "127.0.0.1:0")
	if code != exitUsage || !strings.Contains(errOut, "secret is required") {
		t.Errorf("webhook without a secret: exit %d, %q", code, errOut)
	}
}

// serveUntil runs `circle serve` with args, publishing to a fresh folder, until its
// status.json contains want; then it stops the daemon and returns the folder.
func serveUntil(t *testing.T, want string, args ...string) string {
	t.Helper()
	return serveUntilThen(t, want, nil, args...)
}

// serveUntilThen is serveUntil calling then, if set, while the daemon still runs.
func serveUntilThen(t *testing.T, want string, then func(), args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "published")
	cmd := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	if !slices.Contains(args, "--listen") {
		args = append(args, "--listen", "") // parallel tests must not share the default port
	}
	cmd.SetArgs(append([]string{"serve", "--publish", "file://" + out}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(out, "status.json"))
		if err == nil && strings.Contains(string(b), want) {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("status.json in %s never contained %s", out, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if then != nil {
		then()
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve returned %v after cancel", err)
	}
	return out
}

func TestServe_VerifyNeedsKeys(t *testing.T) {
	code, _, errOut := run(t, "serve", "--source", "file:///x.git", "--verify", "head")
	if code != exitUsage || !strings.Contains(errOut, "trusted PGP or SSH keys") {
		t.Errorf("--verify without keys: exit %d, %q", code, errOut)
	}
}

// serve --cluster: the cluster target of circle.yaml gets dev's manifests.
func TestServe_Cluster(t *testing.T) {
	kube := testenv.StartKube(t)
	ctx := context.Background()
	ns := kube.Namespace(t)
	dir := copyExamples(t)
	testenv.SetNamespace(t, dir, "deploy/dev/kustomization.yaml", ns)
	b, _ := os.ReadFile(filepath.Join(dir, "circle.yaml"))
	write(t, dir, "circle.yaml", string(b)+"  - name: test-cluster\n    kind: cluster\n    environments: [dev]\n")
	serveUntil(t, `"test-cluster": {`, "--source", dir, "--key-file", exampleKey,
		"--cluster", "test-cluster="+writeKubeconfig(t, kube), "--inventory-namespace", ns)
	if _, err := kube.Clientset(t).AppsV1().Deployments(ns).Get(ctx, "shop-api", metav1.GetOptions{}); err != nil {
		t.Errorf("dev's Deployment is not in the cluster: %v", err)
	}
	if code, _, errOut := run(t, "serve", "--source", dir, "--cluster", "nokubeconfig"); code != exitUsage || !strings.Contains(errOut, "NAME=KUBECONFIG") {
		t.Errorf("bad --cluster: exit %d %q", code, errOut)
	}
}

// serve --state-dir keeps the status and each environment's history in the bbolt store,
// which the next start reads.
func TestServe_StateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	serveUntil(t, `"ready": true`, "--source", examplesDir, "--key-file", exampleKey, "--state-dir", dir)
	store, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if h, err := store.History("prod", 0); err != nil || len(h) != 1 || !h[0].Ready {
		t.Errorf("prod's history: %+v %v", h, err)
	}
	if code, _, errOut := run(t, "serve", "--source", examplesDir, "--state-dir", dir); code != exitUsage || !strings.Contains(errOut, "in use") {
		t.Errorf("a second daemon on the same state: exit %d %q", code, errOut)
	}
}
