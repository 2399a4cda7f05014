package license_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/license"
)

// keygen → issue → verify → Allows/Limit, through the files a user keeps.
func TestIssue_RoundTrip(t *testing.T) {
	iss := newIssuer(t)
	privPEM, err := license.MarshalPrivateKey(iss.priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := license.MarshalPublicKey(iss.pub)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := license.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := license.ParseKeyring(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pubPEM), iss.id) {
		t.Errorf("the public key file does not name its key id %s:\n%s", iss.id, pubPEM)
	}

	want := sample()
	data, err := license.Issue(want, priv)
	if err != nil {
		t.Fatal(err)
	}
	o := opts()
	o.Schema = true // the CUE schema agrees
	lic, err := license.Verify(data, keys, nil, t0, o)
	if err != nil {
		t.Fatal(err)
	}
	if !lic.Allows("sso") || !lic.Allows("audit-log") || lic.Allows("billing") || lic.Allows("") {
		t.Errorf("Allows: features %v", lic.Features)
	}
	if lic.Limit("seats") != 10 || lic.Limit("clusters") != 3 || lic.Limit("environments") != 0 {
		t.Errorf("Limit: limits %v", lic.Limits)
	}
	if lic.State() != license.StateValid || lic.KeyID() != iss.id {
		t.Errorf("state %s, key %s", lic.State(), lic.KeyID())
	}
	// Everything issued comes back, features sorted.
	want.Features = []string{"audit-log", "sso"}
	got := *lic
	got = license.License{ID: got.ID, Licensee: got.Licensee, Product: got.Product, Features: got.Features,
		Limits: got.Limits, IssuedAt: got.IssuedAt, NotBefore: got.NotBefore, ExpiresAt: got.ExpiresAt,
		Grace: got.Grace, Binding: got.Binding, Metadata: got.Metadata}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("verified license differs from the one issued:\n got %+v\nwant %+v", got, *want)
	}

	// The file is what the documentation says, and Marshal(Parse(x)) == x.
	if !bytes.HasPrefix(data, []byte("-----BEGIN CIRCLE LICENSE-----\nVersion: 1\nKey-Id: "+iss.id+"\nSignature: ")) ||
		!bytes.HasSuffix(data, []byte("\n-----END CIRCLE LICENSE-----\n")) {
		t.Errorf("armor:\n%s", data)
	}
	parsed, err := license.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := parsed.Marshal()
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("Marshal(Parse(x)) != x: %v\n%s\n%s", err, again, data)
	}
	if parsed.State() != license.StateUnverified {
		t.Errorf("a parsed license is %s", parsed.State())
	}
	_, sig, payload := parts(t, data)
	if !ed25519.Verify(iss.pub, payload, sig) {
		t.Error("the signature is not over the payload bytes as stored")
	}
	const wantPayload = `{"binding":{"cluster":"c-0001","domain":"example.com"},"expiresAt":"2026-07-01T12:00:00Z",` +
		`"features":["audit-log","sso"],"format":"circle-license/1","graceSeconds":1209600,"id":"lic_test_1",` +
		`"issuedAt":"2026-05-31T12:00:00Z","licensee":"Example GmbH","limits":{"clusters":3,"seats":10},` +
		`"metadata":{"contact":"ops@example.com","order":"PO-42"},"notBefore":"2026-05-31T12:00:00Z","product":"circle-demo"}`
	if string(payload) != wantPayload {
		t.Errorf("canonical payload:\n got %s\nwant %s", payload, wantPayload)
	}

	// Issuing is deterministic: the same license and key give the same bytes.
	if second := iss.issue(t, sample()); !bytes.Equal(second, data) {
		t.Error("issuing the same license twice gave different files")
	}
}

// Issue fills what is left out and normalises the rest; the input is not modified.
func TestIssue_Defaults(t *testing.T) {
	iss := newIssuer(t)
	in := &license.License{
		Licensee: "Ünïcode \"quoted\"\n\u0001\b\f\r\t\\ Ltd\u2028", Product: "p",
		Features:  []string{"b", "a", "b"},
		ExpiresAt: time.Now().Add(time.Hour).In(time.FixedZone("CET", 3600)),
		Binding:   license.Binding{Domain: "Example.COM."},
	}
	before := *in
	lic, err := license.Parse(iss.issue(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(lic.ID, "lic_") || len(lic.ID) != 30 || lic.ID == license.NewID() {
		t.Errorf("generated id %q", lic.ID)
	}
	if time.Since(lic.IssuedAt) > time.Minute || !lic.NotBefore.Equal(lic.IssuedAt) || lic.ExpiresAt.Location() != time.UTC || lic.ExpiresAt.Nanosecond() != 0 {
		t.Errorf("times: issued %s, not before %s, expires %s", lic.IssuedAt, lic.NotBefore, lic.ExpiresAt)
	}
	if !reflect.DeepEqual(lic.Features, []string{"a", "b"}) || lic.Limits == nil || len(lic.Limits) != 0 || lic.Metadata != nil {
		t.Errorf("features %v, limits %v, metadata %v", lic.Features, lic.Limits, lic.Metadata)
	}
	if lic.Binding.Domain != "example.com" || lic.Licensee != in.Licensee {
		t.Errorf("domain %q, licensee %q", lic.Binding.Domain, lic.Licensee)
	}
	if !reflect.DeepEqual(*in, before) {
		t.Error("Issue modified its input")
	}
	if !strings.Contains(string(lic.Payload()), `"licensee":"Ünïcode \"quoted\"\n\u0001\b\f\r\t\\ Ltd`+"\u2028"+`"`) {
		t.Errorf("string escapes: %s", lic.Payload())
	}
}

// Issue refuses what no verifier would accept, naming the field.
func TestIssue_Refuses(t *testing.T) {
	iss := newIssuer(t)
	for _, tc := range []struct {
		name, want string
		edit       func(*license.License)
	}{
		{"no licensee", "licensee", func(l *license.License) { l.Licensee = "" }},
		{"product case", "product", func(l *license.License) { l.Product = "Circle" }},
		{"feature", "features", func(l *license.License) { l.Features = []string{"a b"} }},
		{"limit name", "limits", func(l *license.License) { l.Limits = map[string]int64{"Seats": 1} }},
		{"negative limit", "limits", func(l *license.License) { l.Limits = map[string]int64{"seats": -1} }},
		{"huge limit", "limits", func(l *license.License) { l.Limits = map[string]int64{"seats": 1 << 53} }},
		{"no expiry", "expiresAt", func(l *license.License) { l.ExpiresAt = time.Time{} }},
		{"expires first", "expiresAt", func(l *license.License) { l.ExpiresAt = l.NotBefore }},
		{"grace too long", "grace", func(l *license.License) { l.Grace = 367 * 24 * time.Hour }},
		{"grace fraction", "grace", func(l *license.License) { l.Grace = 1500 * time.Millisecond }},
		{"cluster", "cluster", func(l *license.License) { l.Binding.Cluster = "a/b" }},
		{"domain", "domain", func(l *license.License) { l.Binding.Domain = "-x.com" }},
		{"metadata key", "metadata", func(l *license.License) { l.Metadata = map[string]string{"a b": "x"} }},
		{"metadata value", "metadata", func(l *license.License) { l.Metadata = map[string]string{"k": strings.Repeat("x", 1025)} }},
		{"id", "id", func(l *license.License) { l.ID = "-x" }},
		{"not UTF-8", "licensee", func(l *license.License) { l.Licensee = "caf\xe9" }},
		{"year", "year", func(l *license.License) { l.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := sample()
			tc.edit(l)
			_, err := license.Issue(l, iss.priv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Issue: %v, want an error about %s", err, tc.want)
			}
		})
	}
	if _, err := license.Issue(sample(), iss.priv[:10]); err == nil {
		t.Error("Issue with a truncated key succeeded")
	}
}

// Every refusal has its own reason, and errors.Is finds it.
func TestVerify_Refusals(t *testing.T) {
	iss, other := newIssuer(t), newIssuer(t)
	good := iss.issue(t, sample())
	keyID, _, payload := parts(t, good)
	with := func(edit func(*license.License)) []byte {
		l := sample()
		edit(l)
		return iss.issue(t, l)
	}
	revoked := &license.RevocationList{Serial: 1, IssuedAt: t0, Entries: []license.Revocation{{ID: "lic_test_1", Reason: "refunded", RevokedAt: t0}}}
	revData, err := license.IssueRevocations(revoked, iss.priv)
	if err != nil {
		t.Fatal(err)
	}
	revs, err := license.VerifyRevocations(revData, iss.keyring(), 0)
	if err != nil {
		t.Fatal(err)
	}
	type check struct {
		name string
		data []byte
		keys *license.Keyring
		revs *license.RevocationList
		now  time.Time
		opts func(*license.VerifyOptions)
		want license.Reason
		msg  string
	}
	checks := []check{
		{name: "re-signed with another key", data: armor(license.LicenseLabel, keyID, ed25519.Sign(other.priv, payload), payload), want: license.ErrBadSignature, msg: keyID},
		{name: "re-signed with another key naming it", data: other.issue(t, sample()), want: license.ErrUnknownKey, msg: other.id},
		{name: "keyring without the key", data: good, keys: other.keyring(), want: license.ErrUnknownKey},
		{name: "empty keyring", data: good, keys: &license.Keyring{}, want: license.ErrUnknownKey},
		{name: "expired", data: good, now: t0.Add(30*24*time.Hour + 5*time.Minute + 14*24*time.Hour), want: license.ErrExpired, msg: "grace"},
		{name: "expired, no grace", data: with(func(l *license.License) { l.Grace = 0 }), now: t0.Add(31 * 24 * time.Hour), want: license.ErrExpired},
		{name: "not yet valid", data: with(func(l *license.License) { l.NotBefore = t0.Add(time.Hour) }), want: license.ErrNotYetValid},
		{name: "revoked", data: good, revs: revs, want: license.ErrRevoked, msg: "refunded"},
		{name: "wrong product", data: good, opts: func(o *license.VerifyOptions) { o.Product = "other" }, want: license.ErrWrongProduct},
		{name: "other cluster", data: good, opts: func(o *license.VerifyOptions) { o.Cluster = "c-0002" }, want: license.ErrBindingMismatch, msg: "c-0002"},
		{name: "no cluster", data: good, opts: func(o *license.VerifyOptions) { o.Cluster = "" }, want: license.ErrBindingMismatch, msg: "no cluster"},
		{name: "other domain", data: good, opts: func(o *license.VerifyOptions) { o.Domain = "example.org" }, want: license.ErrBindingMismatch},
		{name: "suffix is not a subdomain", data: good, opts: func(o *license.VerifyOptions) { o.Domain = "badexample.com" }, want: license.ErrBindingMismatch},
		{name: "no domain", data: good, opts: func(o *license.VerifyOptions) { o.Domain = "" }, want: license.ErrBindingMismatch, msg: "no domain"},
		{name: "malformed armor", data: []byte("-----BEGIN CIRCLE LICENSE-----\nhello\n-----END CIRCLE LICENSE-----\n"), want: license.ErrMalformed},
		{name: "10 MB", data: bytes.Repeat([]byte("A"), 10<<20), want: license.ErrTooLarge},
		{name: "signed but not JSON", data: iss.signRaw("not json"), want: license.ErrMalformed},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			keys, now, o := c.keys, c.now, opts()
			if keys == nil {
				keys = iss.keyring()
			}
			if now.IsZero() {
				now = t0
			}
			if c.opts != nil {
				c.opts(&o)
			}
			lic, err := license.Verify(c.data, keys, c.revs, now, o)
			if !errors.Is(err, c.want) || lic != nil {
				t.Fatalf("got %v, want %s", err, c.want)
			}
			if license.ReasonOf(err) != c.want || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("ReasonOf = %q; message %q lacks %q", license.ReasonOf(err), err, c.msg)
			}
			for _, other := range []license.Reason{license.ErrTooLarge, license.ErrMalformed, license.ErrUnknownKey, license.ErrBadSignature,
				license.ErrWrongProduct, license.ErrRevoked, license.ErrNotYetValid, license.ErrExpired, license.ErrBindingMismatch, license.ErrReplayed} {
				if other != c.want && errors.Is(err, other) {
					t.Errorf("%v is also %s", err, other)
				}
			}
		})
	}
	// What makes those refusals is all that does: the same file passes otherwise.
	if _, err := license.Verify(good, iss.keyring(), nil, t0, opts()); err != nil {
		t.Fatal(err)
	}
	o := opts()
	o.Domain = "eu.shop.Example.com."
	if _, err := license.Verify(good, iss.keyring(), nil, t0, o); err != nil {
		t.Errorf("a subdomain of the bound domain: %v", err)
	}
	o.IgnoreBinding, o.Cluster, o.Domain = true, "", ""
	if _, err := license.Verify(good, iss.keyring(), nil, t0, o); err != nil {
		t.Errorf("IgnoreBinding: %v", err)
	}
	o = opts()
	o.Product, o.AnyProduct = "", true
	if _, err := license.Verify(good, iss.keyring(), nil, t0, o); err != nil {
		t.Errorf("AnyProduct: %v", err)
	}
	if _, err := license.Verify(good, nil, nil, t0, opts()); !errors.Is(err, license.ErrUnknownKey) {
		t.Errorf("no keyring: %v", err)
	}
	if _, err := license.Verify(good, iss.keyring(), nil, t0, license.VerifyOptions{}); err == nil || license.ReasonOf(err) != "" {
		t.Errorf("options without a product: %v", err)
	}
	if _, err := license.Verify(good, iss.keyring(), nil, t0, license.VerifyOptions{AnyProduct: true, ClockSkew: -1}); err == nil {
		t.Error("a negative clock skew was accepted")
	}
}

// One flipped bit anywhere in the payload, at every position, is a bad signature; so is
// one in the signature.
func TestVerify_FlippedBytes(t *testing.T) {
	iss := newIssuer(t)
	keyID, sig, payload := parts(t, iss.issue(t, sample()))
	keys := iss.keyring()
	for i := range payload {
		for _, bit := range []byte{0x01, 0x80} {
			p := bytes.Clone(payload)
			p[i] ^= bit
			_, err := license.Verify(armor(license.LicenseLabel, keyID, sig, p), keys, nil, t0, opts())
			if !errors.Is(err, license.ErrBadSignature) {
				t.Fatalf("payload byte %d ^ %#x: %v, want bad signature", i, bit, err)
			}
		}
	}
	for i := range sig {
		s := bytes.Clone(sig)
		s[i] ^= 0x01
		_, err := license.Verify(armor(license.LicenseLabel, keyID, s, payload), keys, nil, t0, opts())
		if !errors.Is(err, license.ErrBadSignature) {
			t.Fatalf("signature byte %d: %v, want bad signature", i, err)
		}
	}
}

// The time window's edges, with the clock skew and the grace period as documented.
func TestVerify_TimeWindow(t *testing.T) {
	iss := newIssuer(t)
	l := sample()
	data := iss.issue(t, l)
	skew := 5 * time.Minute
	for _, c := range []struct {
		name  string
		now   time.Time
		state license.State
		want  license.Reason
	}{
		{"before not-before less skew", l.NotBefore.Add(-skew - time.Second), license.StateNotYetValid, license.ErrNotYetValid},
		{"within skew of not-before", l.NotBefore.Add(-skew), license.StateValid, ""},
		{"just before expiry plus skew", l.ExpiresAt.Add(skew - time.Second), license.StateValid, ""},
		{"grace begins", l.ExpiresAt.Add(skew), license.StateInGrace, ""},
		{"last second of grace", l.ExpiresAt.Add(skew + l.Grace - time.Second), license.StateInGrace, ""},
		{"grace over", l.ExpiresAt.Add(skew + l.Grace), license.StateExpired, license.ErrExpired},
	} {
		t.Run(c.name, func(t *testing.T) {
			lic, err := license.Verify(data, iss.keyring(), nil, c.now, opts())
			if c.want != "" {
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %s", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if lic.State() != c.state || lic.StateAt(c.now) != c.state {
				t.Errorf("state %s, StateAt %s, want %s", lic.State(), lic.StateAt(c.now), c.state)
			}
		})
	}
	// In grace is accepted, as a distinct state.
	lic, err := license.Verify(data, iss.keyring(), nil, l.ExpiresAt.Add(24*time.Hour), opts())
	if err != nil || lic.State() != license.StateInGrace || lic.State().String() != "in grace" {
		t.Fatalf("in grace: %v %v", lic, err)
	}
	// The verifier's skew travels with the license; a parsed one has none.
	if lic.StateAt(l.NotBefore.Add(-time.Minute)) != license.StateValid || lic.StateAt(l.ExpiresAt.Add(time.Hour*24*365)) != license.StateExpired {
		t.Error("StateAt with the verifier's skew")
	}
	parsed, _ := license.Parse(data)
	if parsed.StateAt(l.NotBefore.Add(-time.Minute)) != license.StateNotYetValid {
		t.Error("a parsed license allows clock skew")
	}
	// Zero skew is none.
	o := opts()
	o.ClockSkew = 0
	if _, err := license.Verify(data, iss.keyring(), nil, l.NotBefore.Add(-time.Second), o); !errors.Is(err, license.ErrNotYetValid) {
		t.Errorf("zero skew, a second early: %v", err)
	}
	for s, want := range map[license.State]string{license.StateUnverified: "unverified", license.StateValid: "valid",
		license.StateNotYetValid: "not yet valid", license.StateExpired: "expired"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q", s, s.String())
		}
	}
}

// Malformed files, each refused as malformed and never as anything else.
func TestParse_Malformed(t *testing.T) {
	iss := newIssuer(t)
	good := string(iss.issue(t, sample()))
	keyID, sig, payload := parts(t, []byte(good))
	head, body, _ := strings.Cut(good, "\n\n")
	revs, err := license.IssueRevocations(&license.RevocationList{Serial: 1, IssuedAt: t0, Entries: []license.Revocation{}}, iss.priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, data, msg string }{
		{"empty", "", "BEGIN"},
		{"text", "hello world", "BEGIN"},
		{"a revocation list", string(revs), "REVOCATION LIST, not a CIRCLE LICENSE"},
		{"no end", strings.TrimSuffix(good, "-----END CIRCLE LICENSE-----\n"), "END"},
		{"begin and end only", "-----BEGIN CIRCLE LICENSE-----\n-----END CIRCLE LICENSE-----", "END"},
		{"no blank line", strings.Replace(good, "\n\n", "\n", 1), "Name: value"},
		{"headers only", head + "\n-----END CIRCLE LICENSE-----\n", "empty line"},
		{"no version", strings.Replace(good, "Version: 1\n", "", 1), "Version"},
		{"version 2", strings.Replace(good, "Version: 1", "Version: 2", 1), "version"},
		{"header without colon", strings.Replace(good, "Version: 1", "Version 1", 1), "Name: value"},
		{"unknown header", strings.Replace(good, "Version: 1", "Version: 1\nComment: hi", 1), "unknown header"},
		{"header twice", strings.Replace(good, "Version: 1", "Version: 1\nVersion: 1", 1), "twice"},
		{"no key id", strings.Replace(good, "Key-Id: "+keyID+"\n", "", 1), "Key-Id"},
		{"key id upper case", strings.Replace(good, keyID, strings.ToUpper(keyID), 1), "Key-Id"},
		{"no signature", head[:strings.Index(head, "Signature")] + "\n" + body, "Signature"},
		{"short signature", strings.Replace(good, b64(sig), b64(sig[:63]), 1), "Signature"},
		{"payload not base64", strings.Replace(good, "\n\n", "\n\n*", 1), "payload"},
		{"empty payload", head + "\n\n-----END CIRCLE LICENSE-----\n", "empty payload"},
		{"payload not JSON", string(iss.signRaw("{")), "payload"},
		{"other format", string(iss.signRaw(strings.Replace(string(payload), "circle-license/1", "circle-license/2", 1))), "format"},
		{"text after the armor", good + "hello\n", "END"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := license.Parse([]byte(c.data))
			if !errors.Is(err, license.ErrMalformed) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("got %v, want malformed, about %q", err, c.msg)
			}
			_, err = license.Verify([]byte(c.data), iss.keyring(), nil, t0, opts())
			if !errors.Is(err, license.ErrMalformed) {
				t.Errorf("Verify: got %v, want malformed", err)
			}
		})
	}
	// What readers forgive: CRLF line ends, blank lines around, other base64 widths.
	for name, data := range map[string]string{
		"crlf":       strings.ReplaceAll(good, "\n", "\r\n"),
		"blank":      "\n\n  " + good + "\n\n",
		"one line":   head + "\n\n" + strings.Replace(strings.TrimSuffix(body, "-----END CIRCLE LICENSE-----\n"), "\n", "", -1) + "\n-----END CIRCLE LICENSE-----\n",
		"the sample": good,
	} {
		l, err := license.Parse([]byte(data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if out, _ := l.Marshal(); string(out) != good {
			t.Errorf("%s: Marshal does not give the canonical file back", name)
		}
	}
	if _, err := license.Parse(bytes.Repeat([]byte{'x'}, license.MaxFileSize+1)); !errors.Is(err, license.ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := (&license.License{}).Marshal(); err == nil {
		t.Error("Marshal of an unsigned license succeeded")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// ecdsaKeys returns an ECDSA key pair in PEM: keys of another algorithm.
func ecdsaKeys(t *testing.T) (pub, priv string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pder, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pder}))
}

// Payloads that are signed but not canonical, or break the schema, are malformed: the
// signature alone does not make a payload acceptable.
func TestVerify_NonCanonicalPayloads(t *testing.T) {
	iss := newIssuer(t)
	_, _, payload := parts(t, iss.issue(t, sample()))
	p := string(payload)
	for _, c := range []struct{ name, payload, msg string }{
		{"whitespace", strings.Replace(p, `"id":`, `"id": `, 1), "canonical"},
		{"trailing newline", p + "\n", "canonical"},
		{"key order", strings.Replace(p, `{"binding":{"cluster":"c-0001","domain":"example.com"},`, `{"binding":{"domain":"example.com","cluster":"c-0001"},`, 1), "canonical"},
		{"escaped letter", strings.Replace(p, `"Example GmbH"`, `"\u0045xample GmbH"`, 1), "canonical"},
		{"duplicate key", strings.Replace(p, `"id":"lic_test_1"`, `"id":"lic_other","id":"lic_test_1"`, 1), "canonical"},
		{"key case", strings.Replace(p, `"id":`, `"ID":`, 1), "canonical"},
		{"zero grace", strings.Replace(p, `"graceSeconds":1209600`, `"graceSeconds":0`, 1), "canonical"},
		{"empty metadata", strings.Replace(p, `"metadata":{"contact":"ops@example.com","order":"PO-42"}`, `"metadata":{}`, 1), "metadata"},
		{"empty binding", strings.Replace(p, `"binding":{"cluster":"c-0001","domain":"example.com"}`, `"binding":{}`, 1), "binding"},
		{"float limit", strings.Replace(p, `"seats":10`, `"seats":10.0`, 1), "limits"},
		{"exponent", strings.Replace(p, `"seats":10`, `"seats":1e1`, 1), "limits"},
		{"unknown field", strings.Replace(p, `"id":`, `"owner":"x","id":`, 1), "owner"},
		{"unsorted features", strings.Replace(p, `["audit-log","sso"]`, `["sso","audit-log"]`, 1), "features"},
		{"no features", strings.Replace(p, `"features":["audit-log","sso"],`, ``, 1), "features"},
		{"no limits", strings.Replace(p, `"limits":{"clusters":3,"seats":10},`, ``, 1), "limits"},
		{"fractional seconds", strings.Replace(p, `"expiresAt":"2026-07-01T12:00:00Z"`, `"expiresAt":"2026-07-01T12:00:00.5Z"`, 1), "expiresAt"},
		{"offset time", strings.Replace(p, `"expiresAt":"2026-07-01T12:00:00Z"`, `"expiresAt":"2026-07-01T14:00:00+02:00"`, 1), "expiresAt"},
		{"no such day", strings.Replace(p, `"expiresAt":"2026-07-01T12:00:00Z"`, `"expiresAt":"2026-02-30T12:00:00Z"`, 1), "expiresAt"},
		{"negative grace", strings.Replace(p, `"graceSeconds":1209600`, `"graceSeconds":-1`, 1), "graceSeconds"},
		{"second object", p + `{}`, "after"},
		{"invalid UTF-8", strings.Replace(p, `Example`, "Ex\xffample", 1), "canonical"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.payload == p {
				t.Fatal("the edit did not apply")
			}
			_, err := license.Verify(iss.signRaw(c.payload), iss.keyring(), nil, t0, opts())
			if !errors.Is(err, license.ErrMalformed) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("got %v, want malformed, about %q", err, c.msg)
			}
		})
	}
}

// A file of 10 MB is refused before it is parsed, quickly, and ReadFile does not read it
// all (a device that never ends is refused too).
func TestReadFile_TooLarge(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.lic")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), 10<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := license.NewVerifier(newIssuer(t).keyring(), opts())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, name := range []string{big, "/dev/zero"} {
		if _, err := v.VerifyFile(name, t0); !errors.Is(err, license.ErrTooLarge) {
			t.Errorf("%s: %v, want too large", name, err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing two huge files took %s", d)
	}
	if _, err := v.VerifyFile(filepath.Join(t.TempDir(), "missing.lic"), t0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	data := bytes.Repeat([]byte("A"), 10<<20)
	start = time.Now()
	_, err = license.Verify(data, newIssuer(t).keyring(), nil, t0, opts())
	if !errors.Is(err, license.ErrTooLarge) || time.Since(start) > 50*time.Millisecond {
		t.Errorf("10 MB in memory: %v after %s", err, time.Since(start))
	}
}

// The key id is the documented hash of the public key.
func TestKeyID(t *testing.T) {
	iss := newIssuer(t)
	sum := sha256.Sum256(iss.pub)
	if want := hex.EncodeToString(sum[:])[:16]; iss.id != want {
		t.Errorf("KeyID = %s, want %s", iss.id, want)
	}
}

// A keyring file holds several keys, for rotation; licenses signed by either verify.
func TestKeyring(t *testing.T) {
	a, b := newIssuer(t), newIssuer(t)
	pa, _ := license.MarshalPublicKey(a.pub)
	pb, _ := license.MarshalPublicKey(b.pub)
	file := filepath.Join(t.TempDir(), "issuers.pub")
	if err := os.WriteFile(file, append(append([]byte("# our issuers\n\n"), pa...), pb...), 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := license.ReadKeyring(file)
	if err != nil {
		t.Fatal(err)
	}
	if keys.Len() != 2 || !reflect.DeepEqual(keys.IDs(), sortedIDs(a.id, b.id)) {
		t.Fatalf("keyring ids %v", keys.IDs())
	}
	for _, iss := range []issuer{a, b} {
		if _, err := license.Verify(iss.issue(t, sample()), keys, nil, t0, opts()); err != nil {
			t.Errorf("license by %s: %v", iss.id, err)
		}
	}
	var zero license.Keyring
	if id := zero.Add(a.pub); id != a.id || zero.Len() != 1 {
		t.Error("Add on the zero Keyring")
	}

	priv, _ := license.MarshalPrivateKey(a.priv)
	ecPub, ecPriv := ecdsaKeys(t)
	for name, c := range map[string]struct{ data, msg string }{
		"private key pasted in": {string(pa) + string(priv), "private key"},
		"nothing":               {"# no keys\n", "no PEM"},
		"a certificate":         {"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "CERTIFICATE"},
		"not a key":             {"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "block 1"},
		"ecdsa":                 {ecPub, "not Ed25519"},
	} {
		if _, err := license.ParseKeyring([]byte(c.data)); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want an error about %q", name, err, c.msg)
		}
	}
	if _, err := license.ReadKeyring(filepath.Join(t.TempDir(), "none.pub")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing keyring: %v", err)
	}
	if err := os.WriteFile(file, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := license.ReadKeyring(file); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("a bad keyring's error does not name the file: %v", err)
	}

	for name, data := range map[string]string{
		"public key":    string(pa),
		"nothing":       "",
		"not pkcs8":     "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"ecdsa private": ecPriv,
	} {
		if _, err := license.ParsePrivateKey([]byte(data)); err == nil {
			t.Errorf("ParsePrivateKey of %s succeeded", name)
		}
	}
}

func sortedIDs(a, b string) []string {
	if a > b {
		a, b = b, a
	}
	return []string{a, b}
}

// Reasons print as words and are named by ReasonOf; other errors have no reason.
func TestReason(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range []license.Reason{license.ErrTooLarge, license.ErrMalformed, license.ErrUnknownKey, license.ErrBadSignature,
		license.ErrWrongProduct, license.ErrRevoked, license.ErrNotYetValid, license.ErrExpired, license.ErrBindingMismatch, license.ErrReplayed} {
		if seen[r.Error()] || r.Error() == string(r) {
			t.Errorf("%s: message %q", string(r), r.Error())
		}
		seen[r.Error()] = true
	}
	if license.ReasonOf(os.ErrNotExist) != "" || license.Reason("Other").Error() != "Other" {
		t.Error("ReasonOf of a plain error")
	}
}
