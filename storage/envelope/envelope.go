package envelope

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/tink-crypto/tink-go/v2/streamingaead/subtle"

	"github.com/circlecore/circle/storage"
)

// Metadata keys; see the package doc.
const (
	MetaFormat      = "circle-format"
	MetaEncryption  = "circle-encryption"
	MetaKeyID       = "circle-key-id"
	MetaWrappedKey  = "circle-wrapped-key"
	MetaSHA256      = "circle-sha256"
	MetaSize        = "circle-size"
	MetaContentType = "circle-content-type"
	MetaRevision    = "circle-revision"
	MetaEnv         = "circle-env"
	MetaWriter      = "circle-writer"
)

// Format values.
const (
	FormatVersion     = "1"
	EncryptionTink    = "tink-aes256-gcm-hkdf-64k"
	EncryptionNone    = "none"
	EncryptedMIMEType = "application/vnd.circle.encrypted"
	// SegmentSize is the ciphertext segment size: memory per stream is about two of them,
	// so many objects can stream at once. Measured here, Tink's AES-GCM-HKDF runs at the
	// speed of raw AES-GCM with 64 KiB segments as with 1 MiB ones.
	SegmentSize = 64 << 10
)

// ErrCorrupt is wrapped when an object does not match its metadata: bad digest or size,
// a ciphertext that does not authenticate, missing or malformed metadata.
var ErrCorrupt = errors.New("object corrupt")

var streamAD = []byte("circle-storage/1")

// Store writes and reads objects of a storage.Store through the envelope format.
type Store struct {
	backend *storage.Store
	keys    *Keyring
	writer  string
	// AllowPlain lets a store with a keyring read objects written in the clear. Off by
	// default: a reader with a keyring refuses them.
	AllowPlain bool
}

// New wraps backend. With keys nil, objects are written in the clear (encryption "none")
// but still carry and verify their digest; encrypted objects then cannot be read.
func New(backend *storage.Store, keys *Keyring, writer string) *Store {
	return &Store{backend: backend, keys: keys, writer: writer}
}

// Backend is the store underneath.
func (s *Store) Backend() *storage.Store { return s.backend }

// PutOptions describe what is written.
type PutOptions struct {
	ContentType string
	Revision    string
	Env         string
	// SHA256 (hex) and Size, when both known, save a pass over the content; a body that
	// does not match them fails the Put. When unknown, a seekable body is read twice and
	// any other is spooled to a temporary file first.
	SHA256 string
	Size   int64
	// IfNotExists fails with storage.ErrExists when the key is taken.
	IfNotExists bool
}

// Info is an object's recorded facts.
type Info struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"contentType,omitempty"`
	Encryption  string `json:"encryption"`
	KeyID       string `json:"keyId,omitempty"`
	Revision    string `json:"revision,omitempty"`
	Env         string `json:"env,omitempty"`
	Writer      string `json:"writer,omitempty"`
	// StoredSize is the size in the backend (ciphertext).
	StoredSize int64 `json:"storedSize"`
}

// Put writes r at key.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts *PutOptions) (*Info, error) {
	if opts == nil {
		opts = &PutOptions{}
	}
	sum, size := opts.SHA256, opts.Size
	if sum == "" {
		var cleanup func()
		var err error
		r, sum, size, cleanup, err = digest(r)
		if err != nil {
			return nil, fmt.Errorf("put %s: %w", key, err)
		}
		defer cleanup()
	}
	info := &Info{Key: key, Size: size, SHA256: sum, ContentType: opts.ContentType, Revision: opts.Revision,
		Env: opts.Env, Writer: s.writer, Encryption: EncryptionNone}
	if info.ContentType == "" {
		info.ContentType = "application/octet-stream"
	}
	// The body is checked against the digest while it streams: a mismatch aborts the
	// upload, so no object claims a digest its content does not have.
	po := &storage.PutOptions{ContentType: info.ContentType, IfNotExists: opts.IfNotExists}
	var err error
	if s.keys == nil {
		po.Size = size
		po.Metadata = info.metadata()
		err = s.backend.Put(ctx, key, &verifying{r: r, h: sha256.New(), want: sum, size: size, key: key}, po)
	} else {
		err = s.putEncrypted(ctx, key, r, info, po)
	}
	if err != nil {
		return nil, err
	}
	return info, nil
}

func (s *Store) putEncrypted(ctx context.Context, key string, body io.Reader, info *Info, po *storage.PutOptions) error {
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return err
	}
	id, wrapped, err := s.keys.wrap(dek, wrapAD(info.SHA256, info.Size))
	if err != nil {
		return fmt.Errorf("put %s: wrap data key: %w", key, err)
	}
	info.Encryption, info.KeyID = EncryptionTink, id
	md := info.metadata()
	md[MetaWrappedKey] = base64.StdEncoding.EncodeToString(wrapped)
	cipher, err := newStream(dek)
	if err != nil {
		return err
	}
	info.StoredSize = ciphertextSize(cipher, info.Size)
	po.ContentType, po.Metadata, po.Size = EncryptedMIMEType, md, info.StoredSize

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(seal(pw, body, cipher, info.SHA256, info.Size, key)) }()
	err = s.backend.Put(ctx, key, pr, po)
	pr.CloseWithError(errors.New("upload ended")) // unblocks the encrypting goroutine
	return err
}

// seal writes r to dst encrypted, checking on the way that r has the wanted sha256 and
// size: the whole of what a Put does to the bytes, minus the backend. On a mismatch it
// returns ErrCorrupt before closing the stream, so the upload is aborted.
//
// Hashing and encryption each cost about as much as the other, so each segment is hashed
// on a second goroutine while it is encrypted: on two cores this nearly halves the time.
func seal(dst io.Writer, r io.Reader, c *subtle.AESGCMHKDF, want string, size int64, key string) error {
	w, err := c.NewEncryptingWriter(dst, streamAD)
	if err != nil {
		return err
	}
	h := sha256.New()
	buf := make([]byte, SegmentSize)
	var n int64
	for {
		m, rerr := io.ReadFull(r, buf)
		if m > 0 {
			n += int64(m)
			if n > size {
				return fmt.Errorf("%s: %w: longer than its stated %d bytes", key, ErrCorrupt, size)
			}
			var wg sync.WaitGroup
			wg.Go(func() { h.Write(buf[:m]) })
			_, werr := w.Write(buf[:m])
			wg.Wait()
			if werr != nil {
				return werr
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if n != size {
		return fmt.Errorf("%s: %w: %d bytes, stated %d", key, ErrCorrupt, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: %w: sha256 %s, stated %s", key, ErrCorrupt, got, want)
	}
	return w.Close()
}

// Get opens the object at key. The reader returns the plaintext and fails with
// ErrCorrupt, at the latest at the end, if it does not match the recorded digest.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, *Info, error) {
	rc, attrs, err := s.backend.Get(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	info, err := infoOf(attrs)
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("get %s: %w", key, err)
	}
	var plain io.Reader = rc
	if info.Encryption == EncryptionNone && s.keys != nil && !s.AllowPlain {
		// Whoever can write to the bucket could otherwise swap an encrypted object for a
		// plain one with matching metadata, and it would be read as if it were ours.
		rc.Close()
		return nil, nil, fmt.Errorf("get %s: %w: not encrypted, and this store expects encrypted objects", key, ErrCorrupt)
	}
	if info.Encryption == EncryptionTink {
		if s.keys == nil {
			rc.Close()
			return nil, nil, fmt.Errorf("get %s: encrypted, and no keyring is configured", key)
		}
		dek, err := s.unwrap(attrs.Metadata, info)
		if err != nil {
			rc.Close()
			return nil, nil, fmt.Errorf("get %s: %w", key, err)
		}
		cipher, err := newStream(dek)
		if err != nil {
			rc.Close()
			return nil, nil, err
		}
		plain, err = cipher.NewDecryptingReader(rc, streamAD)
		if err != nil {
			rc.Close()
			if isBackend(err) { // the header read failed, not its check
				return nil, nil, fmt.Errorf("get %s: %w", key, err)
			}
			return nil, nil, fmt.Errorf("get %s: %w: %v", key, ErrCorrupt, err)
		}
	}
	v := &verifying{r: &decryptErr{plain, key}, h: sha256.New(), want: info.SHA256, size: info.Size, key: key}
	return &readCloser{Reader: v, Closer: rc}, info, nil
}

// Stat returns an object's recorded facts without reading it.
func (s *Store) Stat(ctx context.Context, key string) (*Info, error) {
	attrs, err := s.backend.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	info, err := infoOf(attrs)
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", key, err)
	}
	return info, nil
}

// Verify reads the whole object and checks it against its metadata.
func (s *Store) Verify(ctx context.Context, key string) (*Info, error) {
	rc, info, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, err
	}
	return info, nil
}

// Rewrap re-encrypts the object's data key under the keyring's primary key. It reports
// whether anything changed (an object already under the primary, or not encrypted, is left
// alone) and whether the backend had to rewrite the content to change the metadata.
func (s *Store) Rewrap(ctx context.Context, key string) (changed, rewritten bool, err error) {
	if s.keys == nil {
		return false, false, errors.New("rewrap: no keyring")
	}
	attrs, err := s.backend.Stat(ctx, key)
	if err != nil {
		return false, false, err
	}
	info, err := infoOf(attrs)
	if err != nil {
		return false, false, fmt.Errorf("rewrap %s: %w", key, err)
	}
	primary := strconv.FormatUint(uint64(s.keys.Primary()), 10)
	if info.Encryption != EncryptionTink || info.KeyID == primary {
		return false, false, nil
	}
	dek, err := s.unwrap(attrs.Metadata, info)
	if err != nil {
		return false, false, fmt.Errorf("rewrap %s: %w", key, err)
	}
	id, wrapped, err := s.keys.wrap(dek, wrapAD(info.SHA256, info.Size))
	if err != nil {
		return false, false, err
	}
	md := make(map[string]string, len(attrs.Metadata))
	for k, v := range attrs.Metadata {
		md[k] = v
	}
	md[MetaKeyID], md[MetaWrappedKey] = id, base64.StdEncoding.EncodeToString(wrapped)
	rewritten, err = s.backend.SetMetadata(ctx, key, md)
	if err != nil {
		return false, false, fmt.Errorf("rewrap %s: %w", key, err)
	}
	return true, rewritten, nil
}

func (s *Store) unwrap(md map[string]string, info *Info) ([]byte, error) {
	wrapped, err := base64.StdEncoding.DecodeString(md[MetaWrappedKey])
	if err != nil || len(wrapped) == 0 {
		return nil, fmt.Errorf("%w: no wrapped data key", ErrCorrupt)
	}
	return s.keys.unwrap(info.KeyID, wrapped, wrapAD(info.SHA256, info.Size))
}

func (i *Info) metadata() map[string]string {
	md := map[string]string{
		MetaFormat: FormatVersion, MetaEncryption: i.Encryption, MetaSHA256: i.SHA256,
		MetaSize: strconv.FormatInt(i.Size, 10), MetaContentType: i.ContentType,
	}
	for k, v := range map[string]string{MetaKeyID: i.KeyID, MetaRevision: i.Revision, MetaEnv: i.Env, MetaWriter: i.Writer} {
		if v != "" {
			md[k] = v
		}
	}
	return md
}

func infoOf(a *storage.Attrs) (*Info, error) {
	md := a.Metadata
	if md[MetaFormat] != FormatVersion {
		return nil, fmt.Errorf("%w: not written by circle storage (format %q)", ErrCorrupt, md[MetaFormat])
	}
	size, err := strconv.ParseInt(md[MetaSize], 10, 64)
	if err != nil || size < 0 {
		return nil, fmt.Errorf("%w: size %q", ErrCorrupt, md[MetaSize])
	}
	if b, err := hex.DecodeString(md[MetaSHA256]); err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%w: sha256 %q", ErrCorrupt, md[MetaSHA256])
	}
	info := &Info{Key: a.Key, Size: size, SHA256: md[MetaSHA256], ContentType: md[MetaContentType],
		Encryption: md[MetaEncryption], KeyID: md[MetaKeyID], Revision: md[MetaRevision], Env: md[MetaEnv],
		Writer: md[MetaWriter], StoredSize: a.Size}
	switch info.Encryption {
	case EncryptionNone, EncryptionTink:
	default:
		return nil, fmt.Errorf("%w: encryption %q", ErrCorrupt, info.Encryption)
	}
	return info, nil
}

func wrapAD(sum string, size int64) []byte {
	return []byte("circle-storage/1 " + sum + " " + strconv.FormatInt(size, 10))
}

func newStream(dek []byte) (*subtle.AESGCMHKDF, error) {
	return subtle.NewAESGCMHKDF(dek, "SHA256", 32, SegmentSize, 0)
}

// ciphertextSize is the stored size of size bytes of plaintext: Tink's header, then each
// segment's plaintext plus its tag (the first segment's plaintext is shorter by the header).
func ciphertextSize(c *subtle.AESGCMHKDF, size int64) int64 {
	header := int64(c.HeaderLength())
	tag := int64(subtle.AESGCMHKDFTagSizeInBytes)
	firstPlain := int64(SegmentSize) - header - tag
	plain := int64(SegmentSize) - tag
	segments := int64(1)
	if size > firstPlain {
		segments += (size - firstPlain + plain - 1) / plain
	}
	return header + size + segments*tag
}

// digest computes sha256 and size of r, returning a reader of the same bytes: r itself
// rewound if it can seek, else a temporary file (removed by cleanup).
func digest(r io.Reader) (io.Reader, string, int64, func(), error) {
	h := sha256.New()
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err == nil {
			n, err := io.Copy(h, rs)
			if err != nil {
				return nil, "", 0, nil, err
			}
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return nil, "", 0, nil, err
			}
			return rs, hex.EncodeToString(h.Sum(nil)), n, func() {}, nil
		}
	}
	f, err := os.CreateTemp("", "circle-put-*")
	if err != nil {
		return nil, "", 0, nil, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, "", 0, nil, err
	}
	return f, hex.EncodeToString(h.Sum(nil)), n, cleanup, nil
}

// verifying passes r through, and at its end fails with ErrCorrupt unless the bytes had
// the wanted sha256 and size.
type verifying struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	want string
	size int64
	key  string
}

func (v *verifying) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.size {
		return n, fmt.Errorf("%s: %w: longer than its recorded %d bytes", v.key, ErrCorrupt, v.size)
	}
	if err == io.EOF {
		if v.n != v.size {
			return n, fmt.Errorf("%s: %w: %d bytes, recorded %d", v.key, ErrCorrupt, v.n, v.size)
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("%s: %w: sha256 %s, recorded %s", v.key, ErrCorrupt, got, v.want)
		}
	}
	return n, err
}

// decryptErr marks Tink's decryption failures (tampering, truncation, reordering) as
// ErrCorrupt; backend errors pass through.
type decryptErr struct {
	r   io.Reader
	key string
}

func (d *decryptErr) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF && !isBackend(err) {
		err = fmt.Errorf("%s: %w: %v", d.key, ErrCorrupt, err)
	}
	return n, err
}

func isBackend(err error) bool {
	var se *storage.Error
	return errors.As(err, &se) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

type readCloser struct {
	io.Reader
	io.Closer
}
