package published_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circlecore/circle/sdk/config"
	"github.com/circlecore/circle/sdk/published"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/publish"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const schema = `
#Config: {
	db: {
		host: string
		port: int & >0 & <65536 | *5432
		password?: string
	}
	replicas: int & >=1 | *1
	...
}
`

type shopConfig struct {
	DB struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	} `json:"db"`
	Replicas int `json:"replicas"`
}

// publisher publishes builds as the daemon does: publish.Target over an envelope store
// sealed with the keyring.
type publisher struct {
	ring    *envelope.Keyring
	backend *storage.Store
	store   *envelope.Store
	target  *publish.Target
}

func newPublisher(t *testing.T, url string) *publisher {
	t.Helper()
	b, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ring, err := envelope.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	s := envelope.New(b, ring, "circle test")
	return &publisher{ring: ring, backend: b, store: s, target: publish.New(s, "")}
}

// publish publishes a build of env whose config.json is cfg, with a license file whose
// content is lic.
func (p *publisher) publish(t *testing.T, env, rev, cfg, lic string) *publish.Manifest {
	t.Helper()
	m, _, err := p.target.Publish(context.Background(), env, rev, []publish.File{
		{Path: "config.json", Data: []byte(cfg), ContentType: "application/json"},
		{Path: "licenses/shop.lic", Data: []byte(lic), ContentType: "text/plain"},
		{Path: "manifests.yaml", Data: []byte("kind: ConfigMap\n"), ContentType: "application/yaml"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tamper flips one byte of the stored (encrypted) object at key, keeping its metadata.
func (p *publisher) tamper(t *testing.T, key string) {
	t.Helper()
	ctx := context.Background()
	rc, a, err := p.backend.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := p.backend.Put(ctx, key, bytes.NewReader(b), &storage.PutOptions{ContentType: a.ContentType, Metadata: a.Metadata}); err != nil {
		t.Fatal(err)
	}
}

// restore puts build seq of env back as its current build, as an operator would after a
// bad current.json: publish.Target will not publish over a current.json it cannot read.
func (p *publisher) restore(t *testing.T, env string, seq int) {
	t.Helper()
	src := fmt.Sprintf("envs/%s/builds/%020d.json", env, seq)
	if err := p.backend.Copy(context.Background(), "envs/"+env+"/current.json", src); err != nil {
		t.Fatal(err)
	}
}

// objectOf returns the key of the object holding p in m.
func objectOf(t *testing.T, m *publish.Manifest, p string) string {
	t.Helper()
	for _, e := range m.Files {
		if e.Path == p {
			return "objects/" + e.Object
		}
	}
	t.Fatalf("build %d has no %s", m.Seq, p)
	return ""
}

// change is one OnChange call, as the db.host before and after.
type change struct{ old, new string }

// loader builds a Loader on src as a service would: typed, schema-checked, watched.
func loader(t *testing.T, src config.Source, changes chan<- change, errs chan<- error, opts ...config.Option) *config.Loader {
	t.Helper()
	opts = append([]config.Option{
		config.Remote(src),
		config.Schema([]byte(schema), "#Config"),
		config.OnChange(func(old, new *config.Config) {
			changes <- change{old.String("db.host"), new.String("db.host")}
		}),
		config.OnError(func(err error) { errs <- err }),
	}, opts...)
	l, err := config.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func host(l *config.Loader) string { return l.Current().String("db.host") }

// TestFile_ReadDecodeValidate reads config.json of the current build from a mem:// store,
// decodes it typed with the schema's defaults, and follows a new build with Reload.
func TestFile_ReadDecodeValidate(t *testing.T) {
	p := newPublisher(t, "mem://")
	p.publish(t, "prod", "r1", `{"db": {"host": "db-1", "password": "s3cret"}}`, "lic-1")
	env := published.New(p.store, "", "prod")
	f := env.Config()
	changes, errs := make(chan change, 10), make(chan error, 10)
	l := loader(t, f, changes, errs)

	var c shopConfig
	if err := l.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.DB.Host != "db-1" || c.DB.Port != 5432 || c.Replicas != 1 {
		t.Errorf("decoded %+v, want db-1:5432 (schema default) with 1 replica", c)
	}
	if b := f.Build(); b == nil || b.Revision != "r1" || b.Seq != 1 {
		t.Errorf("Build() = %+v, want revision r1, seq 1", b)
	}
	ctx := context.Background()
	if changed, err := f.Changed(ctx); err != nil || changed {
		t.Errorf("Changed before a new publish = %v, %v; want false", changed, err)
	}

	// Republishing the same files writes nothing: still no change.
	p.publish(t, "prod", "r1", `{"db": {"host": "db-1", "password": "s3cret"}}`, "lic-1")
	if changed, _ := f.Changed(ctx); changed {
		t.Error("Changed after an unchanged publish = true")
	}

	p.publish(t, "prod", "r2", `{"db": {"host": "db-2", "port": 6432}, "replicas": 3}`, "lic-1")
	if changed, err := f.Changed(ctx); err != nil || !changed {
		t.Fatalf("Changed after a new publish = %v, %v; want true", changed, err)
	}
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := <-changes; got != (change{"db-1", "db-2"}) {
		t.Errorf("OnChange saw %v, want db-1 → db-2", got)
	}
	if err := l.Decode(&c); err != nil || c.DB.Port != 6432 || c.Replicas != 3 {
		t.Errorf("after reload: %+v, %v", c, err)
	}

	// A build that changes only the license: config.json is not read again, and the
	// configuration, unchanged, calls no OnChange.
	p.publish(t, "prod", "r3", `{"db": {"host": "db-2", "port": 6432}, "replicas": 3}`, "lic-2")
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if b := f.Build(); b.Revision != "r3" {
		t.Errorf("Build().Revision = %s, want r3", b.Revision)
	}
	select {
	case ch := <-changes:
		t.Errorf("OnChange %v for a build whose config.json did not change", ch)
	default:
	}
}

// TestFile_Refused plays the ways a build can be bad on mem://: each is refused with its
// error, the configuration held stays, Changed no longer reports the bad build, and a good
// build afterwards is read as usual.
func TestFile_Refused(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// spoil replaces prod's current build with a bad one.
		spoil func(t *testing.T, p *publisher)
		want  error
	}{
		{"OtherKeyring", func(t *testing.T, p *publisher) {
			other, err := envelope.NewKeyring()
			if err != nil {
				t.Fatal(err)
			}
			m, _ := p.target.Current(ctx, "prod")
			m.Seq++
			b, _ := json.Marshal(m)
			if _, err := envelope.New(p.backend, other, "intruder").Put(ctx, "envs/prod/current.json", bytes.NewReader(b), nil); err != nil {
				t.Fatal(err)
			}
		}, envelope.ErrKeyUnknown},
		{"TamperedObject", func(t *testing.T, p *publisher) {
			m := p.publish(t, "prod", "bad", `{"db": {"host": "db-tampered"}}`, "lic-1")
			p.tamper(t, objectOf(t, m, "config.json"))
		}, envelope.ErrCorrupt},
		{"TamperedManifest", func(t *testing.T, p *publisher) {
			p.publish(t, "prod", "bad", `{"db": {"host": "db-tampered"}}`, "lic-1")
			p.tamper(t, "envs/prod/current.json")
		}, envelope.ErrCorrupt},
		{"OlderBuild", func(t *testing.T, p *publisher) {
			// A copy of build 1, sealed and intact: only its sequence number tells.
			if err := p.backend.Copy(ctx, "envs/prod/current.json", "envs/prod/builds/00000000000000000001.json"); err != nil {
				t.Fatal(err)
			}
		}, published.ErrRefused},
		{"OtherEnv", func(t *testing.T, p *publisher) {
			p.publish(t, "dev", "dev-1", `{"db": {"host": "db-dev"}}`, "lic-1")
			p.publish(t, "dev", "dev-2", `{"db": {"host": "db-dev2"}}`, "lic-1")
			p.publish(t, "dev", "dev-3", `{"db": {"host": "db-dev3"}}`, "lic-1")
			if err := p.backend.Copy(ctx, "envs/prod/current.json", "envs/dev/current.json"); err != nil {
				t.Fatal(err)
			}
		}, published.ErrRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPublisher(t, "mem://")
			p.publish(t, "prod", "r1", `{"db": {"host": "db-1"}}`, "lic-1")
			p.publish(t, "prod", "r2", `{"db": {"host": "db-2"}}`, "lic-1")
			f := published.New(p.store, "", "prod").Config()
			changes, errs := make(chan change, 10), make(chan error, 10)
			l := loader(t, f, changes, errs)

			tc.spoil(t, p)
			if changed, err := f.Changed(ctx); err != nil || !changed {
				t.Fatalf("Changed after the bad build = %v, %v; want true", changed, err)
			}
			err := l.Reload()
			if !errors.Is(err, tc.want) {
				t.Fatalf("Reload = %v, want %v", err, tc.want)
			}
			for _, s := range []string{"mem://", "env prod", "config.json"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
			if host(l) != "db-2" {
				t.Errorf("db.host = %s after a refused build, want db-2 kept", host(l))
			}
			if changed, _ := f.Changed(ctx); changed {
				t.Error("Changed still reports the refused build: a watcher would report it at every poll")
			}

			p.restore(t, "prod", 2)
			p.publish(t, "prod", "r9", `{"db": {"host": "db-9"}}`, "lic-1")
			if err := l.Reload(); err != nil {
				t.Fatalf("good build after the bad one: %v", err)
			}
			if host(l) != "db-9" {
				t.Errorf("db.host = %s, want db-9", host(l))
			}
		})
	}
}

// TestFile_SchemaFailure: a build that verifies but fails the service's schema is reported
// once by the watcher and the configuration held stays.
func TestFile_SchemaFailure(t *testing.T) {
	p := newPublisher(t, "mem://")
	p.publish(t, "prod", "r1", `{"db": {"host": "db-1"}}`, "lic-1")
	changes, errs := make(chan change, 10), make(chan error, 10)
	l := loader(t, published.New(p.store, "", "prod").Config(), changes, errs, config.PollInterval(10*time.Millisecond))
	stop, err := l.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	p.publish(t, "prod", "r2", `{"db": {"host": "db-2", "port": 0}}`, "lic-1")
	var ve *config.ValidationError
	if err := wait(t, errs); !errors.As(err, &ve) || ve.Problems[0].Path != "db.port" {
		t.Fatalf("OnError %v, want a ValidationError at db.port", err)
	}
	time.Sleep(100 * time.Millisecond) // ten polls
	select {
	case err := <-errs:
		t.Errorf("the failing build was reported again: %v", err)
	case ch := <-changes:
		t.Errorf("OnChange %v for a build that fails the schema", ch)
	default:
	}
	if host(l) != "db-1" {
		t.Errorf("db.host = %s, want db-1 kept", host(l))
	}
}

func TestOpen_Errors(t *testing.T) {
	ctx := context.Background()
	if _, err := published.Open(ctx, "mem://", "prod", nil); err == nil || !strings.Contains(err.Error(), "no keyring") {
		t.Errorf("Open without a keyring = %v, want refused", err)
	}
	ring, _ := envelope.NewKeyring()
	env, err := published.Open(ctx, "file://"+t.TempDir(), "prod", ring)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if env.Name() != "prod" {
		t.Errorf("Name() = %q", env.Name())
	}
	_, err = config.New(config.Remote(env.Config()))
	if !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "env prod") {
		t.Errorf("New on an environment never published = %v, want ErrNotFound naming env prod", err)
	}
	// An Env over a store the caller holds leaves it open; one Open made closes it.
	store, err := storage.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	shared := published.New(envelope.New(store, ring, "test"), "/p/", "dev")
	if err := shared.Close(); err != nil {
		t.Errorf("Close of a caller's store: %v", err)
	}
	if _, err := store.List(ctx, storage.ListOptions{}); err != nil {
		t.Errorf("the caller's store was closed: %v", err)
	}
	if err := env.Close(); err != nil {
		t.Errorf("Close of an opened store: %v", err)
	}
}

// countingProxy stands between the S3 client and versitygw and records each request as
// "METHOD /path". The Host header is passed through unchanged, so SigV4 signatures, made
// for the proxy's address, still verify at the server.
type countingProxy struct {
	mu   sync.Mutex
	reqs []string
}

func (c *countingProxy) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reqs
	c.reqs = nil
	return r
}

func startProxy(t *testing.T, target string) (*countingProxy, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &countingProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.reqs = append(c.reqs, r.Method+" "+r.URL.Path)
		c.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

// TestWatch_S3 runs the whole path against a real S3 server (versitygw): builds published
// as the daemon does, a service Loader reading through a proxy that counts its requests.
// It proves that an idle poll is one HEAD of current.json and nothing else; that a new
// build reaches OnChange with the old and the new configuration; that a build sealed with
// another keyring, and one whose object was tampered with, are each reported once and the
// configuration held stays; and that a good build afterwards is taken.
func TestWatch_S3(t *testing.T) {
	s3 := testenv.StartS3(t)
	bucketURL := s3.NewBucket(t)
	p := newPublisher(t, bucketURL)
	p.publish(t, "prod", "r1", `{"db": {"host": "db-1"}}`, "lic-1")

	u, _ := url.Parse(bucketURL)
	proxy, proxyURL := startProxy(t, s3.Endpoint)
	readerURL := "s3://" + u.Host + "?endpoint=" + proxyURL + "&use_path_style=true&region=" + s3.Region
	env, err := published.Open(context.Background(), readerURL, "prod", p.ring)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	f := env.Config()
	changes, errs := make(chan change, 10), make(chan error, 10)
	l := loader(t, f, changes, errs, config.PollInterval(50*time.Millisecond))
	var c shopConfig
	if err := l.Decode(&c); err != nil || c.DB.Host != "db-1" || c.DB.Port != 5432 {
		t.Fatalf("decoded %+v, %v", c, err)
	}
	current := "/" + u.Host + "/envs/prod/current.json"
	if reqs := proxy.take(); !slices.Contains(reqs, "GET "+current) || countPrefix(reqs, "GET /"+u.Host+"/objects/") != 1 {
		t.Errorf("first read made %v, want current.json and one object read", reqs)
	}

	stop, err := l.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	t.Run("IdlePollIsOneHead", func(t *testing.T) {
		time.Sleep(500 * time.Millisecond)
		reqs := proxy.take()
		if len(reqs) < 3 {
			t.Fatalf("%d requests in 500 ms of 50 ms polls: %v", len(reqs), reqs)
		}
		for _, r := range reqs {
			if r != "HEAD "+current {
				t.Errorf("an unchanged poll made %s; want only HEAD %s", r, current)
			}
		}
	})

	t.Run("NewBuild", func(t *testing.T) {
		p.publish(t, "prod", "r2", `{"db": {"host": "db-2"}}`, "lic-1")
		if got := waitChange(t, changes, errs); got != (change{"db-1", "db-2"}) {
			t.Errorf("OnChange saw %v, want db-1 → db-2", got)
		}
		if f.Build().Revision != "r2" {
			t.Errorf("Build().Revision = %s, want r2", f.Build().Revision)
		}
	})

	t.Run("LicenseOnlyBuild", func(t *testing.T) {
		proxy.take()
		p.publish(t, "prod", "r3", `{"db": {"host": "db-2"}}`, "lic-2")
		deadline := time.Now().Add(10 * time.Second)
		for f.Build().Revision != "r3" && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if f.Build().Revision != "r3" {
			t.Fatal("the build of r3 was not read")
		}
		time.Sleep(100 * time.Millisecond)
		reqs := proxy.take()
		if n := countPrefix(reqs, "GET /"+u.Host+"/objects/"); n != 0 {
			t.Errorf("config.json, unchanged in the new build, was read again (%d object reads)", n)
		}
		select {
		case ch := <-changes:
			t.Errorf("OnChange %v for an unchanged configuration", ch)
		default:
		}
	})

	t.Run("OtherKeyring", func(t *testing.T) {
		other, _ := envelope.NewKeyring()
		m, err := p.target.Current(context.Background(), "prod")
		if err != nil {
			t.Fatal(err)
		}
		m.Seq++
		b, _ := json.Marshal(m)
		if _, err := envelope.New(p.backend, other, "intruder").Put(context.Background(), "envs/prod/current.json", bytes.NewReader(b), nil); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, errs); !errors.Is(err, envelope.ErrKeyUnknown) {
			t.Errorf("OnError %v, want ErrKeyUnknown", err)
		}
		expectQuiet(t, l, changes, errs, "db-2")
		// Build 3 back as current: the same build the service holds, so no change.
		p.restore(t, "prod", 3)
		expectQuiet(t, l, changes, errs, "db-2")
	})

	t.Run("TamperedObject", func(t *testing.T) {
		// The object a build of staging uploads is the one prod's next build names (same
		// content, same target): tampered with in between, prod's build is bad from the
		// moment its current.json appears.
		m := p.publish(t, "staging", "s1", `{"db": {"host": "db-3"}}`, "lic-1")
		p.tamper(t, objectOf(t, m, "config.json"))
		p.publish(t, "prod", "r4", `{"db": {"host": "db-3"}}`, "lic-1")
		if err := wait(t, errs); !errors.Is(err, envelope.ErrCorrupt) {
			t.Errorf("OnError %v, want ErrCorrupt", err)
		}
		expectQuiet(t, l, changes, errs, "db-2")
	})

	t.Run("GoodBuildAfter", func(t *testing.T) {
		p.publish(t, "prod", "r5", `{"db": {"host": "db-5"}}`, "lic-1")
		if got := waitChange(t, changes, errs); got != (change{"db-2", "db-5"}) {
			t.Errorf("OnChange saw %v, want db-2 → db-5", got)
		}
	})
}

// expectQuiet checks that for a while nothing more is reported or changed and db.host is
// still want: a refused build is reported once, not at every poll.
func expectQuiet(t *testing.T, l *config.Loader, changes <-chan change, errs <-chan error, want string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-errs:
		t.Errorf("reported again: %v", err)
	case ch := <-changes:
		t.Errorf("OnChange %v", ch)
	default:
	}
	if host(l) != want {
		t.Errorf("db.host = %s, want %s kept", host(l), want)
	}
}

func countPrefix(reqs []string, prefix string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func wait(t *testing.T, errs <-chan error) error {
	t.Helper()
	select {
	case err := <-errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no OnError within 10s")
		return nil
	}
}

func waitChange(t *testing.T, changes <-chan change, errs <-chan error) change {
	t.Helper()
	select {
	case ch := <-changes:
		return ch
	case err := <-errs:
		t.Fatalf("OnError %v, want OnChange", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no OnChange within 10s")
	}
	return change{}
}
