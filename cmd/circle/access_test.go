package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/testenv"
)

// The daemon's one access policy, seen from the network: `circle serve --listen 0.0.0.0:PORT`
// answered from loopback and from this machine's own non-loopback address (which is not
// loopback to the server), with and without a read token, with a Host the daemon is not.
func TestServe_AccessPolicy(t *testing.T) {
	remoteIP := nonLoopbackIP(t)
	dir := t.TempDir()
	const readToken, triggerToken = "read-0123456789abcdef", "trigger-0123456789abcdef"
	write(t, dir, "read", readToken+"\n")
	write(t, dir, "trigger", triggerToken+"\n")

	type req struct {
		method, path, host, bearer, basic string
	}
	// do sends r to the daemon on port from the given address, and returns the status code.
	do := func(ip string, port int, r req) int {
		t.Helper()
		url := fmt.Sprintf("http://%s:%d%s", ip, port, r.path)
		hr, _ := http.NewRequest(r.method, url, nil)
		if r.host != "" {
			hr.Host = r.host
		}
		if r.bearer != "" {
			hr.Header.Set("Authorization", "Bearer "+r.bearer)
		}
		if r.basic != "" {
			hr.SetBasicAuth("anyone", r.basic)
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Errorf("%s %s: %v", r.method, url, err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	read := []string{"/api/v1/status", "/api/v1/history?env=dev", "/metrics", "/ui/", "/"}
	// status.json is in the bucket a moment before the API has the status (503 until then):
	// wait for it, so every answer below is the policy's.
	ready := func(port int, bearer string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if do("127.0.0.1", port, req{method: "GET", path: "/api/v1/status", bearer: bearer}) == 200 {
				return
			}
		}
		t.Fatal("/api/v1/status never answered 200")
	}

	t.Run("no read token", func(t *testing.T) {
		port := freePort(t)
		serveUntilThen(t, `"ready": true`, func() {
			ready(port, "")
			for _, path := range read {
				get := req{method: "GET", path: path}
				if code := do("127.0.0.1", port, get); code != 200 && code != 302 {
					t.Errorf("GET %s from loopback = %d, want it served", path, code)
				}
				if code := do(remoteIP, port, get); code != http.StatusForbidden {
					t.Errorf("GET %s from %s = %d, want 403", path, remoteIP, code)
				}
				get.host = "attacker.example"
				if code := do("127.0.0.1", port, get); code != http.StatusMisdirectedRequest {
					t.Errorf("GET %s with Host attacker.example (DNS rebinding) = %d, want 421", path, code)
				}
			}
			for _, probe := range []string{"/healthz", "/readyz"} {
				if code := do(remoteIP, port, req{method: "GET", path: probe}); code != 200 {
					t.Errorf("GET %s from %s = %d, want 200 (probes are open)", probe, remoteIP, code)
				}
			}
			if code := do("127.0.0.1", port, req{method: "GET", path: "/api/v1/status", host: "circle.example.com:8080"}); code != 200 {
				t.Errorf("GET /api/v1/status with Host circle.example.com, given with --allowed-host = %d", code)
			}
			if code := do(remoteIP, port, req{method: "POST", path: "/api/v1/reconcile", bearer: triggerToken}); code != http.StatusAccepted {
				t.Errorf("the trigger from %s with its own token = %d, want 202", remoteIP, code)
			}
		}, "--source", examplesDir, "--key-file", exampleKey, "--storage-keyring", newKeyringFile(t),
			"--listen", fmt.Sprintf("0.0.0.0:%d", port), "--allowed-host", "circle.example.com",
			"--trigger-token-file", filepath.Join(dir, "trigger"), "--state-dir", t.TempDir())
	})

	t.Run("read token", func(t *testing.T) {
		port := freePort(t)
		serveUntilThen(t, `"ready": true`, func() {
			ready(port, readToken)
			for _, path := range read {
				get := req{method: "GET", path: path}
				if code := do("127.0.0.1", port, get); code != http.StatusUnauthorized {
					t.Errorf("GET %s from loopback without the token = %d, want 401", path, code)
				}
				get.bearer = "read-0123456789abcdeX"
				if code := do("127.0.0.1", port, get); code != http.StatusUnauthorized {
					t.Errorf("GET %s with a wrong token = %d, want 401", path, code)
				}
				get.bearer = readToken
				if code := do(remoteIP, port, get); code != 200 && code != 302 {
					t.Errorf("GET %s from %s with the token as a bearer = %d", path, remoteIP, code)
				}
				get.bearer, get.basic = "", readToken
				if code := do(remoteIP, port, get); code != 200 && code != 302 {
					t.Errorf("GET %s from %s with the token as the basic auth password = %d", path, remoteIP, code)
				}
				get.basic, get.bearer, get.host = "", readToken, "attacker.example"
				if code := do(remoteIP, port, get); code != http.StatusMisdirectedRequest {
					t.Errorf("GET %s with the token and Host attacker.example = %d, want 421", path, code)
				}
			}
			if code := do(remoteIP, port, req{method: "GET", path: "/healthz"}); code != 200 {
				t.Errorf("GET /healthz without the token = %d, want 200", code)
			}
			if code := do(remoteIP, port, req{method: "POST", path: "/api/v1/reconcile", bearer: readToken}); code != http.StatusUnauthorized {
				t.Errorf("the trigger with the read token = %d, want 401: it has its own", code)
			}
			if code := do(remoteIP, port, req{method: "POST", path: "/api/v1/reconcile", bearer: triggerToken}); code != http.StatusAccepted {
				t.Errorf("the trigger with its token = %d, want 202", code)
			}
		}, "--source", examplesDir, "--key-file", exampleKey, "--storage-keyring", newKeyringFile(t),
			"--listen", fmt.Sprintf("0.0.0.0:%d", port), "--read-token-file", filepath.Join(dir, "read"),
			"--trigger-token-file", filepath.Join(dir, "trigger"), "--state-dir", t.TempDir())
	})
}

// The server of --listen bounds what one client holds: an idle keep-alive connection and a
// header sent slowly are closed, an oversized header is refused with 431. (Run here with short
// limits; the daemon's are 60 s, 5 s and 64 KiB.)
func TestAPIServer_Limits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := apiServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		serverLimits{header: 300 * time.Millisecond, idle: 300 * time.Millisecond, headerBytes: 1 << 10})
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	addr := ln.Addr().String()

	// closedWithin reports whether the server closes c within d.
	closedWithin := func(c net.Conn, d time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c)
		return err == nil // EOF: closed by the server; a timeout: still open
	}

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("a keep-alive request: %v %v", resp, err)
	}
	resp.Body.Close()
	if !closedWithin(idle, 3*time.Second) {
		t.Error("an idle keep-alive connection is still open after 3 s (IdleTimeout 300 ms)")
	}

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
	if !closedWithin(slow, 3*time.Second) {
		t.Error("a connection that never ends its header is still open after 3 s (ReadHeaderTimeout 300 ms)")
	}

	big, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	big.Header.Set("X-Padding", strings.Repeat("a", 8<<10))
	resp, err = http.DefaultClient.Do(big)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("an 8 KiB header = %d, want 431 (MaxHeaderBytes 1 KiB)", resp.StatusCode)
	}

	if defaultServerLimits.idle <= 0 || defaultServerLimits.header <= 0 || defaultServerLimits.headerBytes <= 0 {
		t.Errorf("the daemon's server limits leave something unbounded: %+v", defaultServerLimits)
	}
}

// nonLoopbackIP is an IPv4 address of this machine that is not loopback: a connection to it
// from here reaches the server from an address that is not loopback either.
func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Fatal("this machine has no non-loopback IPv4 address to play a remote client from")
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
