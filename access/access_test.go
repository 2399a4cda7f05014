package access_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/circlecore/circle/access"
)

func TestPolicy(t *testing.T) {
	open := access.Policy{Hosts: []string{"circle.example.com"}, Open: []string{"/healthz"}, OwnAuth: []string{"POST /api/v1/reconcile"}}
	locked := open
	locked.Token = "0123456789abcdef-token"
	req := func(method, path, host, remote string, h ...string) *http.Request {
		r := httptest.NewRequest(method, path, nil)
		r.Host, r.RemoteAddr = host, remote
		for i := 0; i+1 < len(h); i += 2 {
			r.Header.Set(h[i], h[i+1])
		}
		return r
	}
	basic := func(pw string) *http.Request {
		r := req("GET", "/ui/", "127.0.0.1:9090", "127.0.0.1:5000")
		r.SetBasicAuth("anyone", pw)
		return r
	}
	cases := []struct {
		name string
		p    access.Policy
		r    *http.Request
		want access.Decision
		code int
	}{
		{"loopback, no token", open, req("GET", "/api/v1/status", "127.0.0.1:9090", "127.0.0.1:5000"), access.Allowed, 200},
		{"IPv6 loopback", open, req("GET", "/metrics", "[::1]:9090", "[::1]:5000"), access.Allowed, 200},
		{"localhost by name", open, req("GET", "/api/v1/history", "localhost:9090", "127.0.0.1:5000"), access.Allowed, 200},
		{"remote, no token", open, req("GET", "/api/v1/status", "192.0.2.2:9090", "192.0.2.9:5000"), access.NotLoopback, 403},
		{"remote metrics, no token", open, req("GET", "/metrics", "192.0.2.2:9090", "192.0.2.9:5000"), access.NotLoopback, 403},
		{"DNS rebinding", open, req("GET", "/api/v1/status", "attacker.example:9090", "127.0.0.1:5000"), access.BadHost, 421},
		{"rebinding to the health probe", open, req("GET", "/healthz", "attacker.example", "127.0.0.1:5000"), access.BadHost, 421},
		{"no Host", open, req("GET", "/api/v1/status", "", "127.0.0.1:5000"), access.BadHost, 421},
		{"a configured name", open, req("GET", "/api/v1/status", "Circle.Example.com.", "127.0.0.1:5000"), access.Allowed, 200},
		{"health probe from anywhere", open, req("GET", "/healthz", "10.0.0.7:9090", "10.0.0.1:5000"), access.Allowed, 200},
		{"trigger has its own token", open, req("POST", "/api/v1/reconcile", "10.0.0.7:9090", "10.0.0.1:5000"), access.Allowed, 200},
		{"GET on the trigger's path is not exempt", open, req("GET", "/api/v1/reconcile", "10.0.0.7:9090", "10.0.0.1:5000"), access.NotLoopback, 403},
		{"token set, loopback without it", locked, req("GET", "/api/v1/status", "127.0.0.1:9090", "127.0.0.1:5000"), access.NeedsToken, 401},
		{"token set, bearer", locked, req("GET", "/metrics", "192.0.2.2:9090", "192.0.2.9:5000", "Authorization", "Bearer 0123456789abcdef-token"), access.Allowed, 200},
		{"token set, wrong bearer", locked, req("GET", "/metrics", "192.0.2.2:9090", "192.0.2.9:5000", "Authorization", "Bearer 0123456789abcdef-toke"), access.NeedsToken, 401},
		{"token set, basic password", locked, basic("0123456789abcdef-token"), access.Allowed, 200},
		{"token set, basic wrong", locked, basic("nope"), access.NeedsToken, 401},
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("content")) })
	for _, c := range cases {
		if got := c.p.Check(c.r); got != c.want {
			t.Errorf("%s: Check = %d, want %d", c.name, got, c.want)
		}
		w := httptest.NewRecorder()
		c.p.Wrap(ok).ServeHTTP(w, c.r)
		if w.Code != c.code {
			t.Errorf("%s: %d, want %d", c.name, w.Code, c.code)
		}
		if c.code != 200 && w.Body.String() == "content" {
			t.Errorf("%s: content served with %d", c.name, w.Code)
		}
		if c.code == 401 && len(w.Result().Header.Values("WWW-Authenticate")) != 2 {
			t.Errorf("%s: challenges %q", c.name, w.Result().Header.Values("WWW-Authenticate"))
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for remote, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "[::ffff:127.0.0.1]:1": true, "127.9.9.9:1": true,
		"192.0.2.1:1": false, "[fd00::2]:1": false, "garbage": false, "": false} {
		if got := access.IsLoopback(remote); got != want {
			t.Errorf("IsLoopback(%q) = %t", remote, got)
		}
	}
}
