package dashboard_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/circlecore/circle/dashboard"
	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/testenv"
)

// sampleClusters is sample() with what the reconciler now records per environment: dev's
// package set (one advisory), its objects on west with their health and a corrected drift
// with the fields that drifted; staging failing on two targets with two errors (one quoting
// the canary), east never applied, and a drift west could not put back.
func sampleClusters() *reconciler.Status {
	st := sample()
	dev, staging := &st.Environments[0], &st.Environments[1]
	dev.Packages = &reconciler.PackageSet{Resolved: true, Packages: []reconciler.PackageVersion{
		{Name: "api", Version: "1.2.0", License: "Apache-2.0"},
		{Name: "worker", Version: "0.3.1", License: "MIT OR Apache-2.0", Advisories: []reconciler.PackageAdvisory{
			{ID: "CIRCLE-2026-0002", Severity: "HIGH", Summary: "worker before 0.3.2 retries forever", Fixed: "0.3.2"}}},
	}}
	dev.Clusters = map[string]*reconciler.ClusterState{"west": {
		Revision: revNew, HealthAt: now.Add(-30 * time.Second),
		Objects: []reconciler.ObjectState{
			{Subject: "ConfigMap/shop/circle-config", Health: reconciler.HealthCurrent},
			{Subject: "Deployment/shop/api", Health: reconciler.HealthInProgress, Message: "Deployment does not have minimum availability"},
			{Subject: "Job/shop/migrate", Health: reconciler.HealthFailed, Message: "Job has reached the specified backoff limit"},
		},
		Drift: &reconciler.Drift{At: now.Add(-40 * time.Second), Revision: revNew, State: reconciler.DriftCorrected, FieldsKnown: true,
			Objects: []reconciler.DriftedObject{{Subject: "ConfigMap/shop/circle-config", Fields: []string{`data.config\.json`, "metadata.labels.tier"}},
				{Subject: "Service/shop/api", Missing: true}}},
	}}
	staging.Clusters = map[string]*reconciler.ClusterState{
		"east": {Error: "apply staging: Secret/shop/circle-secrets: invalid value " + canary, ErrorAt: now.Add(-95 * time.Second)},
		"west": {Revision: revNew, Error: "apply staging: health: timeout waiting for Deployment/shop/api", ErrorAt: now.Add(-95 * time.Second),
			Drift: &reconciler.Drift{At: now.Add(-10 * time.Second), Revision: revNew, State: reconciler.DriftDrifted,
				Objects: []reconciler.DriftedObject{{Subject: "Deployment/shop/api"}}, Error: "conflict with kubectl"}},
	}
	dev.LastChange = &reconciler.LastChange{From: revOld, To: revNew, At: now.Add(-2 * time.Minute),
		Objects: []reconciler.ChangedObject{
			{ID: "ConfigMap/shop/circle-config-hgdm8bbhcc", Action: "replaced", PreviousName: "circle-config-55496k4g56",
				Fields: []reconciler.ChangedField{{Path: `data."config.json"`, Action: "changed"}}},
			{ID: "Deployment/shop/api", Action: "changed", Fields: []reconciler.ChangedField{
				{Path: "spec.template.spec.volumes[name=config].projected.sources[0].configMap.name", Action: "changed"},
				{Path: "spec.replicas", Action: "changed"}}},
			{ID: "Service/shop/old", Action: "deleted"},
		},
		Files: []reconciler.ChangedFile{{Path: "config.json", Action: "changed"}, {Path: "manifests.yaml", Action: "changed"}}}
	staging.LastChange = &reconciler.LastChange{To: revNew, At: now.Add(-2 * time.Minute), FirstSinceStart: true}
	st.UpdatedAt = now.Add(-10 * time.Second)
	return st
}

// The environment page shows the package set with its advisory, each cluster target's
// objects with their health, its last drift with the fields, and each target's own error;
// the overview a compact form (advisory badge, drift state, health counts, the target's own
// error). No page shows the secret an error quoted.
func TestEnvironment_PackagesObjectsDrift(t *testing.T) {
	src := &fakeSource{st: sampleClusters(), hist: sampleHistory()}
	h := newDashboard(src, dashboard.Options{})
	_, page := get(t, h, "/ui/environments/dev")
	mustContain(t, page, `id="packages-h"`, "2 packages, 1 advisory", `<tr data-package="worker">`, "<code>0.3.1</code>", "MIT OR Apache-2.0",
		`<span class="state failed">HIGH</span> <code>CIRCLE-2026-0002</code> worker before 0.3.2 retries forever (fixed in 0.3.2)`,
		`data-target="west"`, "3 objects, 1 Failed, 1 InProgress", "<code>Deployment/shop/api</code>",
		`<span class="state progressing">InProgress</span>`, "Job has reached the specified backoff limit",
		`<span class="state warn">Corrected</span> drift found`, `<code class="field">data.config\.json</code>, <code class="field">metadata.labels.tier</code>`,
		"<code>Service/shop/api</code>: deleted from the cluster")
	// The last change: both revisions, each object with its action and field paths, the files.
	mustContain(t, page, `id="lastchange-h"`, "3 objects, 2 files changed",
		"<code>ConfigMap/shop/circle-config-hgdm8bbhcc</code> <span class=\"note\">(was circle-config-55496k4g56)</span>",
		`<span class="state warn">replaced</span>`, `<code class="field">data.&#34;config.json&#34;</code> changed`,
		`<code class="field">spec.template.spec.volumes[name=config].projected.sources[0].configMap.name</code> changed, <code class="field">spec.replicas</code> changed`,
		`<code>Service/shop/old</code>`, `<span class="state failed">deleted</span>`, "<li><code>manifests.yaml</code> changed</li>")
	if !strings.Contains(page, "<code>"+revOld[:12]+"</code></a> → <a href=\"/ui/revisions/"+revNew+"\"") {
		t.Errorf("the last change does not read \"from → to\"")
	}
	_, page = get(t, h, "/ui/environments/staging")
	mustContain(t, page, "first build since start")
	mustContain(t, page, `data-target="east"`, `aria-label="Error of target east"`, "invalid value **redacted:",
		`aria-label="Error of target west"`, "timeout waiting for Deployment/shop/api",
		`<span class="state failed">Drifted</span>`, "this cluster connection tells drifted objects, not fields", "conflict with kubectl")
	noCanary(t, "staging's page", page)

	_, page = get(t, h, "/ui/")
	mustContain(t, page, `<span class="badge warn">1 package advisory</span>`, `<span class="state drift warn">Corrected</span>`,
		"3 objects, 1 Failed, 1 InProgress", `<span class="state drift failed">Drifted</span>`,
		"apply staging: health: timeout waiting for Deployment/shop/api")
	noCanary(t, "the overview", page)
	if n := strings.Count(page, ">apply staging: Secret/shop/circle-secrets: invalid value"); n != 1 {
		t.Errorf("east's own error appears %d times on the overview, want once", n)
	}
}

// The new sections in a real browser (Debian's headless Chromium, as
// TestServe_DashboardInBrowser): the dashboard on the fixture status, each section
// rendered with its data, no sideways scrolling at phone width, and an amended status (a
// drift the drift check found, same revision) reaching the open page through the event
// stream. Screenshots go to $CIRCLE_ARTIFACTS or the test's temporary folder.
func TestEnvironment_InBrowser(t *testing.T) {
	chromium, err := testenv.Tool(testenv.ToolChromium)
	if err != nil {
		t.Fatal(err) // make testenv installs it; a missing tool fails, never skips
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := &fakeSource{st: sampleClusters(), hist: sampleHistory()}
	srv := httptest.NewServer(newDashboard(src, dashboard.Options{}))
	defer srv.Close()

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Flag("headless", "new"), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	if err := chromedp.Do(browser, chromedp.Navigate(srv.URL+"/ui/environments/dev"), chromedp.WaitVisible(chromedp.CSS(`table.packages`))); err != nil {
		t.Fatalf("load dev's page: %v", err)
	}
	for css, want := range map[string]string{
		`#packages-h`:                          "Packages",
		`tr[data-package="worker"]`:            "CIRCLE-2026-0002",
		`section[data-target="west"] .drift`:   `data.config\.json`,
		`section[data-target="west"] .objects`: "Job has reached the specified backoff limit",
		`section[data-target="west"] caption`:  "3 objects, 1 Failed, 1 InProgress",
		`table.changes`:                        "projected.sources[0].configMap.name",
	} {
		if got := browserText(t, browser, css); !strings.Contains(got, want) {
			t.Errorf("%s: %q lacks %q", css, got, want)
		}
	}
	saveShot(t, browser, "dashboard-env-packages-drift.png")
	if err := chromedp.Do(browser, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	if wide, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); err != nil || wide {
		t.Errorf("dev's page scrolls sideways at phone width (%v)", err)
	}
	saveShot(t, browser, "dashboard-env-packages-drift-phone.png")
	if err := chromedp.Do(browser, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	// staging: each failing target's own error, and a drift not put back.
	if err := chromedp.Do(browser, chromedp.Navigate(srv.URL+"/ui/environments/staging"), chromedp.WaitVisible(chromedp.CSS(`section[data-target="west"]`))); err != nil {
		t.Fatal(err)
	}
	if got := browserText(t, browser, `section[data-target="east"] pre.message`); !strings.Contains(got, "invalid value") || strings.Contains(got, canary) {
		t.Errorf("east's error: %q", got)
	}
	if got := browserText(t, browser, `section[data-target="west"]`); !strings.Contains(got, "timeout waiting") || !strings.Contains(got, "Drifted") {
		t.Errorf("west: %q", got)
	}

	// The overview, live: the drift check amends the status (same revision, same
	// reconcile time); the open page shows the new drift without a reload.
	if err := chromedp.Do(browser, chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`table.grid`))); err != nil {
		t.Fatal(err)
	}
	if got := browserText(t, browser, `tbody[data-env="dev"]`); !strings.Contains(got, "Corrected") || !strings.Contains(got, "1 package advisory") {
		t.Errorf("dev on the overview: %q", got)
	}
	if _, err := chromedp.Run(browser, chromedp.Poll[bool](`document.getElementById('live').textContent.startsWith('Live')`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the event stream did not open: %v", err)
	}
	amended := sampleClusters()
	amended.Environments[0].Clusters["west"].Drift.State = reconciler.DriftDrifted
	amended.UpdatedAt = now
	src.set(amended)
	if _, err := chromedp.Run(browser, chromedp.Poll[bool](`document.querySelector('tbody[data-env="dev"] .drift').textContent === 'Drifted'`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the amended drift never reached the open page: %v (%q)", err, browserText(t, browser, `tbody[data-env="dev"]`))
	}
	saveShot(t, browser, "dashboard-overview-drift.png")
	if html, err := chromedp.Run(browser, chromedp.OuterHTML(chromedp.CSS("html"))); err != nil || strings.Contains(html, canary) {
		t.Errorf("the browser's page shows the secret (%v)", err)
	}
}

func browserText(t *testing.T, browser context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

func saveShot(t *testing.T, browser context.Context, name string) {
	t.Helper()
	shot, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("CIRCLE_ARTIFACTS") // a CI job uploads it
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifact: %s", p)
}
