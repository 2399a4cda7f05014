package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every value with a range or a set of choices is refused before the command does
// anything, with exit code 2 (1 for plan, whose 2 means "changes") and a message that names
// the flag. Each case was accepted before: --interval=-1m panicked in time.NewTicker,
// --log-format bogus logged JSON, 20000w wrapped around to a date in 1824.
func TestFlags_OutOfRange(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"serve", "--interval=-1m"}, exitUsage, []string{`"--interval" flag`, "must be at least 100ms"}},
		{[]string{"serve", "--interval", "0s"}, exitUsage, []string{`"--interval" flag`, "at least 100ms"}},
		{[]string{"serve", "--interval", "48h"}, exitUsage, []string{`"--interval" flag`, "at most 24h"}},
		{[]string{"serve", "--interval", "often"}, exitUsage, []string{`"--interval" flag`, "want a duration"}},
		{[]string{"serve", "--log-format", "bogus"}, exitUsage, []string{`"--log-format" flag`, `unknown log format "bogus": use auto, console or json`}},
		{[]string{"serve", "--concurrency", "0"}, exitUsage, []string{`"--concurrency" flag`, "must be at least 1"}},
		{[]string{"serve", "--concurrency", "65"}, exitUsage, []string{`"--concurrency" flag`, "must be at most 64"}},
		{[]string{"serve", "--concurrency", "many"}, exitUsage, []string{`"--concurrency" flag`, "want a whole number from 1 to 64"}},
		{[]string{"serve", "--drift-interval", "-5m"}, exitUsage, []string{`"--drift-interval" flag`, "must be 0 or at least 1s"}},
		{[]string{"serve", "--drift-interval", "1ms"}, exitUsage, []string{`"--drift-interval" flag`, "must be 0 or at least 1s"}},
		{[]string{"serve", "--leader-election-lease", "0s"}, exitUsage, []string{`"--leader-election-lease" flag`, "at least 1s"}},
		{[]string{"serve", "--leader-election-lease", "2562047h"}, exitUsage, []string{`"--leader-election-lease" flag`, "at most 1h"}},
		{[]string{"serve", "--wait", "-1s"}, exitUsage, []string{`"--wait" flag`, "must not be negative"}},
		{[]string{"serve", "--webhook-provider", "gitbucket"}, exitUsage, []string{`"--webhook-provider" flag`, "use github, gitlab, gitea, bitbucket or generic"}},
		{[]string{"serve", "--verify", "commit"}, exitUsage, []string{`"--verify" flag`, "use head or tag"}},
		{[]string{"serve", "--max-file-size", "-1"}, exitUsage, []string{`"--max-file-size" flag`}},
		{[]string{"apply", "--env", "dev", "--wait", "-1m"}, exitUsage, []string{`"--wait" flag`, "must not be negative"}},
		{[]string{"apply", "--env", "dev", "--max-delete-fraction", "2"}, exitUsage, []string{`"--max-delete-fraction" flag`, "from 0 to 1"}},
		{[]string{"apply", "--env", "dev", "--max-delete-fraction", "NaN"}, exitUsage, []string{`"--max-delete-fraction" flag`}},
		{[]string{"reconcile", "--now", "--timeout", "0s"}, exitUsage, []string{`"--timeout" flag`, "at least 1s"}},
		{[]string{"storage", "sync", missing, "file://" + missing, "--concurrency", "-1"}, exitUsage, []string{`"--concurrency" flag`, "must not be negative"}},
		{[]string{"status", "-o", "xml"}, exitUsage, []string{`"-o, --output" flag`, `unknown output format "xml": use text, json or yaml`}},
		{[]string{"render", "--env", "dev", "-o", "toml"}, exitUsage, []string{`"-o, --output" flag`, "use yaml or json"}},
		{[]string{"plan", missing, "--base", "HEAD", "--expiry-days", "100000"}, planFailed, []string{`"--expiry-days" flag`, "at most 36500"}},
		{[]string{"plan", missing, "--base", "HEAD", "--date", "20000w"}, planFailed, []string{"--date", `"20000w": too long: at most 15250 weeks`}},
		{[]string{"license", "verify", missing, "--keyring", missing, "--at", "20000w"}, exitUsage, []string{"--at", "too long: at most 15250 weeks"}},
		{[]string{"license", "verify", missing, "--keyring", missing, "--clock-skew", "-1s"}, exitUsage, []string{`"--clock-skew" flag`, "must not be negative"}},
		{[]string{"license", "revoke", "--key", missing, "--list", missing, "--id", "x", "--reason", "y", "--at", "200000d"}, exitUsage, []string{"--at", "too long: at most 106751 days"}},
		{[]string{"license", "issue", "--key", missing, "--product", "p", "--licensee", "l", "--expires", "20000w"}, exitUsage, []string{"--expires", "too long"}},
		{[]string{"license", "issue", "--key", missing, "--product", "p", "--licensee", "l", "--expires", "30d", "--grace", "99999999999999999999d"}, exitUsage, []string{"--grace", "want a whole number of days"}},
	} {
		code, out, errOut := run(t, c.args...)
		if code != c.code {
			t.Errorf("circle %s: exit %d, want %d\n%s%s", strings.Join(c.args, " "), code, c.code, out, errOut)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("circle %s: the error lacks %s:\n%s", strings.Join(c.args, " "), w, errOut)
			}
		}
	}
}

// The daemon's configuration file and CIRCLE_* variables are held to the flags' ranges;
// the problem is placed at the file's line, or at the variable that set it.
func TestServe_ConfigOutOfRange(t *testing.T) {
	file := writeConfig(t, "listen: \"\"\nsource:\n  url: .\n  interval: 0s\n")
	code, _, errOut := run(t, "serve", "--config", file)
	if code != exitUsage || !strings.Contains(errOut, file+":4: source.interval:") || !strings.Contains(errOut, `"--interval" flag: must be at least 100ms`) {
		t.Errorf("interval 0 in the file: exit %d\n%s", code, errOut)
	}
	t.Setenv("CIRCLE_DRIFT_INTERVAL", "0.5s")
	code, _, errOut = run(t, "serve", "--source", t.TempDir(), "--listen", "")
	if code != exitUsage || !strings.Contains(errOut, "CIRCLE_DRIFT_INTERVAL: drift_interval:") || !strings.Contains(errOut, `"--drift-interval" flag`) {
		t.Errorf("CIRCLE_DRIFT_INTERVAL=0.5s: exit %d\n%s", code, errOut)
	}
}

// The bounds are inclusive, and in range is as before: the last whole week a duration
// holds is accepted (and judges the license as of 292 years from now, when it has expired,
// not as of a date two centuries back, when it was not yet valid).
func TestFlags_InRange(t *testing.T) {
	lic := filepath.Join(exampleLicenses, "circle-demo.lic")
	ring := filepath.Join(exampleLicenses, "issuers.pub")
	code, _, errOut := run(t, "license", "verify", lic, "--keyring", ring, "--at", "15250w", "--clock-skew", "24h")
	if code != exitFailed || !strings.Contains(errOut, "expired") {
		t.Errorf("--at 15250w: exit %d, want 1 (expired)\n%s", code, errOut)
	}
	if d, err := parseDuration("106751d"); err != nil || d != 106751*24*time.Hour {
		t.Errorf("106751d = %s, %v", d, err)
	}
	cmd := newServeCmd()
	if err := cmd.ParseFlags([]string{"--interval", "100ms", "--drift-interval", "0", "--concurrency", "64", "--log-format", "console",
		"--verify", "", "--leader-election-lease", "1h", "--wait", "24h"}); err != nil {
		t.Fatalf("values at the bounds: %v", err)
	}
	for flag, want := range map[string]string{"interval": "100ms", "drift-interval": "0s", "concurrency": "64", "log-format": "console",
		"leader-election-lease": "1h0m0s", "wait": "24h0m0s"} {
		if got := cmd.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %s, want %s", flag, got, want)
		}
	}
	apply := newApplyCmd()
	if err := apply.ParseFlags([]string{"--max-delete-fraction", "1"}); err != nil || apply.Flags().Lookup("max-delete-fraction").Value.String() != "1" {
		t.Errorf("--max-delete-fraction 1: %v", err)
	}
}
