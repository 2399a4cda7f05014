package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/circlecore/circle/plan"
	"github.com/circlecore/circle/testenv"
)

// A pull request from a fork is reviewed without keys: validate and plan check the rest of
// the repository, say what they could not check, and a plan names the secrets files that
// changed, never what changed in them.
func TestNoDecrypt_ValidateAndPlan(t *testing.T) {
	t.Setenv("CIRCLE_AGE_KEY", "")
	t.Setenv("CIRCLE_KEY_FILES", "")
	dir := copyExamples(t)
	g := newGitRepo(t, dir)
	g.commit(t, "base")

	code, out, errOut := run(t, "validate", dir, "--no-decrypt")
	if code != exitOK || strings.Count(out, ": valid") != 3 || !strings.Contains(out, "not checked without keys: the values of api.token, db.password") {
		t.Fatalf("validate --no-decrypt: exit %d\n%s%s", code, out, errOut)
	}
	// Without --no-decrypt and without keys, it stops at the secrets.
	if code, out, errOut := run(t, "validate", dir); code != exitFailed || !strings.Contains(out+errOut, "secrets/prod.sops.yaml") {
		t.Errorf("validate without keys: exit %d\n%s%s", code, out, errOut)
	}
	// What needs no key is still checked: a plain value the schema refuses.
	editFile(t, dir, "config/prod/db.yaml", "host: db.prod.internal", "host: 5")
	if code, out, _ := run(t, "validate", dir, "--no-decrypt"); code != exitFailed || !strings.Contains(out, "config/prod/db.yaml") {
		t.Errorf("a plain problem without keys: exit %d\n%s", code, out)
	}
	editFile(t, dir, "config/prod/db.yaml", "host: 5", "host: db.prod.internal")

	// A new secret value and a config change: the plan names the file, never the value.
	const newSecret = "fork-pr-new-secret-value-42"
	testenv.SOPSEncrypt(t, dir, "secrets/prod.sops.yaml", "db:\n  password: "+newSecret+"\napi:\n  token: t0k3n\n")
	editFile(t, dir, "config/prod/app.yaml", "replicas: 4", "replicas: 5")
	code, out, errOut = run(t, "plan", dir, "--base", "HEAD", "--worktree", "--no-decrypt", "-o", "json")
	if code != planChanges {
		t.Fatalf("plan --no-decrypt: exit %d\n%s%s", code, out, errOut)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	var prod *plan.Env
	for _, e := range p.Environments {
		if e.Name == "prod" {
			prod = e
		}
	}
	if !p.NotDecrypted || prod == nil || len(prod.Secrets) != 1 || prod.Secrets[0] != "secrets/prod.sops.yaml" ||
		!strings.Contains(strings.Join(prod.NotDecrypted, ","), "db.password") {
		t.Errorf("the plan: notDecrypted %v, prod %+v", p.NotDecrypted, prod)
	}
	for _, f := range []string{"text", "markdown", "json"} {
		_, out, errOut := run(t, "plan", dir, "--base", "HEAD", "--worktree", "--no-decrypt", "-o", f)
		all := out + errOut
		if strings.Contains(all, newSecret) || strings.Contains(all, base64.StdEncoding.EncodeToString([]byte(newSecret))) {
			t.Errorf("-o %s shows the secret", f)
		}
		if !strings.Contains(all, "secrets/prod.sops.yaml") || !strings.Contains(all, "replicas") {
			t.Errorf("-o %s lacks the secrets file or the config change:\n%s", f, all)
		}
	}
	// With keys, the file is named the same way, and the values stay masked.
	code, out, _ = run(t, "plan", dir, "--base", "HEAD", "--worktree", "--key-file", exampleKey)
	if code != planChanges || !strings.Contains(out, "Secrets files changed") || strings.Contains(out, newSecret) || strings.Contains(out, "Built without keys") {
		t.Errorf("plan with keys: exit %d\n%s", code, out)
	}
}
