package envelope_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const canary = "CANARY-5a0e-never-in-plaintext"

// firstPlain is how much plaintext the first segment holds: the segment less Tink's
// 40-byte header and a 16-byte tag.
const firstPlain = envelope.SegmentSize - 40 - 16

func open(t *testing.T, url string) *storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newKeyring(t *testing.T) *envelope.Keyring {
	t.Helper()
	k, err := envelope.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func random(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func read(t *testing.T, s *envelope.Store, key string) ([]byte, error) {
	t.Helper()
	rc, _, err := s.Get(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func put(t *testing.T, s *envelope.Store, key string, data []byte, opts *envelope.PutOptions) *envelope.Info {
	t.Helper()
	info, err := s.Put(context.Background(), key, bytes.NewReader(data), opts)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestRoundTripSizes(t *testing.T) {
	s := envelope.New(open(t, "mem://"), newKeyring(t), "circle test")
	for _, n := range []int{0, 1, firstPlain - 1, firstPlain, firstPlain + 1,
		firstPlain + envelope.SegmentSize - 16, firstPlain + envelope.SegmentSize - 16 + 1, 100 << 20} {
		data := random(t, n)
		info := put(t, s, "obj", data, &envelope.PutOptions{ContentType: "text/plain", Revision: "abc", Env: "prod"})
		got, err := read(t, s, "obj")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: round trip gave %d bytes, %v", n, len(got), err)
		}
		st, err := s.Stat(context.Background(), "obj")
		if err != nil {
			t.Fatal(err)
		}
		if st.Size != int64(n) || st.SHA256 != sum(data) || st.ContentType != "text/plain" || st.Revision != "abc" ||
			st.Env != "prod" || st.Writer != "circle test" || st.KeyID == "" || st.Encryption != envelope.EncryptionTink ||
			st.StoredSize != info.StoredSize || st.StoredSize <= int64(n) {
			t.Errorf("%d bytes: stat = %+v, put = %+v", n, st, info)
		}
	}
}

// No plaintext reaches the backend: not in the raw object, not in the files on disk.
func TestNoPlaintextInBackend(t *testing.T) {
	dir := t.TempDir()
	backend := open(t, "file://"+dir)
	s := envelope.New(backend, newKeyring(t), "test")
	data := []byte(strings.Repeat("password: "+canary+"\n", 1000))
	put(t, s, "secrets/prod.yaml", data, nil)
	raw, attrs, err := backend.Get(context.Background(), "secrets/prod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(raw)
	raw.Close()
	if bytes.Contains(b, []byte(canary)) || attrs.ContentType != envelope.EncryptedMIMEType {
		t.Fatalf("raw object holds the plaintext (content type %s)", attrs.ContentType)
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(canary)) {
				t.Errorf("%s holds the plaintext", p)
			}
		}
		return nil
	})
}

// tamper rewrites an object's raw bytes with change, keeping its metadata.
func tamper(t *testing.T, backend *storage.Store, key string, change func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	rc, attrs, err := backend.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	b = change(b)
	if err := backend.Put(ctx, key, bytes.NewReader(b), &storage.PutOptions{ContentType: attrs.ContentType, Metadata: attrs.Metadata}); err != nil {
		t.Fatal(err)
	}
}

func corrupt(t *testing.T, s *envelope.Store, key, want string) {
	t.Helper()
	_, err := read(t, s, key)
	if !errors.Is(err, envelope.ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: err = %v, want ErrCorrupt mentioning %q", key, err, want)
	}
}

func TestTamperingDetected(t *testing.T) {
	backend := open(t, "mem://")
	s := envelope.New(backend, newKeyring(t), "test")
	data := random(t, 3*envelope.SegmentSize+100) // four segments
	for _, k := range []string{"flip", "truncate", "swap", "drop", "meta"} {
		put(t, s, k, data, nil)
	}
	tamper(t, backend, "flip", func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
	corrupt(t, s, "flip", "flip")
	tamper(t, backend, "truncate", func(b []byte) []byte { return b[:len(b)-10] })
	corrupt(t, s, "truncate", "truncate")
	// Segments 2 and 3 are whole ciphertext segments after the first.
	seg := envelope.SegmentSize
	tamper(t, backend, "swap", func(b []byte) []byte {
		out := append([]byte(nil), b[:seg]...)
		out = append(out, b[2*seg:3*seg]...)
		out = append(out, b[seg:2*seg]...)
		return append(out, b[3*seg:]...)
	})
	corrupt(t, s, "swap", "swap")
	// Dropping the last segment leaves a stream whose last segment is not marked last.
	tamper(t, backend, "drop", func(b []byte) []byte { return b[:3*seg] })
	corrupt(t, s, "drop", "drop")

	// Metadata edited to claim other content: the data key no longer unwraps.
	ctx := context.Background()
	attrs, err := backend.Stat(ctx, "meta")
	if err != nil {
		t.Fatal(err)
	}
	attrs.Metadata[envelope.MetaSHA256] = sum([]byte("other"))
	if _, err := backend.SetMetadata(ctx, "meta", attrs.Metadata); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "meta"); !errors.Is(err, envelope.ErrCorrupt) || !strings.Contains(err.Error(), "does not unwrap") {
		t.Errorf("edited metadata: %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	backend := open(t, "mem://")
	put(t, envelope.New(backend, newKeyring(t), "test"), "a", []byte("hello"), nil)
	_, _, err := envelope.New(backend, newKeyring(t), "test").Get(context.Background(), "a")
	if !errors.Is(err, envelope.ErrKeyUnknown) || !strings.Contains(err.Error(), "get a: wrapped by key") {
		t.Errorf("another keyring: %v", err)
	}
	if _, _, err := envelope.New(backend, nil, "test").Get(context.Background(), "a"); err == nil || !strings.Contains(err.Error(), "no keyring") {
		t.Errorf("no keyring: %v", err)
	}
}

// Write with A, rotate to B, read both, rewrap, retire A, read all.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	keys := newKeyring(t)
	a := keys.Primary()
	s := envelope.New(open(t, "mem://"), keys, "test")
	put(t, s, "old", []byte("written under A"), nil)
	put(t, s, "forgotten", []byte("never rewrapped"), nil)
	b, err := keys.Rotate()
	if err != nil || b == a || keys.Primary() != b {
		t.Fatalf("rotate: %d, %v", b, err)
	}
	put(t, s, "new", []byte("written under B"), nil)
	for key, want := range map[string]string{"old": "written under A", "new": "written under B"} {
		if got, err := read(t, s, key); err != nil || string(got) != want {
			t.Errorf("%s after rotation: %q, %v", key, got, err)
		}
	}
	if st, _ := s.Stat(ctx, "new"); st.KeyID != itoa(b) {
		t.Errorf("new object wrapped by %s, want %d", st.KeyID, b)
	}
	changed, _, err := s.Rewrap(ctx, "old")
	if err != nil || !changed {
		t.Fatalf("rewrap: %v %v", changed, err)
	}
	if changed, _, _ := s.Rewrap(ctx, "old"); changed {
		t.Error("a second rewrap changed the object again")
	}
	if err := keys.Retire(b); err == nil {
		t.Error("the primary was retired")
	}
	if err := keys.Retire(a); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"old": "written under A", "new": "written under B"} {
		if got, err := read(t, s, key); err != nil || string(got) != want {
			t.Errorf("%s after retiring A: %q, %v", key, got, err)
		}
	}
	_, err = read(t, s, "forgotten")
	if !errors.Is(err, envelope.ErrKeyRetired) || !strings.Contains(err.Error(), "wrapped by key "+itoa(a)) {
		t.Errorf("object under a retired key: %v", err)
	}
	if _, _, err := s.Rewrap(ctx, "forgotten"); !errors.Is(err, envelope.ErrKeyRetired) {
		t.Errorf("rewrap under a retired key: %v", err)
	}

	// The keyring file keeps the keys, their state and the history.
	file, err := keys.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := envelope.ReadKeyring(file)
	if err != nil {
		t.Fatal(err)
	}
	h := again.History()
	if len(h) != 3 || h[0].Action != "created" || h[0].Key != a || h[1].Action != "rotated" || h[1].Key != b || h[2].Action != "retired" || h[2].At.IsZero() {
		t.Errorf("history = %+v", h)
	}
	ks := again.Keys()
	if len(ks) != 2 || again.Primary() != b {
		t.Errorf("keys = %+v", ks)
	}
	for _, k := range ks {
		if k.Retired != (k.ID == a) || k.Primary != (k.ID == b) {
			t.Errorf("key %+v", k)
		}
	}
	if got, err := read(t, envelope.New(s.Backend(), again, "test"), "old"); err != nil || string(got) != "written under A" {
		t.Errorf("read with the reloaded keyring: %v", err)
	}
}

func itoa(id uint32) string { return strconv.FormatUint(uint64(id), 10) }

func TestPlainObjectsAndDigests(t *testing.T) {
	backend := open(t, "mem://")
	s := envelope.New(backend, nil, "test")
	data := []byte("not secret")
	// A reader that cannot seek is spooled first; one byte at a time, to be sure.
	info, err := s.Put(context.Background(), "plain", iotest.OneByteReader(bytes.NewReader(data)), nil)
	if err != nil || info.SHA256 != sum(data) || info.Encryption != envelope.EncryptionNone {
		t.Fatalf("put: %+v %v", info, err)
	}
	if got, err := read(t, s, "plain"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("plain round trip: %q %v", got, err)
	}
	tamper(t, backend, "plain", func(b []byte) []byte { b[0] ^= 1; return b })
	corrupt(t, s, "plain", "sha256")
	tamper(t, backend, "plain", func(b []byte) []byte { return b[:3] })
	corrupt(t, s, "plain", "3 bytes, recorded 10")

	// A stated digest the body does not match fails the Put and writes nothing.
	_, err = s.Put(context.Background(), "liar", bytes.NewReader(data), &envelope.PutOptions{SHA256: sum([]byte("x")), Size: int64(len(data))})
	if !errors.Is(err, envelope.ErrCorrupt) {
		t.Errorf("wrong stated digest: %v", err)
	}
	if _, err := backend.Stat(context.Background(), "liar"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a failed put left an object: %v", err)
	}
	enc := envelope.New(backend, newKeyring(t), "test")
	_, err = enc.Put(context.Background(), "liar", bytes.NewReader(data), &envelope.PutOptions{SHA256: sum([]byte("x")), Size: int64(len(data))})
	if !errors.Is(err, envelope.ErrCorrupt) {
		t.Errorf("wrong stated digest, encrypted: %v", err)
	}
	if _, err := backend.Stat(context.Background(), "liar"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a failed encrypted put left an object: %v", err)
	}

	// An object written by another tool is not ours to read.
	if err := backend.Put(context.Background(), "foreign", strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(context.Background(), "foreign"); !errors.Is(err, envelope.ErrCorrupt) || !strings.Contains(err.Error(), "not written by circle") {
		t.Errorf("foreign object: %v", err)
	}
}

func TestKeyringFiles(t *testing.T) {
	if _, err := envelope.ReadKeyring([]byte("{")); err == nil {
		t.Error("bad JSON accepted")
	}
	if _, err := envelope.ReadKeyring([]byte("{}")); err == nil {
		t.Error("a keyring without a keyset accepted")
	}
	k := newKeyring(t)
	b, _ := k.Marshal()
	p := filepath.Join(t.TempDir(), "keyring.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := envelope.ReadKeyringFile(p); err != nil || got.Primary() != k.Primary() {
		t.Errorf("ReadKeyringFile: %v", err)
	}
	if _, err := envelope.ReadKeyringFile(p + ".missing"); err == nil {
		t.Error("a missing file read")
	}
}

func sumOf(b []byte) string { return sum(b) }

func openBench(b *testing.B) *storage.Store {
	s, err := storage.Open(context.Background(), "mem://")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
