package pipeline_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/registry/fetch"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/testenv"
)

// The packages stage verifies url: artifacts through Options.Artifacts: without one they
// are "not fetched" and nothing is requested; with one they are fetched from the allowed
// source; bytes that differ from the manifest make the revision invalid, with the problem
// at the artifact's line, so no environment is built.
func TestRun_URLArtifacts(t *testing.T) {
	const art = "tool 1.0.0\n"
	served := art
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, served)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	dir := testenv.CopyTree(t, "../examples")
	sum := sha256.Sum256([]byte(art))
	testenv.WriteFile(t, dir, "packages/tool/1.0.0.yaml", fmt.Sprintf("name: tool\nversion: 1.0.0\nlicense: MIT\nartifacts:\n  - url: %s/a/tool.tgz\n    sha256: %s\n    size: %d\n",
		srv.URL, hex.EncodeToString(sum[:]), len(art)))
	run := func(f registry.Fetcher) (*pipeline.Result, error) {
		return pipeline.Run(context.Background(), os.DirFS(dir), pipeline.Options{Load: repo.Options{Keyring: keyring(t)}, Now: now, Artifacts: f})
	}
	status := func(res *pipeline.Result) string {
		return res.Registry.Package("tool").Versions[0].Artifacts[0].Status
	}

	res, err := run(nil)
	if err != nil || status(res) != registry.ArtifactNotFetched || hits.Load() != 0 {
		t.Fatalf("no fetcher: %v, status %q, %d requests", err, status(res), hits.Load())
	}

	newFetcher := func() *fetch.Fetcher {
		f, err := fetch.New(fetch.Options{Sources: []string{srv.URL + "/a/"}, Cache: t.TempDir(), RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	f := newFetcher()
	res, err = run(f)
	if err != nil || status(res) != registry.ArtifactVerified || len(res.Outputs) != 3 {
		t.Fatalf("fetched: %v, status %q, %d outputs", err, status(res), len(res.Outputs))
	}
	if res, err = run(f); err != nil || status(res) != registry.ArtifactVerified || hits.Load() != 1 {
		t.Errorf("second run: %v, %d requests in all, want 1", err, hits.Load())
	}

	served = strings.ToUpper(art)
	res, err = run(newFetcher())
	var se *pipeline.StageError
	if !errors.As(err, &se) || se.Stage != pipeline.StagePackages || len(res.Outputs) != 0 {
		t.Fatalf("tampered: %v, %d outputs", err, len(res.Outputs))
	}
	if len(res.Problems) != 1 || !strings.HasPrefix(res.Problems[0].String(), "packages/tool/1.0.0.yaml:6:13: artifacts.0.sha256: sha256 does not match the bytes of "+srv.URL+"/a/tool.tgz") {
		t.Errorf("problems = %v", res.Problems)
	}
}
