package main

import (
	"strings"
	"testing"
)

// circle plan --fetch verifies url: artifacts of both revisions from the allowed source:
// good bytes plan as a change, tampered bytes make the head invalid at the artifact's line;
// without --fetch nothing is requested.
func TestPlan_FetchArtifacts(t *testing.T) {
	dir := copyExamples(t)
	g := newGitRepo(t, dir)
	g.commit(t, "base")
	a := newToolArtifact(t, dir)
	srv, ca, hits := a.srv, a.ca, &a.hits
	plan := func(args ...string) (int, string, string) {
		return run(t, append([]string{"plan", dir, "--base", "HEAD", "--worktree", "--key-file", exampleKey,
			"--artifact-cache", t.TempDir(), "--artifact-ca-file", ca}, args...)...)
	}
	if code, out, errOut := plan(); code != planChanges || hits.Load() != 0 {
		t.Fatalf("offline: exit %d, %d requests\n%s%s", code, hits.Load(), out, errOut)
	}
	if code, out, errOut := plan("--fetch", "--artifact-source", srv.URL+"/a/"); code != planChanges || hits.Load() != 1 {
		t.Errorf("--fetch: exit %d, %d requests\n%s%s", code, hits.Load(), out, errOut)
	}
	a.serve(strings.ToUpper(toolBytes))
	code, out, _ := plan("--fetch", "--artifact-source", srv.URL+"/a/")
	if code != planFailed || !strings.Contains(out, "packages/tool/1.0.0.yaml:6:13") || !strings.Contains(out, "sha256 does not match") {
		t.Errorf("tampered: exit %d\n%s", code, out)
	}
}
