package license_test

import (
	"testing"

	"github.com/circlecore/circle/license"
)

// BenchmarkVerify is one full verification of the sample license (every optional field
// set) by a Verifier holding a revocation list of 100 entries: armor, key lookup, Ed25519,
// JSON, canonical check, the Go schema checks, product, revocation, window, binding. Run
// with -cpu 1 for verifications per second on one core (the goal is 10,000/s).
func BenchmarkVerify(b *testing.B) {
	benchmarkVerify(b, false)
}

// BenchmarkVerify_CUESchema is the same with VerifyOptions.Schema: what running the CUE
// schema on every verification would cost.
func BenchmarkVerify_CUESchema(b *testing.B) {
	benchmarkVerify(b, true)
}

func benchmarkVerify(b *testing.B, schema bool) {
	iss := newIssuer(b)
	data := iss.issue(b, sample())
	o := opts()
	o.Schema = schema
	v, err := license.NewVerifier(iss.keyring(), o)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = license.NewID()
	}
	if _, err := v.LoadRevocations(iss.revocations(b, 1, ids...)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(data, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}

// BenchmarkParse is the parse alone, no signature: what inspect and the fuzzer pay.
func BenchmarkParse(b *testing.B) {
	data := newIssuer(b).issue(b, sample())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := license.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
