package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
)

// stores are an encrypting and a plain envelope over one fresh mem:// backend each.
func stores(t *testing.T) map[string]*envelope.Store {
	return map[string]*envelope.Store{
		"encrypted": envelope.New(open(t, "mem://"), newKeyring(t), "test"),
		"plain":     envelope.New(open(t, "mem://"), nil, "test"),
	}
}

// A second Put with IfNotExists fails with storage.ErrExists and leaves the first object as
// it was; without IfNotExists it replaces it.
func TestPutIfNotExists(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			put(t, s, "once", []byte("first"), &envelope.PutOptions{IfNotExists: true})
			_, err := s.Put(ctx, "once", strings.NewReader("second"), &envelope.PutOptions{IfNotExists: true})
			if !errors.Is(err, storage.ErrExists) {
				t.Errorf("second put: %v, want ErrExists", err)
			}
			if got, err := read(t, s, "once"); err != nil || string(got) != "first" {
				t.Errorf("after the refused put: %q, %v", got, err)
			}
			put(t, s, "once", []byte("third"), nil)
			if got, err := read(t, s, "once"); err != nil || string(got) != "third" {
				t.Errorf("after an unconditional put: %q, %v", got, err)
			}
		})
	}
}

// A body longer or shorter than the Size the caller stated fails the Put with ErrCorrupt,
// naming the key and both lengths, and leaves no object behind, encrypted or not, whether
// the body is shorter or longer by a byte or by segments.
func TestPutStatedSizeMismatch(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		for _, c := range []struct {
			body   int
			stated int
			want   string
		}{
			{10, 9, "longer than its"},
			{10, 11, "10 bytes"},
			{3 * envelope.SegmentSize, envelope.SegmentSize, "longer than its"},
			{envelope.SegmentSize, 3 * envelope.SegmentSize, fmt.Sprintf("%d bytes", envelope.SegmentSize)},
			{0, 1, "0 bytes"},
		} {
			key := fmt.Sprintf("%s-%d-stated-%d", name, c.body, c.stated)
			data := random(t, c.body)
			// The digest is that of the real body, so only the size is wrong.
			_, err := s.Put(ctx, key, bytes.NewReader(data), &envelope.PutOptions{SHA256: sum(data), Size: int64(c.stated)})
			if !errors.Is(err, envelope.ErrCorrupt) || !strings.Contains(err.Error(), key) ||
				!strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fmt.Sprint(c.stated)) {
				t.Errorf("%s: %v, want ErrCorrupt naming the key, %q and %d", key, err, c.want, c.stated)
			}
			if _, err := s.Backend().Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: the failed put left an object: %v", key, err)
			}
		}
	}
}

// A body that fails while it is read fails the Put with the reader's error, and nothing is
// written: whether the envelope reads it to compute the digest (seekable or spooled) or
// while it uploads (digest given).
func TestPutReaderFails(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("disk on fire")
	data := random(t, 100)
	for name, s := range stores(t) {
		for _, c := range []struct {
			name string
			body func() io.Reader
			opts *envelope.PutOptions
		}{
			{"spooled", func() io.Reader { return io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)) }, nil},
			{"seekable", func() io.Reader { return &failingSeeker{ReadSeeker: bytes.NewReader(data), err: boom} }, nil},
			{"digest given", func() io.Reader { return io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)) },
				&envelope.PutOptions{SHA256: sum(data), Size: 200}},
		} {
			key := name + "/" + strings.ReplaceAll(c.name, " ", "-")
			if _, err := s.Put(ctx, key, c.body(), c.opts); !errors.Is(err, boom) {
				t.Errorf("%s: %v, want the reader's error", key, err)
			}
			if _, err := s.Backend().Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: the failed put left an object: %v", key, err)
			}
		}
		// A seekable body that fails to rewind after the digest pass fails the Put too.
		key := name + "/no-rewind"
		if _, err := s.Put(ctx, key, &noRewind{ReadSeeker: bytes.NewReader(data), err: boom}, nil); !errors.Is(err, boom) ||
			!strings.Contains(err.Error(), "put "+key) {
			t.Errorf("%s: %v, want the seek error naming the key", key, err)
		}
	}
}

// failingSeeker reads its bytes, then fails instead of reporting EOF.
type failingSeeker struct {
	io.ReadSeeker
	err error
}

func (f *failingSeeker) Read(p []byte) (int, error) {
	n, err := f.ReadSeeker.Read(p)
	if err == io.EOF {
		err = f.err
	}
	return n, err
}

// noRewind can tell where it is but fails to go back.
type noRewind struct {
	io.ReadSeeker
	err error
}

func (r *noRewind) Seek(offset int64, whence int) (int64, error) {
	if whence == io.SeekCurrent && offset == 0 {
		return r.ReadSeeker.Seek(offset, whence)
	}
	return 0, r.err
}

// A pipe (an *os.File that cannot seek, as stdin often is) is spooled and written whole,
// with the right digest.
func TestPutFromPipe(t *testing.T) {
	data := random(t, 3*envelope.SegmentSize+7)
	for name, s := range stores(t) {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() { pw.Write(data); pw.Close() }()
		info, err := s.Put(context.Background(), "piped", pr, nil)
		pr.Close()
		if err != nil || info.Size != int64(len(data)) || info.SHA256 != sum(data) {
			t.Fatalf("%s: put from a pipe: %+v, %v", name, info, err)
		}
		if got, err := read(t, s, "piped"); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: round trip from a pipe: %d bytes, %v", name, len(got), err)
		}
	}
}

// Verify reads an object whole and returns its facts; a plain object grown in the backend
// fails with ErrCorrupt saying it is longer than recorded.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		data := random(t, 2*envelope.SegmentSize)
		put(t, s, "obj", data, &envelope.PutOptions{Revision: "r7"})
		info, err := s.Verify(ctx, "obj")
		if err != nil || info.Size != int64(len(data)) || info.SHA256 != sum(data) || info.Revision != "r7" {
			t.Errorf("%s: verify of a sound object: %+v, %v", name, info, err)
		}
	}

	backend := open(t, "mem://")
	s := envelope.New(backend, nil, "test")
	put(t, s, "grown", []byte("0123456789"), nil)
	tamper(t, backend, "grown", func(b []byte) []byte { return append(b, "more"...) })
	if _, err := s.Verify(ctx, "grown"); !errors.Is(err, envelope.ErrCorrupt) ||
		!strings.Contains(err.Error(), "grown: object corrupt: longer than its recorded 10 bytes") {
		t.Errorf("grown plain object: %v", err)
	}

	enc := envelope.New(backend, newKeyring(t), "test")
	put(t, enc, "flipped", random(t, 1000), nil)
	tamper(t, backend, "flipped", func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	if _, err := enc.Verify(ctx, "flipped"); !errors.Is(err, envelope.ErrCorrupt) || !strings.Contains(err.Error(), "flipped") {
		t.Errorf("flipped encrypted object: %v", err)
	}
}

// Rewrap leaves alone what it has no business changing: it needs a keyring, and a plain
// object or one already under the primary key is reported unchanged; an object under a key
// this keyring never had fails with ErrKeyUnknown, naming the key.
func TestRewrapNothingToDo(t *testing.T) {
	ctx := context.Background()
	backend := open(t, "mem://")
	keys := newKeyring(t)
	s := envelope.New(backend, keys, "test")
	plain := envelope.New(backend, nil, "test")

	put(t, plain, "plain", []byte("clear"), nil)
	if _, _, err := plain.Rewrap(ctx, "plain"); err == nil || !strings.Contains(err.Error(), "no keyring") {
		t.Errorf("rewrap without a keyring: %v", err)
	}
	if changed, rewritten, err := s.Rewrap(ctx, "plain"); err != nil || changed || rewritten {
		t.Errorf("rewrap of a plain object: %v %v %v", changed, rewritten, err)
	}
	if st, err := s.Stat(ctx, "plain"); err != nil || st.Encryption != envelope.EncryptionNone {
		t.Errorf("the plain object after rewrap: %+v %v", st, err)
	}

	put(t, s, "current", []byte("under the primary"), nil)
	before, _ := backend.Stat(ctx, "current")
	if changed, rewritten, err := s.Rewrap(ctx, "current"); err != nil || changed || rewritten {
		t.Errorf("rewrap under the primary: %v %v %v", changed, rewritten, err)
	}
	after, _ := backend.Stat(ctx, "current")
	if after.Metadata[envelope.MetaWrappedKey] != before.Metadata[envelope.MetaWrappedKey] {
		t.Error("rewrap under the primary changed the wrapped key")
	}

	other := newKeyring(t)
	put(t, envelope.New(backend, other, "test"), "foreign", []byte("another keyring"), nil)
	_, _, err := s.Rewrap(ctx, "foreign")
	if !errors.Is(err, envelope.ErrKeyUnknown) || !strings.Contains(err.Error(), fmt.Sprintf("rewrap foreign: wrapped by key %d", other.Primary())) {
		t.Errorf("rewrap under an unknown key: %v", err)
	}
}

// Rewrap on the mem backend has to rewrite the object to change its metadata, and says so;
// the content and every other recorded fact survive.
func TestRewrapRewritesOnMem(t *testing.T) {
	ctx := context.Background()
	keys := newKeyring(t)
	s := envelope.New(open(t, "mem://"), keys, "test")
	data := random(t, envelope.SegmentSize+1)
	put(t, s, "obj", data, &envelope.PutOptions{ContentType: "text/csv", Revision: "r1", Env: "dev"})
	if _, err := keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	changed, rewritten, err := s.Rewrap(ctx, "obj")
	if err != nil || !changed || !rewritten {
		t.Fatalf("rewrap on mem: changed %v, rewritten %v, %v", changed, rewritten, err)
	}
	st, err := s.Stat(ctx, "obj")
	if err != nil || st.KeyID != itoa(keys.Primary()) || st.ContentType != "text/csv" || st.Revision != "r1" ||
		st.Env != "dev" || st.Writer != "test" || st.SHA256 != sum(data) {
		t.Errorf("after rewrap: %+v, %v", st, err)
	}
	if got, err := read(t, s, "obj"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("content after rewrap: %d bytes, %v", len(got), err)
	}
}

// Without a keyring, objects are written in the clear with their digest and the writer's
// name, under the content type asked for (application/octet-stream by default).
func TestPlainPutRecordsFacts(t *testing.T) {
	ctx := context.Background()
	backend := open(t, "mem://")
	s := envelope.New(backend, nil, "circle 1.2")
	info := put(t, s, "a", []byte("alpha"), nil)
	if info.ContentType != "application/octet-stream" || info.Encryption != envelope.EncryptionNone || info.KeyID != "" ||
		info.Writer != "circle 1.2" || info.Size != 5 {
		t.Errorf("put: %+v", info)
	}
	attrs, err := backend.Stat(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	md := attrs.Metadata
	if md[envelope.MetaFormat] != "1" || md[envelope.MetaEncryption] != "none" || md[envelope.MetaSHA256] != sum([]byte("alpha")) ||
		md[envelope.MetaSize] != "5" || md[envelope.MetaWriter] != "circle 1.2" || md[envelope.MetaWrappedKey] != "" ||
		attrs.ContentType != "application/octet-stream" {
		t.Errorf("backend metadata: %v, content type %s", md, attrs.ContentType)
	}
	rc, _, err := backend.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	if string(raw) != "alpha" {
		t.Errorf("raw plain object = %q", raw)
	}
}

// When the body cannot be spooled (the temporary directory is unusable), the Put fails,
// naming the key, and writes nothing.
func TestPutSpoolFails(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	s := envelope.New(open(t, "mem://"), newKeyring(t), "test")
	_, err := s.Put(context.Background(), "spooled", iotest.OneByteReader(strings.NewReader("data")), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "put spooled: ") {
		t.Errorf("put with no temporary directory: %v", err)
	}
	if _, err := s.Backend().Stat(context.Background(), "spooled"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the failed put left an object: %v", err)
	}
}
