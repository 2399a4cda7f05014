package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/circlecore/circle/registry"
)

func TestPackage_List(t *testing.T) {
	code, out, errOut := run(t, "package", "list", examplesDir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"NAME    VERSIONS  LICENSE", "api     1.2.0     Apache-2.0         The shop's public HTTP API.", "worker  0.3.1     MIT OR Apache-2.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	dir := copyExamples(t)
	write(t, dir, "packages/worker/0.4.0-beta.1.yaml", "name: worker\nversion: 0.4.0-beta.1\nlicense: MIT\nenvironments: [dev]\n")
	code, out, _ = run(t, "package", "list", dir, "--env", "prod", "-o", "json")
	var entries []listEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || code != exitOK {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	if len(entries) != 2 || strings.Join(entries[1].Versions, ",") != "0.3.1" {
		t.Errorf("prod list = %+v: the beta is enabled in dev only", entries)
	}
	if _, out, _ = run(t, "package", "list", dir, "--env", "dev"); !strings.Contains(out, "0.3.1, 0.4.0-beta.1") {
		t.Errorf("dev list:\n%s", out)
	}
	if code, _, errOut := run(t, "package", "list", examplesDir, "--env", "qa"); code != exitUsage || !strings.Contains(errOut, `environment "qa" is not defined`) {
		t.Errorf("unknown env: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, "package", "list", filepath.Join(t.TempDir(), "nope")); code != exitUsage || !strings.Contains(errOut, "nope") {
		t.Errorf("missing folder: exit %d, %q", code, errOut)
	}
}

func TestPackage_Show(t *testing.T) {
	code, out, errOut := run(t, "package", "show", "api", examplesDir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"api 1.2.0  (packages/api/1.2.0.yaml)", "license:       Apache-2.0", "digest:        sha256:",
		"    worker ^0.3.0", "artifacts/api-1.2.0.tar.txt  49 bytes  sha256:b57f7e04", "verified", "advisories:    none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, "package", "show", "worker@0.3.1", examplesDir, "-o", "json")
	var vs []map[string]any
	if err := json.Unmarshal([]byte(out), &vs); err != nil || code != exitOK || len(vs) != 1 || vs[0]["version"] != "0.3.1" || vs[0]["file"] != "packages/worker/0.3.1.yaml" {
		t.Errorf("exit %d, %v: %s", code, err, out)
	}
	dir := copyExamples(t)
	advisoryOn(t, dir, "CIRCLE-2026-0042", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N")
	write(t, dir, "advisories/CIRCLE-2026-0043.json", `{"id": "CIRCLE-2026-0043", "summary": "api logs tokens",
  "affected": [{"package": {"ecosystem": "Circle", "name": "api"}, "versions": ["1.2.0"]}]}`)
	code, out, _ = run(t, "package", "show", "api", dir)
	if code != exitOK || !strings.Contains(out, "  advisories:\n    CIRCLE-2026-0042  7.5 HIGH  fixed in 1.2.1: api leaks sessions\n    CIRCLE-2026-0043  severity unknown  no fix recorded: api logs tokens\n") {
		t.Errorf("show with advisories: exit %d\n%s", code, out)
	}
	if code, _, errOut := run(t, "package", "show", "nope", examplesDir); code != exitUsage || !strings.Contains(errOut, `unknown package "nope"`) {
		t.Errorf("unknown package: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, "package", "show", "api@9.9.9", examplesDir); code != exitUsage || !strings.Contains(errOut, `api has no version "9.9.9" (versions: 1.2.0)`) {
		t.Errorf("unknown version: exit %d, %q", code, errOut)
	}
}

func TestPackage_Resolve(t *testing.T) {
	code, out, errOut := run(t, "package", "resolve", examplesDir, "--env", "prod")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "prod (requires api ~1.2.0)\n  api     1.2.0\n  worker  0.3.1\n") {
		t.Errorf("resolve:\n%s", out)
	}

	// worker 0.4.0 exists, but api needs ^0.3.0: prod cannot have both.
	dir := copyExamples(t)
	write(t, dir, "packages/worker/0.4.0.yaml", "name: worker\nversion: 0.4.0\nlicense: MIT\n")
	write(t, dir, "packages/environments.yaml", "environments:\n  prod:\n    requires:\n      api: ~1.2.0\n      worker: ^0.4.0\n")
	code, out, errOut = run(t, "package", "resolve", dir)
	if code != exitFailed || !strings.Contains(errOut, "1 environment(s) do not resolve cleanly") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	want := "  no solution:\n    Because prod requires api ~1.2.0 which depends on worker ^0.3.0, worker ^0.3.0 is required.\n    So, because prod requires worker ^0.4.0, version solving failed.\n"
	if !strings.Contains(out, want) {
		t.Errorf("resolve:\n%s\nwant:\n%s", out, want)
	}
	if !strings.Contains(out, "dev (requires nothing)\n  no packages\n") {
		t.Errorf("an environment without requirements:\n%s", out)
	}
	code, out, _ = run(t, "package", "resolve", dir, "--env", "prod", "-o", "json")
	var rs []resolveResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil || code != exitFailed || len(rs) != 1 || rs[0].Resolved || !strings.HasSuffix(rs[0].Explanation, "version solving failed.") {
		t.Errorf("exit %d, %v: %s", code, err, out)
	}
}

// Problems in manifests are reported at file:line:col and fail every command.
func TestPackage_InvalidRegistry(t *testing.T) {
	dir := copyExamples(t)
	write(t, dir, "artifacts/worker-0.3.1.tar.txt", "tampered\n")
	write(t, dir, "packages/api/1.3.0.yaml", "name: api\nversion: 1.3.0\nlicence: MIT\n")
	for _, sub := range []string{"list", "resolve", "scan", "lock"} {
		code, out, errOut := run(t, "package", sub, dir)
		if code != exitFailed || !strings.Contains(errOut, "has 3 problem(s)") {
			t.Errorf("%s: exit %d, %q", sub, code, errOut)
		}
		for _, want := range []string{
			"packages/api/1.3.0.yaml:3:1: licence: field not allowed; did you mean \"license\"?",
			"packages/worker/0.3.1.yaml:8:11: artifacts.0.size: size 52 does not match artifacts/worker-0.3.1.tar.txt, which has 9 bytes",
			"packages/api/1.3.0.yaml: license: required field is missing",
			"3 problem(s)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s output lacks %q:\n%s", sub, want, out)
			}
		}
	}
	code, out, _ := run(t, "package", "list", dir, "-o", "json")
	var res problemsResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitFailed || len(res.Problems) != 3 || res.Problems[1].Line != 3 {
		t.Errorf("exit %d, %v: %s", code, err, out)
	}
	write(t, dir, "circle.yaml", "apiVersion: circle/v1\n")
	if code, out, _ := run(t, "package", "list", dir); code != exitFailed || !strings.Contains(out, "environments") || !strings.Contains(out, "1 problem(s)") {
		t.Errorf("invalid circle.yaml: exit %d\n%s", code, out)
	}
}

func TestPackage_Why(t *testing.T) {
	dir := copyExamples(t)
	writeFile(t, dir, "packages/tools/1.0.0.yaml", "name: tools\nversion: 1.0.0\nlicense: MIT\ndependencies:\n  worker: '*'\n")
	write(t, dir, "packages/environments.yaml", "environments:\n  prod:\n    requires: {api: ~1.2.0}\n  dev:\n    requires: {api: ^1.2.0, tools: '*'}\n  staging:\n    requires: {api: ^9.0.0 || ^1.0.0, tools: '2.0.0 || ^1'}\n")
	code, out, errOut := run(t, "package", "why", "worker", dir, "--env", "dev,prod")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	want := `dev: worker 0.3.1
  dev requires api ^1.2.0 (api 1.2.0)
  api 1.2.0 depends on worker ^0.3.0 (worker 0.3.1)
  required by: api 1.2.0 (^0.3.0), tools 1.0.0 (*)
prod: worker 0.3.1
  prod requires api ~1.2.0 (api 1.2.0)
  api 1.2.0 depends on worker ^0.3.0 (worker 0.3.1)
  required by: api 1.2.0 (^0.3.0)
`
	if out != want {
		t.Errorf("why:\n%s\nwant:\n%s", out, want)
	}
	if _, out, _ := run(t, "package", "why", "tools", dir, "--env", "prod"); out != "prod: tools is not needed\n" {
		t.Errorf("why tools in prod: %q", out)
	}
	code, out, _ = run(t, "package", "why", "tools", dir, "--env", "dev", "-o", "json")
	var ws []whyResult
	if err := json.Unmarshal([]byte(out), &ws); err != nil || code != exitOK || ws[0].Version != "1.0.0" || len(ws[0].Path) != 1 || ws[0].Path[0].From != "dev" {
		t.Errorf("exit %d, %v: %s", code, err, out)
	}
	if code, _, errOut := run(t, "package", "why", "nope", dir); code != exitUsage || !strings.Contains(errOut, `unknown package "nope"`) {
		t.Errorf("unknown package: exit %d %q", code, errOut)
	}
	write(t, dir, "packages/environments.yaml", "environments:\n  prod:\n    requires: {api: ~1.2.0, worker: '0.3.1 || 0.3.0'}\n")
	write(t, dir, "packages/worker/0.3.0.yaml", "name: worker\nversion: 0.3.0\nlicense: MIT\nenvironments: [dev]\n")
	write(t, dir, "packages/api/1.2.1.yaml", "name: api\nversion: 1.2.1\nlicense: MIT\ndependencies: {worker: 0.3.0}\n")
	write(t, dir, "packages/api/1.2.0.yaml", "name: api\nversion: 1.2.0\nlicense: MIT\ndependencies: {worker: 0.3.0}\n")
	code, out, _ = run(t, "package", "why", "worker", dir, "--env", "prod")
	if code != exitFailed || !strings.Contains(out, "prod: does not resolve:\n  Because every version of api depends on worker 0.3.0 (worker 0.3.0 is not enabled in prod)") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// writeFile writes a file of a test repository, making its folder.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, name, content)
}

// advisoryOn writes an OSV record hitting api before 1.2.1 (a fix the registry may lack).
func advisoryOn(t *testing.T, dir, id, vector string) {
	t.Helper()
	write(t, dir, "advisories/"+id+".json", `{"id": "`+id+`", "aliases": ["CVE-2026-4242"], "summary": "api leaks sessions",
  "severity": [{"type": "CVSS_V3", "score": "`+vector+`"}],
  "affected": [{"package": {"ecosystem": "Circle", "name": "api"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"fixed": "1.2.1"}]}]}]}`)
}

func TestPackage_Scan(t *testing.T) {
	code, out, errOut := run(t, "package", "scan", examplesDir)
	if code != exitOK || strings.Count(out, ": passed") != 3 {
		t.Fatalf("examples: exit %d\n%s%s", code, out, errOut)
	}

	dir := copyExamples(t)
	advisoryOn(t, dir, "CIRCLE-2026-0042", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N") // 7.5 HIGH
	code, out, errOut = run(t, "package", "scan", dir, "--date", "2026-09-01")
	if code != exitFailed || !strings.Contains(errOut, "2 environment(s) fail the scan") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"prod (failOn medium)\n  advisories:\n    FAIL  api 1.2.0  CIRCLE-2026-0042  7.5 HIGH  (fixed in 1.2.1, not available in prod yet)\n          api leaks sessions\n          severity 7.5 HIGH, at or above the failOn threshold (medium)\n",
		"prod: FAILED", "staging: FAILED",
		"dev (failOn never)", "    ok    api 1.2.0  CIRCLE-2026-0042  7.5 HIGH", "dev: passed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scan lacks %q:\n%s", want, out)
		}
	}

	// The fix is released and an allowance covers the rest until the end of September.
	write(t, dir, "packages/api/1.2.1.yaml", "name: api\nversion: 1.2.1\nlicense: Apache-2.0\ndependencies: {worker: ^0.3.0}\nenvironments: [dev, staging]\n")
	write(t, dir, "packages/environments.yaml", `defaults:
  licenses: {allow: [MIT, Apache-2.0]}
environments:
  prod:
    requires: {api: ~1.2.0}
    vulnerabilities:
      failOn: medium
      allow: [{id: CVE-2026-4242, until: 2026-09-30, reason: sessions are pinned to one node}]
  staging:
    requires: {api: ~1.2.0}
`)
	// staging is locked at api 1.2.0: the scan says which upgrade fixes it, and the lock
	// moves when asked to.
	code, out, _ = run(t, "package", "scan", dir, "--date", "2026-09-01", "--env", "staging")
	if code != exitFailed || !strings.Contains(out, "FAIL  api 1.2.0  CIRCLE-2026-0042  7.5 HIGH  (fixed in 1.2.1, upgrade to 1.2.1)") {
		t.Errorf("locked staging: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, "package", "lock", dir, "--env", "staging", "--upgrade"); code != exitOK || !strings.Contains(out, "written") {
		t.Fatalf("lock --upgrade: exit %d\n%s", code, out)
	}
	code, out, errOut = run(t, "package", "scan", dir, "--date", "2026-09-01")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "ok    api 1.2.0  CIRCLE-2026-0042  7.5 HIGH  (fixed in 1.2.1, not available in prod yet)") || !strings.Contains(out, "dev (failOn any)\n  no packages\ndev: passed") || !strings.Contains(out, "allowed until 2026-09-30: sessions are pinned to one node") || !strings.Contains(out, "staging (failOn any)\n  advisories: none hit") {
		t.Errorf("scan:\n%s", out)
	}
	code, out, _ = run(t, "package", "scan", dir, "--date", "2026-10-01", "--env", "prod", "-o", "json")
	var rs []scanResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil || code != exitFailed || len(rs) != 1 || !rs[0].Failed || rs[0].Vulnerabilities[0].Allowed != nil || !strings.Contains(rs[0].Vulnerabilities[0].Reason, "allowance expired after 2026-09-30") {
		t.Errorf("after the allowance: exit %d, %v\n%s", code, err, out)
	}
	if code, _, errOut := run(t, "package", "scan", dir, "--date", "tomorrow"); code != exitUsage || !strings.Contains(errOut, "--date") {
		t.Errorf("bad date: exit %d %q", code, errOut)
	}

	// A denied license fails too.
	write(t, dir, "packages/environments.yaml", "environments:\n  prod:\n    requires: {api: ~1.2.0}\n    vulnerabilities: {failOn: never}\n    licenses: {deny: [Apache-2.0]}\n")
	code, out, _ = run(t, "package", "scan", dir, "--env", "prod")
	if code != exitFailed || !strings.Contains(out, "FAIL  api 1.2.0  Apache-2.0: Apache-2.0 cannot be satisfied: Apache-2.0 denied") || !strings.Contains(out, "ok    worker 0.3.1  MIT OR Apache-2.0") {
		t.Errorf("denied license: exit %d\n%s", code, out)
	}
}

func TestPackage_Lock(t *testing.T) {
	dir := copyExamples(t)
	for _, env := range []string{"dev", "staging", "prod"} {
		os.Remove(filepath.Join(dir, "packages", env+".lock.json"))
	}
	if code, out, _ := run(t, "package", "lock", dir, "--check"); code != exitFailed || !strings.Contains(out, "prod: packages/prod.lock.json does not exist") {
		t.Errorf("check without locks: exit %d\n%s", code, out)
	}
	code, out, errOut := run(t, "package", "lock", dir)
	if code != exitOK || !strings.Contains(out, "prod: packages/prod.lock.json written (2 packages)") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	data, err := os.ReadFile(filepath.Join(dir, "packages", "prod.lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := registry.ParseLock("prod.lock.json", data)
	if err != nil || l.Get("worker").Version != "0.3.1" || !strings.HasPrefix(l.Get("api").Digest, "sha256:") || l.Requires["api"] != "~1.2.0" {
		t.Errorf("lock = %+v, %v", l, err)
	}
	if code, out, _ := run(t, "package", "lock", dir); code != exitOK || !strings.Contains(out, "prod: packages/prod.lock.json unchanged (2 packages)") {
		t.Errorf("second lock: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, "package", "resolve", dir, "--env", "prod"); code != exitOK || !strings.Contains(out, "packages/prod.lock.json is up to date") {
		t.Errorf("resolve after lock: exit %d\n%s", code, out)
	}

	// A new worker is released: the lock keeps 0.3.1 until --upgrade.
	write(t, dir, "packages/worker/0.3.2.yaml", "name: worker\nversion: 0.3.2\nlicense: MIT\n")
	if code, out, _ := run(t, "package", "lock", dir, "--check"); code != exitOK || !strings.Contains(out, "unchanged") {
		t.Errorf("check after a release: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, "package", "resolve", dir, "--env", "prod"); code != exitOK || !strings.Contains(out, "worker  0.3.1") {
		t.Errorf("resolve keeps the lock: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, "package", "lock", dir, "--env", "prod", "--upgrade", "--check"); code != exitFailed || !strings.Contains(out, "prod: packages/prod.lock.json is out of date") {
		t.Errorf("upgrade check: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "package", "lock", dir, "--env", "prod", "--upgrade", "-o", "json")
	var lrs []lockResult
	if err := json.Unmarshal([]byte(out), &lrs); err != nil || code != exitOK || lrs[0].Action != "written" {
		t.Errorf("upgrade: exit %d, %v\n%s", code, err, out)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "packages", "prod.lock.json")); !strings.Contains(string(data), `"version": "0.3.2"`) {
		t.Errorf("upgraded lock:\n%s", data)
	}

	// A locked version edited in place is refused until a new version is released.
	write(t, dir, "packages/worker/0.3.2.yaml", "name: worker\nversion: 0.3.2\nlicense: MIT\ndescription: changed after release\n")
	code, out, _ = run(t, "package", "resolve", dir, "--env", "prod")
	if code != exitFailed || !strings.Contains(out, "packages/prod.lock.json: packages.1.digest: packages/worker/0.3.2.yaml changed after the lock was written") {
		t.Errorf("edited release: exit %d\n%s", code, out)
	}

	// Without requirements an environment is skipped; a failing one is not locked.
	write(t, dir, "packages/environments.yaml", "environments:\n  prod:\n    requires: {worker: ^9.0.0 || ^0.3.0, api: ^1.2.0}\n  dev:\n    requires: {api: ^1.2.0, worker: 0.3.1 || 0.3.2}\n")
	write(t, dir, "packages/worker/0.3.2.yaml", "name: worker\nversion: 0.3.2\nlicense: MIT\nenvironments: [prod]\n")
	os.Remove(filepath.Join(dir, "packages", "staging.lock.json"))
	os.Remove(filepath.Join(dir, "packages", "prod.lock.json"))
	code, out, _ = run(t, "package", "lock", dir)
	if code != exitOK || !strings.Contains(out, "staging: requires nothing, no lock") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestPackage_Index(t *testing.T) {
	code, out, errOut := run(t, "package", "index", examplesDir, "--env", "prod", "--date", "2026-09-01")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var ix registry.Index
	if err := json.Unmarshal([]byte(out), &ix); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if ix.Environment != "prod" || !ix.Resolved || ix.Lock == nil || len(ix.Packages) != 2 || !ix.Packages[1].Versions[0].Selected {
		t.Errorf("index = %+v", ix)
	}
	if code, out, _ := run(t, "package", "index", examplesDir, "-o", "json"); code != exitOK || !strings.HasPrefix(out, "[") {
		t.Errorf("-o json: exit %d\n%s", code, out)
	}
}
