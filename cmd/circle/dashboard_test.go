package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/testenv"
)

// The dashboard in a real browser (Debian's headless Chromium, driven by chromedp): the
// daemon on a copy of the example repository as a folder source, the overview showing
// the three environments in sync, then a changed config file (picked up through
// fsnotify) showing up on the open page through the event stream, without a reload, and
// an invalid one showing every environment failed, with the error on one line.
// Screenshots, at desktop and phone width, are kept in $CIRCLE_ARTIFACTS (or the test's
// temporary folder).
func TestServe_DashboardInBrowser(t *testing.T) {
	chromium, err := testenv.Tool(testenv.ToolChromium)
	if err != nil {
		t.Fatal(err) // make testenv installs it; a missing tool fails, never skips
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := copyExamples(t)
	encryptWithSOPS(t, dir, "secrets/dev.sops.yaml", "db:\n  password: "+canary+"\n")
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	work := t.TempDir()
	var logs syncBuffer
	cmd := newRootCmd(&bytes.Buffer{}, &logs)
	cmd.SetArgs([]string{"serve", "--source", dir, "--key-file", exampleKey,
		"--publish", "file://" + filepath.Join(work, "out"), "--storage-keyring", newKeyringFile(t),
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--state-dir", filepath.Join(work, "state"), "--log-format", "json"})
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(serveCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if strings.Contains(logs.String(), canary) {
			t.Error("the secret is in the daemon's log")
		}
	}()
	first := waitRevision(ctx, t, base, "", true, &logs)

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Flag("headless", "new"), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	// The overview: three environments, each in sync on the publish target, at the revision.
	if err := chromedp.Do(browser, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("table.grid"))); err != nil {
		t.Fatalf("load the overview: %v\n%s", err, logs.String())
	}
	main := text(t, browser, "main")
	for _, want := range []string{"dev", "staging", "prod", "3 environments: 3 in sync, 0 failed", short(first)} {
		if !strings.Contains(main, want) {
			t.Errorf("the overview lacks %q:\n%s", want, main)
		}
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		state := text(t, browser, `tbody[data-env="`+env+`"] .state`)
		if state != "In sync" {
			t.Errorf("%s: state %q", env, state)
		}
	}
	// The script opened the event stream; mark the page, so a reload would show.
	if _, err := chromedp.Run(browser, chromedp.Poll[bool](`document.getElementById('live').textContent.startsWith('Live')`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the event stream did not open: %v (%q)", err, text(t, browser, "#live"))
	}
	if err := chromedp.Do(browser, chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}

	// A changed file in the source folder is a new revision; the open page follows.
	write(t, dir, "config/dev/app.yaml", "app:\n  logLevel: info\nfeatures:\n  newCheckout: true\n")
	second := waitRevision(ctx, t, base, first, true, &logs)
	start := time.Now()
	if _, err := chromedp.Run(browser, chromedp.Poll[bool](
		fmt.Sprintf(`document.querySelector('main').textContent.includes(%q) && document.body.dataset.stamp.endsWith(%q)`, short(second), second),
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the page never showed revision %s: %v\n%s", second, err, text(t, browser, "main"))
	}
	t.Logf("the page showed the new revision %s after the status had it", time.Since(start).Round(time.Millisecond))
	if ok, err := chromedp.Run(browser, chromedp.Evaluate[bool](`window.notReloaded === true`)); err != nil || !ok {
		t.Errorf("the page was reloaded instead of updated in place (%v)", err)
	}
	if live := text(t, browser, "#live"); !strings.Contains(live, "Updated: revision "+short(second)) {
		t.Errorf("the live region says %q", live)
	}
	artifacts := artifactDir(t)
	shot, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	saveArtifact(t, artifacts, "dashboard-overview.png", shot)

	// Phone width: no sideways scrolling.
	if err := chromedp.Do(browser, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	if wide, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); err != nil || wide {
		t.Errorf("the overview scrolls sideways at phone width (%v)", err)
	}
	if shot, err = chromedp.Run(browser, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	saveArtifact(t, artifacts, "dashboard-overview-phone.png", shot)
	if err := chromedp.Do(browser, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	// dev's page: its history holds both reconciles; the link from the overview leads there.
	if err := chromedp.Do(browser, chromedp.Click(chromedp.CSS(`tbody[data-env="dev"] th a`)), chromedp.WaitVisible(chromedp.CSS("table.history"))); err != nil {
		t.Fatal(err)
	}
	hist := text(t, browser, "table.history tbody")
	if !strings.Contains(hist, short(first)) || !strings.Contains(hist, short(second)) {
		t.Errorf("dev's history lacks a revision:\n%s", hist)
	}
	if shot, err = chromedp.Run(browser, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	saveArtifact(t, artifacts, "dashboard-dev.png", shot)

	// An invalid revision: every environment fails and says why, on one line; each keeps
	// its last good revision. The overview follows again.
	if err := chromedp.Do(browser, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("table.grid"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(browser, chromedp.Poll[bool](`document.getElementById('live').textContent.startsWith('Live')`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the event stream did not open again: %v", err)
	}
	write(t, dir, "config/prod/db.yaml", "db:\n  port: \"not a port\"\n")
	third := waitRevision(ctx, t, base, second, false, &logs)
	if _, err := chromedp.Run(browser, chromedp.Poll[bool](
		fmt.Sprintf(`document.body.dataset.stamp.endsWith(%q)`, third), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the page never showed revision %s: %v", third, err)
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		row := `tbody[data-env="` + env + `"] `
		if state := text(t, browser, row+".state"); state != "Failed" {
			t.Errorf("%s after an invalid revision: state %q", env, state)
		}
		if e := text(t, browser, row+"td.error"); !strings.Contains(e, "Invalid: ") || !strings.Contains(e, "config/prod/db.yaml") {
			t.Errorf("%s: last error %q", env, e)
		}
	}
	if main := text(t, browser, "main"); !strings.Contains(main, "0 in sync, 3 failed") {
		t.Errorf("the summary after an invalid revision:\n%s", main)
	}
	if shot, err = chromedp.Run(browser, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	saveArtifact(t, artifacts, "dashboard-overview-invalid.png", shot)

	// No page, no event and no API response holds the secret.
	for _, p := range []string{"/ui/", "/ui/environments/dev", "/ui/environments/prod", "/ui/revisions/" + second, "/ui/revisions/" + third,
		"/api/v1/status", "/api/v1/history?env=dev"} {
		if body := httpGet(t, base+p); strings.Contains(body, canary) {
			t.Errorf("%s shows the secret", p)
		}
	}
	html, err := chromedp.Run(browser, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil || strings.Contains(html, canary) {
		t.Errorf("the browser's page shows the secret (%v)", err)
	}
}

// waitRevision waits until the API's status has a revision other than not, and returns
// it; the revision must be ready or not as want says.
func waitRevision(ctx context.Context, t *testing.T, base, not string, want bool, logs *syncBuffer) string {
	t.Helper()
	for {
		resp, err := http.Get(base + "/api/v1/status")
		if err == nil {
			var st reconciler.Status
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && st.Revision != "" && st.Revision != not {
				if st.Ready != want {
					t.Fatalf("revision %s: ready %t, want %t: %s %s", st.Revision, st.Ready, want, st.Reason, st.Message)
				}
				return st.Revision
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no revision after %q; log:\n%s", not, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func text(t *testing.T, browser context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s = %d", url, resp.StatusCode)
	}
	return string(b)
}

// artifactDir is where a test keeps files for a person to look at: $CIRCLE_ARTIFACTS
// (a CI job uploads it), or the test's temporary folder.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CIRCLE_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func saveArtifact(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifact: %s", p)
}

// The dashboard flags: --ui mounts the pages in front of the API (and / leads to them),
// --read-token-file locks everything but the probes, and the log says where the pages are and
// who may see them.
func TestServe_UIFlags(t *testing.T) {
	ctx := context.Background()
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no revision reconciled yet", http.StatusServiceUnavailable)
	})
	api.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "api") })
	const loopback, remote = "127.0.0.1:40000", "192.0.2.1:40000"
	serve := func(h http.Handler, from, path, auth string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr, req.Host = from, "127.0.0.1:9090"
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}

	off := uiFlags{on: false}
	h, err := off.handler(ctx, api, redact.New())
	if code, body := serve(h, loopback, "/ui/", ""); err != nil || code != 200 || body != "api" {
		t.Errorf("--ui=false: /ui/ = %d %q, %v", code, body, err)
	}
	if code, _ := serve(h, remote, "/api/v1/status", ""); code != http.StatusForbidden {
		t.Errorf("--ui=false: the API to a remote client without a token = %d, want 403", code)
	}

	open := uiFlags{on: true}
	h, err = open.handler(ctx, api, redact.New())
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := serve(h, loopback, "/", ""); code != http.StatusFound {
		t.Errorf("/ = %d, want a redirect to /ui/", code)
	}
	if code, body := serve(h, loopback, "/healthz", ""); code != 200 || body != "api" {
		t.Errorf("/healthz = %d %q: the API is not behind the dashboard", code, body)
	}
	if code, body := serve(h, remote, "/healthz", ""); code != 200 || body != "api" {
		t.Errorf("/healthz from a remote client = %d %q: probes are open", code, body)
	}
	if code, _ := serve(h, remote, "/ui/", ""); code != http.StatusForbidden {
		t.Errorf("/ui/ from a remote client without a token = %d", code)
	}

	dir := t.TempDir()
	token := "0123456789abcdef0123"
	write(t, dir, "token", "  "+token+"\n")
	write(t, dir, "short", "abc\n")
	locked := uiFlags{on: true, tokenFile: filepath.Join(dir, "token")}
	if h, err = locked.handler(ctx, api, redact.New()); err != nil {
		t.Fatal(err)
	}
	if code, _ := serve(h, loopback, "/ui/", ""); code != http.StatusUnauthorized {
		t.Errorf("/ui/ without the token, from loopback = %d", code)
	}
	if code, body := serve(h, remote, "/ui/", token); code != 200 || !strings.Contains(body, "No revision reconciled yet") {
		t.Errorf("/ui/ with the token = %d", code)
	}
	for file, want := range map[string]string{"short": "use at least 16", "missing": "no such file"} {
		f := uiFlags{on: true, tokenFile: filepath.Join(dir, file)}
		if _, err := f.handler(ctx, api, redact.New()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--read-token-file %s: %v, want %q", file, err, want)
		}
	}

	for _, tc := range []struct {
		f    uiFlags
		addr string
		want []string
		not  []string
	}{
		{open, "127.0.0.1:9090", []string{`"url":"http://127.0.0.1:9090/ui/"`}, []string{"note"}},
		{open, "[::]:9090", []string{`"url":"http://[::]:9090/ui/"`, "only loopback clients"}, nil},
		{locked, "0.0.0.0:9090", []string{"0.0.0.0:9090/ui/"}, []string{"note"}},
		{off, "127.0.0.1:9090", nil, []string{"dashboard"}},
	} {
		var b bytes.Buffer
		addr, _ := net.ResolveTCPAddr("tcp", tc.addr)
		tc.f.announce(zerolog.New(&b), addr)
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("announce %s: %q lacks %q", tc.addr, b.String(), w)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(b.String(), w) {
				t.Errorf("announce %s: %q has %q", tc.addr, b.String(), w)
			}
		}
	}
}

// The configuration file and the environment set the dashboard flags like any other.
func TestServe_UIConfig(t *testing.T) {
	file := writeConfig(t, "ui: false\nui_token_file: /etc/circle/keys/ui-token\n")
	got, err := serveFlags(t, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.get("ui") != "false" || got.get("ui-token-file") != "/etc/circle/keys/ui-token" {
		t.Errorf("from the file: --ui %s --ui-token-file %s", got.get("ui"), got.get("ui-token-file"))
	}
	if got, err = serveFlags(t, "", []string{"CIRCLE_UI_TOKEN_FILE=/run/token"}); err != nil || got.get("ui-token-file") != "/run/token" || got.get("ui") != "true" {
		t.Errorf("from the environment: %v --ui %s --ui-token-file %s", err, got.get("ui"), got.get("ui-token-file"))
	}
	if _, err := serveFlags(t, writeConfig(t, "ui: sometimes\n"), nil); err == nil || !strings.Contains(err.Error(), "ui") {
		t.Errorf("a bad ui value: %v", err)
	}
}
