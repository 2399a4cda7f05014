package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// circle plan --fetch verifies url: artifacts of both revisions from the allowed source:
// good bytes plan as a change, tampered bytes make the head invalid at the artifact's line;
// without --fetch nothing is requested.
func TestPlan_FetchArtifacts(t *testing.T) {
	const art = "tool 1.0.0\n"
	served := art
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, served)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := copyExamples(t)
	g := newGitRepo(t, dir)
	g.commit(t, "base")
	sum := sha256.Sum256([]byte(art))
	write(t, dir, "packages/tool/1.0.0.yaml", fmt.Sprintf("name: tool\nversion: 1.0.0\nlicense: MIT\nartifacts:\n  - url: %s/a/tool.tgz\n    sha256: %s\n    size: %d\n",
		srv.URL, hex.EncodeToString(sum[:]), len(art)))
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
	served = strings.ToUpper(art)
	code, out, _ := plan("--fetch", "--artifact-source", srv.URL+"/a/")
	if code != planFailed || !strings.Contains(out, "packages/tool/1.0.0.yaml:6:13") || !strings.Contains(out, "sha256 does not match") {
		t.Errorf("tampered: exit %d\n%s", code, out)
	}
}
