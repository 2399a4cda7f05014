package fetch_test

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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/registry/fetch"
	"github.com/circlecore/circle/schema"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const body = "lib 1.0.0 bundle\n"

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// manifest is a repository whose one package ships one artifact at url, of the given
// digest and size. The artifact entry starts at line 5.
func manifest(url, sum string, size int) fstest.MapFS {
	return fstest.MapFS{"packages/lib/1.0.0.yaml": {Data: []byte(fmt.Sprintf(
		"name: lib\nversion: 1.0.0\nlicense: MIT\nartifacts:\n  - url: %s\n    sha256: %s\n    size: %d\n", url, sum, size))}}
}

// load loads a repository through f and returns the artifact's status, the notes and the
// problems, as text.
func load(t *testing.T, f registry.Fetcher, fsys fstest.MapFS) (status string, notes, problems []string) {
	t.Helper()
	r, err := registry.Load(context.Background(), fsys, registry.Options{Fetcher: f})
	var issues schema.Issues
	if errors.As(err, &issues) {
		for _, is := range issues {
			problems = append(problems, is.String())
		}
		return "", nil, problems
	}
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, n := range r.Notes {
		notes = append(notes, n.String())
	}
	return r.Package("lib").Versions[0].Artifacts[0].Status, notes, nil
}

// counter is an https server on 127.0.0.1 that counts the requests it gets, by path.
type counter struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newCounter(t *testing.T, h http.HandlerFunc) *counter {
	c := &counter{hits: map[string]int{}}
	c.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.hits[r.URL.Path]++
		c.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.hits {
		n += v
	}
	return n
}

func (c *counter) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Certificate())
	return p
}

func newFetcher(t *testing.T, opts fetch.Options) *fetch.Fetcher {
	t.Helper()
	if opts.Cache == "" {
		opts.Cache = t.TempDir()
	}
	f, err := fetch.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestFetch_Attacker plays the repository's author against a daemon that allows one https
// prefix. Every artifact below is refused with a problem at its manifest's line naming it,
// the server outside the allowed prefix never sees a request, and the allowed one sees only
// the requests of artifacts under the prefix.
func TestFetch_Attacker(t *testing.T) {
	evil := newCounter(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) })
	good := newCounter(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/releases/ok.tgz", "/releases-old/ok.tgz", "/admin/ok.tgz":
			fmt.Fprint(w, body)
		case "/releases/to-evil.tgz":
			http.Redirect(w, r, evil.URL+"/releases/ok.tgz", http.StatusFound)
		case "/releases/to-admin.tgz":
			http.Redirect(w, r, "/admin/ok.tgz", http.StatusFound)
		case "/releases/to-http.tgz":
			http.Redirect(w, r, "http://"+r.Host+"/releases/ok.tgz", http.StatusFound)
		case "/releases/loop.tgz":
			http.Redirect(w, r, "/releases/loop.tgz", http.StatusFound)
		case "/releases/forever.tgz":
			// No length, and no end: only the cap stops the reader.
			chunk := []byte(strings.Repeat("x", 32<<10))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/releases/long.tgz":
			w.Header().Set("Content-Length", "1000000")
			fmt.Fprint(w, body)
		case "/releases/slow.tgz":
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		case "/releases/tampered.tgz":
			fmt.Fprint(w, strings.ToUpper(body))
		default:
			http.NotFound(w, r)
		}
	})
	sum, size := digest(body), len(body)
	host := strings.TrimPrefix(good.URL, "https://")
	f := newFetcher(t, fetch.Options{Sources: []string{good.URL + "/releases/"}, RootCAs: good.pool(), Timeout: 500 * time.Millisecond, MaxSize: 1 << 20})

	cases := []struct {
		name, url string
		sum       string
		size      int
		want      string // the problem, after "packages/lib/1.0.0.yaml:"
		requests  int    // requests the allowed server gets
	}{
		{"other server", evil.URL + "/releases/ok.tgz", sum, size, "5:10: artifacts.0.url: artifact " + evil.URL + "/releases/ok.tgz: not allowed: not under an allowed artifact source (" + good.URL + "/releases/)", 0},
		{"user info", "https://user:pw@" + host + "/releases/ok.tgz", sum, size, "artifacts.0.url: artifact https://user:pw@" + host + "/releases/ok.tgz: not allowed: user info in the URL", 0},
		{"user info naming the host", "https://" + host + "@" + strings.TrimPrefix(evil.URL, "https://") + "/releases/ok.tgz", sum, size, "not allowed: user info in the URL", 0},
		{"http", "http://" + host + "/releases/ok.tgz", sum, size, "not allowed: http (use https)", 0},
		{"dot dot", good.URL + "/releases/../admin/ok.tgz", sum, size, `not allowed: path segment ".."`, 0},
		{"encoded dot dot", good.URL + "/releases/%2e%2e/admin/ok.tgz", sum, size, `not allowed: '%' at byte`, 0},
		{"encoded slash", good.URL + "/releases%2F..%2Fadmin/ok.tgz", sum, size, `not allowed: '%' at byte`, 0},
		{"backslash", good.URL + `/releases/..\admin/ok.tgz`, sum, size, `not allowed: '\\' at byte`, 0},
		{"prefix without boundary", good.URL + "/releases-old/ok.tgz", sum, size, "not allowed: not under an allowed artifact source", 0},
		{"query", good.URL + "/releases/ok.tgz?x=1", sum, size, `not allowed: '?' at byte`, 0},
		{"fragment", good.URL + "/releases/ok.tgz#@" + strings.TrimPrefix(evil.URL, "https://"), sum, size, `not allowed: '#' at byte`, 0},
		{"empty segment", good.URL + "//releases/ok.tgz", sum, size, "not allowed: empty path segment", 0},
		{"the folder itself", good.URL + "/releases/", sum, size, "not allowed: empty path segment", 0},
		{"too large", good.URL + "/releases/ok.tgz", sum, 2 << 20, "artifacts.0.url: artifact " + good.URL + "/releases/ok.tgz: size 2097152 is over the limit of 1048576 bytes", 0},
		{"redirect to another server", good.URL + "/releases/to-evil.tgz", sum, size, "artifact " + good.URL + "/releases/to-evil.tgz: redirect to " + evil.URL + "/releases/ok.tgz: not allowed: outside the artifact source " + good.URL + "/releases/", 1},
		{"redirect out of the prefix", good.URL + "/releases/to-admin.tgz", sum, size, "redirect to " + good.URL + "/admin/ok.tgz: not allowed: outside the artifact source", 1},
		{"redirect to http", good.URL + "/releases/to-http.tgz", sum, size, "redirect to http://" + host + "/releases/ok.tgz: not allowed: http (use https)", 1},
		{"redirect loop", good.URL + "/releases/loop.tgz", sum, size, "not allowed: more than 5 redirects", 6},
		{"streaming forever", good.URL + "/releases/forever.tgz", sum, size, fmt.Sprintf("7:11: artifacts.0.size: size %d does not match %s/releases/forever.tgz, which has more than %d bytes (reading stopped there)", size, good.URL, size), 1},
		{"wrong length", good.URL + "/releases/long.tgz", sum, size, fmt.Sprintf("7:11: artifacts.0.size: size %d does not match %s/releases/long.tgz, which has 1000000 bytes", size, good.URL), 1},
		{"wrong size", good.URL + "/releases/ok.tgz", sum, size - 1, fmt.Sprintf("7:11: artifacts.0.size: size %d does not match %s/releases/ok.tgz, which has %d bytes", size-1, good.URL, size), 1},
		{"wrong digest", good.URL + "/releases/tampered.tgz", sum, size, fmt.Sprintf("6:13: artifacts.0.sha256: sha256 does not match the bytes of %s/releases/tampered.tgz (sha256 %s)", good.URL, digest(strings.ToUpper(body))), 1},
		{"slow", good.URL + "/releases/slow.tgz", sum, size, "artifact " + good.URL + "/releases/slow.tgz: timed out after 500ms (--artifact-timeout)", 1},
		{"missing", good.URL + "/releases/none.tgz", sum, size, "artifact " + good.URL + "/releases/none.tgz: GET: 404 Not Found", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := good.total()
			start := time.Now()
			_, _, problems := load(t, f, manifest(c.url, c.sum, c.size))
			if len(problems) != 1 || !strings.HasPrefix(problems[0], "packages/lib/1.0.0.yaml:") || !strings.Contains(problems[0], c.want) {
				t.Errorf("problems = %q\nwant one containing %q", problems, c.want)
			}
			if n := good.total() - before; n != c.requests {
				t.Errorf("the allowed server got %d requests, want %d", n, c.requests)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
	if n := evil.total(); n != 0 {
		t.Errorf("the server outside the allowed prefix got %d requests", n)
	}
	if entries, _ := os.ReadDir(f.Cache().Dir()); len(entries) != 0 {
		t.Errorf("the cache holds %d files after refusals only", len(entries))
	}

	// The control: under the prefix, directly and through a redirect that stays there.
	for _, p := range []string{"/releases/ok.tgz"} {
		if status, notes, problems := load(t, f, manifest(good.URL+p, sum, size)); status != registry.ArtifactVerified || notes != nil || problems != nil {
			t.Errorf("%s: status %q, notes %v, problems %v", p, status, notes, problems)
		}
	}
}

// Without sources a fetcher fetches nothing, however the URL is spelled.
func TestFetch_NoSources(t *testing.T) {
	srv := newCounter(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) })
	f := newFetcher(t, fetch.Options{RootCAs: srv.pool()})
	_, _, problems := load(t, f, manifest(srv.URL+"/ok.tgz", digest(body), len(body)))
	if len(problems) != 1 || !strings.Contains(problems[0], "not allowed: no artifact source is allowed (--artifact-source)") {
		t.Errorf("problems = %q", problems)
	}
	if srv.total() != 0 {
		t.Errorf("%d requests", srv.total())
	}
}

// A verified artifact is fetched once: a second load, by another fetcher on the same
// cache, asks nothing; an offline fetcher finds it; a damaged cache file is fetched again.
func TestFetch_Cache(t *testing.T) {
	srv := newCounter(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) })
	dir := filepath.Join(t.TempDir(), "artifacts")
	opts := fetch.Options{Sources: []string{srv.URL + "/a/"}, RootCAs: srv.pool(), Cache: dir}
	fsys := manifest(srv.URL+"/a/lib.tgz", digest(body), len(body))

	offline := newFetcher(t, fetch.Options{Cache: dir, Offline: true})
	status, notes, problems := load(t, offline, fsys)
	if status != registry.ArtifactNotFetched || problems != nil || len(notes) != 1 ||
		!strings.Contains(notes[0], "packages/lib/1.0.0.yaml:5:10: artifacts.0.url: "+srv.URL+"/a/lib.tgz not fetched: not in the artifact cache") {
		t.Errorf("offline, cold: %q %q %q", status, notes, problems)
	}
	for i := range 2 {
		if status, _, problems := load(t, newFetcher(t, opts), fsys); status != registry.ArtifactVerified || problems != nil {
			t.Fatalf("load %d: %q %q", i, status, problems)
		}
	}
	if n := srv.total(); n != 1 {
		t.Errorf("two loads made %d requests, want 1", n)
	}
	if status, notes, _ := load(t, offline, fsys); status != registry.ArtifactVerified || notes != nil {
		t.Errorf("offline, warm: %q %q", status, notes)
	}
	// The same bytes under another URL (even one no source allows) are the same artifact.
	if status, _, _ := load(t, offline, manifest("s3://elsewhere/lib.tgz", digest(body), len(body))); status != registry.ArtifactVerified {
		t.Errorf("cached bytes under another URL: %q", status)
	}
	// Offline, the URL rules still hold.
	if _, _, problems := load(t, offline, manifest("http://example.com/lib.tgz", digest(body), len(body))); len(problems) != 1 || !strings.Contains(problems[0], "http (use https)") {
		t.Errorf("offline http: %q", problems)
	}

	cached := filepath.Join(dir, digest(body))
	for _, damage := range []string{strings.ToUpper(body), body[:3]} {
		if err := os.WriteFile(cached, []byte(damage), 0o600); err != nil {
			t.Fatal(err)
		}
		before := srv.total()
		if status, _, problems := load(t, newFetcher(t, opts), fsys); status != registry.ArtifactVerified || problems != nil {
			t.Errorf("damaged cache: %q %q", status, problems)
		}
		if srv.total() != before+1 {
			t.Errorf("a damaged cache file was not fetched again")
		}
		if b, _ := os.ReadFile(cached); string(b) != body {
			t.Errorf("cache file holds %q", b)
		}
	}
	if err := os.WriteFile(cached, []byte("bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	if status, notes, _ := load(t, offline, fsys); status != registry.ArtifactNotFetched || len(notes) != 1 {
		t.Errorf("offline, damaged: %q %q", status, notes)
	}
	if _, err := os.Stat(cached); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the damaged file was kept: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != digest(body) {
			t.Errorf("stray cache file %s", e.Name())
		}
	}
}

// A file:// source: a folder of the operator's.
func TestFetch_File(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "pkgs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "pkgs", "lib.tgz"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "secret"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each case on an empty cache: cached bytes count whatever URL names them.
	opts := fetch.Options{Sources: []string{"file://" + root + "/pkgs"}}
	f := newFetcher(t, opts)
	if status, _, problems := load(t, f, manifest("file://"+root+"/pkgs/lib.tgz", digest(body), len(body))); status != registry.ArtifactVerified || problems != nil {
		t.Errorf("file: %q %q", status, problems)
	}
	for _, u := range []string{"file://" + root + "/secret", "file://" + root + "/pkgs/../secret", "file://localhost" + root + "/pkgsx/lib.tgz", "file://host" + root + "/pkgs/lib.tgz"} {
		if _, _, problems := load(t, newFetcher(t, opts), manifest(u, digest(body), len(body))); len(problems) != 1 || !strings.Contains(problems[0], "not allowed") {
			t.Errorf("%s: %q", u, problems)
		}
	}
	if _, _, problems := load(t, f, manifest("file://"+root+"/pkgs/lib.tgz", digest(body), len(body)+1)); len(problems) != 1 ||
		!strings.Contains(problems[0], fmt.Sprintf("artifacts.0.size: size %d does not match file://%s/pkgs/lib.tgz, which has %d bytes", len(body)+1, root, len(body))) {
		t.Errorf("wrong size: %q", problems)
	}
}

// s3:// artifacts on versitygw: the store's options (endpoint, region) are the operator's
// source's, the credentials the environment's; the artifact URL names only bucket and key.
func TestFetch_S3(t *testing.T) {
	s3 := testenv.StartS3(t)
	bucketURL := s3.NewBucket(t)
	bucket := strings.TrimPrefix(bucketURL[:strings.Index(bucketURL, "?")], "s3://")
	ctx := context.Background()
	st, err := storage.Open(ctx, bucketURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for key, data := range map[string]string{"pkgs/lib-1.0.0.tgz": body, "pkgs/bad.tgz": strings.ToUpper(body), "private/lib.tgz": body} {
		if err := st.Put(ctx, key, strings.NewReader(data), nil); err != nil {
			t.Fatal(err)
		}
	}
	source := "s3://" + bucket + "/pkgs/" + bucketURL[strings.Index(bucketURL, "?"):]
	f := newFetcher(t, fetch.Options{Sources: []string{source}})
	sum, size := digest(body), len(body)
	if status, _, problems := load(t, f, manifest("s3://"+bucket+"/pkgs/lib-1.0.0.tgz", sum, size)); status != registry.ArtifactVerified || problems != nil {
		t.Fatalf("s3: %q %q", status, problems)
	}
	if entries, _ := os.ReadDir(f.Cache().Dir()); len(entries) != 1 || entries[0].Name() != sum {
		t.Errorf("cache = %v", entries)
	}
	cases := []struct{ url, want string }{
		{"s3://" + bucket + "/pkgs/bad.tgz", "artifacts.0.sha256: sha256 does not match the bytes of s3://" + bucket + "/pkgs/bad.tgz (sha256 " + digest(strings.ToUpper(body)) + ")"},
		{"s3://" + bucket + "/private/lib.tgz", "not allowed: not under an allowed artifact source (s3://" + bucket + "/pkgs/)"},
		{"s3://other-bucket/pkgs/lib.tgz", "not allowed: not under an allowed artifact source"},
		{"s3://" + bucket + "/pkgs/lib-1.0.0.tgz?endpoint=http://127.0.0.1:1", `not allowed: '?' at byte`},
		{"s3://" + bucket + "/pkgs/none.tgz", "artifact s3://" + bucket + "/pkgs/none.tgz: "},
	}
	for _, c := range cases {
		if _, _, problems := load(t, f, manifest(c.url, strings.Repeat("a", 64), size)); len(problems) != 1 || !strings.Contains(problems[0], c.want) {
			t.Errorf("%s: %q\nwant %q", c.url, problems, c.want)
		}
	}
	if _, _, problems := load(t, f, manifest("s3://"+bucket+"/pkgs/lib-1.0.0.tgz", strings.Repeat("a", 64), size+5)); len(problems) != 1 ||
		!strings.Contains(problems[0], fmt.Sprintf("artifacts.0.size: size %d does not match s3://%s/pkgs/lib-1.0.0.tgz, which has %d bytes", size+5, bucket, size)) {
		t.Errorf("wrong size: %q", problems)
	}
}

// A digest names a file only when it is one: the schema already refuses anything else,
// and the cache does not rely on it.
func TestCache_DigestNamesOnly(t *testing.T) {
	c, err := fetch.OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, sum := range []string{"../../etc/passwd", strings.Repeat("A", 64), strings.Repeat("a", 63), ""} {
		a := registry.Artifact{URL: "https://h/x", SHA256: sum, Size: 1}
		if _, err := c.Has(a); err == nil {
			t.Errorf("Has(%q) did not refuse", sum)
		}
		if err := c.Put(a, strings.NewReader("x")); err == nil {
			t.Errorf("Put(%q) did not refuse", sum)
		}
	}
	if _, err := fetch.OpenCache(""); err == nil {
		t.Error("OpenCache(\"\") did not refuse")
	}
	if entries, _ := os.ReadDir(c.Dir()); len(entries) != 0 {
		t.Errorf("cache holds %v", entries)
	}
}
