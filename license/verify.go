package license

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// DefaultClockSkew is how far a verifier's clock may disagree with the issuer's by default.
// Five minutes is what Kerberos and most token verifiers allow: NTP keeps machines far
// closer, and a license is measured in days.
const DefaultClockSkew = 5 * time.Minute

// VerifyOptions say what a verifier accepts.
type VerifyOptions struct {
	// Product is the product this verifier accepts licenses for. It is required, unless
	// AnyProduct is set, so that a license for one product never unlocks another by
	// omission.
	Product string
	// AnyProduct accepts a license for any product: for tools that check files, not for
	// the products themselves.
	AnyProduct bool
	// ClockSkew is how far the verifier's clock may be from the issuer's, applied in the
	// license's favour at both ends of its window. Zero allows none.
	ClockSkew time.Duration
	// Cluster is the id of the cluster the verifier runs in, matched against a license's
	// cluster binding.
	Cluster string
	// Domain is the DNS name the verifier serves, matched against a license's domain
	// binding: the bound domain or any subdomain of it.
	Domain string
	// IgnoreBinding skips the binding check: for tools that look at a license outside the
	// place it is bound to.
	IgnoreBinding bool
	// Schema also validates the payload with the CUE schema, after the equivalent Go
	// checks. It costs more than the rest of Verify together and serialises callers (see
	// the package documentation); the Go checks alone accept exactly the same payloads.
	Schema bool
	// Serials keeps the highest revocation-list serial accepted across restarts. Nil
	// keeps it in memory only.
	Serials SerialStore
}

// DefaultVerifyOptions returns the options for a verifier of product: DefaultClockSkew,
// binding checked (against no cluster or domain until they are set), no CUE schema.
func DefaultVerifyOptions(product string) VerifyOptions {
	return VerifyOptions{Product: product, ClockSkew: DefaultClockSkew}
}

func (o *VerifyOptions) check() error {
	if o.Product == "" && !o.AnyProduct {
		return errors.New("verify options: no Product (set AnyProduct to accept any)")
	}
	if o.ClockSkew < 0 {
		return fmt.Errorf("verify options: negative ClockSkew %s", o.ClockSkew)
	}
	return nil
}

// Verify checks a license file with keys, against revs (nil for none), at now, and returns
// the license in StateValid or StateInGrace. Any refusal wraps one Reason; the checks and
// their order are in the package documentation. A Verifier does the same and keeps the
// revocation list and its serial for the caller.
func Verify(data []byte, keys *Keyring, revs *RevocationList, now time.Time, opts VerifyOptions) (*License, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	return verify(data, keys, revs, now, &opts)
}

func verify(data []byte, keys *Keyring, revs *RevocationList, now time.Time, opts *VerifyOptions) (*License, error) {
	const subject = "license"
	if len(data) > MaxFileSize {
		return nil, refuse(subject, ErrTooLarge, "%d bytes, over %d", len(data), MaxFileSize)
	}
	a, err := parseArmor(armorLicense, data)
	if err != nil {
		return nil, refuse(subject, ErrMalformed, "%v", err)
	}
	// The signature is checked before the payload is decoded: nothing the issuer did not
	// sign reaches the JSON decoder.
	if err := checkSignature(subject, keys, a); err != nil {
		return nil, err
	}
	l, err := decodeLicense(a.payload)
	if err != nil {
		return nil, refuse(subject, ErrMalformed, "payload: %v", err)
	}
	l.keyID, l.sig, l.skew = a.keyID, a.sig, opts.ClockSkew
	subjectID := subject + " " + l.ID
	if opts.Schema {
		if err := checkSchema(defLicense, a.payload); err != nil {
			return nil, refuse(subjectID, ErrMalformed, "%v", err)
		}
	}
	if !opts.AnyProduct && l.Product != opts.Product {
		return nil, refuse(subjectID, ErrWrongProduct, "for %q, this verifier accepts %q", l.Product, opts.Product)
	}
	if r, ok := revs.Lookup(l.ID); ok {
		return nil, refuse(subjectID, ErrRevoked, "on %s: %s (revocation list %d)", r.RevokedAt.Format(time.RFC3339), r.Reason, revs.Serial)
	}
	switch l.state = l.StateAt(now); l.state {
	case StateNotYetValid:
		return nil, refuse(subjectID, ErrNotYetValid, "valid from %s (clock skew allowed: %s)", l.NotBefore.Format(time.RFC3339), opts.ClockSkew)
	case StateExpired:
		detail := fmt.Sprintf("expired %s (clock skew allowed: %s)", l.ExpiresAt.Format(time.RFC3339), opts.ClockSkew)
		if l.Grace > 0 {
			detail += fmt.Sprintf("; its grace of %s ended %s", l.Grace, l.ExpiresAt.Add(opts.ClockSkew+l.Grace).Format(time.RFC3339))
		}
		return nil, refuse(subjectID, ErrExpired, "%s", detail)
	}
	if !opts.IgnoreBinding {
		if err := checkBinding(l.Binding, opts); err != nil {
			return nil, refuse(subjectID, ErrBindingMismatch, "%v", err)
		}
	}
	return l, nil
}

// checkSignature looks up the key the armor names and checks the signature over the
// stored payload bytes.
func checkSignature(subject string, keys *Keyring, a armored) error {
	if keys == nil {
		return refuse(subject, ErrUnknownKey, "no keyring")
	}
	pub, ok := keys.Key(a.keyID)
	if !ok {
		return refuse(subject, ErrUnknownKey, "signed by key %s; the keyring holds %s", a.keyID, strings.Join(keys.IDs(), ", "))
	}
	if !ed25519.Verify(pub, a.payload, a.sig) {
		return refuse(subject, ErrBadSignature, "does not match key %s", a.keyID)
	}
	return nil
}

func checkBinding(b Binding, opts *VerifyOptions) error {
	if b.Cluster != "" && b.Cluster != opts.Cluster {
		if opts.Cluster == "" {
			return fmt.Errorf("bound to cluster %s; this verifier has no cluster id", b.Cluster)
		}
		return fmt.Errorf("bound to cluster %s, not %s", b.Cluster, opts.Cluster)
	}
	if b.Domain != "" {
		d := strings.TrimSuffix(strings.ToLower(opts.Domain), ".")
		if d == "" {
			return fmt.Errorf("bound to domain %s; this verifier has no domain", b.Domain)
		}
		if d != b.Domain && !strings.HasSuffix(d, "."+b.Domain) {
			return fmt.Errorf("bound to domain %s, not %s", b.Domain, opts.Domain)
		}
	}
	return nil
}

// Verifier verifies licenses with one keyring and one set of options, and keeps the
// revocation list: the newest it was given, never one older than it has seen. It is safe
// for concurrent use.
type Verifier struct {
	keys *Keyring
	opts VerifyOptions

	mu     sync.RWMutex
	revs   *RevocationList
	serial uint64
}

// NewVerifier makes a Verifier. It reads the last serial from opts.Serials, if set.
func NewVerifier(keys *Keyring, opts VerifyOptions) (*Verifier, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if keys == nil || keys.Len() == 0 {
		return nil, errors.New("verifier: empty keyring")
	}
	v := &Verifier{keys: keys, opts: opts}
	if opts.Serials != nil {
		n, err := opts.Serials.LoadSerial()
		if err != nil {
			return nil, fmt.Errorf("verifier: %w", err)
		}
		v.serial = n
	}
	return v, nil
}

// Verify checks a license file at now against the revocation list held; see Verify.
func (v *Verifier) Verify(data []byte, now time.Time) (*License, error) {
	v.mu.RLock()
	revs := v.revs
	v.mu.RUnlock()
	return verify(data, v.keys, revs, now, &v.opts)
}

// VerifyFile reads a license file (see ReadFile) and verifies it.
func (v *Verifier) VerifyFile(name string, now time.Time) (*License, error) {
	data, err := ReadFile(name)
	if err != nil {
		return nil, err
	}
	l, err := v.Verify(data, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return l, nil
}

// LoadRevocations verifies a revocation list and, if its serial is not below the highest
// seen, makes it the list licenses are checked against and records its serial. A refused
// list leaves the held one in place. When saving the serial fails, the list is in use all
// the same (a newer list is never worth dropping) and the error says the save failed.
func (v *Verifier) LoadRevocations(data []byte) (*RevocationList, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r, err := VerifyRevocations(data, v.keys, v.serial)
	if err != nil {
		return nil, err
	}
	v.revs = r
	if r.Serial > v.serial {
		v.serial = r.Serial
		if v.opts.Serials != nil {
			if err := v.opts.Serials.SaveSerial(r.Serial); err != nil {
				return r, fmt.Errorf("revocation list %d in use, but its serial was not saved: %w", r.Serial, err)
			}
		}
	}
	return r, nil
}

// Revocations returns the revocation list held, nil before one was loaded.
func (v *Verifier) Revocations() *RevocationList {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.revs
}

// Serial is the highest revocation-list serial seen, including one loaded from Serials.
func (v *Verifier) Serial() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.serial
}
