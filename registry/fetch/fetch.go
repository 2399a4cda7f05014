package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/storage"
)

// Defaults of Options.
const (
	// DefaultMaxSize is the largest artifact asked for: larger than any package archive a
	// configuration repository should name, small enough that a manifest cannot make the
	// daemon download without end.
	DefaultMaxSize = 1 << 30
	// DefaultTimeout bounds one artifact's fetch, from the request to the last byte.
	DefaultTimeout = 5 * time.Minute
	// maxRedirects bounds the redirects an https fetch follows, each checked.
	maxRedirects = 5
)

// Options are the operator's: the repository sets none of them.
type Options struct {
	// Sources are the prefixes artifacts may be fetched from (ParseSource). None: nothing is
	// fetched, and an artifact missing from the cache is refused (or "not fetched" when
	// Offline).
	Sources []string
	// Cache is the cache folder (OpenCache); required.
	Cache string
	// Offline uses the cache only: a missing artifact is registry.ErrNotFetched and nothing
	// is requested.
	Offline bool
	// MaxSize is the largest artifact fetched, in bytes (≤ 0: DefaultMaxSize); a manifest
	// naming a larger one is refused before any request.
	MaxSize int64
	// Timeout bounds each artifact's fetch (≤ 0: DefaultTimeout).
	Timeout time.Duration
	// RootCAs are the certificate authorities https servers are checked against; nil means
	// the system's. (Tests pass their loopback server's; certificates are always checked.)
	RootCAs *x509.CertPool
}

// Fetcher fetches artifacts from the allowed sources into its cache. It implements
// registry.Fetcher; its methods are safe for concurrent use. Close it when done.
type Fetcher struct {
	opts      Options
	sources   []Source
	cache     *Cache
	transport *http.Transport

	mu     sync.Mutex
	stores map[string]*storage.Store // by Source.storeURL
}

var _ registry.Fetcher = (*Fetcher)(nil)

// New checks opts and opens the cache.
func New(opts Options) (*Fetcher, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	f := &Fetcher{opts: opts, stores: map[string]*storage.Store{}}
	for _, raw := range opts.Sources {
		s, err := ParseSource(raw)
		if err != nil {
			return nil, err
		}
		f.sources = append(f.sources, s)
	}
	var err error
	if f.cache, err = OpenCache(opts.Cache); err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	// The digest is of the bytes as stored: a transparently gunzipped body would differ,
	// and a compressed one could expand past any cap before it is counted.
	t.DisableCompression = true
	t.TLSClientConfig = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
	t.MaxResponseHeaderBytes = 64 << 10
	t.ResponseHeaderTimeout = opts.Timeout
	f.transport = t
	return f, nil
}

// Cache is the fetcher's cache.
func (f *Fetcher) Cache() *Cache { return f.cache }

// Sources are the allowed sources, as ParseSource read them.
func (f *Fetcher) Sources() []Source { return append([]Source(nil), f.sources...) }

// Close closes the stores opened for storage sources and idle https connections.
func (f *Fetcher) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for k, s := range f.stores {
		errs = append(errs, s.Close())
		delete(f.stores, k)
	}
	f.transport.CloseIdleConnections()
	return errors.Join(errs...)
}

// Allowed returns the source a.URL is under, or an error wrapping ErrNotAllowed saying
// why not. Nothing is requested.
func (f *Fetcher) Allowed(rawURL string) (Source, error) {
	u, host, err := checkURL(rawURL, false)
	if err != nil {
		return Source{}, err
	}
	for _, s := range f.sources {
		if s.under(u, host) {
			return s, nil
		}
	}
	if len(f.sources) == 0 {
		return Source{}, fmt.Errorf("%w: no artifact source is allowed (--artifact-source)", ErrNotAllowed)
	}
	names := make([]string, len(f.sources))
	for i, s := range f.sources {
		names[i] = s.String()
	}
	return Source{}, fmt.Errorf("%w: not under an allowed artifact source (%s)", ErrNotAllowed, strings.Join(names, ", "))
}

// Fetch verifies a (registry.Fetcher): from the cache when it holds a's bytes, else, unless
// offline, from a.URL if an allowed source holds it, into the cache. Errors do not repeat
// the URL: the registry reports them at the artifact's line, naming it.
func (f *Fetcher) Fetch(ctx context.Context, a registry.Artifact) error {
	// The URL rules hold offline and for cached bytes too, so a URL with credentials or
	// over http is a problem wherever the manifest is read, not only where it is fetched.
	if _, _, err := checkURL(a.URL, false); err != nil {
		return err
	}
	ok, err := f.cache.Has(a)
	if err != nil || ok {
		return err
	}
	if f.opts.Offline {
		return fmt.Errorf("%w: not in the artifact cache %s (--fetch fetches it from an allowed --artifact-source)", registry.ErrNotFetched, f.cache.Dir())
	}
	src, err := f.Allowed(a.URL)
	if err != nil {
		return err
	}
	if a.Size > f.opts.MaxSize {
		return fmt.Errorf("size %d is over the limit of %d bytes (--artifact-max-size); not fetched", a.Size, f.opts.MaxSize)
	}
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	var body io.ReadCloser
	if src.scheme == SchemeHTTPS {
		body, err = f.get(ctx, src, a)
	} else {
		body, err = f.read(ctx, src, a)
	}
	if err == nil {
		err = f.cache.Put(a, body)
		body.Close()
	}
	if err != nil && ctx.Err() == context.DeadlineExceeded && !errors.As(err, new(*registry.MismatchError)) {
		return fmt.Errorf("timed out after %s (--artifact-timeout): %w", f.opts.Timeout, err)
	}
	return err
}

// get requests a over https, following only redirects under src.
func (f *Fetcher) get(ctx context.Context, src Source, a registry.Artifact) (io.ReadCloser, error) {
	client := &http.Client{
		Transport: f.transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrNotAllowed, maxRedirects)
			}
			u, host, err := checkURL(req.URL.String(), true)
			if err != nil {
				return fmt.Errorf("redirect to %s: %w", redactedURL(req.URL), err)
			}
			if !src.under(u, host) {
				return fmt.Errorf("redirect to %s: %w: outside the artifact source %s", redactedURL(req.URL), ErrNotAllowed, src)
			}
			return nil
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "circle")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, which the registry names already
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET: %s", resp.Status)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != a.Size {
		resp.Body.Close()
		return nil, &registry.MismatchError{Size: resp.ContentLength}
	}
	return resp.Body, nil
}

// read opens a in the store of src.
func (f *Fetcher) read(ctx context.Context, src Source, a registry.Artifact) (io.ReadCloser, error) {
	st, err := f.store(ctx, src)
	if err != nil {
		return nil, err
	}
	u, _, _ := checkURL(a.URL, false) // checked by Allowed
	body, attrs, err := st.Get(ctx, src.key(u.Path))
	if err != nil {
		return nil, err
	}
	if attrs.Size != a.Size {
		body.Close()
		return nil, &registry.MismatchError{Size: attrs.Size}
	}
	return body, nil
}

// store opens src's store once.
func (f *Fetcher) store(ctx context.Context, src Source) (*storage.Store, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := src.storeURL()
	if st := f.stores[key]; st != nil {
		return st, nil
	}
	st, err := storage.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("artifact source %s: %w", src, err)
	}
	f.stores[key] = st
	return st, nil
}

// redactedURL is a redirect target fit for a message: without user info or query.
func redactedURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment = nil, "", false, ""
	return c.String()
}
