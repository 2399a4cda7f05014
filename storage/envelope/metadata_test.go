package envelope_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
)

// Every piece of metadata a read relies on, missing or malformed, makes the read fail with
// ErrCorrupt, and the error names the object, the operation and what is wrong with it. The
// object is wrapped by a key that is no longer the primary, so that Rewrap has to unwrap it.
func TestMalformedMetadata(t *testing.T) {
	ctx := context.Background()
	backend := open(t, "mem://")
	keys := newKeyring(t)
	s := envelope.New(backend, keys, "test")
	data := []byte("the content")
	put(t, s, "original", data, nil)
	if _, err := keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	attrs, err := backend.Stat(ctx, "original")
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name   string
		change func(md map[string]string)
		want   string
		// stat says whether Stat notices: it reads the recorded facts, not the key fields.
		stat bool
	}{
		{"no format", func(md map[string]string) { delete(md, envelope.MetaFormat) }, `not written by circle storage (format "")`, true},
		{"format 2", func(md map[string]string) { md[envelope.MetaFormat] = "2" }, `format "2"`, true},
		{"no size", func(md map[string]string) { delete(md, envelope.MetaSize) }, `size ""`, true},
		{"negative size", func(md map[string]string) { md[envelope.MetaSize] = "-1" }, `size "-1"`, true},
		{"size not a number", func(md map[string]string) { md[envelope.MetaSize] = "ten" }, `size "ten"`, true},
		{"no sha256", func(md map[string]string) { delete(md, envelope.MetaSHA256) }, `sha256 ""`, true},
		{"sha256 not hex", func(md map[string]string) { md[envelope.MetaSHA256] = "not-hex" }, `sha256 "not-hex"`, true},
		{"sha256 too short", func(md map[string]string) { md[envelope.MetaSHA256] = "abcd" }, `sha256 "abcd"`, true},
		{"no encryption", func(md map[string]string) { delete(md, envelope.MetaEncryption) }, `encryption ""`, true},
		{"unknown encryption", func(md map[string]string) { md[envelope.MetaEncryption] = "rot13" }, `encryption "rot13"`, true},
		{"no key id", func(md map[string]string) { delete(md, envelope.MetaKeyID) }, `key id ""`, false},
		{"key id not a number", func(md map[string]string) { md[envelope.MetaKeyID] = "primary" }, `key id "primary"`, false},
		{"key id over 32 bits", func(md map[string]string) { md[envelope.MetaKeyID] = "4294967296" }, `key id "4294967296"`, false},
		{"no wrapped key", func(md map[string]string) { delete(md, envelope.MetaWrappedKey) }, "no wrapped data key", false},
		{"wrapped key not base64", func(md map[string]string) { md[envelope.MetaWrappedKey] = "not base64!" }, "no wrapped data key", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := "bad/" + strings.ReplaceAll(c.name, " ", "-")
			if err := backend.Copy(ctx, key, "original"); err != nil {
				t.Fatal(err)
			}
			md := maps.Clone(attrs.Metadata)
			c.change(md)
			if _, err := backend.SetMetadata(ctx, key, md); err != nil {
				t.Fatal(err)
			}

			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, envelope.ErrCorrupt) || !strings.Contains(err.Error(), op+" "+key+": ") ||
					!strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: err = %v, want ErrCorrupt naming %q and %q", op, err, op+" "+key, c.want)
				}
			}
			rc, _, err := s.Get(ctx, key)
			if err == nil {
				rc.Close()
			}
			check("get", err)
			_, _, err = s.Rewrap(ctx, key)
			check("rewrap", err)
			_, err = s.Verify(ctx, key)
			check("get", err)
			if c.stat {
				_, err := s.Stat(ctx, key)
				check("stat", err)
			} else if info, err := s.Stat(ctx, key); err != nil || info.Size != int64(len(data)) || info.SHA256 != sum(data) {
				t.Errorf("stat: %+v, %v; want the recorded size and digest", info, err)
			}
		})
	}
	// The untouched original still reads: the cases above changed copies.
	if got, err := read(t, s, "original"); err != nil || string(got) != string(data) {
		t.Errorf("original: %q, %v", got, err)
	}
}

// An object whose metadata claims it is encrypted but whose content is too short to hold
// even Tink's header fails at Get with ErrCorrupt, naming the object.
func TestEncryptedObjectWithoutHeader(t *testing.T) {
	backend := open(t, "mem://")
	s := envelope.New(backend, newKeyring(t), "test")
	put(t, s, "short", []byte("some content"), nil)
	tamper(t, backend, "short", func(b []byte) []byte { return b[:10] })
	_, _, err := s.Get(context.Background(), "short")
	if !errors.Is(err, envelope.ErrCorrupt) || !strings.Contains(err.Error(), "get short: ") {
		t.Errorf("truncated header: %v", err)
	}
	tamper(t, backend, "short", func([]byte) []byte { return nil })
	if _, _, err := s.Get(context.Background(), "short"); !errors.Is(err, envelope.ErrCorrupt) {
		t.Errorf("empty ciphertext: %v", err)
	}
}

// Stat, Get, Verify and Rewrap of a key that does not exist fail with storage.ErrNotFound,
// whatever the keyring.
func TestMissingObject(t *testing.T) {
	ctx := context.Background()
	for name, s := range map[string]*envelope.Store{
		"encrypted": envelope.New(open(t, "mem://"), newKeyring(t), "test"),
		"plain":     envelope.New(open(t, "mem://"), nil, "test"),
	} {
		if _, err := s.Stat(ctx, "nothing/here"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: stat: %v", name, err)
		}
		if _, _, err := s.Get(ctx, "nothing/here"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: get: %v", name, err)
		}
		if _, err := s.Verify(ctx, "nothing/here"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: verify: %v", name, err)
		}
	}
	s := envelope.New(open(t, "mem://"), newKeyring(t), "test")
	if changed, _, err := s.Rewrap(ctx, "nothing/here"); !errors.Is(err, storage.ErrNotFound) || changed {
		t.Errorf("rewrap: %v %v", changed, err)
	}
}
