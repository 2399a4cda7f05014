package license

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Reason is why a license or a revocation list was refused. Every refusal [Verify] and
// [VerifyRevocations] return wraps exactly one Reason, so callers branch with errors.Is
// (errors.Is(err, license.ErrExpired)) and record it with [ReasonOf]; the rest of the
// message says which license and what was seen.
type Reason string

// The reasons for refusing a file. Their string values are stable names fit for a status
// field ("Expired"); their Error texts are for people.
const (
	// ErrTooLarge: the file is over MaxFileSize; it was not parsed.
	ErrTooLarge Reason = "TooLarge"
	// ErrMalformed: the armor, a header, the base64, the payload's JSON, its canonical
	// form or its schema is wrong. A malformed payload with a good signature was signed
	// by a broken issuer; it is still refused.
	ErrMalformed Reason = "Malformed"
	// ErrUnknownKey: the Key-Id header names no key in the keyring.
	ErrUnknownKey Reason = "UnknownKey"
	// ErrBadSignature: the signature does not match the payload under the named key: the
	// payload or the signature was changed, or another key signed it.
	ErrBadSignature Reason = "BadSignature"
	// ErrWrongProduct: the license is for another product than the verifier's.
	ErrWrongProduct Reason = "WrongProduct"
	// ErrRevoked: the revocation list names the license's id.
	ErrRevoked Reason = "Revoked"
	// ErrNotYetValid: notBefore is still ahead, beyond the clock-skew allowance.
	ErrNotYetValid Reason = "NotYetValid"
	// ErrExpired: expiresAt, the clock-skew allowance and the grace period are past.
	ErrExpired Reason = "Expired"
	// ErrBindingMismatch: the license is bound to a cluster or domain the verifier is
	// not in.
	ErrBindingMismatch Reason = "BindingMismatch"
	// ErrReplayed: a revocation list's serial is lower than one the verifier has
	// already accepted: an older list is being passed off as current.
	ErrReplayed Reason = "Replayed"
)

// Error describes the reason in a few words.
func (r Reason) Error() string {
	switch r {
	case ErrTooLarge:
		return "too large"
	case ErrMalformed:
		return "malformed"
	case ErrUnknownKey:
		return "unknown key"
	case ErrBadSignature:
		return "bad signature"
	case ErrWrongProduct:
		return "wrong product"
	case ErrRevoked:
		return "revoked"
	case ErrNotYetValid:
		return "not yet valid"
	case ErrExpired:
		return "expired"
	case ErrBindingMismatch:
		return "binding mismatch"
	case ErrReplayed:
		return "revocation list replayed"
	}
	return string(r)
}

// ReasonOf returns the Reason err wraps, or "" when it wraps none (an I/O error, say).
func ReasonOf(err error) Reason {
	var r Reason
	if errors.As(err, &r) {
		return r
	}
	return ""
}

// refuse wraps a reason with what was refused and why, as "subject: reason: detail".
func refuse(subject string, r Reason, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", subject, r, fmt.Sprintf(format, args...))
}

// State is where a license stands in its time window.
type State int

// The states of a license. Verify returns licenses in StateValid or StateInGrace only;
// the others come from [License.StateAt] and from licenses that were only parsed.
const (
	// StateUnverified: the license was parsed, not verified.
	StateUnverified State = iota
	// StateValid: within notBefore and expiresAt (give or take the clock skew).
	StateValid
	// StateInGrace: past expiresAt but within the grace period. It is accepted; a
	// service should warn that it must be renewed.
	StateInGrace
	// StateNotYetValid: before notBefore.
	StateNotYetValid
	// StateExpired: past expiresAt and any grace period.
	StateExpired
)

// String names the state as `circle license verify` prints it.
func (s State) String() string {
	switch s {
	case StateValid:
		return "valid"
	case StateInGrace:
		return "in grace"
	case StateNotYetValid:
		return "not yet valid"
	case StateExpired:
		return "expired"
	}
	return "unverified"
}

// Binding ties a license to where it may run. An empty field binds nothing.
type Binding struct {
	// Cluster is a cluster's id, e.g. the UID of its kube-system namespace.
	Cluster string
	// Domain is a lower-case DNS name; its subdomains match too.
	Domain string
}

// IsZero reports whether the binding binds nothing.
func (b Binding) IsZero() bool { return b.Cluster == "" && b.Domain == "" }

// License is a license's content. [Parse] and [Verify] fill it from a file, and keep the
// signed bytes so [License.Marshal] gives the file back unchanged; [Issue] signs one built
// by hand. The License a [Watcher] holds is shared by everyone who asks for it: treat it
// as read-only.
type License struct {
	// ID names the license; revocation lists refer to it.
	ID string
	// Licensee is who the license was issued to.
	Licensee string
	// Product is what the license is for; a verifier accepts its own product only.
	Product string
	// Features are the features granted, sorted.
	Features []string
	// Limits are numeric allowances (seats, clusters, environments…).
	Limits map[string]int64
	// IssuedAt is when the license was signed.
	IssuedAt time.Time
	// NotBefore is when the license starts to be valid.
	NotBefore time.Time
	// ExpiresAt is when the license stops being valid, before any grace period.
	ExpiresAt time.Time
	// Grace is how long after ExpiresAt the license is still accepted, in grace. Zero
	// means none.
	Grace time.Duration
	// Binding ties the license to a cluster and/or a domain; zero binds nothing.
	Binding Binding
	// Metadata is free text by key, for people and for the issuer's bookkeeping (an
	// order number, a contact). Verifiers ignore it.
	Metadata map[string]string

	keyID   string
	payload []byte
	sig     []byte
	state   State
	skew    time.Duration
}

// Allows reports whether the license grants feature.
func (l *License) Allows(feature string) bool { return slices.Contains(l.Features, feature) }

// Limit returns the limit called name, and 0 when the license states none: a limit the
// license does not mention allows nothing.
func (l *License) Limit(name string) int64 { return l.Limits[name] }

// State is the license's state when it was verified: StateValid or StateInGrace for a
// license from Verify, StateUnverified for one from Parse. Use StateAt for another time.
func (l *License) State() State { return l.state }

// StateAt is the license's state at t, with the clock-skew allowance of the verifier that
// accepted it (none for a license that was only parsed). It does not consult revocations.
func (l *License) StateAt(t time.Time) State {
	switch {
	case t.Before(l.NotBefore.Add(-l.skew)):
		return StateNotYetValid
	case t.Before(l.ExpiresAt.Add(l.skew)):
		return StateValid
	case t.Before(l.ExpiresAt.Add(l.skew).Add(l.Grace)):
		return StateInGrace
	}
	return StateExpired
}

// KeyID is the id of the key that signed the license, from the file's Key-Id header.
func (l *License) KeyID() string { return l.keyID }

// Payload returns the signed payload bytes, canonical JSON; nil for a license that was
// neither parsed nor issued.
func (l *License) Payload() []byte { return slices.Clone(l.payload) }

// Marshal returns the license file: the armor around the signed payload, signature and key
// id, exactly as a writer produces it. It never re-encodes the payload, so for a file x a
// writer produced, Marshal of Parse(x) is x.
func (l *License) Marshal() ([]byte, error) {
	if l.payload == nil {
		return nil, errors.New("license: marshal: not signed (use Issue)")
	}
	return marshalArmor(armorLicense, l.keyID, l.sig, l.payload), nil
}
