// Package signature checks the signatures of Git objects (commits and annotated tags)
// against trusted keys: OpenPGP, and SSH signatures as `git -c gpg.format=ssh` writes them.
//
// It is separate from the Git source because two places check: the source (a daemon-wide
// policy, before a revision becomes a snapshot) and the reconciler (each environment's
// policy from circle.yaml, with keys the repository itself may list).
package signature

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"golang.org/x/crypto/ssh"
)

// ErrSignature is wrapped by every refusal of an unsigned or wrongly signed object.
var ErrSignature = errors.New("signature check failed")

// Object is a signed Git object as its signer saw it.
type Object struct {
	// Name says what it is for messages: "commit <hash>" or "tag <name>".
	Name string `json:"name"`
	// Payload is the object encoded without its signature: the bytes that were signed.
	Payload []byte `json:"-"`
	// Signature is the armored signature; empty when the object is not signed.
	Signature string `json:"-"`
}

// Signed reports whether the object carries a signature at all.
func (o *Object) Signed() bool { return o != nil && o.Signature != "" }

// Keys is a set of trusted public keys.
type Keys struct {
	pgp openpgp.EntityList
	ssh []ssh.PublicKey
}

// Add parses trusted keys: an armored OpenPGP public keyring, or authorized_keys-format
// lines of SSH keys (comments and blank lines allowed). What it holds decides which.
func (k *Keys) Add(data []byte) error {
	if bytes.Contains(data, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("OpenPGP keyring: %w", err)
		}
		k.pgp = append(k.pgp, el...)
		return nil
	}
	rest := data
	for len(bytes.TrimSpace(rest)) > 0 {
		pub, _, _, r, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return fmt.Errorf("SSH keys: %w", err)
		}
		k.ssh, rest = append(k.ssh, pub), r
	}
	return nil
}

// Len is the number of trusted keys.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.pgp) + len(k.ssh)
}

// Merge returns a set holding the keys of both.
func (k *Keys) Merge(o *Keys) *Keys {
	out := &Keys{}
	for _, s := range []*Keys{k, o} {
		if s != nil {
			out.pgp = append(out.pgp, s.pgp...)
			out.ssh = append(out.ssh, s.ssh...)
		}
	}
	return out
}

// Verify checks that o is signed by one of the keys. Every refusal wraps ErrSignature and
// names the object.
func (k *Keys) Verify(o *Object) error {
	if o == nil {
		return fmt.Errorf("%w: no signed object (not a Git revision)", ErrSignature)
	}
	if o.Signature == "" {
		return fmt.Errorf("%s: %w: not signed", o.Name, ErrSignature)
	}
	var err error
	if strings.HasPrefix(strings.TrimSpace(o.Signature), "-----BEGIN SSH SIGNATURE-----") {
		err = k.verifySSH(o.Signature, o.Payload)
	} else {
		err = k.verifyPGP(o.Signature, o.Payload)
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %v", o.Name, ErrSignature, err)
	}
	return nil
}

func (k *Keys) verifyPGP(sig string, payload []byte) error {
	if k == nil || len(k.pgp) == 0 {
		return errors.New("OpenPGP signature, but no trusted OpenPGP keys")
	}
	_, err := openpgp.CheckArmoredDetachedSignature(k.pgp, bytes.NewReader(payload), strings.NewReader(sig), nil)
	return err
}

// verifySSH verifies an SSH signature (OpenSSH's PROTOCOL.sshsig). go-git and x/crypto
// verify OpenPGP only, and the format is a few fields around ssh.PublicKey.Verify, so it
// is done here.
func (k *Keys) verifySSH(armored string, message []byte) error {
	block, _ := pem.Decode([]byte(armored))
	if block == nil || block.Type != "SSH SIGNATURE" || !bytes.HasPrefix(block.Bytes, []byte("SSHSIG")) {
		return errors.New("malformed SSH signature")
	}
	var sig struct {
		Version       uint32
		PublicKey     []byte
		Namespace     string
		Reserved      string
		HashAlgorithm string
		Signature     []byte
	}
	if err := ssh.Unmarshal(block.Bytes[6:], &sig); err != nil {
		return fmt.Errorf("malformed SSH signature: %w", err)
	}
	if sig.Version != 1 || sig.Namespace != "git" {
		return fmt.Errorf("SSH signature version %d namespace %q: want 1 and git", sig.Version, sig.Namespace)
	}
	pub, err := ssh.ParsePublicKey(sig.PublicKey)
	if err != nil {
		return fmt.Errorf("SSH signature key: %w", err)
	}
	trusted := false
	if k != nil {
		for _, t := range k.ssh {
			trusted = trusted || bytes.Equal(t.Marshal(), pub.Marshal())
		}
	}
	if !trusted {
		return fmt.Errorf("signed by untrusted key %s", ssh.FingerprintSHA256(pub))
	}
	var h hash.Hash
	switch sig.HashAlgorithm {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return fmt.Errorf("SSH signature hash %q", sig.HashAlgorithm)
	}
	h.Write(message)
	signed := append([]byte("SSHSIG"), ssh.Marshal(struct {
		Namespace, Reserved, HashAlgorithm string
		Hash                               []byte
	}{sig.Namespace, sig.Reserved, sig.HashAlgorithm, h.Sum(nil)})...)
	var s ssh.Signature
	if err := ssh.Unmarshal(sig.Signature, &s); err != nil {
		return fmt.Errorf("malformed SSH signature: %w", err)
	}
	if err := pub.Verify(signed, &s); err != nil {
		return fmt.Errorf("signature by %s does not match the content", ssh.FingerprintSHA256(pub))
	}
	return nil
}
