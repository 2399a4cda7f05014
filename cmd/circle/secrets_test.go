package main

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// secretsCanary is the secret of the attacker tests of this file: random-looking, so that
// none of its 4-character pieces occurs in an output by chance.
const secretsCanary = "Jd8sKw2QmZ5rVx7N"

// secretsLeak names the form of secretsCanary the text holds: itself, upper- or lower-case,
// base64, or any 4 characters of it in a row, in any case. Empty if none.
func secretsLeak(text string) string {
	c := secretsCanary
	for _, f := range []string{c, strings.ToUpper(c), strings.ToLower(c), base64.StdEncoding.EncodeToString([]byte(c)), base64.RawURLEncoding.EncodeToString([]byte(c))} {
		if strings.Contains(text, f) {
			return f
		}
	}
	lower := strings.ToLower(text)
	for i := 0; i+4 <= len(c); i++ {
		if p := strings.ToLower(c[i : i+4]); strings.Contains(lower, p) {
			return p
		}
	}
	return ""
}

// retagSecret changes the type tag of the encrypted value on line 2 of a file (its first
// nested value), as an attacker without the key can.
func retagSecret(t *testing.T, dir, name, tag string) {
	t.Helper()
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if !strings.Contains(lines[1], "type:str]") {
		t.Fatalf("line 2 of %s = %q", name, lines[1])
	}
	lines[1] = strings.Replace(lines[1], "type:str]", "type:"+tag+"]", 1)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Item 5 of issue 17 through the CLI: the canary's type tag changed to int, bool, float or
// time. `circle secrets check` and `circle validate`, in text and JSON, name the file,
// line and key path and fail; no output carries the canary in any form.
func TestSecretsCheck_TypeTagFlipLeaksNothing(t *testing.T) {
	for _, tag := range []string{"int", "bool", "float", "time"} {
		t.Run(tag, func(t *testing.T) {
			dir := copyExamples(t)
			encryptWithSOPS(t, dir, "secrets/prod.sops.yaml", "db:\n  password: "+secretsCanary+"\n")
			retagSecret(t, dir, "secrets/prod.sops.yaml", tag)
			for _, args := range [][]string{
				{"secrets", "check", dir, "--key-file", exampleKey},
				{"secrets", "check", dir, "--key-file", exampleKey, "-o", "json"},
				{"validate", dir, "--key-file", exampleKey},
				{"validate", dir, "--key-file", exampleKey, "-o", "json"},
			} {
				code, out, errOut := run(t, args...)
				if l := secretsLeak(out + errOut); l != "" {
					t.Fatalf("circle %s carries %q:\n%s%s", strings.Join(args, " "), l, out, errOut)
				}
				want := "secrets/prod.sops.yaml:2:5: db.password: value's type tag"
				switch {
				case args[len(args)-1] == "json":
					want = `"path": "db.password"`
				case args[0] == "secrets":
					want = "FAIL  secrets/prod.sops.yaml: line 2: db.password: value's type tag"
				}
				if code != exitFailed || !strings.Contains(out, want) {
					t.Errorf("circle %s: exit %d, want %d and %q in\n%s%s", strings.Join(args, " "), code, exitFailed, want, out, errOut)
				}
			}
		})
	}
}

// vaultStandIn stands in for a Vault server on 127.0.0.1 and records each request's token.
type vaultStandIn struct {
	*httptest.Server
	mu     sync.Mutex
	tokens []string
}

func newVaultStandIn(t *testing.T) *vaultStandIn {
	v := &vaultStandIn{}
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		v.tokens = append(v.tokens, r.Header.Get("X-Vault-Token"))
		v.mu.Unlock()
		http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
	}))
	t.Cleanup(v.Close)
	return v
}

func (v *vaultStandIn) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.tokens)
}

// Item 6 of issue 17 through the CLI. A pushed secrets file names a Vault server in its
// metadata while the process holds VAULT_TOKEN. By default `circle secrets check` and
// `circle validate` refuse it at the entry's line and the server sees nothing; allowed by
// --kms-allow or CIRCLE_KMS_ALLOW, the server is asked (with the token) and, refusing, the
// file still opens with its age key.
func TestSecretsCheck_RemoteKeyNeedsAllowing(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "circle-test-vault-token")
	vault := newVaultStandIn(t)
	dir := copyExamples(t)
	encryptWithSOPS(t, dir, "secrets/prod.sops.yaml", "db:\n  password: "+secretsCanary+"\n")
	p := filepath.Join(dir, "secrets/prod.sops.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	entry := "sops:\n    hc_vault:\n        - vault_address: " + vault.URL + "\n          engine_path: sops\n          key_name: circle\n" +
		"          created_at: \"2025-01-01T00:00:00Z\"\n          enc: vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
	b = []byte(strings.Replace(string(b), "sops:\n", entry, 1))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	line := 1 + strings.Count(string(b[:strings.Index(string(b), "vault_address")]), "\n")
	where := "secrets/prod.sops.yaml:" + strconv.Itoa(line) + ":11: sops.hc_vault[0]: hc_vault key hc_vault:" + vault.URL + "/v1/sops/keys/circle is not allowed"

	code, out, errOut := run(t, "secrets", "check", dir, "--key-file", exampleKey)
	if code != exitFailed || !strings.Contains(out, "line "+strconv.Itoa(line)+": sops.hc_vault[0]: hc_vault key") || vault.count() != 0 {
		t.Fatalf("secrets check: exit %d, %d request(s)\n%s%s", code, vault.count(), out, errOut)
	}
	code, out, errOut = run(t, "validate", dir, "--key-file", exampleKey, "--env", "prod")
	if code != exitFailed || !strings.Contains(out, where) || vault.count() != 0 {
		t.Fatalf("validate: exit %d, %d request(s), want %q in\n%s%s", code, vault.count(), where, out, errOut)
	}

	allow := "hc_vault:" + vault.URL + "/v1/sops/keys/circle"
	code, out, errOut = run(t, "secrets", "check", dir, "--key-file", exampleKey, "--kms-allow", allow)
	if code != exitOK || vault.count() == 0 {
		t.Fatalf("--kms-allow: exit %d, %d request(s)\n%s%s", code, vault.count(), out, errOut)
	}
	before := vault.count()
	t.Setenv("CIRCLE_KMS_ALLOW", "kms:arn:aws:kms:eu-west-1:111122223333:key/k, "+allow)
	if code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey, "--env", "prod"); code != exitOK || vault.count() == before {
		t.Fatalf("CIRCLE_KMS_ALLOW: exit %d, %d request(s)\n%s%s", code, vault.count()-before, out, errOut)
	}
	vault.mu.Lock()
	defer vault.mu.Unlock()
	for _, tok := range vault.tokens {
		if tok != "circle-test-vault-token" {
			t.Errorf("a request carried token %q", tok)
		}
	}
}

// --kms-allow's help teaches its syntax and its default; a malformed entry is a usage
// error naming it, from the flag or the environment.
func TestKMSAllowFlag(t *testing.T) {
	code, out, _ := run(t, "secrets", "check", "--help")
	for _, want := range []string{"--kms-allow", "Default: none", "hc_vault:https://VAULT:8200/v1/ENGINE_PATH/keys/KEY_NAME", "kms:ARN[+ROLE_ARN][|profile=NAME]", "CIRCLE_KMS_ALLOW"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("secrets check --help lacks %q:\n%s", want, out)
		}
	}
	if code, _, errOut := run(t, "secrets", "check", examplesDir, "--key-file", exampleKey, "--kms-allow", "vault:https://x"); code != exitUsage || !strings.Contains(errOut, `--kms-allow: remote key "vault:https://x"`) {
		t.Errorf("bad --kms-allow: exit %d, %q", code, errOut)
	}
	t.Setenv("CIRCLE_KMS_ALLOW", "hc_vault:https://vault/keys/x")
	if code, _, errOut := run(t, "secrets", "check", examplesDir, "--key-file", exampleKey); code != exitUsage || !strings.Contains(errOut, "CIRCLE_KMS_ALLOW: remote key") {
		t.Errorf("bad CIRCLE_KMS_ALLOW: exit %d, %q", code, errOut)
	}
}
