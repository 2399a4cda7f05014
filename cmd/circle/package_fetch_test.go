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

	"github.com/circlecore/circle/testenv"
)

// circle package fetches url: artifacts only with --fetch and only under an
// --artifact-source; without --fetch it reads the cache and notes the rest "not
// fetched"; a URL outside the sources is a problem at its line and nothing is requested.
func TestPackage_FetchArtifacts(t *testing.T) {
	dir := testenv.CopyTree(t, "../../examples")
	a := newToolArtifact(t, dir)
	srv, ca, url, hits := a.srv, a.ca, a.url, &a.hits
	cache := filepath.Join(t.TempDir(), "cache")
	pkg := func(args ...string) (int, string, string) {
		return run(t, append([]string{"package", "show", "tool", dir, "--artifact-cache", cache, "--artifact-ca-file", ca}, args...)...)
	}

	code, out, errOut := pkg()
	if code != exitOK || !strings.Contains(errOut, "note: packages/tool/1.0.0.yaml:5:10: artifacts.0.url: "+url+" not fetched: not in the artifact cache") ||
		!strings.Contains(out, "not fetched") || hits.Load() != 0 {
		t.Fatalf("offline: exit %d, %d requests\n%s\n%s", code, hits.Load(), out, errOut)
	}
	if code, _, errOut := pkg("--fetch"); code != exitUsage || !strings.Contains(errOut, "--fetch needs an --artifact-source") {
		t.Errorf("--fetch without a source: exit %d, %s", code, errOut)
	}
	if code, _, errOut := pkg("--fetch", "--artifact-source", "http://"+strings.TrimPrefix(srv.URL, "https://")+"/a/"); code != exitUsage || !strings.Contains(errOut, "http is not allowed") {
		t.Errorf("http source: exit %d, %s", code, errOut)
	}
	code, out, _ = pkg("--fetch", "--artifact-source", srv.URL+"/b/")
	if code != exitFailed || !strings.Contains(out, "packages/tool/1.0.0.yaml:5:10: artifacts.0.url: artifact "+url+": not allowed: not under an allowed artifact source ("+srv.URL+"/b/)") || hits.Load() != 0 {
		t.Errorf("outside the source: exit %d, %d requests\n%s", code, hits.Load(), out)
	}
	code, out, errOut = pkg("--fetch", "--artifact-source", srv.URL+"/a/")
	if code != exitOK || !strings.Contains(out, "verified") || errOut != "" || hits.Load() != 1 {
		t.Errorf("fetched: exit %d, %d requests\n%s\n%s", code, hits.Load(), out, errOut)
	}
	code, out, errOut = pkg()
	if code != exitOK || !strings.Contains(out, "verified") || errOut != "" || hits.Load() != 1 {
		t.Errorf("from the cache: exit %d, %d requests\n%s\n%s", code, hits.Load(), out, errOut)
	}
	sum := sha256.Sum256([]byte(toolBytes))
	if _, err := os.Stat(filepath.Join(cache, hex.EncodeToString(sum[:]))); err != nil {
		t.Errorf("cache file: %v", err)
	}
}

// The daemon refuses to start on a source it would not fetch from safely.
func TestServe_ArtifactSourceChecked(t *testing.T) {
	for _, c := range []struct{ source, want string }{
		{"http://artifacts.example.com/", "http is not allowed"},
		{"https://user:pw@artifacts.example.com/", "user info is not allowed"},
		{"ftp://artifacts.example.com/", `scheme "ftp"`},
	} {
		code, _, errOut := run(t, "serve", "--source", t.TempDir(), "--publish", "file://"+t.TempDir(), "--listen", "", "--artifact-source", c.source)
		if code == exitOK || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "pw@") {
			t.Errorf("%s: exit %d, %s", c.source, code, errOut)
		}
	}
}

// circle validate is offline by default, as the package commands: the cache or "not
// fetched"; --fetch fetches from the allowed sources, and a mismatch is a problem.
func TestValidate_FetchArtifacts(t *testing.T) {
	dir := testenv.CopyTree(t, "../../examples")
	a := newToolArtifact(t, dir)
	srv, ca, url, hits := a.srv, a.ca, a.url, &a.hits
	validate := func(cache string, args ...string) (int, string, string) {
		return run(t, append([]string{"validate", dir, "--env", "dev", "--key-file", filepath.Join(dir, "keys/age.example.key"),
			"--artifact-cache", cache, "--artifact-ca-file", ca}, args...)...)
	}
	cache := t.TempDir()
	if code, out, errOut := validate(cache); code != exitOK || !strings.Contains(out, "note: packages/tool/1.0.0.yaml:5:10: artifacts.0.url: "+url+" not fetched") || hits.Load() != 0 {
		t.Fatalf("offline: exit %d, %d requests\n%s\n%s", code, hits.Load(), out, errOut)
	}
	if code, out, errOut := validate(cache, "--fetch", "--artifact-source", srv.URL+"/a/"); code != exitOK || strings.Contains(out, "not fetched") || hits.Load() != 1 {
		t.Errorf("--fetch: exit %d, %d requests\n%s\n%s", code, hits.Load(), out, errOut)
	}
	if code, out, _ := validate(cache); code != exitOK || strings.Contains(out, "not fetched") || hits.Load() != 1 {
		t.Errorf("cached: exit %d, %d requests\n%s", code, hits.Load(), out)
	}
	a.serve(strings.ToUpper(toolBytes))
	code, out, _ := validate(t.TempDir(), "--fetch", "--artifact-source", srv.URL+"/a/")
	if code != exitFailed || !strings.Contains(out, "packages/tool/1.0.0.yaml:6:13: artifacts.0.sha256: sha256 does not match the bytes of "+url) {
		t.Errorf("tampered: exit %d\n%s", code, out)
	}
}

// toolArtifact is a loopback HTTPS server for the url: artifact of a package "tool" that
// it writes into the repository at dir: it serves body (the artifact the manifest's digest
// and size are of, until serve changes it) and counts the requests. ca is its certificate,
// for --artifact-ca-file; url is the artifact's.
type toolArtifact struct {
	srv     *httptest.Server
	ca, url string
	hits    atomic.Int32
	body    atomic.Value // string
}

const toolBytes = "tool 1.0.0\n"

func newToolArtifact(t *testing.T, dir string) *toolArtifact {
	t.Helper()
	a := &toolArtifact{}
	a.body.Store(toolBytes)
	a.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		fmt.Fprint(w, a.body.Load().(string))
	}))
	t.Cleanup(a.srv.Close)
	a.ca = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(a.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(toolBytes))
	a.url = a.srv.URL + "/a/tool.tgz"
	testenv.WriteFile(t, dir, "packages/tool/1.0.0.yaml", fmt.Sprintf("name: tool\nversion: 1.0.0\nlicense: MIT\nartifacts:\n  - url: %s\n    sha256: %s\n    size: %d\n",
		a.url, hex.EncodeToString(sum[:]), len(toolBytes)))
	return a
}

// serve makes the server answer body from now on.
func (a *toolArtifact) serve(body string) { a.body.Store(body) }
