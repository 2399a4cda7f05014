package license

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// NewID returns a fresh random license id, "lic_" and 26 base32 characters (128 bits).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return "lic_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Issue signs a license with an issuer's private key and returns the license file. It
// fills what l leaves empty: ID (NewID), IssuedAt (now), NotBefore (IssuedAt). It
// normalises the rest as the canonical form wants (times to UTC whole seconds, features
// sorted once each, the domain in lower case), refuses a license the schema rejects, and
// leaves l unchanged. Given the same License, key and IssuedAt, it returns the same bytes:
// the encoding is canonical and Ed25519 signatures are deterministic.
func Issue(l *License, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("issue: not an Ed25519 private key")
	}
	n := normalise(l)
	if err := n.validate(); err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	payload := appendLicense(nil, n)
	// The Go checks and the schema agree (a test holds them to it); the schema still runs
	// here, where speed does not matter, so a file no verifier would accept is never signed.
	if err := checkSchema(defLicense, payload); err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	return marshalArmor(armorLicense, KeyID(pub), ed25519.Sign(key, payload), payload), nil
}

// normalise copies l into the form the canonical encoding holds.
func normalise(l *License) *License {
	n := &License{
		ID: l.ID, Licensee: l.Licensee, Product: l.Product,
		IssuedAt: l.IssuedAt, NotBefore: l.NotBefore, ExpiresAt: l.ExpiresAt,
		Grace: l.Grace, Binding: l.Binding,
		Limits: maps.Clone(l.Limits),
	}
	if n.ID == "" {
		n.ID = NewID()
	}
	if n.IssuedAt.IsZero() {
		n.IssuedAt = time.Now()
	}
	if n.NotBefore.IsZero() {
		n.NotBefore = n.IssuedAt
	}
	n.IssuedAt = utcSeconds(n.IssuedAt)
	n.NotBefore = utcSeconds(n.NotBefore)
	n.ExpiresAt = utcSeconds(n.ExpiresAt)
	n.Features = slices.Compact(slices.Sorted(slices.Values(l.Features)))
	if n.Features == nil {
		n.Features = []string{}
	}
	if n.Limits == nil {
		n.Limits = map[string]int64{}
	}
	if len(l.Metadata) > 0 {
		n.Metadata = maps.Clone(l.Metadata)
	}
	n.Binding.Domain = strings.TrimSuffix(strings.ToLower(n.Binding.Domain), ".")
	return n
}

func utcSeconds(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Second)
}
