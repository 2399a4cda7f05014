package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/plan"
	"github.com/circlecore/circle/secrets"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/plan")

// planTime is the plan's clock in these tests: after the example license was issued and
// its advisory published, years before the license expires.
var planTime = time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)

// gitRepo turns dir into a Git repository with a fixed identity and clock, so commits are
// the same run after run where their content is.
type gitRepo struct {
	dir string
	n   int
}

func newGitRepo(t *testing.T, dir string) *gitRepo {
	g := &gitRepo{dir: dir}
	g.git(t, "init", "--quiet", "--initial-branch=main")
	return g
}

func (g *gitRepo) git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = g.dir
	date := planTime.Add(-time.Duration(100-g.n) * time.Hour).Format(time.RFC3339)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Circle Test", "GIT_AUTHOR_EMAIL=test@circle.invalid", "GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_NAME=Circle Test", "GIT_COMMITTER_EMAIL=test@circle.invalid", "GIT_COMMITTER_DATE="+date)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit commits everything in the folder and returns the commit's hash.
func (g *gitRepo) commit(t *testing.T, msg string) string {
	t.Helper()
	g.n++
	g.git(t, "add", "--all")
	g.git(t, "commit", "--quiet", "--allow-empty", "-m", msg)
	return g.git(t, "rev-parse", "HEAD")
}

// planCase is a pair of revisions of the example repository: base is the examples with
// baseEdit applied, head is base with headEdit applied.
type planCase struct {
	name     string
	baseEdit func(t *testing.T, dir string)
	headEdit func(t *testing.T, dir string)
	exit     int
	// want and wantNot are strings each output format must or must not contain.
	want, wantNot []string
}

// decrypted is the plaintext of an example SOPS file.
func decrypted(t *testing.T, name string) string {
	t.Helper()
	var ring secrets.Keyring
	if err := ring.AddFile(exampleKey); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ring.Decrypt(context.Background(), name, b)
	if err != nil {
		t.Fatal(err)
	}
	return string(plain)
}

func editFile(t *testing.T, dir, name, old, new string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", name, old)
	}
	write(t, dir, name, strings.Replace(string(b), old, new, 1))
}

const workerDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-worker
spec:
  replicas: 1
  selector: {matchLabels: {app: shop-worker}}
  template:
    metadata: {labels: {app: shop-worker}}
    spec:
      containers:
        - name: worker
          image: registry.example.com/shop/worker:0.3.1
          resources: {requests: {cpu: 10m, memory: 16Mi}}
`

var planCases = []planCase{
	{
		name: "config-change",
		headEdit: func(t *testing.T, dir string) {
			editFile(t, dir, "config/prod/app.yaml", "replicas: 4", "replicas: 5")
			editFile(t, dir, "config/base/app.yaml", "recommendations: false", "recommendations: true")
		},
		exit: planChanges,
		want: []string{"app.replicas", "config/prod/app.yaml:2:13", "features.recommendations", "circle-config-"},
	},
	{
		name: "secret-change",
		headEdit: func(t *testing.T, dir string) {
			plain := decrypted(t, "secrets/prod.sops.yaml")
			lines := strings.Split(plain, "\n")
			for i, l := range lines {
				if strings.HasPrefix(strings.TrimSpace(l), "password:") {
					lines[i] = l[:strings.Index(l, "password:")] + "password: " + canary
				}
			}
			encryptWithSOPS(t, dir, "secrets/prod.sops.yaml", strings.Join(lines, "\n"))
		},
		exit: planChanges,
		want: []string{"db.password", "**redacted:", "secrets/prod.sops.yaml"},
	},
	{
		name: "package-upgrade-vulnerable",
		headEdit: func(t *testing.T, dir string) {
			write(t, dir, "artifacts/worker-0.4.0.tar.txt", "worker 0.4.0: an example artifact, not a real one.\n")
			write(t, dir, "packages/worker/0.4.0.yaml", `name: worker
version: 0.4.0
description: Background jobs for the shop.
license: MIT
artifacts:
  - path: artifacts/worker-0.4.0.tar.txt
    sha256: 41a7f315d5e02f233546ffa9b5d4ddde4680cd66ea6ad11d906c4acd44186c85
    size: 51
`)
			write(t, dir, "packages/api/1.3.0.yaml", `name: api
version: 1.3.0
description: The shop's public HTTP API.
license: Apache-2.0
dependencies:
  worker: ^0.4.0
artifacts:
  - path: artifacts/api-1.2.0.tar.txt
    sha256: b57f7e04acc596cb07d12ce17335382e88a73e980f4f6f7b831b6976f8073d55
    size: 49
`)
			write(t, dir, "advisories/CIRCLE-2027-0001.json", `{
  "schema_version": "1.6.0",
  "id": "CIRCLE-2027-0001",
  "modified": "2027-01-02T09:00:00Z",
  "published": "2027-01-02T09:00:00Z",
  "summary": "worker 0.4.0 runs jobs from any tenant's queue",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N"}],
  "affected": [{"package": {"ecosystem": "Circle", "name": "worker"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.4.0"}, {"fixed": "0.4.1"}]}]}]
}
`)
			// dev reports advisories, staging fails on high ones.
			editFile(t, dir, "packages/environments.yaml", "  dev:\n    requires:\n      api: ^1.2.0", "  dev:\n    requires:\n      api: ^1.3.0")
			editFile(t, dir, "packages/environments.yaml", "  staging:\n    requires:\n      api: ^1.2.0", "  staging:\n    requires:\n      api: ^1.3.0")
		},
		exit: planFailed,
		want: []string{"CIRCLE-2027-0001", "requires: ^1.2.0 → ^1.3.0", "0.3.1 → 0.4.0"},
	},
	{
		name: "revoked-license",
		headEdit: func(t *testing.T, dir string) {
			code, out, errOut := run(t, "license", "revoke", "--key", exampleIssuerKey, "--key-file", exampleKey,
				"--list", filepath.Join(dir, "licenses", "revoked.list"), "--id", "lic_example_corp", "--reason", "contract ended", "--at", "2027-01-10")
			if code != exitOK {
				t.Fatalf("revoke: exit %d\n%s%s", code, out, errOut)
			}
		},
		exit: planFailed,
		want: []string{"lic_example_corp", "revoked"},
	},
	{
		name: "deleted-deployment",
		baseEdit: func(t *testing.T, dir string) {
			write(t, dir, "deploy/base/worker.yaml", workerDeployment)
			editFile(t, dir, "deploy/base/kustomization.yaml", "  - service.yaml\n", "  - service.yaml\n  - worker.yaml\n")
		},
		headEdit: func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "deploy/base/worker.yaml")); err != nil {
				t.Fatal(err)
			}
			editFile(t, dir, "deploy/base/kustomization.yaml", "  - worker.yaml\n", "")
		},
		exit: planChanges,
		want: []string{"shop-worker", "PRUNE"},
	},
	{
		name: "invalid-head",
		headEdit: func(t *testing.T, dir string) {
			editFile(t, dir, "config/prod/app.yaml", "replicas: 4", "replicas: 40")
		},
		exit: planFailed,
		want: []string{"config/prod/app.yaml:2:13"},
	},
	{
		name: "no-change",
		headEdit: func(t *testing.T, dir string) {
			write(t, dir, "NOTES.md", "A file no build reads.\n")
		},
		exit: planNoChanges,
	},
}

// TestPlan_Golden plans each pair of revisions in the three formats and compares them with
// testdata/plan/<case>.<format>.golden (go test -run TestPlan_Golden -update rewrites
// them). Commit hashes vary with the SOPS files' random nonces; they are replaced by
// <base> and <head>.
func TestPlan_Golden(t *testing.T) {
	old := planNow
	planNow = func() time.Time { return planTime }
	t.Cleanup(func() { planNow = old })
	for _, c := range planCases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyExamples(t)
			g := newGitRepo(t, dir)
			if c.baseEdit != nil {
				c.baseEdit(t, dir)
			}
			base := g.commit(t, "base")
			c.headEdit(t, dir)
			head := g.commit(t, "head")
			for _, format := range []string{"text", "json", "markdown"} {
				code, out, errOut := run(t, "plan", dir, "--base", base, "--key-file", exampleKey, "-o", format)
				if code != c.exit {
					t.Errorf("-o %s: exit %d, want %d\n%s%s", format, code, c.exit, out, errOut)
				}
				for _, s := range []string{canary, base64.StdEncoding.EncodeToString([]byte(canary))[:16]} {
					if strings.Contains(out+errOut, s) {
						t.Errorf("-o %s: the canary secret is in the output", format)
					}
				}
				for _, w := range c.want {
					if format != "json" && !strings.Contains(out, w) {
						t.Errorf("-o %s: no %q in\n%s", format, w, out)
					}
				}
				if format == "json" {
					var p plan.Plan
					if err := json.Unmarshal([]byte(out), &p); err != nil || p.Schema != plan.SchemaVersion {
						t.Errorf("-o json: %v\n%s", err, out)
					}
				}
				out = strings.NewReplacer(base, "<base>", head, "<head>", base[:12], "<base>", head[:12], "<head>").Replace(out)
				golden(t, filepath.Join("testdata", "plan", c.name+"."+map[string]string{"text": "txt", "json": "json", "markdown": "md"}[format]+".golden"), out)
			}
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run TestPlan_Golden -update writes it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the output (go test -run TestPlan_Golden -update rewrites it):\n%s", path, got)
	}
}

// The same plan twice writes the same bytes: a bot's comment changes only when the plan
// does.
func TestPlan_Stable(t *testing.T) {
	dir := copyExamples(t)
	g := newGitRepo(t, dir)
	base := g.commit(t, "base")
	editFile(t, dir, "config/prod/db.yaml", "shop_prod", "shop_production")
	g.commit(t, "head")
	var first string
	for i := 0; i < 2; i++ {
		code, out, errOut := run(t, "plan", dir, "--base", base, "--key-file", exampleKey, "-o", "markdown")
		if code != planChanges || !strings.HasPrefix(out, "<!-- circle-plan -->\n") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		if i == 1 && out != first {
			t.Errorf("two runs differ:\n%s\n---\n%s", first, out)
		}
		first = out
	}
}

func TestPlan_Usage(t *testing.T) {
	dir := copyExamples(t)
	g := newGitRepo(t, dir)
	base := g.commit(t, "base")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", dir}, "--base is required"},
		{[]string{"plan", dir, "--base", base, "--head", "HEAD", "--worktree"}, "exclude each other"},
		{[]string{"plan", dir, "--base", base, "-o", "yaml"}, "unknown output format"},
		{[]string{"plan", dir, "--base", base, "--expiry-days", "-1"}, "must not be negative"},
		{[]string{"plan", dir, "--base", base, "--date", "someday"}, "--date"},
		{[]string{"plan", dir, "--base", "no-such-rev"}, "no-such-rev"},
		{[]string{"plan", dir, "--base", base, "--head", "no-such-rev"}, "no-such-rev"},
		{[]string{"plan", dir, "--base", base, "--env", "qa"}, `"qa"`},
		{[]string{"plan", t.TempDir(), "--base", "HEAD"}, "not inside a Git repository"},
		{[]string{"plan", dir, "--base", base, "--key-file", "/nonexistent.key"}, "/nonexistent.key"},
		{[]string{"plan", dir, "--worktree", "--base", base, "--bogus"}, "unknown flag"},
		{[]string{"plan", dir, "extra", "--base", base}, "accepts at most 1 arg"},
	} {
		code, _, errOut := run(t, c.args...)
		if code != planFailed || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, want 1 with %q; stderr %q", c.args[1:], code, c.want, errOut)
		}
	}
	if code, out, _ := run(t, "plan", "--help"); code != exitOK || !strings.Contains(out, "2  changes") || !strings.Contains(out, "--live") {
		t.Errorf("--help documents no exit codes:\n%s", out)
	}
}

// --worktree plans uncommitted edits; --env narrows; --date and --expiry-days move the
// license's expiry into view; CIRCLE_AGE_KEY salts the masks like a key file.
func TestPlan_Worktree(t *testing.T) {
	dir := copyExamples(t)
	g := newGitRepo(t, dir)
	g.commit(t, "base")
	editFile(t, dir, "config/dev/app.yaml", "logLevel: debug", "logLevel: error")
	code, out, errOut := run(t, "plan", dir, "--base", "HEAD", "--worktree", "--env", "dev", "--key-file", exampleKey)
	if code != planChanges || !strings.Contains(out, `app.logLevel: "debug" → "error"`) || !strings.Contains(out, "worktree sha256:") ||
		strings.Contains(out, "staging") || !strings.Contains(errOut, "the plan has changes") {
		t.Errorf("--worktree --env dev: exit %d\n%s%s", code, out, errOut)
	}
	// Nothing committed changed: HEAD against itself.
	if code, out, _ := run(t, "plan", dir, "--base", "HEAD", "--key-file", exampleKey); code != planNoChanges || !strings.Contains(out, "0 of 3") {
		t.Errorf("HEAD against HEAD: exit %d\n%s", code, out)
	}
	// The example license expires on 2036-12-31.
	code, out, _ = run(t, "plan", dir, "--base", "HEAD", "--key-file", exampleKey, "--date", "2036-12-20", "--full")
	if code != planNoChanges || !strings.Contains(out, "lic_example_corp expiring") || !strings.Contains(out, "expires in 11 day(s)") {
		t.Errorf("--date near expiry: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, "plan", dir, "--base", "HEAD", "--key-file", exampleKey, "--date", "2036-12-20", "--expiry-days", "0"); code != planNoChanges || strings.Contains(out, "expiring") {
		t.Errorf("--expiry-days 0: exit %d\n%s", code, out)
	}
	key, err := os.ReadFile(exampleKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CIRCLE_AGE_KEY", string(key))
	t.Setenv("CIRCLE_KEY_FILES", "")
	if code, out, errOut := run(t, "plan", dir, "--base", "HEAD", "--worktree", "-o", "json"); code != planChanges || !strings.Contains(out, `"schema": "circle.plan/v1"`) {
		t.Errorf("CIRCLE_AGE_KEY: exit %d\n%s%s", code, out, errOut)
	}
}

// The CI examples are YAML their hosts can read, run validate and plan, and find their
// comment by the marker plan writes.
func TestPlan_CIExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(examplesDir, "ci", "github-actions.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// Pull requests from forks are reviewed without keys, and never get the secret.
	if !strings.Contains(string(b), "circle validate --no-decrypt") || !strings.Contains(string(b), "--no-decrypt -o markdown") ||
		strings.Count(string(b), "secrets.CIRCLE_AGE_KEY") != 2 {
		t.Error("github-actions.yml: the fork job must run --no-decrypt and only the keyed job may read CIRCLE_AGE_KEY")
	}
	for _, name := range []string{"github-actions.yml", "gitlab-ci.yml"} {
		b, err := os.ReadFile(filepath.Join(examplesDir, "ci", name))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil || len(doc) == 0 {
			t.Errorf("%s: %v", name, err)
		}
		for _, want := range []string{"circle validate", "circle plan --base", "-o markdown", plan.Marker, "CIRCLE_AGE_KEY", `!= 1`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
	}
}

// A revision the daemon refuses at its check stage (a manifest policy breach) is refused by
// `circle plan` and `circle validate` with the same problem: plan used to skip the check and
// pass a head the daemon would never take.
func TestCheckStage_SameVerdictEverywhere(t *testing.T) {
	dir := copyExamples(t)
	g := newGitRepo(t, dir)
	base := g.commit(t, "base")
	deployment := readFileT(t, dir, "deploy/base/deployment.yaml")
	write(t, dir, "deploy/base/deployment.yaml", strings.Replace(deployment, "shop/api:1.2.0", "shop/api:latest", 1))
	g.commit(t, "head: an image tagged latest, which prod's policy refuses")
	const problem = `Deployment/shop-api spec.template.spec.containers[0].image: image tag "latest" is not allowed in prod [no-latest-tag]`

	code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey)
	if code != exitFailed || !strings.Contains(out, "deploy/base/deployment.yaml:11:11: "+problem) {
		t.Errorf("circle validate: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, "plan", dir, "--base", base, "--key-file", exampleKey)
	if code != exitFailed || !strings.Contains(out, problem) || !strings.Contains(out, "The head revision is invalid") {
		t.Errorf("circle plan: exit %d\n%s%s", code, out, errOut)
	}
	published := serveUntil(t, "no-latest-tag", "--source", dir, "--key-file", exampleKey, "--storage-keyring", newKeyringFile(t))
	st, err := os.ReadFile(filepath.Join(published, "status.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(st), strings.ReplaceAll(problem, `"`, `\"`)) || !strings.Contains(string(st), `"reason": "Invalid"`) {
		t.Errorf("the daemon's status:\n%s", st)
	}
}
