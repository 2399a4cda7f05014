package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circlecore/circle/dashboard"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/schema"
	"github.com/circlecore/circle/sources/git"
	"github.com/circlecore/circle/state"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// canary is a secret value: the redactor knows it, and no page may show it.
const canary = "CANARY-5d1e-never-in-a-page"

// now is the tests' clock, so ages are fixed.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeSource is a Source whose status and histories a test sets.
type fakeSource struct {
	mu        sync.Mutex
	st        *reconciler.Status
	hist      map[string][]state.Entry
	noHistory bool
	err       error
	histErr   error
}

func (f *fakeSource) Status(context.Context) (*reconciler.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, f.err
}

func (f *fakeSource) History(_ context.Context, env string, n int) ([]state.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.noHistory:
		return nil, fmt.Errorf("history: %w", dashboard.ErrNoHistory)
	case f.histErr != nil:
		return nil, f.histErr
	}
	h := f.hist[env]
	if n > 0 && len(h) > n {
		h = h[:n]
	}
	return h, nil
}

func (f *fakeSource) set(st *reconciler.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st = st
}

const (
	revOld = "0123456789abcdef0123456789abcdef01234567"
	revNew = "fedcba9876543210fedcba9876543210fedcba98"
)

// sample is a status with one environment of each kind: dev in sync on a storage and a
// cluster target; staging whose apply failed on one of two clusters, with a message
// that quotes the canary and tries to inject markup; prod whose revision is invalid, on a
// license that expires in ten days.
func sample() *reconciler.Status {
	good := func(rev string, at time.Time) *reconciler.Good {
		return &reconciler.Good{Revision: rev, At: at, Values: 12, Secrets: 3, Inputs: "sha256:inputs"}
	}
	return &reconciler.Status{
		Revision: revNew, ReconciledAt: now.Add(-90 * time.Second), Ready: false, Reason: reconciler.ReasonApplyFailed,
		Message: "staging: target east: password " + canary + " refused", Files: 42,
		Stages: []string{"snapshot", "settings", "load", "build", "publish", "apply", "record"},
		Problems: []repo.Problem{
			{Issue: schema.Issue{File: "config/prod/db.yaml", Line: 3, Column: 9, Path: "db.port", Message: "conflicting values \"x\" and int"}, Envs: []string{"prod"}},
			{Issue: schema.Issue{File: "circle.yaml", Message: "unused key " + canary}},
		},
		Environments: []reconciler.EnvStatus{
			{Name: "dev", Ready: true, Reason: reconciler.ReasonSucceeded, LastGood: good(revNew, now.Add(-2*time.Minute)),
				Published: &reconciler.Published{Revision: revNew, Seq: 7, Files: 5, Uploaded: 2},
				Applied:   map[string]*reconciler.Applied{"west": {Revision: revNew, At: now.Add(-100 * time.Second), Changes: 3, Objects: 5}}},
			{Name: "staging", Ready: false, Reason: reconciler.ReasonApplyFailed,
				Message:  "target east: <script>alert(1)</script> token " + canary + "\nsecond line of the error",
				LastGood: good(revNew, now.Add(-2*time.Minute)), Published: &reconciler.Published{Revision: revNew, Seq: 6, Files: 5},
				Applied: map[string]*reconciler.Applied{
					"east": {Revision: revOld, At: now.Add(-3 * time.Hour), Changes: 1, Objects: 5},
					"west": {Revision: revNew, At: now.Add(-100 * time.Second), Changes: 2, Objects: 5},
				}},
			{Name: "prod", Ready: false, Reason: reconciler.ReasonInvalid, Message: "config/prod/db.yaml:3:9: db.port: conflicting values",
				LastGood: good(revOld, now.Add(-50*time.Hour))},
		},
		Licenses: []pipeline.LicenseStatus{
			{File: "licenses/acme.lic", ID: "L-1", Licensee: "Acme", Product: "shop", ExpiresAt: now.Add(10*24*time.Hour + time.Hour),
				State: "valid", Expiring: true, Environments: []string{"prod"}},
			{File: "licenses/ok.lic", Licensee: "Fine Ltd", ExpiresAt: now.Add(300 * 24 * time.Hour), State: "valid", Environments: []string{"dev", "prod"}},
			{File: "licenses/old.lic", Licensee: "Gone", Reason: "revoked", Environments: []string{"staging"}},
		},
	}
}

func sampleHistory() map[string][]state.Entry {
	return map[string][]state.Entry{
		"dev": {
			{Revision: revNew, At: now.Add(-2 * time.Minute), Duration: 1500 * time.Millisecond, Ready: true, Reason: reconciler.ReasonSucceeded},
			{Revision: revOld, At: now.Add(-3 * time.Hour), Duration: 340 * time.Millisecond, Ready: false, Reason: reconciler.ReasonBuildFailed,
				Message: "build dev: secret " + canary + " leaked\nmore"},
		},
		"staging": {
			{Revision: revNew, At: now.Add(-2 * time.Minute), Duration: 95 * time.Second, Ready: false, Reason: reconciler.ReasonApplyFailed, Message: "target east: timeout"},
		},
	}
}

func newDashboard(src dashboard.Source, opts dashboard.Options) http.Handler {
	if opts.Redactor == nil {
		opts.Redactor = redact.New()
		opts.Redactor.Add(canary)
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	return dashboard.New(src, opts)
}

// get serves one GET from a loopback client.
func get(t testing.TB, h http.Handler, target string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = "127.0.0.1:50000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result(), rec.Body.String()
}

func mustContain(t *testing.T, page string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func noCanary(t *testing.T, where, body string) {
	t.Helper()
	if strings.Contains(body, canary) {
		t.Errorf("%s shows the secret", where)
	}
}

func TestOverview(t *testing.T) {
	src := &fakeSource{st: sample(), hist: sampleHistory()}
	resp, page := get(t, newDashboard(src, dashboard.Options{}), "/ui/")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /ui/ = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	mustContain(t, page,
		// the daemon's last reconcile
		`revision <a href="/ui/revisions/`+revNew+`"`, "<code>fedcba987654</code>", "1 min ago", "ApplyFailed", "2 problems",
		// each environment × target
		`data-env="dev"`, `data-env="staging"`, `data-env="prod"`,
		`<a href="/ui/environments/dev">dev</a>`, "publish <span class=\"kind\">storage</span>", "east <span class=\"kind\">cluster</span>",
		"3 environments: <strong>1</strong> in sync, <strong>2</strong> failed",
		`<span class="state sync">In sync</span>`, `<span class="state failed">Failed</span> <span class="note">retrying</span>`,
		"<code>0123456789ab</code>", // east still has the old revision
		"3 h ago", "2 days ago", "status only",
		// the last error on one line, the markup escaped, the secret masked
		"ApplyFailed: target east: &lt;script&gt;alert(1)&lt;/script&gt; token **redacted:", "** · second line of the error</span>",
		"Invalid: config/prod/db.yaml:3:9: db.port: conflicting values",
		// licenses that need attention, on the overview and on their environment's row
		"Licenses that need attention", "<code>licenses/acme.lic</code> (Acme)", "in 10 days", "used by prod",
		`<span class="badge warn">license licenses/acme.lic expires in 10 days</span>`, `<span class="badge failed">license licenses/old.lic refused</span>`,
		`<span class="state failed">Refused</span>`, "revoked",
		// recent results, oldest first
		`<ol class="recent" aria-label="Last 2 reconciles, oldest first"><li class="failed"`,
	)
	if strings.Contains(page, "<script>alert") {
		t.Error("markup from a message is not escaped")
	}
	if strings.Contains(page, "licenses/ok.lic") {
		t.Error("a license that needs nothing is on the overview")
	}
	// Each environment is one row group, with a row per target, in the status's order.
	if d, s, p := strings.Index(page, `data-env="dev"`), strings.Index(page, `data-env="staging"`), strings.Index(page, `data-env="prod"`); !(d < s && s < p) {
		t.Error("environments are not in the status's order")
	}
	staging := page[strings.Index(page, `data-env="staging"`):strings.Index(page, `data-env="prod"`)]
	if strings.Count(staging, "<tr>") != 3 || strings.Count(staging, "In sync") != 2 || strings.Count(staging, "retrying") != 1 {
		t.Errorf("staging: want publish and west in sync, east failed and retrying:\n%s", staging)
	}
	// The error is on the failed target's row only; the recent results and the license
	// badge on the first row.
	if strings.Count(staging, "ApplyFailed: target east") != 1 || strings.Count(staging, `<ol class="recent"`) != 1 ||
		strings.Count(staging, "licenses/old.lic refused") != 1 {
		t.Errorf("staging: the error or the recent results are repeated:\n%s", staging)
	}
	noCanary(t, "the overview", page)
}

// A storage target's status has no time; the history says since when it holds its
// revision (an unchanged environment keeps the build of the revision that first had it).
func TestOverview_SinceFromHistory(t *testing.T) {
	st := &reconciler.Status{Revision: revNew, ReconciledAt: now, Ready: true, Environments: []reconciler.EnvStatus{
		{Name: "qa", Ready: true, Reason: reconciler.ReasonSucceeded, LastGood: &reconciler.Good{Revision: revNew, At: now.Add(-time.Minute)},
			Published: &reconciler.Published{Revision: revOld}},
	}}
	hist := map[string][]state.Entry{"qa": {
		{Revision: revNew, At: now.Add(-time.Minute), Ready: true},
		{Revision: revOld, At: now.Add(-2 * time.Hour), Ready: true},
		{Revision: revOld, At: now.Add(-3 * time.Hour), Ready: true},
		{Revision: revOld, At: now.Add(-4 * time.Hour), Ready: false},
	}}
	_, page := get(t, newDashboard(&fakeSource{st: st, hist: hist}, dashboard.Options{}), "/ui/")
	mustContain(t, page, `<td data-label="Since"><time datetime="2026-03-01T09:00:00Z" title="2026-03-01 09:00:00 UTC" data-age>3 h ago</time></td>`)
	_, page = get(t, newDashboard(&fakeSource{st: st}, dashboard.Options{}), "/ui/")
	mustContain(t, page, `<td data-label="Since">—</td>`)
}

func TestOverview_Empty(t *testing.T) {
	h := newDashboard(&fakeSource{}, dashboard.Options{})
	resp, page := get(t, h, "/ui/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/ before a reconcile = %d", resp.StatusCode)
	}
	mustContain(t, page, "No revision reconciled yet", `data-stamp=""`)

	_, page = get(t, newDashboard(&fakeSource{st: &reconciler.Status{Revision: revNew, ReconciledAt: now, Ready: true}, noHistory: true}, dashboard.Options{}), "/ui/")
	mustContain(t, page, "0 environments", "just now")
}

func TestOverview_HistoryNotes(t *testing.T) {
	src := &fakeSource{st: sample(), noHistory: true}
	_, page := get(t, newDashboard(src, dashboard.Options{}), "/ui/")
	mustContain(t, page, "The daemon keeps no history: run circle serve with --state-dir.")

	src = &fakeSource{st: sample(), histErr: errors.New("bbolt says " + canary)}
	_, page = get(t, newDashboard(src, dashboard.Options{}), "/ui/")
	mustContain(t, page, "History unreadable: bbolt says **redacted:")
	noCanary(t, "the overview", page)
}

func TestOverview_StatusUnreadable(t *testing.T) {
	src := &fakeSource{err: errors.New("status.json: " + canary + " garbled")}
	resp, page := get(t, newDashboard(src, dashboard.Options{}), "/ui/")
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("unreadable status = %d", resp.StatusCode)
	}
	mustContain(t, page, "Status unreadable", "garbled")
	noCanary(t, "the error page", page)
	for _, p := range []string{"/ui/environments/dev", "/ui/revisions/" + revNew} {
		if resp, _ := get(t, newDashboard(src, dashboard.Options{}), p); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s with an unreadable status = %d", p, resp.StatusCode)
		}
	}
}

func TestEnvironment(t *testing.T) {
	src := &fakeSource{st: sample(), hist: sampleHistory()}
	h := newDashboard(src, dashboard.Options{})

	resp, page := get(t, h, "/ui/environments/staging")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET staging = %d", resp.StatusCode)
	}
	mustContain(t, page,
		"<title>staging · Circle</title>", `<a href="/ui/environments/staging" aria-current="page">staging</a>`,
		// the whole message, escaped and redacted
		"<pre class=\"message\"", "second line of the error", "&lt;script&gt;",
		// last good, published, applied per target
		"12 values, 3 of them secret", "sequence 6: 5 files, 0 uploaded",
		`<th scope="row" data-label="Target">east</th>`, `<th scope="row" data-label="Target">west</th>`,
		`<td data-label="Changes" class="num">1</td>`,
		// its license, and the problem every environment shares
		"licenses/old.lic", "revoked", "unused key **redacted:",
		// history with durations and results
		"Last 1 reconciles, newest first", "1m35s", "target east: timeout",
	)
	if strings.Contains(page, "db.port") {
		t.Error("staging shows prod's problem")
	}
	noCanary(t, "staging's page", page)

	_, page = get(t, h, "/ui/environments/dev")
	mustContain(t, page, "1.5 s", "340 ms", "BuildFailed", "build dev: secret **redacted:", "sequence 7: 5 files, 2 uploaded",
		"licenses/ok.lic", "Fine Ltd")
	noCanary(t, "dev's page", page)

	_, page = get(t, h, "/ui/environments/prod")
	mustContain(t, page, "config/prod/db.yaml:3:9", "db.port", "No cluster target has been applied to", "nothing published",
		"No reconcile recorded yet", `<span class="state warn">Expiring</span>`)

	if resp, page := get(t, h, "/ui/environments/nope"); resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "no environment nope") {
		t.Errorf("unknown environment = %d", resp.StatusCode)
	}
	if resp, _ := get(t, newDashboard(&fakeSource{}, dashboard.Options{}), "/ui/environments/dev"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an environment before any reconcile = %d", resp.StatusCode)
	}

	src.noHistory = true
	_, page = get(t, h, "/ui/environments/dev")
	mustContain(t, page, "--state-dir")
}

// The history table says when it shows no more than the page's limit.
func TestEnvironment_HistoryLimit(t *testing.T) {
	var hist []state.Entry
	for i := range 5 {
		hist = append(hist, state.Entry{Revision: fmt.Sprintf("%040d", i), At: now.Add(-time.Duration(i) * time.Minute), Ready: true, Reason: "Succeeded"})
	}
	src := &fakeSource{st: sample(), hist: map[string][]state.Entry{"dev": hist}}
	_, page := get(t, newDashboard(src, dashboard.Options{HistoryLimit: 3}), "/ui/environments/dev")
	mustContain(t, page, "Last 3 reconciles, newest first (the page shows at most 3)")
	if strings.Count(page, `<td data-label="Took" class="num">—</td>`) != 3 {
		t.Error("want 3 history rows, each without a duration")
	}
}

func TestRevision(t *testing.T) {
	src := &fakeSource{st: sample(), hist: sampleHistory()}
	h := newDashboard(src, dashboard.Options{})

	resp, page := get(t, h, "/ui/revisions/"+revNew)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the last revision = %d", resp.StatusCode)
	}
	mustContain(t, page, "Revision <code class=\"name\">fedcba987654</code>", revNew, "the daemon reconciled last",
		"config/prod/db.yaml:3:9", "west", "1.5 s")
	noCanary(t, "the revision page", page)
	if strings.Contains(page, "Commit</h2>") {
		t.Error("a commit section without a commit")
	}

	// A Git revision's commit: subject, body, author and whether it is signed.
	withCommit := sample()
	withCommit.Commit = &git.Commit{Author: "Ada <ada@example.com>", Date: time.Now().Add(-time.Hour), Message: "Bump prod\n\nBecause <reasons>.\n", Signed: true}
	_, page = get(t, newDashboard(&fakeSource{st: withCommit, hist: sampleHistory()}, dashboard.Options{}), "/ui/revisions/"+revNew)
	mustContain(t, page, "<strong>Bump prod</strong>", "Because &lt;reasons&gt;.", "Ada &lt;ada@example.com&gt;", "signed (the environments")

	resp, page = get(t, h, "/ui/revisions/"+revOld)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET an older revision = %d", resp.StatusCode)
	}
	mustContain(t, page, "east", "BuildFailed", "340 ms")
	if strings.Contains(page, "the daemon reconciled last") || strings.Contains(page, "db.port") {
		t.Error("an older revision shows the last one's facts")
	}
	noCanary(t, "the revision page", page)

	if resp, page := get(t, h, "/ui/revisions/sha256:"+strings.Repeat("0", 64)); resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "Unknown revision") {
		t.Errorf("unknown revision = %d", resp.StatusCode)
	}
	if resp, _ := get(t, newDashboard(&fakeSource{}, dashboard.Options{}), "/ui/revisions/"+revNew); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a revision before any reconcile = %d", resp.StatusCode)
	}
}

// No page and no event shows a secret, whatever string of the status it hides in.
func TestNoSecretAnywhere(t *testing.T) {
	st := sample()
	st.Revision = "rev-" + canary
	st.Environments[0].Name = "env-" + canary
	st.Environments[0].Applied["target-"+canary] = &reconciler.Applied{Revision: canary, At: now}
	st.Environments[1].Reason = "Reason" + canary
	st.Licenses[0].Licensee = canary
	st.Stages = append(st.Stages, canary)
	src := &fakeSource{st: st, hist: map[string][]state.Entry{"env-" + canary: {{Revision: canary, Reason: canary, Message: canary, At: now}}}}
	h := newDashboard(src, dashboard.Options{})
	for _, p := range []string{"/ui/", "/ui/environments/env-" + canary, "/ui/environments/staging", "/ui/environments/prod",
		"/ui/revisions/" + canary, "/ui/revisions/rev-" + canary, "/ui/nothing-" + canary, "/ui/static/style.css", "/ui/static/app.js"} {
		resp, body := get(t, h, p)
		if resp.StatusCode >= 500 {
			t.Errorf("%s = %d", p, resp.StatusCode)
		}
		noCanary(t, p, body)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ev := openEvents(t, srv, nil)
	defer ev.Close()
	noCanary(t, "the event stream", ev.next(t))
}

func TestAuth(t *testing.T) {
	src := &fakeSource{st: sample()}
	open := newDashboard(src, dashboard.Options{})
	locked := newDashboard(src, dashboard.Options{Token: "s3cret-token-of-the-ui"})
	for _, tc := range []struct {
		name   string
		h      http.Handler
		method string
		remote string
		setup  func(*http.Request)
		want   int
	}{
		{"loopback v4, no token", open, "GET", "127.0.0.1:4000", nil, 200},
		{"loopback v6, no token", open, "GET", "[::1]:4000", nil, 200},
		{"loopback v4-in-v6, no token", open, "GET", "[::ffff:127.0.0.1]:4000", nil, 200},
		{"remote, no token", open, "GET", "10.1.2.3:4000", nil, 403},
		{"remote without a port", open, "GET", "10.1.2.3", nil, 403},
		{"HEAD", open, "HEAD", "127.0.0.1:4000", nil, 200},
		{"POST is refused", open, "POST", "127.0.0.1:4000", nil, 405},
		{"DELETE is refused", locked, "DELETE", "10.1.2.3:4000", nil, 405},
		{"token, none given", locked, "GET", "127.0.0.1:4000", nil, 401},
		{"token, bearer", locked, "GET", "10.1.2.3:4000", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret-token-of-the-ui") }, 200},
		{"token, wrong bearer", locked, "GET", "10.1.2.3:4000", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, 401},
		{"token, basic", locked, "GET", "10.1.2.3:4000", func(r *http.Request) { r.SetBasicAuth("anyone", "s3cret-token-of-the-ui") }, 200},
		{"token, wrong basic", locked, "GET", "10.1.2.3:4000", func(r *http.Request) { r.SetBasicAuth("s3cret-token-of-the-ui", "x") }, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/ui/", nil)
			req.RemoteAddr = tc.remote
			if tc.setup != nil {
				tc.setup(req)
			}
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("got %d, want %d", rec.Code, tc.want)
			}
			switch tc.want {
			case 401:
				if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
					t.Error("401 without a basic challenge: browsers would not prompt")
				}
			case 405:
				if rec.Header().Get("Allow") != "GET, HEAD" {
					t.Errorf("Allow = %q", rec.Header().Get("Allow"))
				}
			}
			if rec.Code != 200 && strings.Contains(rec.Body.String(), "staging") {
				t.Error("a refused request sees the status")
			}
			if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("security headers missing")
			}
		})
	}
}

func TestStatic(t *testing.T) {
	h := newDashboard(&fakeSource{}, dashboard.Options{})
	_, page := get(t, h, "/ui/")
	for _, tc := range []struct{ file, ctype, marker string }{
		{"style.css", "text/css; charset=utf-8", "prefers-color-scheme: dark"},
		{"app.js", "text/javascript; charset=utf-8", "EventSource"},
	} {
		i := strings.Index(page, "/ui/static/"+tc.file+"?v=")
		if i < 0 {
			t.Fatalf("the page does not link %s with a version", tc.file)
		}
		url := page[i : i+strings.IndexByte(page[i:], '"')]
		resp, body := get(t, h, url)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.ctype || !strings.Contains(body, tc.marker) {
			t.Errorf("%s = %d %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("%s: Cache-Control %q", url, cc)
		}
		if resp, _ := get(t, h, "/ui/static/"+tc.file+"?v=old"); resp.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s with a stale version: Cache-Control %q", tc.file, resp.Header.Get("Cache-Control"))
		}
	}
	if resp, _ := get(t, h, "/ui/static/nope.css"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing asset = %d", resp.StatusCode)
	}
	if resp, page := get(t, h, "/ui/no/such/page"); resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "There is no page at /ui/no/such/page") {
		t.Errorf("unknown page = %d", resp.StatusCode)
	}
}

// Works without JavaScript: a page refreshes itself when scripts are off, and links
// every environment and revision with plain anchors.
func TestPagesWithoutScript(t *testing.T) {
	_, page := get(t, newDashboard(&fakeSource{st: sample()}, dashboard.Options{}), "/ui/")
	mustContain(t, page, `<noscript><meta http-equiv="refresh" content="30"></noscript>`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`, `<html lang="en">`, `<main id="main">`,
		`<th scope="col">State</th>`, `<a class="skip" href="#main">`)
}

// events is an open /ui/events stream.
type events struct {
	resp *http.Response
	buf  []byte
}

func openEvents(t *testing.T, srv *httptest.Server, header http.Header) *events {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ui/events", nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /ui/events = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &events{resp: resp}
}

// next returns the next message of the stream (comments included), failing after 5 s.
func (e *events) next(t *testing.T) string {
	t.Helper()
	deadline := time.AfterFunc(5*time.Second, func() { e.resp.Body.Close() })
	defer deadline.Stop()
	for {
		if i := strings.Index(string(e.buf), "\n\n"); i >= 0 {
			msg := string(e.buf[:i])
			e.buf = e.buf[i+2:]
			return msg
		}
		p := make([]byte, 4096)
		n, err := e.resp.Body.Read(p)
		e.buf = append(e.buf, p[:n]...)
		if err != nil {
			t.Fatalf("event stream: %v (got %q)", err, e.buf)
		}
	}
}

func (e *events) Close() { e.resp.Body.Close() }

func TestEvents(t *testing.T) {
	src := &fakeSource{}
	done := make(chan struct{})
	srv := httptest.NewServer(newDashboard(src, dashboard.Options{Poll: 5 * time.Millisecond, Done: done}))
	defer srv.Close()

	ev := openEvents(t, srv, nil)
	defer ev.Close()
	if msg := ev.next(t); msg != "retry: 3000" {
		t.Errorf("first message %q", msg)
	}
	// Before any reconcile: an empty stamp, which the page before any reconcile also has.
	if msg := ev.next(t); msg != `event: status`+"\n"+`data: {"stamp":"","ready":false}` {
		t.Errorf("status before any reconcile: %q", msg)
	}
	st := sample()
	src.set(st)
	msg := ev.next(t)
	wantStamp := st.ReconciledAt.Format(time.RFC3339Nano) + " " + revNew
	if !strings.HasPrefix(msg, "event: status\ndata: ") || !strings.Contains(msg, `"stamp":"`+wantStamp+`"`) || !strings.Contains(msg, `"reason":"ApplyFailed"`) {
		t.Errorf("status after a reconcile: %q", msg)
	}
	// The page carries the same stamp: the script compares the two.
	_, page := get(t, newDashboard(src, dashboard.Options{}), "/ui/")
	mustContain(t, page, `data-stamp="`+wantStamp+`"`, `data-events="/ui/events"`)

	// The same status again is no event; a new reconcile (even of the same revision) is.
	next := *st
	next.ReconciledAt = st.ReconciledAt.Add(time.Minute)
	time.Sleep(20 * time.Millisecond)
	src.set(&next)
	if msg := ev.next(t); !strings.Contains(msg, next.ReconciledAt.Format(time.RFC3339Nano)) {
		t.Errorf("reconciled again: %q", msg)
	}
	// An unreadable status is said as a comment; the page keeps what it shows.
	src.mu.Lock()
	src.err = errors.New("gone")
	src.mu.Unlock()
	if msg := ev.next(t); msg != ": status unreadable" {
		t.Errorf("unreadable status: %q", msg)
	}
	// Closing Done ends the stream: a server's Shutdown is not held up by it.
	close(done)
	ev.resp.Body.(io.Reader).Read(make([]byte, 0))
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := ev.resp.Body.Read(make([]byte, 1024))
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stream did not end when Done closed")
		}
	}
}

// An idle stream sends a comment now and then, so proxies keep it open.
func TestEvents_Heartbeat(t *testing.T) {
	defer dashboard.SetHeartbeat(50 * time.Millisecond)()
	srv := httptest.NewServer(newDashboard(&fakeSource{st: sample()}, dashboard.Options{Poll: 10 * time.Millisecond}))
	defer srv.Close()
	ev := openEvents(t, srv, nil)
	defer ev.Close()
	ev.next(t) // retry
	ev.next(t) // status
	start := time.Now()
	if msg := ev.next(t); msg != ": ping" {
		t.Errorf("an idle stream sent %q", msg)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("heartbeat after %s, want about 50 ms", d)
	}
}

// HEAD of the stream is its headers, not a stream that never ends.
func TestEvents_Head(t *testing.T) {
	req := httptest.NewRequest(http.MethodHead, "/ui/events", nil)
	req.RemoteAddr = "127.0.0.1:1"
	rec := httptest.NewRecorder()
	newDashboard(&fakeSource{st: sample()}, dashboard.Options{}).ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/event-stream" || rec.Body.Len() != 0 {
		t.Errorf("HEAD /ui/events = %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
}

func TestEvents_Auth(t *testing.T) {
	srv := httptest.NewServer(newDashboard(&fakeSource{st: sample()}, dashboard.Options{Token: "s3cret-token-of-the-ui"}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/ui/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("events without the token = %d", resp.StatusCode)
	}
	ev := openEvents(t, srv, http.Header{"Authorization": {"Bearer s3cret-token-of-the-ui"}})
	ev.next(t)
	if msg := ev.next(t); !strings.Contains(msg, revNew) {
		t.Errorf("events with the token: %q", msg)
	}
	ev.Close()
}

// While the daemon reconciles a new revision, the page says so: the box names the revision
// in progress, and each target not already at it is Progressing. The stamp changes, so an
// open page hears of it.
func TestOverview_Progressing(t *testing.T) {
	st := &reconciler.Status{Revision: revOld, ReconciledAt: now, Ready: true, Environments: []reconciler.EnvStatus{
		{Name: "qa", Ready: true, Reason: reconciler.ReasonSucceeded, LastGood: &reconciler.Good{Revision: revOld, At: now},
			Published: &reconciler.Published{Revision: revOld}},
	}}
	_, idle := get(t, newDashboard(&fakeSource{st: st}, dashboard.Options{}), "/ui/")
	if strings.Contains(idle, "Progressing") {
		t.Error("idle, the page says Progressing")
	}
	busy := *st
	busy.Reconciling = &reconciler.Reconciling{Revision: revNew, Since: now.Add(-5 * time.Second)}
	_, page := get(t, newDashboard(&fakeSource{st: &busy}, dashboard.Options{}), "/ui/")
	mustContain(t, page, "Reconciling revision", "fedcba987654", `<span class="state warn">Progressing</span>`)
	_, envPage := get(t, newDashboard(&fakeSource{st: &busy}, dashboard.Options{}), "/ui/environments/qa")
	mustContain(t, envPage, "Progressing")
}

// Event streams are capped: past MaxStreams a stream is refused with 503 and Retry-After, and
// a closed stream frees its place.
func TestEvents_StreamCap(t *testing.T) {
	srv := httptest.NewServer(newDashboard(&fakeSource{st: sample()}, dashboard.Options{MaxStreams: 2, Poll: 20 * time.Millisecond}))
	defer srv.Close()
	a, b := openEvents(t, srv, nil), openEvents(t, srv, nil)
	a.next(t)
	b.next(t)
	resp, err := http.Get(srv.URL + "/ui/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a third stream = %d (Retry-After %q), want 503", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(srv.URL + "/ui/events")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream's place was never freed: %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Close()
}
