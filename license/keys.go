package license

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// KeyID is the id of an issuer's public key: the first 8 bytes of SHA-256 over the 32 raw
// key bytes, in lower-case hex. 64 bits tell a keyring's few keys apart; they do not
// have to resist forgery, since the signature is checked with the key the id names.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// MarshalPrivateKey encodes an issuer's private key as PEM PKCS#8 ("PRIVATE KEY"), the
// form openssl reads. Keep the file SOPS-encrypted.
func MarshalPrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads an Ed25519 private key in PEM PKCS#8, as MarshalPrivateKey and
// `openssl genpkey -algorithm ed25519` write it.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("private key: no PEM \"PRIVATE KEY\" block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key: a %T, not Ed25519", k)
	}
	return key, nil
}

// MarshalPublicKey encodes a public key as PEM PKIX ("PUBLIC KEY"), after a comment line
// naming its key id. Concatenated, such blocks make a keyring file.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Circle license issuer key %s (Ed25519)\n", KeyID(pub))
	b.Write(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return b.Bytes(), nil
}

// Keyring is the set of issuer public keys a verifier trusts, by key id. Several keys let
// an issuer rotate: new licenses are signed with the new key while those signed with the
// old one stay valid until the old key is removed. A Keyring is not modified after it is
// handed to a Verifier.
type Keyring struct {
	keys map[string]ed25519.PublicKey
}

// NewKeyring makes a keyring of the given public keys.
func NewKeyring(keys ...ed25519.PublicKey) *Keyring {
	k := &Keyring{keys: map[string]ed25519.PublicKey{}}
	for _, pub := range keys {
		k.Add(pub)
	}
	return k
}

// Add adds a public key and returns its id.
func (k *Keyring) Add(pub ed25519.PublicKey) string {
	if k.keys == nil {
		k.keys = map[string]ed25519.PublicKey{}
	}
	id := KeyID(pub)
	k.keys[id] = slices.Clone(pub)
	return id
}

// Key returns the key with the given id.
func (k *Keyring) Key(id string) (ed25519.PublicKey, bool) {
	pub, ok := k.keys[id]
	return pub, ok
}

// IDs lists the keyring's key ids, sorted.
func (k *Keyring) IDs() []string {
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Len is the number of keys.
func (k *Keyring) Len() int { return len(k.keys) }

// ParseKeyring reads a keyring file: one or more PEM "PUBLIC KEY" blocks holding Ed25519
// keys, with any text (comments) between them. A private key in it is an error: a
// keyring is published, and a private key pasted into it by mistake must not be.
func ParseKeyring(data []byte) (*Keyring, error) {
	k := NewKeyring()
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if strings.Contains(block.Type, "PRIVATE") {
			return nil, fmt.Errorf("keyring: block %d is a private key; a keyring holds public keys only", n)
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("keyring: block %d is a %q, not a \"PUBLIC KEY\"", n, block.Type)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keyring: block %d: %w", n, err)
		}
		ed, ok := pub.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("keyring: block %d: a %T, not Ed25519", n, pub)
		}
		k.Add(ed)
	}
	if k.Len() == 0 {
		return nil, errors.New("keyring: no PEM \"PUBLIC KEY\" block")
	}
	return k, nil
}

// ReadKeyring reads a keyring file; see ParseKeyring.
func ReadKeyring(name string) (*Keyring, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	k, err := ParseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return k, nil
}
