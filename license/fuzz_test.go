package license_test

import (
	"bytes"
	"testing"

	"github.com/circlecore/circle/license"
)

// FuzzParse feeds the parsers anything. They must not panic; must refuse with
// ErrMalformed or ErrTooLarge only; must give back, for what they accept, a file that
// parses to the same payload and marshals to itself (Marshal(Parse(x)) == x for a
// writer's file); and Verify must never accept a file no trusted key signed. The seed
// corpus is in testdata/fuzz/FuzzParse (a license, a revocation list, variants readers
// forgive, and broken ones).
func FuzzParse(f *testing.F) {
	iss := newIssuer(f)
	signed := iss.issue(f, sample())
	signedLicense, err := license.Parse(signed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add(iss.revocations(f, 7, "lic_a", "lic_b"))
	keys := iss.keyring()
	f.Fuzz(func(t *testing.T, data []byte) {
		if l, err := license.Parse(data); err != nil {
			if r := license.ReasonOf(err); r != license.ErrMalformed && r != license.ErrTooLarge || l != nil {
				t.Fatalf("Parse: %v (reason %q), license %v", err, r, l)
			}
		} else {
			roundTrip(t, l.Payload, l.Marshal, func(b []byte) (marshaler, error) { return license.Parse(b) })
		}
		if r, err := license.ParseRevocations(data); err != nil {
			if reason := license.ReasonOf(err); reason != license.ErrMalformed && reason != license.ErrTooLarge || r != nil {
				t.Fatalf("ParseRevocations: %v (reason %q)", err, reason)
			}
		} else {
			roundTrip(t, nil, r.Marshal, func(b []byte) (marshaler, error) { return license.ParseRevocations(b) })
		}
		// Only iss's key is trusted, and iss signed one license: whatever the fuzzer makes
		// of it, nothing else verifies.
		o := opts()
		o.AnyProduct, o.IgnoreBinding = true, true
		if l, err := license.Verify(data, keys, nil, t0, o); err == nil && !bytes.Equal(l.Payload(), signedLicense.Payload()) {
			t.Fatalf("Verify accepted a payload nobody trusted signed:\n%s", l.Payload())
		}
	})
}

type marshaler interface{ Marshal() ([]byte, error) }

func roundTrip(t *testing.T, payload func() []byte, marshal func() ([]byte, error), parse func([]byte) (marshaler, error)) {
	t.Helper()
	out, err := marshal()
	if err != nil {
		t.Fatalf("Marshal of a parsed file: %v", err)
	}
	again, err := parse(out)
	if err != nil {
		t.Fatalf("the marshalled file does not parse: %v\n%s", err, out)
	}
	out2, err := again.Marshal()
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("Marshal(Parse(x)) != x for a writer's file x:\n%s\n%s", out, out2)
	}
	if payload != nil {
		if l, ok := again.(*license.License); ok && !bytes.Equal(l.Payload(), payload()) {
			t.Fatal("the payload changed in a round trip")
		}
	}
}
