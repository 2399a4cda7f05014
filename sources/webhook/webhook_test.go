package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/circlecore/circle/sources/webhook"
)

var secret = []byte("s3cret-hook")

// anyRef is a generic hook that names its repository but no ref.
const anyRef = `{"repository":{"full_name":"org/config"}}`

func sign(body string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func post(t testing.TB, h http.Handler, headers map[string]string, body string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func pending(r *webhook.Receiver) bool {
	select {
	case <-r.Hints():
		return true
	default:
		return false
	}
}

func TestReceiver_Providers(t *testing.T) {
	gh := `{"ref":"refs/heads/main","repository":{"full_name":"org/config"}}`
	gl := `{"ref":"refs/heads/main","project":{"path_with_namespace":"org/config"}}`
	bb := `{"push":{"changes":[{"new":{"type":"branch","name":"main"}}]},"repository":{"full_name":"org/config"}}`
	cases := []struct {
		name     string
		provider webhook.Provider
		headers  map[string]string
		body     string
		want     int
		hint     bool
	}{
		{"github push", webhook.GitHub, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(gh)}, gh, 202, true},
		{"github forged", webhook.GitHub, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(gh+" ")}, gh, 401, false},
		{"github unsigned", webhook.GitHub, map[string]string{"X-GitHub-Event": "push"}, gh, 401, false},
		{"github ping", webhook.GitHub, map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + sign(gh)}, gh, 204, false},
		{"github other branch", webhook.GitHub, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(strings.Replace(gh, "main", "dev", 1))}, strings.Replace(gh, "main", "dev", 1), 204, false},
		{"github other repo", webhook.GitHub, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(strings.Replace(gh, "org/config", "org/other", 1))}, strings.Replace(gh, "org/config", "org/other", 1), 204, false},
		{"github truncated json", webhook.GitHub, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(gh[:20])}, gh[:20], 400, false},
		{"gitlab push", webhook.GitLab, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": string(secret)}, gl, 202, true},
		{"gitlab wrong token", webhook.GitLab, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"}, gl, 401, false},
		{"gitea push", webhook.Gitea, map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": sign(gh)}, gh, 202, true},
		{"forgejo push", webhook.Gitea, map[string]string{"X-Forgejo-Event": "push", "X-Forgejo-Signature": sign(gh)}, gh, 202, true},
		{"bitbucket push", webhook.Bitbucket, map[string]string{"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + sign(bb)}, bb, 202, true},
		{"generic no ref", webhook.Generic, map[string]string{"X-Signature-256": "sha256=" + sign(anyRef)}, anyRef, 202, true},
		{"generic bad hex", webhook.Generic, map[string]string{"X-Signature-256": "sha256=zz"}, "{}", 401, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := webhook.New(tc.provider, secret, "org/config", webhook.BranchOrTags("main", false))
			if err != nil {
				t.Fatal(err)
			}
			if got := post(t, r, tc.headers, tc.body); got != tc.want {
				t.Errorf("status = %d, want %d", got, tc.want)
			}
			if got := pending(r); got != tc.hint {
				t.Errorf("hint = %v, want %v", got, tc.hint)
			}
		})
	}
}

func TestReceiver_Limits(t *testing.T) {
	r, _ := webhook.New(webhook.Generic, secret, "", nil)
	big := `{"ref":"` + strings.Repeat("x", webhook.MaxBody) + `"}`
	if got := post(t, r, map[string]string{"X-Signature-256": "sha256=" + sign(big)}, big); got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize body: %d", got)
	}
	req := httptest.NewRequest(http.MethodGet, "/hook", nil)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
	if _, err := webhook.New("svn", secret, "", nil); err == nil {
		t.Error("unknown provider accepted")
	}
	if _, err := webhook.New(webhook.GitHub, nil, "", nil); err == nil {
		t.Error("empty secret accepted")
	}
}

// A burst of 1,000 pushes, forged and genuine mixed, from many goroutines: no forgery gets
// through, nothing panics, and the genuine ones collapse into one pending hint.
func TestReceiver_Burst(t *testing.T) {
	r, _ := webhook.New(webhook.GitHub, secret, "org/config", webhook.BranchOrTags("main", true))
	body := `{"ref":"refs/tags/v1.0.0","repository":{"full_name":"org/config"}}`
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sig := sign(body)
			if i%2 == 1 {
				sig = sign(body + "forged")
			}
			code := post(t, r, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig}, body)
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if codes[202] != 500 || codes[401] != 500 {
		t.Errorf("codes = %v, want 500 accepted and 500 refused", codes)
	}
	if !pending(r) || pending(r) {
		t.Error("want exactly one pending hint after the burst")
	}
}

func BenchmarkReceiver_GitHub(b *testing.B) {
	r, _ := webhook.New(webhook.GitHub, secret, "", nil)
	body := `{"ref":"refs/heads/main","repository":{"full_name":"org/config"}}`
	h := map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(body)}
	for b.Loop() {
		post(b, r, h, body)
	}
}
