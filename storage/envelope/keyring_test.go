package envelope_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"

	"github.com/circlecore/circle/storage/envelope"
)

// keyringFile wraps a Tink keyset handle the way a keyring file holds it.
func keyringFile(t *testing.T, h *keyset.Handle) []byte {
	t.Helper()
	var ks bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&ks)); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]json.RawMessage{"keyset": ks.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A keyring file whose keyset holds anything but AES-GCM keys is refused, naming the
// offending key and its type: a MAC key cannot wrap data keys.
func TestReadKeyringRefusesOtherKeyTypes(t *testing.T) {
	h, err := keyset.NewHandle(mac.HMACSHA256Tag256KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	id := h.KeysetInfo().GetPrimaryKeyId()
	_, err = envelope.ReadKeyring(keyringFile(t, h))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("key %d is type.googleapis.com/google.crypto.tink.HmacKey, want AES-GCM", id)) {
		t.Errorf("an HMAC keyset: %v", err)
	}

	// An AES-GCM primary does not excuse a stray key of another type beside it.
	m := keyset.NewManager()
	primary, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrimary(primary); err != nil {
		t.Fatal(err)
	}
	stray, err := m.Add(mac.HMACSHA256Tag256KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	mixed, err := m.Handle()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.ReadKeyring(keyringFile(t, mixed)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("key %d is", stray)) {
		t.Errorf("a keyset with a stray HMAC key: %v", err)
	}

	// A keyset of plain AES-GCM keys written by Tink's own tools, without history, is read.
	m = keyset.NewManager()
	a, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrimary(a); err != nil {
		t.Fatal(err)
	}
	plain, err := m.Handle()
	if err != nil {
		t.Fatal(err)
	}
	k, err := envelope.ReadKeyring(keyringFile(t, plain))
	if err != nil || k.Primary() != a || len(k.History()) != 0 {
		t.Errorf("a bare AES-GCM keyset: %v", err)
	}
}

// A keyring file whose keyset is not a keyset, or whose primary key is disabled, is refused
// with an error saying it is the keyring; ReadKeyringFile names the file.
func TestReadKeyringMalformed(t *testing.T) {
	for name, data := range map[string]string{
		"keyset not a keyset": `{"keyset": {"primaryKeyId": "seven"}}`,
		"keyset empty":        `{"keyset": {}}`,
	} {
		if _, err := envelope.ReadKeyring([]byte(data)); err == nil || !strings.HasPrefix(err.Error(), "keyring: ") {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Hand-edit a keyring so its primary is disabled: nothing could be written with it.
	k := newKeyring(t)
	b, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	disabled := bytes.Replace(b, []byte(`"ENABLED"`), []byte(`"DISABLED"`), 1)
	if bytes.Equal(disabled, b) {
		t.Fatalf("no key status in %s", b)
	}
	if _, err := envelope.ReadKeyring(disabled); err == nil || !strings.HasPrefix(err.Error(), "keyring: ") {
		t.Errorf("a disabled primary: %v", err)
	}

	p := filepath.Join(t.TempDir(), "keyring.json")
	if err := os.WriteFile(p, []byte(`{"keyset": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.ReadKeyringFile(p); err == nil || !strings.HasPrefix(err.Error(), p+": keyring: ") {
		t.Errorf("a bad keyring file: %v", err)
	}
}

// Retiring a key the keyring does not hold fails, naming the key, and records nothing.
func TestRetireUnknownKey(t *testing.T) {
	k := newKeyring(t)
	unknown := k.Primary() + 1
	err := k.Retire(unknown)
	if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("retire key %d: ", unknown)) {
		t.Errorf("retire of an unknown key: %v", err)
	}
	if h := k.History(); len(h) != 1 || h[0].Action != "created" {
		t.Errorf("history after a failed retire: %+v", h)
	}
	if ks := k.Keys(); len(ks) != 1 || ks[0].Retired {
		t.Errorf("keys after a failed retire: %+v", ks)
	}
	if err := k.Retire(k.Primary()); err == nil || !strings.Contains(err.Error(), "it is the primary; rotate first") {
		t.Errorf("retire of the primary: %v", err)
	}
}
