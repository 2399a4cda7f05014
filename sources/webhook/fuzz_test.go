package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/circlecore/circle/sources/webhook"
)

var fuzzProviders = []webhook.Provider{webhook.GitHub, webhook.GitLab, webhook.Gitea, webhook.Bitbucket, webhook.Generic}

// FuzzReceiver posts any body with any event name and signature header to each
// provider's receiver, once with the signature given and once signed with the right secret
// (so the fuzzer reaches the payload parser without forging HMACs). The receiver may not
// panic; it answers only 202, 204, 400, 401 or 413; it hints exactly when it answers 202;
// a request not carrying the right signature (or GitLab token) is 401 and never a hint; and
// a hint needs a JSON object for a body.
//
// The seed corpus (testdata/fuzz/FuzzReceiver) holds push payloads in each provider's
// shape (branch, tag, deleted branch, another repository), pings, and malformed bodies.
func FuzzReceiver(f *testing.F) {
	f.Add(uint8(0), "push", "", []byte(`{"ref":"refs/heads/main","repository":{"full_name":"org/config"}}`))
	f.Fuzz(func(t *testing.T, provider uint8, event, sig string, body []byte) {
		p := fuzzProviders[int(provider)%len(fuzzProviders)]
		r, err := webhook.New(p, secret, "org/config", webhook.BranchOrTags("main", true))
		if err != nil {
			t.Fatal(err)
		}
		valid := validSignature(p, body)
		for _, signed := range []bool{false, true} {
			s := sig
			if signed {
				s = valid
			}
			code := postAs(p, r, event, s, body)
			switch code {
			case http.StatusAccepted, http.StatusNoContent, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
			default:
				t.Fatalf("%s: status %d", p, code)
			}
			hinted := pending(r)
			if hinted != (code == http.StatusAccepted) {
				t.Fatalf("%s: status %d, hint %v", p, code, hinted)
			}
			authentic := s == valid || p != webhook.GitLab && strings.EqualFold(s, valid)
			if !authentic && code != http.StatusUnauthorized && code != http.StatusRequestEntityTooLarge {
				t.Fatalf("%s: signature %q (want %q) answered %d", p, s, valid, code)
			}
			if hinted {
				var obj map[string]any
				if json.Unmarshal(body, &obj) != nil {
					t.Fatalf("%s: hint from a body that is no JSON object: %q", p, body)
				}
			}
		}
	})
}

// validSignature is what the provider's sender would put in its header for body.
func validSignature(p webhook.Provider, body []byte) string {
	if p == webhook.GitLab {
		return string(secret) // GitLab sends the token itself
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// postAs sends body with the provider's event and signature headers.
func postAs(p webhook.Provider, h http.Handler, event, sig string, body []byte) int {
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(string(body)))
	switch p {
	case webhook.GitHub:
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-Hub-Signature-256", "sha256="+sig)
	case webhook.GitLab:
		req.Header.Set("X-Gitlab-Event", event)
		req.Header.Set("X-Gitlab-Token", sig)
	case webhook.Gitea:
		req.Header.Set("X-Gitea-Event", event)
		req.Header.Set("X-Gitea-Signature", sig)
	case webhook.Bitbucket:
		req.Header.Set("X-Event-Key", event)
		req.Header.Set("X-Hub-Signature", "sha256="+sig)
	default:
		req.Header.Set("X-Signature-256", "sha256="+sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}
