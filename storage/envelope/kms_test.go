package envelope_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	gcmpb "github.com/tink-crypto/tink-go/v2/proto/aes_gcm_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/testenv"
)

// kmsCounter is a reverse proxy in front of local-kms that counts the KMS operations
// asked of it (the X-Amz-Target header, "TrentService.Decrypt"), so a test can say how
// many KMS calls loading a keyring and using it cost.
type kmsCounter struct {
	mu    sync.Mutex
	calls map[string]int
	url   string
}

func countKMS(t *testing.T, k *testenv.KMS) *kmsCounter {
	t.Helper()
	target, err := url.Parse(k.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c := &kmsCounter{calls: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		c.mu.Lock()
		c.calls[strings.TrimPrefix(op, "TrentService.")]++
		c.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

// URL is the awskms URL of keyID through the counter.
func (c *kmsCounter) URL(k *testenv.KMS, keyID string) string {
	return "awskms://" + keyID + "?region=" + k.Region + "&endpoint=" + url.QueryEscape(c.url)
}

// take returns the counts so far and starts again from zero.
func (c *kmsCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

// keyMaterial is every form a keyring's raw AES keys could take in a file: the 32 bytes,
// their base64 and hex, and the serialized Tink key data's base64 (what a cleartext
// keyring file holds).
func keyMaterial(t *testing.T, k *envelope.Keyring) []string {
	t.Helper()
	b, err := k.MarshalContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Keyset json.RawMessage }
	if err := json.Unmarshal(b, &f); err != nil || len(f.Keyset) == 0 {
		t.Fatalf("cleartext keyring: %v", err)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(f.Keyset)))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, key := range insecurecleartextkeyset.KeysetMaterial(h).GetKey() {
		var gk gcmpb.AesGcmKey
		if err := proto.Unmarshal(key.GetKeyData().GetValue(), &gk); err != nil || len(gk.GetKeyValue()) != 32 {
			t.Fatalf("key %d: %v", key.GetKeyId(), err)
		}
		raw := gk.GetKeyValue()
		out = append(out, string(raw), base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
			base64.URLEncoding.EncodeToString(raw), hex.EncodeToString(raw),
			base64.StdEncoding.EncodeToString(key.GetKeyData().GetValue()))
	}
	return out
}

func assertNoKeyMaterial(t *testing.T, file []byte, material []string) {
	t.Helper()
	for _, m := range material {
		if bytes.Contains(file, []byte(m)) {
			t.Fatalf("the sealed keyring file holds key material in the clear (%d bytes of it)", len(m))
		}
	}
}

// A KMS-sealed keyring end to end against local-kms: the file holds no key material,
// loading it costs exactly one KMS Decrypt and objects cost none, and rotate, rewrap and
// retire work with the file sealed again under the same key each time.
func TestKMSKeyring(t *testing.T) {
	ctx := context.Background()
	k := testenv.StartKMS(t)
	counter := countKMS(t, k)
	keyID := k.NewKey(t)
	keyURL := counter.URL(k, keyID)

	ring := newKeyring(t)
	a := ring.Primary()
	material := keyMaterial(t, ring) // before SetKMS: the cleartext form of the same keys
	if len(material) != 6 {
		t.Fatalf("%d forms of key material", len(material))
	}
	if err := ring.SetKMS(keyURL); err != nil {
		t.Fatal(err)
	}
	file, err := ring.MarshalContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := counter.take(); got["Encrypt"] != 1 || len(got) != 1 {
		t.Errorf("sealing: KMS calls %v, want one Encrypt", got)
	}
	assertNoKeyMaterial(t, file, material)
	var f map[string]json.RawMessage
	if err := json.Unmarshal(file, &f); err != nil {
		t.Fatal(err)
	}
	if _, ok := f["keyset"]; ok {
		t.Error(`a sealed file has a "keyset" field`)
	}
	if !bytes.Contains(f["kms"], []byte(keyID)) || len(f["encrypted_keyset"]) == 0 {
		t.Errorf("sealed file: %s", file)
	}

	loaded, err := envelope.ReadKeyringContext(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if got := counter.take(); got["Decrypt"] != 1 || len(got) != 1 {
		t.Errorf("loading: KMS calls %v, want one Decrypt", got)
	}
	if loaded.KMS() != keyURL || loaded.Primary() != a {
		t.Errorf("loaded: kms %q primary %d", loaded.KMS(), loaded.Primary())
	}

	// Objects written with the keyring that made the file open with the one loaded from it,
	// and neither talks to the KMS per object.
	s := envelope.New(open(t, "mem://"), ring, "test")
	data := append(random(t, firstPlain+100), []byte(canary)...)
	put(t, s, "old", data, nil)
	put(t, s, "forgotten", []byte("never rewrapped"), nil)
	s2 := envelope.New(s.Backend(), loaded, "test")
	if got, err := read(t, s2, "old"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with the loaded keyring: %d bytes, %v", len(got), err)
	}
	if got := counter.take(); len(got) != 0 {
		t.Errorf("put and get: KMS calls %v, want none", got)
	}

	// Rotate: the file is sealed again under the same KMS key, now with both keys.
	b, err := loaded.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	material = append(material, keyMaterial(t, envelope.CleartextTwin(loaded))...)
	file, err = loaded.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	assertNoKeyMaterial(t, file, material)
	rotated, err := envelope.ReadKeyring(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := counter.take(); got["Encrypt"] != 1 || got["Decrypt"] != 1 || len(got) != 2 {
		t.Errorf("rotate and reload: KMS calls %v, want one Encrypt and one Decrypt", got)
	}
	if rotated.KMS() != keyURL || rotated.Primary() != b || len(rotated.Keys()) != 2 {
		t.Fatalf("after rotation: kms %q, primary %d, keys %+v", rotated.KMS(), rotated.Primary(), rotated.Keys())
	}
	s3 := envelope.New(s.Backend(), rotated, "test")
	if changed, _, err := s3.Rewrap(ctx, "old"); err != nil || !changed {
		t.Fatalf("rewrap: %v %v", changed, err)
	}
	if st, err := s3.Stat(ctx, "old"); err != nil || st.KeyID != itoa(b) {
		t.Errorf("rewrapped object: %+v, %v", st, err)
	}
	if err := rotated.Retire(a); err != nil {
		t.Fatal(err)
	}
	file, err = rotated.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	assertNoKeyMaterial(t, file, material)
	retired, err := envelope.ReadKeyring(file)
	if err != nil {
		t.Fatal(err)
	}
	s4 := envelope.New(s.Backend(), retired, "test")
	if got, err := read(t, s4, "old"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("rewrapped object after retiring %d: %v", a, err)
	}
	if _, err := read(t, s4, "forgotten"); !errors.Is(err, envelope.ErrKeyRetired) {
		t.Errorf("object under the retired key: %v", err)
	}
	if h := retired.History(); len(h) != 3 || h[2].Action != "retired" || h[2].Key != a {
		t.Errorf("history = %+v", h)
	}
}

// A KMS key that is disabled, scheduled for deletion, missing, or another key than the
// one that sealed the file: loading fails, naming the key, and a keyring already in memory
// keeps working (a running daemon goes on; only its next start fails).
func TestKMSKeyringKeyUnusable(t *testing.T) {
	ctx := context.Background()
	k := testenv.StartKMS(t)
	client := k.Client()

	sealed := func(t *testing.T) (file []byte, keyID string, ring *envelope.Keyring) {
		t.Helper()
		keyID = k.NewKey(t)
		ring = newKeyring(t)
		if err := ring.SetKMS(k.URL(keyID)); err != nil {
			t.Fatal(err)
		}
		file, err := ring.MarshalContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return file, keyID, ring
	}
	refused := func(t *testing.T, file []byte, keyID, want string) {
		t.Helper()
		_, err := envelope.ReadKeyringContext(ctx, file)
		t.Logf("load: %v", err)
		if err == nil || !strings.Contains(err.Error(), "KMS key awskms://"+keyID+":") || !strings.Contains(err.Error(), want) {
			t.Errorf("load: %v, want an error naming awskms://%s and %q", err, keyID, want)
		}
		if err != nil && strings.Contains(err.Error(), "endpoint=") {
			t.Errorf("the error quotes the URL's query: %v", err)
		}
	}

	t.Run("disabled", func(t *testing.T) {
		file, keyID, ring := sealed(t)
		s := envelope.New(open(t, "mem://"), ring, "test")
		put(t, s, "obj", []byte("before the key was disabled"), nil)
		if _, err := client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyID)}); err != nil {
			t.Fatal(err)
		}
		refused(t, file, keyID, "DisabledException")
		if got, err := read(t, s, "obj"); err != nil || string(got) != "before the key was disabled" {
			t.Errorf("the keyring in memory after the KMS key was disabled: %q, %v", got, err)
		}
		put(t, s, "obj2", []byte("after"), nil)
		// Sealing again needs the key too: a rotate cannot write a file nothing opens.
		if _, err := ring.MarshalContext(ctx); err == nil || !strings.Contains(err.Error(), keyID) {
			t.Errorf("marshal under a disabled key: %v", err)
		}
		if _, err := client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(keyID)}); err != nil {
			t.Fatal(err)
		}
		if _, err := envelope.ReadKeyringContext(ctx, file); err != nil {
			t.Errorf("load after re-enabling the key: %v", err)
		}
	})
	t.Run("pending deletion", func(t *testing.T) {
		file, keyID, _ := sealed(t)
		if _, err := client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyID), PendingWindowInDays: aws.Int32(7)}); err != nil {
			t.Fatal(err)
		}
		refused(t, file, keyID, "pending deletion")
	})
	t.Run("missing", func(t *testing.T) {
		file, keyID, _ := sealed(t)
		missing := "00000000-0000-4000-8000-000000000000"
		edited := bytes.ReplaceAll(file, []byte(keyID), []byte(missing))
		refused(t, edited, missing, "NotFoundException")
		// init under a key that does not exist fails at the first Marshal, naming it.
		ring := newKeyring(t)
		if err := ring.SetKMS(k.URL(missing)); err != nil {
			t.Fatal(err)
		}
		if _, err := ring.MarshalContext(ctx); err == nil || !strings.Contains(err.Error(), "awskms://"+missing) {
			t.Errorf("seal under a missing key: %v", err)
		}
	})
	t.Run("another key", func(t *testing.T) {
		file, keyID, _ := sealed(t)
		other := k.NewKey(t)
		edited := bytes.ReplaceAll(file, []byte(keyID), []byte(other))
		refused(t, edited, other, "decrypt")
	})
	t.Run("tampered", func(t *testing.T) {
		file, keyID, _ := sealed(t)
		var f map[string]json.RawMessage
		if err := json.Unmarshal(file, &f); err != nil {
			t.Fatal(err)
		}
		var ek map[string]any
		if err := json.Unmarshal(f["encrypted_keyset"], &ek); err != nil {
			t.Fatal(err)
		}
		blob, err := base64.StdEncoding.DecodeString(ek["encryptedKeyset"].(string))
		if err != nil {
			t.Fatal(err)
		}
		blob[len(blob)-1] ^= 1 // the payload's tag; the KMS part still decrypts
		ek["encryptedKeyset"] = base64.StdEncoding.EncodeToString(blob)
		f["encrypted_keyset"], _ = json.Marshal(ek)
		edited, _ := json.Marshal(f)
		refused(t, edited, keyID, "the sealed keyset does not open")
	})
}

// Malformed sealed files and URLs are refused before any KMS call, saying what is wrong.
func TestKMSKeyringMalformed(t *testing.T) {
	for name, tc := range map[string]struct{ file, want string }{
		"both":            {`{"keyset":{"primaryKeyId":1,"key":[]},"kms":"awskms://k1?region=eu-west-2"}`, "both a cleartext keyset and a KMS key (awskms://k1)"},
		"no sealed":       {`{"kms":"awskms://k1"}`, "KMS key awskms://k1 but no encrypted_keyset"},
		"no url":          {`{"encrypted_keyset":{"encryptedKeyset":"AAAA"}}`, "an encrypted_keyset but no kms URL"},
		"local key":       {`{"kms":"base64key://smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4=","encrypted_keyset":{}}`, `scheme "base64key"`},
		"http":            {`{"kms":"https://kms.example/k","encrypted_keyset":{}}`, `scheme "https"`},
		"no key":          {`{"kms":"awskms://?region=eu-west-2","encrypted_keyset":{}}`, "names no key"},
		"unknown param":   {`{"kms":"awskms://k1?bogus=1","encrypted_keyset":{"encryptedKeyset":"AAAA"}}`, `unknown query parameter "bogus"`},
		"not json inside": {`{"kms":"awskms://k1?region=eu-west-2","encrypted_keyset":"nope"}`, "KMS key awskms://k1"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := envelope.ReadKeyring([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "smGbjm71") {
				t.Errorf("the error quotes the key in the URL: %v", err)
			}
		})
	}
	ring := newKeyring(t)
	if err := ring.SetKMS("base64key://smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4="); err == nil || strings.Contains(err.Error(), "smGbjm71") {
		t.Errorf("SetKMS(base64key://…): %v", err)
	}
	if ring.KMS() != "" {
		t.Errorf("a refused URL was kept: %q", ring.KMS())
	}
}
