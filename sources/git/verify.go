package git

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
)

// VerifyMode says which object's signature a revision must carry.
type VerifyMode string

// Verification modes.
const (
	VerifyOff  VerifyMode = ""     // no check
	VerifyHead VerifyMode = "head" // the commit itself is signed
	VerifyTag  VerifyMode = "tag"  // the annotated tag the ref points at is signed
)

// Verify is a signature policy: who may sign, and what must be signed.
type Verify struct {
	Mode VerifyMode
	// PGPKeys is an armored OpenPGP public keyring.
	PGPKeys string
	// SSHKeys holds authorized_keys-format lines of trusted SSH signing keys.
	SSHKeys []byte
}

// ErrSignature is wrapped by every refusal of an unsigned or wrongly signed revision.
var ErrSignature = errors.New("signature check failed")

type verifier struct {
	mode    VerifyMode
	pgp     string
	sshKeys []ssh.PublicKey
}

func newVerifier(v Verify) (*verifier, error) {
	switch v.Mode {
	case VerifyOff, VerifyHead, VerifyTag:
	default:
		return nil, fmt.Errorf("verify mode %q: want head or tag", v.Mode)
	}
	out := &verifier{mode: v.Mode, pgp: v.PGPKeys}
	rest := v.SSHKeys
	for len(bytes.TrimSpace(rest)) > 0 {
		k, _, _, r, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return nil, fmt.Errorf("trusted ssh keys: %w", err)
		}
		out.sshKeys, rest = append(out.sshKeys, k), r
	}
	if v.Mode != VerifyOff && v.PGPKeys == "" && len(out.sshKeys) == 0 {
		return nil, errors.New("signature verification needs trusted PGP or SSH keys")
	}
	return out, nil
}

// check verifies the signature of what the policy names: the commit, or the tag object.
func (v *verifier) check(commit *object.Commit, tag *object.Tag) error {
	var sig string
	var payload plumbing.EncodedObject = &plumbing.MemoryObject{}
	var what string
	switch v.mode {
	case VerifyOff:
		return nil
	case VerifyHead:
		what, sig = "commit "+commit.Hash.String(), commit.PGPSignature
		if err := commit.EncodeWithoutSignature(payload); err != nil {
			return err
		}
	case VerifyTag:
		if tag == nil {
			return fmt.Errorf("commit %s: %w: the ref is not an annotated tag", commit.Hash, ErrSignature)
		}
		what, sig = "tag "+tag.Name, tag.PGPSignature
		if err := tag.EncodeWithoutSignature(payload); err != nil {
			return err
		}
	}
	if sig == "" {
		return fmt.Errorf("%s: %w: not signed", what, ErrSignature)
	}
	r, err := payload.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	var msg bytes.Buffer
	if _, err := msg.ReadFrom(r); err != nil {
		return err
	}
	if strings.HasPrefix(strings.TrimSpace(sig), "-----BEGIN SSH SIGNATURE-----") {
		err = v.checkSSH(sig, msg.Bytes())
	} else {
		err = v.checkPGP(commit, tag)
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %v", what, ErrSignature, err)
	}
	return nil
}

func (v *verifier) checkPGP(commit *object.Commit, tag *object.Tag) error {
	if v.pgp == "" {
		return errors.New("OpenPGP signature, but no trusted OpenPGP keys")
	}
	var err error
	if v.mode == VerifyTag {
		_, err = tag.Verify(v.pgp)
	} else {
		_, err = commit.Verify(v.pgp)
	}
	return err
}

// checkSSH verifies an SSH signature (OpenSSH's PROTOCOL.sshsig, what `git -c
// gpg.format=ssh` writes). go-git and x/crypto verify OpenPGP only, and the format is a
// few fields around ssh.PublicKey.Verify, so it is done here.
func (v *verifier) checkSSH(armored string, message []byte) error {
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
	for _, k := range v.sshKeys {
		trusted = trusted || bytes.Equal(k.Marshal(), pub.Marshal())
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
