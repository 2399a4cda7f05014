package envelope

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
)

// BenchmarkSeal is issue 5's encryption throughput: what Put does to the bytes (digest
// check while streaming, Tink AES-GCM-HKDF segments) into io.Discard, so that neither a
// backend nor memory allocation of a fake one is measured. Compare with
// BenchmarkRawAESGCM (envelope_test); the goal is ≥ 0.8 of its throughput.
func BenchmarkSeal(b *testing.B) {
	const size = 64 << 20
	data := make([]byte, size)
	rand.Read(data)
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	dek := make([]byte, 32)
	rand.Read(dek)
	b.SetBytes(size)
	for b.Loop() {
		c, err := newStream(dek)
		if err != nil {
			b.Fatal(err)
		}
		if err := seal(io.Discard, bytes.NewReader(data), c, sum, size, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealNoDigest is the encryption alone (Tink's stream as seal sets it up), to
// separate its cost from the sha256 every Put also computes.
func BenchmarkSealNoDigest(b *testing.B) {
	const size = 64 << 20
	data := make([]byte, size)
	rand.Read(data)
	dek := make([]byte, 32)
	rand.Read(dek)
	b.SetBytes(size)
	for b.Loop() {
		c, err := newStream(dek)
		if err != nil {
			b.Fatal(err)
		}
		w, err := c.NewEncryptingWriter(io.Discard, streamAD)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
