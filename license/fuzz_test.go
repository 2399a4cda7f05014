package license

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"
)

// FuzzParse feeds the parsers anything, twice: as a file, and wrapped in an armor as the
// payload itself, so the fuzzer reaches the JSON decoder without having to write base64.
// The parsers must not panic; must refuse with ErrMalformed or ErrTooLarge only; must give
// back, for what they accept, a file that parses to the same payload and marshals to
// itself (Marshal(Parse(x)) == x for a writer's file); must accept only payloads the CUE
// schema accepts too; and Verify must never accept a payload the trusted key did not sign.
//
// The seed corpus (testdata/fuzz/FuzzParse) holds a license, a revocation list, variants
// readers forgive, broken files, and bare payloads.
func FuzzParse(f *testing.F) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		f.Fatal(err)
	}
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	signed, err := Issue(&License{ID: "lic_fuzz", Licensee: "Fuzz", Product: "p", Features: []string{"a"},
		Limits: map[string]int64{"seats": 1}, IssuedAt: t0, ExpiresAt: t0.AddDate(1, 0, 0)}, priv)
	if err != nil {
		f.Fatal(err)
	}
	signedLicense, err := Parse(signed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add(signedLicense.Payload())
	keys := NewKeyring(pub)
	keyID := KeyID(pub)
	sig := make([]byte, signatureSize)
	opts := VerifyOptions{AnyProduct: true, IgnoreBinding: true}

	f.Fuzz(func(t *testing.T, data []byte) {
		if l, err := Parse(data); err != nil {
			refused(t, "Parse", err, l != nil)
		} else {
			roundTrip(t, l.payload, l.Marshal, func(b []byte) ([]byte, marshaler, error) {
				l, err := Parse(b)
				if err != nil {
					return nil, nil, err
				}
				return l.payload, l, nil
			})
		}
		if r, err := ParseRevocations(data); err != nil {
			refused(t, "ParseRevocations", err, r != nil)
		} else {
			roundTrip(t, r.payload, r.Marshal, func(b []byte) ([]byte, marshaler, error) {
				r, err := ParseRevocations(b)
				if err != nil {
					return nil, nil, err
				}
				return r.payload, r, nil
			})
		}
		// Only iss's key is trusted, and it signed one license: whatever the fuzzer makes
		// of it, nothing else verifies.
		if l, err := Verify(data, keys, nil, t0, opts); err == nil && !bytes.Equal(l.payload, signedLicense.payload) {
			t.Fatalf("Verify accepted a payload the key did not sign:\n%s", l.payload)
		}

		// data as a payload.
		if l, err := Parse(marshalArmor(armorLicense, keyID, sig, data)); err != nil {
			refused(t, "Parse(payload)", err, l != nil)
		} else {
			if !bytes.Equal(appendLicense(nil, l), data) {
				t.Fatalf("an accepted payload is not the canonical encoding of what it decodes to:\n%s", data)
			}
			if err := checkSchema(defLicense, data); err != nil {
				t.Fatalf("the Go checks accept a payload the CUE schema refuses: %v\n%s", err, data)
			}
		}
		if r, err := ParseRevocations(marshalArmor(armorRevocations, keyID, sig, data)); err != nil {
			refused(t, "ParseRevocations(payload)", err, r != nil)
		} else {
			if !bytes.Equal(appendRevocations(nil, r), data) {
				t.Fatalf("an accepted list payload is not canonical:\n%s", data)
			}
			if err := checkSchema(defRevocations, data); err != nil {
				t.Fatalf("the Go checks accept a list payload the CUE schema refuses: %v\n%s", err, data)
			}
		}
	})
}

// refused checks that a parser's refusal is one it may give.
func refused(t *testing.T, what string, err error, gotValue bool) {
	t.Helper()
	if r := ReasonOf(err); r != ErrMalformed && r != ErrTooLarge || gotValue {
		t.Fatalf("%s: %v (reason %q), value returned: %v", what, err, r, gotValue)
	}
}

type marshaler interface{ Marshal() ([]byte, error) }

// roundTrip checks that what was parsed marshals to a file that parses to the same
// payload and marshals to itself.
func roundTrip(t *testing.T, payload []byte, marshal func() ([]byte, error), parse func([]byte) ([]byte, marshaler, error)) {
	t.Helper()
	out, err := marshal()
	if err != nil {
		t.Fatalf("Marshal of a parsed file: %v", err)
	}
	p, again, err := parse(out)
	if err != nil {
		t.Fatalf("the marshalled file does not parse: %v\n%s", err, out)
	}
	if !bytes.Equal(p, payload) {
		t.Fatal("the payload changed in a round trip")
	}
	out2, err := again.Marshal()
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("Marshal(Parse(x)) != x for a writer's file x:\n%s\n%s", out, out2)
	}
}
