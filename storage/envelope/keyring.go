package envelope

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Errors a read can fail with because of its key.
var (
	// ErrKeyRetired: the object's data key is wrapped by a key the keyring has retired.
	ErrKeyRetired = errors.New("key retired")
	// ErrKeyUnknown: the object's data key is wrapped by a key the keyring does not hold.
	ErrKeyUnknown = errors.New("key not in the keyring")
)

// Keyring holds the keys that wrap data keys. Its zero value is not usable: make one with
// NewKeyring or ReadKeyring. A Keyring is safe for concurrent reads; Rotate and Retire
// must not run concurrently with other calls.
type Keyring struct {
	handle  *keyset.Handle
	aead    tink.AEAD
	history []Event
	now     func() time.Time
	// kms is the URL of the KMS key the file's keyset is sealed under, or "" for a
	// cleartext keyring. Marshal seals under it again, so a rotation stays sealed.
	kms string
}

// Event is one change to a keyring, as the keyring file records it.
type Event struct {
	Key    uint32    `json:"key"`
	Action string    `json:"action"` // created, rotated, retired
	At     time.Time `json:"at"`
}

// KeyInfo describes one key of a keyring.
type KeyInfo struct {
	ID      uint32 `json:"id"`
	Primary bool   `json:"primary"`
	Retired bool   `json:"retired"`
}

// keyringFile is the keyring on disk (doc.go, "Keyring files"): either Tink's JSON keyset
// in the clear (seal the file with SOPS, or keep it in a Secret), or, with KMS set, Tink's
// JSON encrypted keyset sealed under that KMS key; and the history Tink keysets have no
// place for. A sealed file has no "keyset" field, so an older Circle refuses it as a
// keyring with no keyset instead of misreading it.
type keyringFile struct {
	Keyset          json.RawMessage `json:"keyset,omitempty"`
	KMS             string          `json:"kms,omitempty"`
	EncryptedKeyset json.RawMessage `json:"encrypted_keyset,omitempty"`
	History         []Event         `json:"history,omitempty"`
}

// NewKeyring makes a keyring with one fresh AES-256-GCM key, its primary.
func NewKeyring() (*Keyring, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	k := &Keyring{handle: h, now: time.Now}
	if err := k.load(); err != nil {
		return nil, err
	}
	k.history = append(k.history, Event{Key: k.Primary(), Action: "created", At: k.now().UTC()})
	return k, nil
}

// ReadKeyring parses a keyring file (what Marshal writes). A file SOPS encrypted must be
// decrypted first (package secrets). A KMS-sealed file is opened with one KMS Decrypt,
// bounded by a minute; ReadKeyringContext takes the caller's context instead.
func ReadKeyring(data []byte) (*Keyring, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kmsTimeout)
	defer cancel()
	return ReadKeyringContext(ctx, data)
}

// ReadKeyringContext is ReadKeyring with the context of the KMS call a sealed file needs.
// Its errors name the file's KMS key (without the URL's query) and never hold key
// material.
func ReadKeyringContext(ctx context.Context, data []byte) (*Keyring, error) {
	var f keyringFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	var h *keyset.Handle
	var err error
	switch {
	case f.KMS != "" && len(f.Keyset) != 0:
		// A half-edited file: keys in the clear next to a KMS URL. Refuse rather than
		// guess which one the operator meant.
		return nil, fmt.Errorf("keyring: both a cleartext keyset and a KMS key (%s)", kmsKeyName(f.KMS))
	case f.KMS != "":
		if len(f.EncryptedKeyset) == 0 {
			return nil, fmt.Errorf("keyring: KMS key %s but no encrypted_keyset", kmsKeyName(f.KMS))
		}
		if h, err = openKeyset(ctx, f.EncryptedKeyset, f.KMS); err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
	case len(f.EncryptedKeyset) != 0:
		return nil, errors.New("keyring: an encrypted_keyset but no kms URL to open it with")
	case len(f.Keyset) == 0:
		return nil, errors.New("keyring: no keyset")
	default:
		if h, err = insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(f.Keyset))); err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
	}
	k := &Keyring{handle: h, history: f.History, now: time.Now, kms: f.KMS}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

// ReadKeyringFile reads a keyring file from disk; see ReadKeyring.
func ReadKeyringFile(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ReadKeyring(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func (k *Keyring) load() error {
	for _, ki := range k.handle.KeysetInfo().GetKeyInfo() {
		if ki.GetTypeUrl() != "type.googleapis.com/google.crypto.tink.AesGcmKey" {
			return fmt.Errorf("keyring: key %d is %s, want AES-GCM", ki.GetKeyId(), ki.GetTypeUrl())
		}
	}
	a, err := aead.New(k.handle)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	k.aead = a
	return nil
}

// Marshal is the keyring file. Without a KMS key its keys are in the clear, so seal it
// (SOPS) or keep it secret; with one (SetKMS, or a file read sealed) the keyset is sealed
// again under that key, with one KMS Encrypt bounded by a minute (MarshalContext takes the
// caller's context).
func (k *Keyring) Marshal() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kmsTimeout)
	defer cancel()
	return k.MarshalContext(ctx)
}

// MarshalContext is Marshal with the context of the KMS call a sealed keyring needs.
func (k *Keyring) MarshalContext(ctx context.Context) ([]byte, error) {
	f := keyringFile{History: k.history}
	if k.kms != "" {
		sealed, err := sealKeyset(ctx, k.handle, k.kms)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		f.KMS, f.EncryptedKeyset = k.kms, sealed
	} else {
		var ks bytes.Buffer
		if err := insecurecleartextkeyset.Write(k.handle, keyset.NewJSONWriter(&ks)); err != nil {
			return nil, err
		}
		f.Keyset = ks.Bytes()
	}
	return json.MarshalIndent(f, "", "  ")
}

// SetKMS makes Marshal seal the keyset under the KMS key at keyURL (a gocloud.dev/secrets
// URL: awskms://, gcpkms:// or azurekeyvault://; see doc.go) instead of writing it in the
// clear. It checks the URL's form only; the first Marshal reaches the KMS.
func (k *Keyring) SetKMS(keyURL string) error {
	if err := checkKMSURL(keyURL); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	k.kms = keyURL
	return nil
}

// KMS is the URL of the KMS key the keyring file is sealed under, or "" when its keys are
// written in the clear.
func (k *Keyring) KMS() string { return k.kms }

// Primary is the id of the key new objects are wrapped with.
func (k *Keyring) Primary() uint32 { return k.handle.KeysetInfo().GetPrimaryKeyId() }

// Keys lists the keys, by id.
func (k *Keyring) Keys() []KeyInfo {
	var out []KeyInfo
	primary := k.Primary()
	for _, ki := range k.handle.KeysetInfo().GetKeyInfo() {
		out = append(out, KeyInfo{ID: ki.GetKeyId(), Primary: ki.GetKeyId() == primary,
			Retired: ki.GetStatus() != tinkpb.KeyStatusType_ENABLED})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// History is the keyring's recorded events, oldest first.
func (k *Keyring) History() []Event { return append([]Event(nil), k.history...) }

// Rotate adds a fresh key and makes it the primary; it returns the new key's id. Objects
// wrapped by earlier keys still open.
func (k *Keyring) Rotate() (uint32, error) {
	m := keyset.NewManagerFromHandle(k.handle)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return 0, err
	}
	if err := m.SetPrimary(id); err != nil {
		return 0, err
	}
	if err := k.replace(m); err != nil {
		return 0, err
	}
	k.history = append(k.history, Event{Key: id, Action: "rotated", At: k.now().UTC()})
	return id, nil
}

// Retire disables a key: objects still wrapped by it stop opening, with ErrKeyRetired.
// The primary cannot be retired; rotate first.
func (k *Keyring) Retire(id uint32) error {
	if id == k.Primary() {
		return fmt.Errorf("retire key %d: it is the primary; rotate first", id)
	}
	m := keyset.NewManagerFromHandle(k.handle)
	if err := m.Disable(id); err != nil {
		return fmt.Errorf("retire key %d: %w", id, err)
	}
	if err := k.replace(m); err != nil {
		return err
	}
	k.history = append(k.history, Event{Key: id, Action: "retired", At: k.now().UTC()})
	return nil
}

func (k *Keyring) replace(m *keyset.Manager) error {
	h, err := m.Handle()
	if err != nil {
		return err
	}
	old := k.handle
	k.handle = h
	if err := k.load(); err != nil {
		k.handle = old
		return err
	}
	return nil
}

// wrap encrypts a data key under the primary key.
func (k *Keyring) wrap(dek, ad []byte) (keyID string, wrapped []byte, err error) {
	wrapped, err = k.aead.Encrypt(dek, ad)
	if err != nil {
		return "", nil, err
	}
	return strconv.FormatUint(uint64(k.Primary()), 10), wrapped, nil
}

// unwrap decrypts a data key, first saying clearly when its key is retired or unknown.
func (k *Keyring) unwrap(keyID string, wrapped, ad []byte) ([]byte, error) {
	id, err := strconv.ParseUint(keyID, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: key id %q", ErrCorrupt, keyID)
	}
	found := false
	for _, ki := range k.handle.KeysetInfo().GetKeyInfo() {
		if uint64(ki.GetKeyId()) != id {
			continue
		}
		found = true
		if ki.GetStatus() != tinkpb.KeyStatusType_ENABLED {
			return nil, fmt.Errorf("wrapped by key %d: %w", id, ErrKeyRetired)
		}
	}
	if !found {
		return nil, fmt.Errorf("wrapped by key %d: %w", id, ErrKeyUnknown)
	}
	dek, err := k.aead.Decrypt(wrapped, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: the data key does not unwrap with key %d (metadata changed?)", ErrCorrupt, id)
	}
	return dek, nil
}
