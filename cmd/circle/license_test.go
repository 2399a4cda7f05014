package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/license"
)

const (
	exampleLicenses  = "../../examples/licenses"
	exampleIssuerKey = "../../examples/keys/license-issuer.example.key"
)

// keygen → issue → verify → Allows/Limit, as a user runs it.
func TestLicense_RoundTrip(t *testing.T) {
	dir := t.TempDir()
	ring := filepath.Join(dir, "licenses", "issuers.pub")
	os.MkdirAll(filepath.Dir(ring), 0o755)
	code, out, errOut := run(t, "license", "keygen", "--out", filepath.Join(dir, "keys"), "--keyring", ring)
	if code != exitOK || !strings.Contains(out, "key id:") {
		t.Fatalf("keygen: exit %d\n%s%s", code, out, errOut)
	}
	key := filepath.Join(dir, "keys", "license-issuer.key")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", fi.Mode(), err)
	}
	keys, err := license.ReadKeyring(ring)
	if err != nil || keys.Len() != 1 || !strings.Contains(out, keys.IDs()[0]) {
		t.Fatalf("keyring after keygen: %v (%s)", err, out)
	}

	lic := filepath.Join(dir, "licenses", "acme.lic")
	code, out, errOut = run(t, "license", "issue", "--key", key, "--product", "shop", "--licensee", "ACME Inc",
		"--features", "sso,audit-log", "--limit", "seats=10", "--limit", "clusters=2", "--expires", "2027-12-31",
		"--issued-at", "2026-01-01", "--grace", "14d", "--binding-domain", "acme.example", "--meta", "order=42", "-o", lic)
	if code != exitOK || !strings.Contains(out, "issued lic_") || !strings.Contains(errOut, "not SOPS-encrypted") {
		t.Fatalf("issue: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = run(t, "license", "verify", lic, "--keyring", ring, "--product", "shop",
		"--domain", "eu.acme.example", "--at", "2027-06-01", "-o", "json")
	if code != exitOK {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
	var res licenseVerifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Valid || res.State != "valid" || res.License.Licensee != "ACME Inc" || res.License.Limits["seats"] != 10 ||
		strings.Join(res.License.Features, ",") != "audit-log,sso" || res.License.Grace != "14d" ||
		!res.License.ExpiresAt.Equal(time.Date(2027, 12, 31, 23, 59, 59, 0, time.UTC)) {
		t.Errorf("verify -o json: %s", out)
	}

	// The library reads what the CLI wrote.
	data, _ := os.ReadFile(lic)
	o := license.DefaultVerifyOptions("shop")
	o.Domain = "acme.example"
	l, err := license.Verify(data, keys, nil, time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC), o)
	if err != nil || !l.Allows("sso") || l.Allows("billing") || l.Limit("clusters") != 2 || l.Metadata["order"] != "42" {
		t.Fatalf("library: %v %+v", err, l)
	}

	// Text output says what it did not check.
	code, out, _ = run(t, "license", "verify", lic, "--keyring", ring, "--at", "2027-06-01")
	if code != exitOK || !strings.Contains(out, "acme.lic: valid") || !strings.Contains(out, "seats=10") ||
		!strings.Contains(out, "not checked: product (give --product), binding") {
		t.Errorf("verify text: exit %d\n%s", code, out)
	}

	// keygen never overwrites, and appends to a keyring that holds keys.
	if code, _, errOut := run(t, "license", "keygen", "--out", filepath.Join(dir, "keys"), "--keyring", ring); code != exitUsage || !strings.Contains(errOut, "exists") {
		t.Errorf("keygen over an existing key: exit %d %q", code, errOut)
	}
	if code, _, _ := run(t, "license", "keygen", "--out", filepath.Join(dir, "keys"), "--name", "next", "--keyring", ring); code != exitOK {
		t.Fatal("second keygen")
	}
	if keys, err := license.ReadKeyring(ring); err != nil || keys.Len() != 2 {
		t.Errorf("keyring after rotation: %v", err)
	}
	notRing := filepath.Join(dir, "notes.txt")
	os.WriteFile(notRing, []byte("my notes"), 0o644)
	if code, _, _ := run(t, "license", "keygen", "--out", filepath.Join(dir, "k3"), "--keyring", notRing); code != exitUsage {
		t.Errorf("keygen appending to a file that is no keyring: exit %d", code)
	}
	if b, _ := os.ReadFile(notRing); string(b) != "my notes" {
		t.Error("keygen changed a file that is no keyring")
	}
}

// The example repository's license verifies with its keyring and revocation list, and its
// SOPS-encrypted issuer key (opened with the example age key) signs licenses that verify.
func TestLicense_Examples(t *testing.T) {
	lic := filepath.Join(exampleLicenses, "circle-demo.lic")
	ring := filepath.Join(exampleLicenses, "issuers.pub")
	revoked := filepath.Join(exampleLicenses, "revoked.list")
	code, out, errOut := run(t, "license", "verify", lic, "--keyring", ring, "--revocations", revoked, "--product", "circle-demo")
	if code != exitOK || !strings.Contains(out, ": valid") || !strings.Contains(out, "2036-12-31") {
		t.Fatalf("the example license: exit %d\n%s%s", code, out, errOut)
	}

	dir := t.TempDir()
	mine := filepath.Join(dir, "mine.lic")
	code, out, errOut = run(t, "license", "issue", "--key", exampleIssuerKey, "--key-file", exampleKey,
		"--product", "circle-demo", "--licensee", "Tester", "--expires", "30d", "-o", mine)
	if code != exitOK || strings.Contains(errOut, "warning") {
		t.Fatalf("issue with the SOPS-encrypted example key: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := run(t, "license", "verify", mine, "--keyring", ring, "--product", "circle-demo"); code != exitOK {
		t.Errorf("a license from the example key: exit %d\n%s%s", code, out, errOut)
	}
	// Without the age key the encrypted key does not open, and the error says for whom it is.
	code, _, errOut = run(t, "license", "issue", "--key", exampleIssuerKey, "--product", "p", "--licensee", "x", "--expires", "30d")
	if code != exitUsage || !strings.Contains(errOut, "age1t0ey88") {
		t.Errorf("encrypted key without SOPS keys: exit %d %q", code, errOut)
	}
	// CIRCLE_AGE_KEY works as for every SOPS file.
	ageKey, err := os.ReadFile(exampleKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CIRCLE_AGE_KEY", string(ageKey))
	if code, out, errOut := run(t, "license", "issue", "--key", exampleIssuerKey, "--product", "p", "--licensee", "x", "--expires", "30d"); code != exitOK || !strings.HasPrefix(out, "-----BEGIN CIRCLE LICENSE-----") {
		t.Errorf("issue to stdout with CIRCLE_AGE_KEY: exit %d %q", code, errOut)
	}

	code, out, _ = run(t, "license", "inspect", revoked)
	if code != exitOK || !strings.Contains(out, "revocation list 1") || !strings.Contains(out, "lic_example_refunded") || !strings.Contains(out, "signature not checked") {
		t.Errorf("inspect the example list: exit %d\n%s", code, out)
	}
}

// Each refusal exits 1 with its reason; in grace exits 0.
func TestLicense_VerifyRefusals(t *testing.T) {
	dir := t.TempDir()
	if code, _, _ := run(t, "license", "keygen", "--out", dir); code != exitOK {
		t.Fatal("keygen")
	}
	if code, _, _ := run(t, "license", "keygen", "--out", dir, "--name", "other"); code != exitOK {
		t.Fatal("keygen")
	}
	key, ring, otherRing := filepath.Join(dir, "license-issuer.key"), filepath.Join(dir, "license-issuer.pub"), filepath.Join(dir, "other.pub")
	lic := filepath.Join(dir, "a.lic")
	if code, _, errOut := run(t, "license", "issue", "--key", key, "--id", "lic_a", "--product", "shop", "--licensee", "A",
		"--issued-at", "2026-01-01T00:00:00Z", "--not-before", "2026-02-01", "--expires", "2026-12-31", "--grace", "2w",
		"--binding-cluster", "c1", "-o", lic); code != exitOK {
		t.Fatalf("issue: %s", errOut)
	}
	list := filepath.Join(dir, "revoked.list")
	serial := filepath.Join(dir, "serial")
	garbage := filepath.Join(dir, "garbage.lic")
	os.WriteFile(garbage, []byte("-----BEGIN CIRCLE LICENSE-----\nnot a license\n-----END CIRCLE LICENSE-----\n"), 0o644)
	huge := filepath.Join(dir, "huge.lic")
	os.WriteFile(huge, make([]byte, 10<<20), 0o644)

	verify := func(args ...string) (int, string, string) {
		return run(t, append([]string{"license", "verify"}, args...)...)
	}
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		reason string
	}{
		{"valid", []string{lic, "--keyring", ring, "--product", "shop", "--at", "2026-06-01"}, exitOK, ": valid"},
		{"in grace", []string{lic, "--keyring", ring, "--at", "2027-01-07"}, exitOK, ": in grace"},
		{"expired", []string{lic, "--keyring", ring, "--at", "2027-02-01"}, exitFailed, "expired"},
		{"not yet valid", []string{lic, "--keyring", ring, "--at", "2026-01-15"}, exitFailed, "not yet valid"},
		{"clock skew", []string{lic, "--keyring", ring, "--at", "2026-01-31T23:58:00Z"}, exitOK, ": valid"},
		{"no clock skew", []string{lic, "--keyring", ring, "--at", "2026-01-31T23:58:00Z", "--clock-skew", "0s"}, exitFailed, "not yet valid"},
		{"wrong product", []string{lic, "--keyring", ring, "--product", "other", "--at", "2026-06-01"}, exitFailed, "wrong product"},
		{"unknown key", []string{lic, "--keyring", otherRing, "--at", "2026-06-01"}, exitFailed, "unknown key"},
		{"binding", []string{lic, "--keyring", ring, "--cluster", "c2", "--at", "2026-06-01"}, exitFailed, "binding mismatch"},
		{"binding holds", []string{lic, "--keyring", ring, "--cluster", "c1", "--at", "2026-06-01"}, exitOK, ": valid"},
		{"malformed", []string{garbage, "--keyring", ring}, exitFailed, "malformed"},
		{"10 MB", []string{huge, "--keyring", ring}, exitFailed, "too large"},
		{"missing file", []string{filepath.Join(dir, "none.lic"), "--keyring", ring}, exitUsage, "no such file"},
		{"missing keyring", []string{lic, "--keyring", filepath.Join(dir, "none.pub")}, exitUsage, "no such file"},
		{"no keyring", []string{lic}, exitUsage, "keyring"},
		{"bad time", []string{lic, "--keyring", ring, "--at", "soon"}, exitUsage, "--at"},
		{"bad format", []string{lic, "--keyring", ring, "--at", "2026-06-01", "-o", "xml"}, exitUsage, "output format"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := verify(c.args...)
			if code != c.code || !strings.Contains(out+errOut, c.reason) {
				t.Errorf("exit %d, want %d with %q\n%s%s", code, c.code, c.reason, out, errOut)
			}
		})
	}

	// Revoked, and an old list replayed once a newer one was seen.
	revoke := func(id string) {
		t.Helper()
		if code, out, errOut := run(t, "license", "revoke", "--key", key, "--list", list, "--id", id, "--reason", "test "+id); code != exitOK {
			t.Fatalf("revoke %s: exit %d\n%s%s", id, code, out, errOut)
		}
	}
	revoke("lic_other")
	listOne, _ := os.ReadFile(list)
	if code, _, errOut := verify(lic, "--keyring", ring, "--at", "2026-06-01", "--revocations", list, "--serial-file", serial); code != exitOK {
		t.Fatalf("list 1 does not revoke lic_a: %s", errOut)
	}
	revoke("lic_a")
	code, out, errOut := verify(lic, "--keyring", ring, "--at", "2026-06-01", "--revocations", list, "--serial-file", serial, "-o", "json")
	var res licenseVerifyResult
	if err := json.Unmarshal([]byte(out), &res); code != exitFailed || err != nil || res.Valid || res.Reason != "Revoked" || !strings.Contains(errOut, "test lic_a") {
		t.Errorf("revoked: exit %d\n%s%s", code, out, errOut)
	}
	old := filepath.Join(dir, "old.list")
	os.WriteFile(old, listOne, 0o644)
	if code, _, errOut := verify(lic, "--keyring", ring, "--at", "2026-06-01", "--revocations", old, "--serial-file", serial); code != exitFailed || !strings.Contains(errOut, "replayed") {
		t.Errorf("old list replayed: exit %d %q", code, errOut)
	}
	if code, out, errOut := run(t, "license", "inspect", list, "-o", "json"); code != exitOK || !strings.Contains(out, `"serial": 2`) || !strings.Contains(out, `"id": "lic_a"`) {
		t.Errorf("inspect list 2: exit %d\n%s%s", code, out, errOut)
	}
}

func TestLicense_Revoke(t *testing.T) {
	dir := t.TempDir()
	run(t, "license", "keygen", "--out", dir)
	run(t, "license", "keygen", "--out", dir, "--name", "new")
	key, newKey := filepath.Join(dir, "license-issuer.key"), filepath.Join(dir, "new.key")
	list := filepath.Join(dir, "revoked.list")
	revoke := func(key, id string, extra ...string) (int, string, string) {
		return run(t, append([]string{"license", "revoke", "--key", key, "--list", list, "--id", id, "--reason", "r"}, extra...)...)
	}
	if code, out, _ := revoke(key, "lic_1", "--at", "2026-03-01"); code != exitOK || !strings.Contains(out, "serial 1, 1 revoked") {
		t.Fatalf("first revoke: exit %d %s", code, out)
	}
	if code, _, errOut := revoke(key, "lic_1"); code != exitFailed || !strings.Contains(errOut, "already revoked (2026-03-01") {
		t.Errorf("revoking twice: exit %d %q", code, errOut)
	}
	// After a key rotation the old list verifies with the keyring that still holds the old key.
	if code, _, errOut := revoke(newKey, "lic_2"); code != exitFailed || !strings.Contains(errOut, "unknown key") {
		t.Errorf("new key, list by the old one, no keyring: exit %d %q", code, errOut)
	}
	both := filepath.Join(dir, "both.pub")
	a, _ := os.ReadFile(filepath.Join(dir, "license-issuer.pub"))
	b, _ := os.ReadFile(filepath.Join(dir, "new.pub"))
	os.WriteFile(both, append(a, b...), 0o644)
	if code, out, errOut := revoke(newKey, "lic_2", "--keyring", both); code != exitOK || !strings.Contains(out, "serial 2, 2 revoked") {
		t.Errorf("rotated: exit %d %s%s", code, out, errOut)
	}
	r, err := license.ParseRevocations(mustRead(t, list))
	if err != nil || r.Serial != 2 || len(r.Entries) != 2 || r.KeyID() == "" {
		t.Errorf("the list: %v %+v", err, r)
	}
	if code, _, errOut := revoke(newKey, "bad id", "--keyring", both); code != exitUsage || !strings.Contains(errOut, "id") {
		t.Errorf("an invalid id: exit %d %q", code, errOut)
	}
	os.WriteFile(list, []byte("tampered"), 0o644)
	if code, _, errOut := revoke(key, "lic_3"); code != exitFailed || !strings.Contains(errOut, "malformed") {
		t.Errorf("a tampered list: exit %d %q", code, errOut)
	}
	if code, _, _ := revoke(key, "x", "--at", "later"); code != exitUsage {
		t.Error("a bad --at")
	}
	if code, _, _ := revoke(filepath.Join(dir, "none.key"), "x"); code != exitUsage {
		t.Error("a missing key")
	}
}

func TestLicense_IssueAndInspectErrors(t *testing.T) {
	dir := t.TempDir()
	run(t, "license", "keygen", "--out", dir)
	key := filepath.Join(dir, "license-issuer.key")
	issue := func(extra ...string) (int, string, string) {
		return run(t, append([]string{"license", "issue", "--key", key, "--product", "p", "--licensee", "x"}, extra...)...)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--expires", "someday"}, "--expires"},
		{[]string{"--expires", "30d", "--limit", "seats"}, "--limit"},
		{[]string{"--expires", "30d", "--limit", "seats=many"}, "--limit"},
		{[]string{"--expires", "30d", "--meta", "k"}, "--meta"},
		{[]string{"--expires", "30d", "--grace", "fortnight"}, "--grace"},
		{[]string{"--expires", "30d", "--grace", "1.5d"}, "--grace"},
		{[]string{"--expires", "30d", "--not-before", "x"}, "--not-before"},
		{[]string{"--expires", "30d", "--issued-at", "x"}, "--issued-at"},
		{[]string{"--expires", "30d", "--features", "Bad Feature"}, "features"},
		{[]string{"--expires", "2020-01-01", "--issued-at", "2026-01-01"}, "expiresAt"},
		{[]string{}, "expires"},
	} {
		if code, _, errOut := issue(c.args...); code != exitUsage || !strings.Contains(errOut, c.msg) {
			t.Errorf("issue %v: exit %d %q, want usage about %s", c.args, code, errOut, c.msg)
		}
	}
	// A public key where the private key should be.
	if code, _, errOut := run(t, "license", "issue", "--key", filepath.Join(dir, "license-issuer.pub"), "--product", "p", "--licensee", "x", "--expires", "1d"); code != exitUsage || !strings.Contains(errOut, "PRIVATE KEY") {
		t.Errorf("issue with a public key: exit %d %q", code, errOut)
	}

	lic := filepath.Join(dir, "x.lic")
	if code, _, errOut := issue("--expires", "2030-01-01T12:00:00+02:00", "-o", lic); code != exitOK {
		t.Fatal(errOut)
	}
	code, out, _ := run(t, "license", "inspect", lic)
	if code != exitOK || !strings.Contains(out, "signature not checked") || !strings.Contains(out, "2030-01-01T10:00:00Z") {
		t.Errorf("inspect: exit %d\n%s", code, out)
	}
	bad := filepath.Join(dir, "bad.lic")
	os.WriteFile(bad, []byte("hello"), 0o644)
	if code, _, errOut := run(t, "license", "inspect", bad); code != exitFailed || !strings.Contains(errOut, "malformed") {
		t.Errorf("inspect of a bad file: exit %d %q", code, errOut)
	}
	os.WriteFile(bad, []byte("-----BEGIN CIRCLE REVOCATION LIST-----\n"), 0o644)
	if code, _, _ := run(t, "license", "inspect", bad); code != exitFailed {
		t.Errorf("inspect of a bad list: exit %d", code)
	}
	os.WriteFile(bad, make([]byte, 10<<20), 0o644)
	if code, _, errOut := run(t, "license", "inspect", bad); code != exitFailed || !strings.Contains(errOut, "too large") {
		t.Errorf("inspect of a huge file: exit %d %q", code, errOut)
	}
	if code, _, _ := run(t, "license", "inspect", filepath.Join(dir, "none")); code != exitUsage {
		t.Error("inspect of a missing file")
	}
	if code, out, _ := run(t, "license"); code != exitOK || !strings.Contains(out, "keygen") || !strings.Contains(out, "revoke") {
		t.Errorf("circle license: exit %d\n%s", code, out)
	}
}

func TestLicense_ParseWhen(t *testing.T) {
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		end  bool
		want time.Time
	}{
		{"2027-12-31", true, time.Date(2027, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"2027-12-31", false, time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)},
		{"2027-12-31T10:00:00Z", true, time.Date(2027, 12, 31, 10, 0, 0, 0, time.UTC)},
		{"365d", true, base.AddDate(0, 0, 365)},
		{"2w", false, base.AddDate(0, 0, 14)},
		{"36h", false, base.Add(36 * time.Hour)},
	} {
		got, err := parseWhen(c.in, c.end, base)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseWhen(%q, %v) = %s, %v; want %s", c.in, c.end, got, err, c.want)
		}
	}
	if formatDuration(36*time.Hour) != "36h0m0s" || formatDuration(48*time.Hour) != "2d" {
		t.Error("formatDuration")
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A license file is the issuer's text, or anyone's who can write to the repository:
// inspect and verify print its fields with their control characters escaped, so an OSC
// sequence cannot retitle the terminal, a CSI one cannot clear it, and a line break
// cannot forge a row. The JSON output holds the exact values (encoding/json escapes them).
func TestLicense_TerminalEscapes(t *testing.T) {
	dir := t.TempDir()
	ring := filepath.Join(dir, "issuers.pub")
	if code, _, errOut := run(t, "license", "keygen", "--out", dir, "--keyring", ring); code != exitOK {
		t.Fatal(errOut)
	}
	key := filepath.Join(dir, "license-issuer.key")
	lic := filepath.Join(dir, "evil.lic")
	title, clear := "\x1b]0;pwned\x07", "\x1b[2J"
	code, _, errOut := run(t, "license", "issue", "--key", key, "--id", "lic_evil", "--product", "shop", "--licensee", "Evil"+title+" Corp",
		"--meta", "note="+clear, "--meta", "forged=x\n  expires:    2099-01-01", "--meta", "c1=\u009b2J", "--expires", "2030-01-01", "-o", lic)
	if code != exitOK {
		t.Fatalf("issue: exit %d %s", code, errOut)
	}
	list := filepath.Join(dir, "revoked.list")
	if code, _, errOut := run(t, "license", "revoke", "--key", key, "--list", list, "--id", "lic_evil", "--reason", "refunded"+clear); code != exitOK {
		t.Fatalf("revoke: exit %d %s", code, errOut)
	}
	for _, args := range [][]string{
		{"license", "inspect", lic},
		{"license", "verify", lic, "--keyring", ring, "--at", "2029-01-01"},
		{"license", "inspect", list},
	} {
		code, out, errOut := run(t, args...)
		if code != exitOK {
			t.Errorf("%v: exit %d %s", args[1:], code, errOut)
		}
		if i := strings.IndexAny(out+errOut, "\x1b\x07\u009b"); i >= 0 {
			t.Errorf("%v prints a raw control character at %d:\n%q", args[1:], i, out+errOut)
		}
		if strings.Contains(out, "\n  expires:    2099") {
			t.Errorf("%v: a metadata value forged an expires row:\n%s", args[1:], out)
		}
	}
	_, out, _ := run(t, "license", "inspect", lic)
	for _, want := range []string{`Evil\x1b]0;pwned\a Corp`, `note=\x1b[2J`, `forged=x\n  expires:    2099-01-01`, `c1=\u009b2J`} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect does not show %s:\n%s", want, out)
		}
	}
	if _, out, _ := run(t, "license", "inspect", list); !strings.Contains(out, `refunded\x1b[2J`) {
		t.Errorf("inspect of the list does not show the escaped reason:\n%s", out)
	}
	// A refusal's message quotes the revocation reason: the error line is escaped too.
	code, _, errOut = run(t, "license", "verify", lic, "--keyring", ring, "--at", "2029-01-01", "--revocations", list)
	if code != exitFailed || !strings.Contains(errOut, `revoked: on `) || !strings.Contains(errOut, `refunded\x1b[2J`) || strings.ContainsAny(errOut, "\x1b\x07") {
		t.Errorf("a revoked license: exit %d, stderr %q", code, errOut)
	}
	_, out, _ = run(t, "license", "verify", lic, "--keyring", ring, "--at", "2029-01-01", "-o", "json")
	var res licenseVerifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.License == nil || res.License.Licensee != "Evil"+title+" Corp" || res.License.Metadata["note"] != clear {
		t.Errorf("verify -o json does not hold the exact values: %v\n%s", err, out)
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("verify -o json holds raw control characters:\n%q", out)
	}
}
