package license_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/license"
)

func (i issuer) revocations(t testing.TB, serial uint64, ids ...string) []byte {
	t.Helper()
	r := &license.RevocationList{Serial: serial, IssuedAt: t0}
	for _, id := range ids {
		if err := r.Add(license.Revocation{ID: id, Reason: "refunded " + id, RevokedAt: t0.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	data, err := license.IssueRevocations(r, i.priv)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A revocation list round-trips, byte for byte, and revokes what it names.
func TestRevocations_RoundTrip(t *testing.T) {
	iss := newIssuer(t)
	data := iss.revocations(t, 3, "lic_b", "lic_a")
	if !bytes.HasPrefix(data, []byte("-----BEGIN CIRCLE REVOCATION LIST-----\nVersion: 1\nKey-Id: "+iss.id)) {
		t.Errorf("armor:\n%s", data)
	}
	r, err := license.VerifyRevocations(data, iss.keyring(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Serial != 3 || len(r.Entries) != 2 || r.Entries[0].ID != "lic_a" || r.KeyID() != iss.id {
		t.Errorf("list %+v", r)
	}
	if e, ok := r.Lookup("lic_b"); !ok || e.Reason != "refunded lic_b" || !e.RevokedAt.Equal(t0.Add(-time.Hour)) {
		t.Errorf("Lookup(lic_b) = %+v %v", e, ok)
	}
	if _, ok := r.Lookup("lic_c"); ok {
		t.Error("Lookup of an id not listed")
	}
	var none *license.RevocationList
	if _, ok := none.Lookup("lic_a"); ok {
		t.Error("Lookup on no list")
	}
	out, err := r.Marshal()
	if err != nil || !bytes.Equal(out, data) {
		t.Errorf("Marshal(Verify(x)) != x: %v", err)
	}
	p, err := license.ParseRevocations(data)
	if err != nil || p.Serial != 3 {
		t.Fatalf("ParseRevocations: %v", err)
	}
	const wantPayload = `{"entries":[{"id":"lic_a","reason":"refunded lic_a","revokedAt":"2026-06-01T11:00:00Z"},` +
		`{"id":"lic_b","reason":"refunded lic_b","revokedAt":"2026-06-01T11:00:00Z"}],` +
		`"format":"circle-revocations/1","issuedAt":"2026-06-01T12:00:00Z","serial":3}`
	if _, _, payload := revParts(t, data); string(payload) != wantPayload {
		t.Errorf("payload\n got %s\nwant %s", payload, wantPayload)
	}
	if err := r.Add(license.Revocation{ID: "lic_a", Reason: "again", RevokedAt: t0}); err == nil || !strings.Contains(err.Error(), "already revoked") {
		t.Errorf("Add of an id listed: %v", err)
	}
	if _, err := (&license.RevocationList{}).Marshal(); err == nil {
		t.Error("Marshal of an unsigned list succeeded")
	}
	// An empty list is a list: it revokes nothing but still moves the serial.
	if _, err := license.VerifyRevocations(iss.revocations(t, 4), iss.keyring(), 3); err != nil {
		t.Errorf("empty list: %v", err)
	}
}

// revParts takes a revocation list apart: key id, signature and payload.
func revParts(t *testing.T, data []byte) (keyID string, sig, payload []byte) {
	t.Helper()
	head, body, _ := strings.Cut(string(data), "\n\n")
	for _, line := range strings.Split(head, "\n") {
		if v, ok := strings.CutPrefix(line, "Key-Id: "); ok {
			keyID = v
		}
		if v, ok := strings.CutPrefix(line, "Signature: "); ok {
			sig, _ = base64.StdEncoding.DecodeString(v)
		}
	}
	body = body[:strings.Index(body, "-----END")]
	payload, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(body, "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	return keyID, sig, payload
}

// Revocation lists are refused for the same reasons as licenses, plus replay.
func TestRevocations_Refusals(t *testing.T) {
	iss, other := newIssuer(t), newIssuer(t)
	good := iss.revocations(t, 2, "lic_a")
	keyID, sig, payload := revParts(t, good)
	flipped := bytes.Clone(payload)
	flipped[10] ^= 1
	for _, c := range []struct {
		name string
		data []byte
		last uint64
		want license.Reason
	}{
		{"older serial", good, 3, license.ErrReplayed},
		{"other issuer", other.revocations(t, 2, "lic_a"), 0, license.ErrUnknownKey},
		{"flipped payload byte", armor(license.RevocationListLabel, keyID, sig, flipped), 0, license.ErrBadSignature},
		{"a license", iss.issue(t, sample()), 0, license.ErrMalformed},
		{"too large", bytes.Repeat([]byte("x"), license.MaxFileSize+1), 0, license.ErrTooLarge},
		{"unsorted", signRevocations(iss, `{"entries":[{"id":"b","reason":"r","revokedAt":"2026-01-01T00:00:00Z"},{"id":"a","reason":"r","revokedAt":"2026-01-01T00:00:00Z"}],"format":"circle-revocations/1","issuedAt":"2026-01-01T00:00:00Z","serial":1}`), 0, license.ErrMalformed},
		{"serial 0", signRevocations(iss, `{"entries":[],"format":"circle-revocations/1","issuedAt":"2026-01-01T00:00:00Z","serial":0}`), 0, license.ErrMalformed},
		{"entries missing", signRevocations(iss, `{"format":"circle-revocations/1","issuedAt":"2026-01-01T00:00:00Z","serial":1}`), 0, license.ErrMalformed},
		{"other format", signRevocations(iss, `{"entries":[],"format":"circle-license/1","issuedAt":"2026-01-01T00:00:00Z","serial":1}`), 0, license.ErrMalformed},
		{"bad revokedAt", signRevocations(iss, `{"entries":[{"id":"a","reason":"r","revokedAt":"yesterday"}],"format":"circle-revocations/1","issuedAt":"2026-01-01T00:00:00Z","serial":1}`), 0, license.ErrMalformed},
		{"bad issuedAt", signRevocations(iss, `{"entries":[],"format":"circle-revocations/1","issuedAt":"","serial":1}`), 0, license.ErrMalformed},
		{"not canonical", signRevocations(iss, `{"entries":[], "format":"circle-revocations/1","issuedAt":"2026-01-01T00:00:00Z","serial":1}`), 0, license.ErrMalformed},
		{"not JSON", signRevocations(iss, `[`), 0, license.ErrMalformed},
		{"bad id", signRevocations(iss, `{"entries":[{"id":"-","reason":"r","revokedAt":"2026-01-01T00:00:00Z"}],"format":"circle-revocations/1","issuedAt":"2026-01-01T00:00:00Z","serial":1}`), 0, license.ErrMalformed},
		{"no reason", signRevocations(iss, `{"entries":[{"id":"a","reason":"","revokedAt":"2026-01-01T00:00:00Z"}],"format":"circle-revocations/1","issuedAt":"2026-01-01T00:00:00Z","serial":1}`), 0, license.ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := license.VerifyRevocations(c.data, iss.keyring(), c.last)
			if !errors.Is(err, c.want) {
				t.Errorf("got %v, want %s", err, c.want)
			}
		})
	}
	if _, err := license.ParseRevocations(iss.issue(t, sample())); !errors.Is(err, license.ErrMalformed) {
		t.Errorf("ParseRevocations of a license: %v", err)
	}
	if _, err := license.ParseRevocations(signRevocations(iss, `[`)); !errors.Is(err, license.ErrMalformed) {
		t.Errorf("ParseRevocations of garbage: %v", err)
	}
	if _, err := license.ParseRevocations(bytes.Repeat([]byte("x"), license.MaxFileSize+1)); !errors.Is(err, license.ErrTooLarge) {
		t.Errorf("ParseRevocations of a huge file: %v", err)
	}
	for name, r := range map[string]*license.RevocationList{
		"serial 0":     {IssuedAt: t0},
		"duplicate id": {Serial: 1, Entries: []license.Revocation{{ID: "a", Reason: "r", RevokedAt: t0}, {ID: "a", Reason: "s", RevokedAt: t0}}},
		"no time":      {Serial: 1, Entries: []license.Revocation{{ID: "a", Reason: "r"}}},
	} {
		if _, err := license.IssueRevocations(r, iss.priv); err == nil {
			t.Errorf("IssueRevocations with %s succeeded", name)
		}
	}
	if _, err := license.IssueRevocations(&license.RevocationList{Serial: 1}, nil); err == nil {
		t.Error("IssueRevocations without a key succeeded")
	}
}

func signRevocations(i issuer, payload string) []byte {
	return armor(license.RevocationListLabel, i.id, ed25519.Sign(i.priv, []byte(payload)), []byte(payload))
}

// A Verifier holds the newest list, refuses an older one (replay) and keeps the highest
// serial across restarts in a SerialFile.
func TestVerifier_Revocations(t *testing.T) {
	iss := newIssuer(t)
	lic := iss.issue(t, sample())
	state := license.SerialFile(filepath.Join(t.TempDir(), "serial"))
	o := opts()
	o.Serials = state
	v, err := license.NewVerifier(iss.keyring(), o)
	if err != nil {
		t.Fatal(err)
	}
	if v.Revocations() != nil || v.Serial() != 0 {
		t.Fatal("a new verifier holds a list")
	}
	if _, err := v.Verify(lic, t0); err != nil {
		t.Fatal(err)
	}
	old := iss.revocations(t, 1)
	newer := iss.revocations(t, 2, "lic_test_1")
	if _, err := v.LoadRevocations(old); err != nil {
		t.Fatal(err)
	}
	if _, err := v.LoadRevocations(newer); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(lic, t0); !errors.Is(err, license.ErrRevoked) {
		t.Fatalf("after list 2: %v", err)
	}
	// The old list, which did not revoke it, is refused, and list 2 stays.
	if _, err := v.LoadRevocations(old); !errors.Is(err, license.ErrReplayed) || !strings.Contains(err.Error(), "serial 1") {
		t.Errorf("replayed list 1: %v", err)
	}
	if _, err := v.Verify(lic, t0); !errors.Is(err, license.ErrRevoked) || v.Revocations().Serial != 2 {
		t.Errorf("after the replay: %v", err)
	}
	// The same list again is fine: a restart reads the same file.
	if _, err := v.LoadRevocations(newer); err != nil {
		t.Errorf("list 2 again: %v", err)
	}
	// A restarted verifier remembers serial 2.
	v2, err := license.NewVerifier(iss.keyring(), o)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Serial() != 2 {
		t.Errorf("restarted serial %d", v2.Serial())
	}
	if _, err := v2.LoadRevocations(old); !errors.Is(err, license.ErrReplayed) {
		t.Errorf("replay after restart: %v", err)
	}
	if got, _ := os.ReadFile(string(state)); string(got) != "2\n" {
		t.Errorf("serial file %q", got)
	}

	// State that cannot be read stops the verifier; state that cannot be saved does not
	// stop a newer list from being used.
	bad := license.SerialFile(filepath.Join(t.TempDir(), "serial"))
	os.WriteFile(string(bad), []byte("two"), 0o644)
	o.Serials = bad
	if _, err := license.NewVerifier(iss.keyring(), o); err == nil {
		t.Error("unreadable serial accepted")
	}
	o.Serials = license.SerialFile(filepath.Join(t.TempDir(), "missing", "serial"))
	v3, err := license.NewVerifier(iss.keyring(), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v3.LoadRevocations(newer); err == nil || !strings.Contains(err.Error(), "not saved") {
		t.Errorf("unsaveable serial: %v", err)
	}
	if _, err := v3.Verify(lic, t0); !errors.Is(err, license.ErrRevoked) {
		t.Errorf("the list whose serial was not saved is not in use: %v", err)
	}
	if _, err := license.SerialFile(t.TempDir()).LoadSerial(); err == nil {
		t.Error("LoadSerial of a folder")
	}
}

func TestNewVerifier_Refuses(t *testing.T) {
	iss := newIssuer(t)
	if _, err := license.NewVerifier(iss.keyring(), license.VerifyOptions{}); err == nil {
		t.Error("no product")
	}
	if _, err := license.NewVerifier(license.NewKeyring(), opts()); err == nil {
		t.Error("empty keyring")
	}
	if _, err := license.NewVerifier(nil, opts()); err == nil {
		t.Error("nil keyring")
	}
}

// NextRevocations starts a list at serial 1, adds to a verified one at the next serial, and
// refuses a list it cannot verify or an id already revoked.
func TestNextRevocations(t *testing.T) {
	iss := newIssuer(t)
	first, err := license.NextRevocations(nil, iss.keyring(), license.Revocation{ID: "lic_a", Reason: "refund", RevokedAt: t0}, t0)
	if err != nil || first.Serial != 1 || len(first.Entries) != 1 {
		t.Fatalf("a first list: %v %+v", err, first)
	}
	signed, err := license.IssueRevocations(first, iss.priv)
	if err != nil {
		t.Fatal(err)
	}
	second, err := license.NextRevocations(signed, iss.keyring(), license.Revocation{ID: "lic_b", Reason: "abuse", RevokedAt: t0}, t0.Add(time.Hour))
	if err != nil || second.Serial != 2 || len(second.Entries) != 2 || !second.IssuedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("the next list: %v %+v", err, second)
	}
	if _, err := license.NextRevocations(signed, iss.keyring(), license.Revocation{ID: "lic_a", RevokedAt: t0}, t0); err == nil || !strings.Contains(err.Error(), "already revoked") {
		t.Errorf("an id already revoked: %v", err)
	}
	if _, err := license.NextRevocations(signed, newIssuer(t).keyring(), license.Revocation{ID: "lic_c", RevokedAt: t0}, t0); err == nil {
		t.Error("a list signed by a key not in the keyring was extended")
	}
}
