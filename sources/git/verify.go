package git

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/circlecore/circle/sources/signature"
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
var ErrSignature = signature.ErrSignature

type verifier struct {
	mode VerifyMode
	keys signature.Keys
}

func newVerifier(v Verify) (*verifier, error) {
	switch v.Mode {
	case VerifyOff, VerifyHead, VerifyTag:
	default:
		return nil, fmt.Errorf("verify mode %q: want head or tag", v.Mode)
	}
	out := &verifier{mode: v.Mode}
	if v.PGPKeys != "" {
		if err := out.keys.Add([]byte(v.PGPKeys)); err != nil {
			return nil, fmt.Errorf("trusted pgp keys: %w", err)
		}
	}
	if err := out.keys.Add(v.SSHKeys); err != nil {
		return nil, fmt.Errorf("trusted ssh keys: %w", err)
	}
	if v.Mode != VerifyOff && out.keys.Len() == 0 {
		return nil, errors.New("signature verification needs trusted PGP or SSH keys")
	}
	return out, nil
}

// check verifies the signature of what the policy names: the commit, or the tag object.
func (v *verifier) check(commit, tag *signature.Object) error {
	switch v.mode {
	case VerifyHead:
		return v.keys.Verify(commit)
	case VerifyTag:
		if tag == nil {
			return fmt.Errorf("%s: %w: the ref is not an annotated tag", commit.Name, ErrSignature)
		}
		return v.keys.Verify(tag)
	}
	return nil
}

// signedCommit is the commit as its signer signed it.
func signedCommit(c *object.Commit) (*signature.Object, error) {
	payload, err := encoded(c.EncodeWithoutSignature)
	if err != nil {
		return nil, fmt.Errorf("encode commit %s: %w", c.Hash, err)
	}
	return &signature.Object{Name: "commit " + c.Hash.String(), Payload: payload, Signature: c.PGPSignature}, nil
}

// signedTag is the annotated tag as its signer signed it.
func signedTag(t *object.Tag) (*signature.Object, error) {
	payload, err := encoded(t.EncodeWithoutSignature)
	if err != nil {
		return nil, fmt.Errorf("encode tag %s: %w", t.Name, err)
	}
	return &signature.Object{Name: "tag " + t.Name, Payload: payload, Signature: t.PGPSignature}, nil
}

func encoded(encode func(plumbing.EncodedObject) error) ([]byte, error) {
	o := &plumbing.MemoryObject{}
	if err := encode(o); err != nil {
		return nil, err
	}
	r, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var b bytes.Buffer
	_, err = io.Copy(&b, r)
	return b.Bytes(), err
}
