package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/testenv"
)

// The whole path with every real server up: a push to the Git server (over HTTP) and its
// webhook → the new config in the S3 bucket (encrypted) and a new ConfigMap in the
// cluster; an invalid push changes nothing anywhere and the status says where the
// problem is; the fix lands.
func TestEndToEnd_PushToStorageAndCluster(t *testing.T) {
	kube := testenv.StartKube(t)
	cs := kube.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := kube.Namespace(t)
	s3 := testenv.StartS3(t)
	bucket := s3.NewBucket(t)
	gitHTTP := testenv.StartGitHTTP(t)

	dir := copyExamples(t)
	testenv.SetNamespace(t, dir, "deploy/dev/kustomization.yaml", ns)
	write(t, dir, "circle.yaml", strings.Replace(readFileT(t, dir, "circle.yaml"), "targets:\n",
		"targets:\n  - name: kind\n    kind: cluster\n    environments: [dev]\n", 1))
	encryptWithSOPS(t, dir, "secrets/dev.sops.yaml", "db:\n  password: "+canary+"\n")
	repo := testenv.NewGitRepo(t, testenv.ReadTree(t, dir))
	head := strings.TrimSpace(repo.Git(t, nil, "rev-parse", "HEAD"))

	hookPort, _ := testenv.FreePort()
	apiPort, _ := testenv.FreePort()
	api := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	ring := newKeyringFile(t)
	t.Setenv("CIRCLE_WEBHOOK_SECRET", "hook-secret")
	var logs syncBuffer
	cmd := newRootCmd(&bytes.Buffer{}, &logs)
	cmd.SetArgs([]string{"serve", "--source", gitHTTP.PublicURL(repo), "--interval", "1h",
		"--webhook-addr", fmt.Sprintf("127.0.0.1:%d", hookPort), "--webhook-repository", "org/config",
		"--publish", bucket, "--storage-keyring", ring, "--key-file", exampleKey,
		"--cluster", "kind=" + writeKubeconfig(t, kube), "--inventory-namespace", ns,
		"--listen", fmt.Sprintf("127.0.0.1:%d", apiPort), "--state-dir", t.TempDir(), "--log-format", "json"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		<-done
		if strings.Contains(logs.String(), canary) {
			t.Error("the secret is in the daemon's log")
		}
	}()

	status := func(rev string) *reconciler.Status {
		t.Helper()
		for {
			srv := serverFlags{server: api}
			if st, err := srv.status(ctx); err == nil && st.Revision == rev {
				return st
			}
			if ctx.Err() != nil {
				t.Fatalf("revision %s never reconciled; log:\n%s", rev, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	push := func(files map[string]string, msg string) string {
		t.Helper()
		rev := repo.Commit(t, files, msg)
		body := `{"ref":"refs/heads/main","repository":{"full_name":"org/config"}}`
		mac := hmac.New(sha256.New, []byte("hook-secret"))
		mac.Write([]byte(body))
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/", hookPort), strings.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook: %s", resp.Status)
		}
		return rev
	}
	published := func() string {
		t.Helper()
		code, out, errOut := run(t, "storage", "build", bucket, "dev", "config.json", "--keyring", ring)
		if code != exitOK {
			t.Fatalf("storage build: exit %d %s", code, errOut)
		}
		return out
	}
	configMap := func() *corev1.ConfigMap {
		t.Helper()
		name := kube.OnlyConfigMap(t, ns, "circle-config-", 20*time.Second)
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm
	}

	if st := status(head); !st.Ready {
		t.Fatalf("first revision: %+v", st)
	}
	first := configMap()

	// A value changes in Git: storage and cluster follow the webhook, not the hour-long poll.
	head = push(map[string]string{"config/dev/feature.yaml": "features:\n  checkout: true\n"}, "turn checkout on")
	if st := status(head); !st.Ready {
		t.Fatalf("second revision: %+v", st)
	}
	if cfg := published(); !strings.Contains(cfg, `"checkout": true`) || !strings.Contains(cfg, canary) {
		t.Errorf("published dev config:\n%s", cfg)
	}
	second := configMap()
	if second.Name == first.Name || !strings.Contains(second.Data["config.json"], `"checkout": true`) {
		t.Errorf("cluster ConfigMap %s: %s", second.Name, second.Data["config.json"])
	}

	// An invalid push: nothing changes anywhere, the status points at the file and line.
	bad := push(map[string]string{"config/dev/db.yaml": "db:\n  port: not-a-port\n"}, "break dev")
	st := status(bad)
	if st.Ready || st.Reason != reconciler.ReasonInvalid || len(st.Problems) == 0 ||
		st.Problems[0].File != "config/dev/db.yaml" || st.Problems[0].Line != 2 {
		t.Fatalf("invalid revision: %+v", st)
	}
	if cfg := published(); !strings.Contains(cfg, `"checkout": true`) || strings.Contains(cfg, "not-a-port") {
		t.Errorf("storage changed on an invalid revision:\n%s", cfg)
	}
	if cm := configMap(); cm.Name != second.Name {
		t.Errorf("the cluster changed on an invalid revision: %s", cm.Name)
	}

	// The fix lands.
	fixed := push(map[string]string{"config/dev/db.yaml": "db:\n  port: 6543\n"}, "fix dev")
	if st := status(fixed); !st.Ready {
		t.Fatalf("fixed revision: %+v", st)
	}
	if cfg := published(); !strings.Contains(cfg, `"port": 6543`) {
		t.Errorf("the fix is not published:\n%s", cfg)
	}
	if cm := configMap(); !strings.Contains(cm.Data["config.json"], `"port": 6543`) {
		t.Errorf("the fix is not in the cluster: %s", cm.Data["config.json"])
	}

	// The metrics say what happened: webhooks, fetches, each target's publishes and applies.
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`circle_webhook_requests_total{result="accepted"} 3`,
		`circle_git_fetch_duration_seconds_count{result="ok"} 4`,
		`circle_target_duration_seconds_count{env="dev",result="ok",target="kind"} 3`,
		`circle_target_duration_seconds_count{env="dev",result="ok",target="publish"} 3`,
		`circle_queue_depth 0`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Nothing in the bucket is readable without the keyring.
	raw, err := storage.Open(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	n := 0
	for a, err := range raw.Walk(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		k := a.Key
		n++
		r, _, err := raw.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		if bytes.Contains(b, []byte(canary)) || bytes.Contains(b, []byte("checkout")) && k != reconciler.StatusKey {
			t.Errorf("%s holds plaintext", k)
		}
	}
	if n < 5 {
		t.Errorf("the bucket holds %d objects", n)
	}
	var statusDoc reconciler.Status
	if b, err := json.Marshal(st); err != nil || json.Unmarshal(b, &statusDoc) != nil || strings.Contains(string(b), canary) {
		t.Error("the status carries the secret")
	}
}

func readFileT(t testing.TB, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// syncBuffer is a bytes.Buffer the daemon's goroutines may write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
