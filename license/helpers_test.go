package license_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/license"
)

// t0 is "now" in most tests.
var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type issuer struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	id   string
}

func newIssuer(t testing.TB) issuer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return issuer{pub: pub, priv: priv, id: license.KeyID(pub)}
}

func (i issuer) keyring() *license.Keyring { return license.NewKeyring(i.pub) }

// sample is a license valid around t0, with every optional field set.
func sample() *license.License {
	return &license.License{
		ID:        "lic_test_1",
		Licensee:  "Example GmbH",
		Product:   "circle-demo",
		Features:  []string{"sso", "audit-log"},
		Limits:    map[string]int64{"seats": 10, "clusters": 3},
		IssuedAt:  t0.Add(-24 * time.Hour),
		NotBefore: t0.Add(-24 * time.Hour),
		ExpiresAt: t0.Add(30 * 24 * time.Hour),
		Grace:     14 * 24 * time.Hour,
		Binding:   license.Binding{Cluster: "c-0001", Domain: "example.com"},
		Metadata:  map[string]string{"order": "PO-42", "contact": "ops@example.com"},
	}
}

func (i issuer) issue(t testing.TB, l *license.License) []byte {
	t.Helper()
	data, err := license.Issue(l, i.priv)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// opts verifies the sample: its product, cluster and domain.
func opts() license.VerifyOptions {
	o := license.DefaultVerifyOptions("circle-demo")
	o.Cluster, o.Domain = "c-0001", "example.com"
	return o
}

// armor writes a file from its parts the way the package documentation lays it out,
// independently of the package's own writer.
func armor(label, keyID string, sig, payload []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(payload)
	var b strings.Builder
	b.WriteString("-----BEGIN " + label + "-----\nVersion: 1\nKey-Id: " + keyID + "\nSignature: " + base64.StdEncoding.EncodeToString(sig) + "\n\n")
	for len(enc) > 64 {
		b.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	b.WriteString(enc + "\n-----END " + label + "-----\n")
	return []byte(b.String())
}

// signRaw signs any payload bytes as a license, for payloads Issue would not write.
func (i issuer) signRaw(payload string) []byte {
	return armor(license.LicenseLabel, i.id, ed25519.Sign(i.priv, []byte(payload)), []byte(payload))
}

// parts takes a file apart: key id, signature and payload.
func parts(t testing.TB, data []byte) (keyID string, sig, payload []byte) {
	t.Helper()
	l, err := license.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := strings.Cut(string(data), "\n\n")
	if !ok {
		t.Fatal("no blank line")
	}
	for _, line := range strings.Split(head, "\n") {
		if v, ok := strings.CutPrefix(line, "Signature: "); ok {
			if sig, err = base64.StdEncoding.DecodeString(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	body = body[:strings.Index(body, "-----END")]
	if payload, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(body, "\n", "")); err != nil {
		t.Fatal(err)
	}
	if string(payload) != string(l.Payload()) {
		t.Fatalf("payload decoded by hand differs from Payload()")
	}
	return l.KeyID(), sig, payload
}
