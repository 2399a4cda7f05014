package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/storage"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	// The five backends, registered with blob's default URL mux.
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"
)

// Limits that hold on every backend, set by the strictest one.
const (
	// MaxKeySize is the longest key in bytes (S3 and GCS: 1,024 bytes of UTF-8).
	MaxKeySize = 1024
	// MaxMetadataSize caps the user metadata of one object, keys plus values, counted after
	// URL-escaping as S3 sends them: S3 allows 2 KiB of user metadata headers.
	MaxMetadataSize = 2048
	// MinPartSize is the smallest multipart part (S3 refuses smaller parts but the last).
	MinPartSize = 5 << 20
	// DefaultPartSize is the part size when PutOptions.PartSize is 0.
	DefaultPartSize = 8 << 20
	// maxParts keeps known-size uploads under S3's 10,000-part limit.
	maxParts = 10000
	// gcsMaxAttempts bounds the Google client's retries (it has no limit of its own), and
	// gcsUploadRetries the retries of one upload, all its chunks together: with the
	// client's backoff (1 s doubling, with jitter) three retries wait up to 7 s.
	gcsMaxAttempts   = 5
	gcsUploadRetries = 3
)

// Backend names, as Store.Backend returns them (the URL schemes).
const (
	BackendS3    = "s3"
	BackendAzure = "azblob"
	BackendGCS   = "gs"
	BackendFile  = "file"
	BackendMem   = "mem"
)

// Store is an open bucket, container or folder. Its methods are safe for concurrent use.
type Store struct {
	bucket   *blob.Bucket
	backend  string // URL scheme
	url      string // redacted, for errors
	fileRoot string // file: the folder, for listing
}

// Attrs describe an object.
type Attrs struct {
	Key         string
	Size        int64
	ModTime     time.Time
	ContentType string            // empty in List results
	ETag        string            // opaque version tag; empty in List results
	Metadata    map[string]string // lower-case keys; nil in List results
}

// PutOptions tune Put. The zero value (or nil) writes an application/octet-stream object
// without metadata, overwriting any object at the key.
type PutOptions struct {
	// ContentType is stored with the object; empty means application/octet-stream.
	ContentType string
	// Metadata is stored with the object; keys are lower-cased (see the package doc).
	Metadata map[string]string
	// IfNotExists makes Put fail with ErrExists when the key is taken, leaving it untouched.
	IfNotExists bool
	// Size is the exact length of the body when known, 0 when not. When set, parts are made
	// large enough for S3's part limit, and a body of another length fails the Put (the
	// object is not written): a short read is an error, not a truncated object.
	Size int64
	// PartSize is the multipart part size in bytes: 0 means DefaultPartSize; it is raised to
	// MinPartSize. Backends hold about PartSize × Concurrency bytes in memory per upload.
	PartSize int
	// Concurrency is the number of parts uploaded at once; 0 lets the SDK choose (5).
	Concurrency int
}

// Open opens the store at rawURL; see the package doc for the URL forms. Close it when done.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	s := &Store{url: Redacted(rawURL)}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &Error{Op: "open", URL: s.url, Err: fmt.Errorf("%w: %v", ErrInvalid, err)}
	}
	if u.User != nil {
		// No driver reads credentials from the URL; refusing them keeps them out of configs.
		return nil, &Error{Op: "open", URL: s.url, Err: fmt.Errorf("%w: credentials in the URL: use the SDK's usual sources (environment, files, workload identity)", ErrInvalid)}
	}
	s.backend = u.Scheme
	switch u.Scheme {
	case BackendS3, BackendAzure, BackendGCS, BackendMem:
	case BackendFile:
		if s.fileRoot, err = prepareFileURL(u); err != nil {
			return nil, &Error{Op: "open", URL: s.url, Err: err}
		}
	default:
		return nil, &Error{Op: "open", URL: s.url, Err: fmt.Errorf("%w: unsupported scheme %q (want s3, azblob, gs, file or mem)", ErrInvalid, u.Scheme)}
	}
	if s.bucket, err = blob.OpenBucket(ctx, u.String()); err != nil {
		// Drivers quote the URL in their errors; show the redacted one instead.
		if msg := strings.NewReplacer(rawURL, s.url, u.String(), s.url).Replace(err.Error()); msg != err.Error() {
			err = errors.New(msg)
		}
		return nil, s.wrap(ctx, "open", "", err, false)
	}
	if s.backend == BackendGCS {
		// The Google client retries only calls it knows to be idempotent, which leaves out
		// uploads without a precondition. Ours always write whole objects, so a retried
		// upload writes the same object again: let it retry everything transient. It also
		// retries until the context ends unless told otherwise; a server that keeps failing
		// should fail the call, as the AWS and Azure SDKs do after a few attempts.
		var c *storage.Client
		if s.bucket.As(&c) {
			c.SetRetry(storage.WithPolicy(storage.RetryAlways), storage.WithMaxAttempts(gcsMaxAttempts))
		}
	}
	return s, nil
}

// Backend returns the kind of store: BackendS3, BackendAzure, BackendGCS, BackendFile or
// BackendMem.
func (s *Store) Backend() string { return s.backend }

// URL returns the store's URL, redacted.
func (s *Store) URL() string { return s.url }

// Close releases the store's clients. Readers from Get must be closed first.
func (s *Store) Close() error {
	return s.wrap(context.Background(), "close", "", s.bucket.Close(), false)
}

// Put writes the object at key from r, streaming: large bodies are uploaded in parts and
// never held whole in memory. The object appears only when Put returns nil; a failed or
// cancelled Put leaves any previous object as it was.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts *PutOptions) error {
	var o PutOptions
	if opts != nil {
		o = *opts
	}
	if err := s.checkWrite(ctx, key, o.Metadata); err != nil {
		return s.wrap(ctx, "put", key, err, false)
	}
	if o.Size < 0 || o.PartSize < 0 || o.Concurrency < 0 {
		return s.wrap(ctx, "put", key, fmt.Errorf("%w: negative size, part size or concurrency", ErrInvalid), false)
	}
	if o.ContentType == "" {
		o.ContentType = "application/octet-stream"
	}
	// A cancelled writer context is gocloud's way to abort an upload: Close then discards
	// it instead of committing what was written so far.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.bucket.NewWriter(wctx, key, &blob.WriterOptions{
		ContentType:    o.ContentType,
		Metadata:       o.Metadata,
		IfNotExist:     o.IfNotExists,
		BufferSize:     partSize(o.PartSize, o.Size),
		MaxConcurrency: o.Concurrency,
		BeforeWrite:    s.beforeWrite,
	})
	if err != nil {
		return s.wrap(ctx, "put", key, err, false)
	}
	n, err := io.Copy(w, &ctxReader{ctx: ctx, r: r})
	if err == nil && o.Size > 0 && n != o.Size {
		err = fmt.Errorf("%w: body has %d bytes, Size says %d", ErrInvalid, n, o.Size)
	}
	if err != nil {
		cancel()
		_ = w.Close()
		return s.wrap(ctx, "put", key, err, false)
	}
	return s.wrap(ctx, "put", key, w.Close(), o.IfNotExists)
}

// beforeWrite bounds the Google client's upload retries, which WithMaxAttempts does not
// reach: uploads retry until the context ends. A budget per upload makes a server that keeps
// failing fail the Put, as S3 and Azure uploads do.
func (s *Store) beforeWrite(as func(any) bool) error {
	var h **storage.ObjectHandle
	if s.backend != BackendGCS || !as(&h) {
		return nil
	}
	retries := 0
	*h = (*h).Retryer(storage.WithErrorFunc(func(err error) bool {
		retries++
		return retries <= gcsUploadRetries && storage.ShouldRetry(err)
	}))
	return nil
}

// partSize returns the part size to ask the driver for: the requested one or the default,
// at least MinPartSize, and large enough for a known size to fit in maxParts parts.
func partSize(requested int, size int64) int {
	ps := int64(requested)
	if ps == 0 {
		ps = DefaultPartSize
	}
	ps = max(ps, MinPartSize)
	if need := (size + maxParts - 1) / maxParts; need > ps {
		ps = (need + 1<<20 - 1) &^ (1<<20 - 1) // whole MiB
	}
	return int(ps)
}

// getAttempts bounds how often Get looks again at an object that changes between its Stat
// and its read.
const getAttempts = 5

// Get opens the object at key for reading and returns its attributes, which describe the
// same version as the body (see the package doc); if the object is replaced more often than
// Get can catch it, Get fails rather than mix versions. The caller must close the reader.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, *Attrs, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, s.wrap(ctx, "get", key, err, false)
	}
	for attempt := 1; ; attempt++ {
		raw, err := s.bucket.Attributes(ctx, key)
		if err != nil {
			return nil, nil, s.wrap(ctx, "get", key, err, false)
		}
		r, err := s.bucket.NewReader(ctx, key, &blob.ReaderOptions{BeforeRead: s.pinRead(raw)})
		if err != nil && attempt < getAttempts && (isPrecondition(err) || gcerrors.Code(err) == gcerrors.NotFound) {
			continue // replaced or deleted since the Stat: look again
		}
		if isPrecondition(err) {
			err = fmt.Errorf("%w: %w", errChanged, err)
		}
		if err != nil {
			return nil, nil, s.wrap(ctx, "get", key, err, false)
		}
		// Size, time and type from the read itself: they describe the body returned even
		// where a server's Stat is not atomic (versitygw's posix backend keeps metadata in
		// extended attributes beside the file, and can answer with one version's size and
		// another's metadata while a writer replaces it).
		a := attrsOf(key, raw)
		a.Size, a.ModTime, a.ContentType = r.Size(), r.ModTime(), r.ContentType()
		return &reader{ctx: ctx, r: r, s: s, key: key}, a, nil
	}
}

// Stat returns the attributes of the object at key, with its metadata.
func (s *Store) Stat(ctx context.Context, key string) (*Attrs, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.wrap(ctx, "stat", key, err, false)
	}
	raw, err := s.bucket.Attributes(ctx, key)
	if err != nil {
		return nil, s.wrap(ctx, "stat", key, err, false)
	}
	return attrsOf(key, raw), nil
}

// Delete removes the object at key. Deleting a missing key succeeds, as on S3, so a
// delete can be retried and garbage collection can race with itself.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return s.wrap(ctx, "delete", key, err, false)
	}
	err := s.bucket.Delete(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound && ctx.Err() == nil {
		return nil
	}
	return s.wrap(ctx, "delete", key, err, false)
}

// Copy copies the object at src to dst, with its content type and metadata, overwriting dst.
// The copy is made by the server where the backend can (S3 up to 5 GiB, Azure, GCS);
// otherwise it is streamed through this process.
func (s *Store) Copy(ctx context.Context, dst, src string) error {
	if err := s.checkWrite(ctx, dst, nil); err != nil {
		return s.wrap(ctx, "copy", dst, err, false)
	}
	err := s.bucket.Copy(ctx, dst, src, nil)
	if err != nil && s.backend == BackendS3 && ctx.Err() == nil {
		// CopyObject refuses sources over 5 GiB; stream those instead.
		if a, serr := s.Stat(ctx, src); serr == nil && a.Size > s3CopyLimit {
			err = s.copyByStream(ctx, dst, src, nil)
		}
	}
	if err != nil {
		return s.wrap(ctx, "copy", src+" -> "+dst, err, false)
	}
	return nil
}

// s3CopyLimit is the largest object S3's CopyObject takes; a variable for tests.
var s3CopyLimit int64 = 5 << 30

// copyByStream copies src to dst through this process, keeping content type and, unless md
// is non-nil, metadata. It is the fallback where no server-side operation applies.
func (s *Store) copyByStream(ctx context.Context, dst, src string, md map[string]string) error {
	r, a, err := s.Get(ctx, src)
	if err != nil {
		return err
	}
	defer r.Close()
	if md == nil {
		md = a.Metadata
	}
	return s.Put(ctx, dst, r, &PutOptions{ContentType: a.ContentType, Metadata: md, Size: a.Size})
}

// checkWrite refuses, on every backend alike, what some backend would refuse: it keeps a
// store portable, so a copy from mem to S3 cannot fail on a key mem took.
func (s *Store) checkWrite(ctx context.Context, key string, md map[string]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if s.backend == BackendFile && strings.HasSuffix(key, ".attrs") {
		return fmt.Errorf("%w: keys ending in .attrs are reserved by the file backend", ErrInvalid)
	}
	return checkMetadata(md)
}

func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalid)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not UTF-8", ErrInvalid)
	case len(key) > MaxKeySize:
		return fmt.Errorf("%w: key has %d bytes, more than %d", ErrInvalid, len(key), MaxKeySize)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: key starts or ends with / or has //", ErrInvalid)
		case ".", "..":
			return fmt.Errorf("%w: key has a %q segment", ErrInvalid, seg)
		}
	}
	return nil
}

func checkMetadata(md map[string]string) error {
	seen := make(map[string]bool, len(md))
	size := 0
	for k, v := range md {
		lk := strings.ToLower(k)
		switch {
		case k == "":
			return fmt.Errorf("%w: empty metadata key", ErrInvalid)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return fmt.Errorf("%w: metadata %q is not UTF-8", ErrInvalid, k)
		case seen[lk]:
			return fmt.Errorf("%w: metadata keys differ only in case: %q", ErrInvalid, lk)
		}
		seen[lk] = true
		size += len(url.PathEscape(lk)) + len(url.PathEscape(v))
	}
	if size > MaxMetadataSize {
		return fmt.Errorf("%w: metadata is %d bytes escaped, more than %d", ErrInvalid, size, MaxMetadataSize)
	}
	return nil
}

// attrsOf converts gocloud's attributes, lower-casing metadata keys: objects written by
// other tools to Azure or GCS may carry upper-case ones.
func attrsOf(key string, a *blob.Attributes) *Attrs {
	var md map[string]string
	if len(a.Metadata) > 0 {
		md = make(map[string]string, len(a.Metadata))
		for k, v := range a.Metadata {
			md[strings.ToLower(k)] = v
		}
	}
	return &Attrs{
		Key:         key,
		Size:        a.Size,
		ModTime:     a.ModTime,
		ContentType: a.ContentType,
		ETag:        a.ETag,
		Metadata:    md,
	}
}

// ctxReader stops a copy when ctx is done, for backends whose writers would not notice
// until Close.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// reader is a Get body: it stops with the context's error once ctx is done (file and mem
// readers would otherwise keep going) and wraps read errors like every other error.
type reader struct {
	ctx context.Context
	r   *blob.Reader
	s   *Store
	key string
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, r.s.wrap(r.ctx, "get", r.key, err, false)
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.wrap(r.ctx, "get", r.key, err, false)
	}
	return n, err
}

func (r *reader) Close() error { return r.r.Close() }
