package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/circlecore/circle/secrets"
)

// fuzzIdentity is the age key the committed seed corpus (testdata/fuzz/FuzzSOPS) is
// encrypted for. It was made for these tests and protects nothing else.
const (
	fuzzIdentity  = "AGE-SECRET-KEY-1K6YY85598970N64Q4VFP2L8WMJP67ZN07Q02RM8YPEDPHLS6Z0ASV4VFDK"
	fuzzRecipient = "age1gj3x5t33xqms46qmvptwvqdf94lqm86y97kp066h59rxjk8cxc2sww725a"
)

// fuzzNames are the file names a fuzz input is read as; the name picks sops' store.
var fuzzNames = []string{"f.yaml", "f.json", "f.env", "f.ini", "f.bin"}

// FuzzSOPS feeds the SOPS parsers (YAML, JSON, dotenv, INI and the binary store, through
// IsEncrypted, Recipients and Decrypt) with files derived from sops-made ones whose every
// value is the canary. It holds that nothing panics; that every error is the package's
// own *Error with a kind; that no error carries the canary, in any form, unless the input
// itself did; and that no data-key request leaves the process (nothing is allowed).
func FuzzSOPS(f *testing.F) {
	f.Add(uint8(0), []byte("a: 1\n"))
	f.Add(uint8(1), []byte(`{"a": 1}`))
	f.Add(uint8(2), []byte("A=1\n"))
	f.Add(uint8(3), []byte("[a]\nb = 1\n"))
	var k secrets.Keyring
	if err := k.AddAge([]byte(fuzzIdentity)); err != nil {
		f.Fatal(err)
	}
	forwarded, undo := secrets.CountForwarded()
	f.Cleanup(undo)
	f.Fuzz(func(t *testing.T, format uint8, data []byte) {
		name := fuzzNames[int(format)%len(fuzzNames)]
		check := func(what string, err error) {
			if err == nil {
				return
			}
			var se *secrets.Error
			if !errors.As(err, &se) || len(se.Problems) == 0 {
				t.Fatalf("%s: an error not built by the package: %#v", what, err)
			}
			for _, p := range se.Problems {
				if p.Kind == nil || p.File != name || p.Message == "" {
					t.Fatalf("%s: problem without a kind, file or message: %+v", what, p)
				}
			}
			if leak := leaksBeyond(err.Error(), string(data)); leak != "" {
				t.Fatalf("%s: the error carries %q of the secret:\n%s", what, leak, err)
			}
		}
		secrets.IsEncrypted(name, data)
		_, err := secrets.Recipients(name, data)
		check("Recipients", err)
		_, err = k.Decrypt(context.Background(), name, data)
		check("Decrypt", err)
		if n := forwarded.Load(); n != 0 {
			t.Fatalf("%d data-key request(s) left the process", n)
		}
	})
}

// leaksBeyond is Leaks of the canary in text, not counting what input holds as it is: a
// key path in an error may quote the input, and the fuzzer may have written the canary's
// characters there itself.
func leaksBeyond(text, input string) string {
	forms := []string{tagCanary, strings.ToUpper(tagCanary), strings.ToLower(tagCanary)}
	for _, f := range forms {
		if strings.Contains(text, f) && !strings.Contains(input, f) {
			return f
		}
	}
	lowText, lowInput := strings.ToLower(text), strings.ToLower(input)
	for i := 0; i+4 <= len(tagCanary); i++ {
		piece := strings.ToLower(tagCanary[i : i+4])
		if strings.Contains(lowText, piece) && !strings.Contains(lowInput, piece) {
			return piece
		}
	}
	return ""
}

// TestWriteFuzzSeeds writes FuzzSOPS's seed corpus with the real sops CLI when
// CIRCLE_WRITE_FUZZ_SEEDS=1: each store with the canary encrypted, and the attacks of
// issue 17 on them (changed type tags, added clear entries, a Vault key in the metadata).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("CIRCLE_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set CIRCLE_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzSOPS")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSOPS")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(seed string, format int, data []byte) {
		body := fmt.Sprintf("go test fuzz v1\nuint8(%d)\n[]byte(%q)\n", format, data)
		if err := os.WriteFile(filepath.Join(dir, seed), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// enc encrypts plain with the CLI, for fuzzRecipient, with a .sops.yaml creation rule's
	// extra settings.
	enc := func(name, plain string, rule ...string) []byte {
		cfg := "creation_rules:\n  - age: " + fuzzRecipient + "\n"
		if len(rule) > 0 {
			cfg = "creation_rules:\n  - " + strings.Join(rule, "\n    ") + "\n"
			if !strings.Contains(cfg, "key_groups") {
				cfg += "    age: " + fuzzRecipient + "\n"
			}
		}
		return sopsCLI(t, nil, "--config", plainFile(t, "sops.yaml", cfg), "encrypt", plainFile(t, name, plain))
	}
	c := tagCanary
	yamlFile := enc("s.yaml", "# a comment\ndb:\n    password: "+c+"\n    port: 5432\n    ratio: 0.5\n    tls: true\n    when: 2024-01-02T03:04:05Z\nhosts:\n    - "+c+"\n    - name: b\n      weight_unencrypted: 2\nempty: {}\n")
	files := map[string][]byte{
		"yaml":                   yamlFile,
		"yaml-encrypted-regex":   enc("s.yaml", "password: "+c+"\nport: 5432\n", "encrypted_regex: ^password$"),
		"yaml-comment-regex":     enc("s.yaml", "# secret\npassword: "+c+"\n# plain\nport: 5432\n", "encrypted_comment_regex: secret"),
		"yaml-mac-only":          enc("s.yaml", "password: "+c+"\nport: 5432\n", "mac_only_encrypted: true", "unencrypted_regex: ^port$"),
		"yaml-retag-int":         retag(t, yamlFile, "password:", "int"),
		"yaml-retag-time":        retag(t, yamlFile, "    - ENC", "time"),
		"yaml-null":              []byte(strings.Replace(string(yamlFile), "db:\n", "db:\n    replicas: null\n", 1)),
		"yaml-vault":             withVaultKey(yamlFile, "http://127.0.0.1:1"),
		"json":                   enc("s.json", `{"db": {"password": "`+c+`", "port": 5432, "list": ["`+c+`", 1.5, false]}}`),
		"dotenv":                 enc("s.env", "DB_PASSWORD="+c+"\n# comment\nDB_USER=app\n"),
		"ini":                    enc("s.ini", "; comment\n[db]\npassword = "+c+"\nuser = app\n"),
		"binary":                 enc("s.bin", c+"\n"),
		"dotenv-retag-bool":      nil,
		"json-retag-float":       nil,
		"ini-retag-int":          nil,
		"binary-retag-int":       nil,
		"yaml-key-groups":        nil,
		"dotenv-flattened-vault": nil,
	}
	files["dotenv-retag-bool"] = retag(t, files["dotenv"], "DB_PASSWORD=", "bool")
	files["json-retag-float"] = retag(t, files["json"], `"password"`, "float")
	files["ini-retag-int"] = retag(t, files["ini"], "password", "int")
	files["binary-retag-int"] = retag(t, files["binary"], `"data"`, "int")
	files["yaml-key-groups"] = enc("s.yaml", "a: "+c+"\n", "shamir_threshold: 2", "key_groups:", "  - age: ["+fuzzRecipient+"]", "  - age: ["+fuzzRecipient+"]")
	files["dotenv-flattened-vault"] = append(append([]byte(nil), files["dotenv"]...),
		"sops_hc_vault__list_0__map_vault_address=http://127.0.0.1:1\nsops_hc_vault__list_0__map_engine_path=sops\nsops_hc_vault__list_0__map_key_name=k\nsops_hc_vault__list_0__map_created_at=2025-01-01T00:00:00Z\nsops_hc_vault__list_0__map_enc=x\n"...)
	formats := map[string]int{"yaml": 0, "json": 1, "dotenv": 2, "ini": 3, "binary": 4}
	for seed, data := range files {
		format, _, _ := strings.Cut(seed, "-")
		write(seed, formats[format], data)
	}
}

// The committed seeds are what their names say: the clean ones open with fuzzIdentity and
// hold the canary, so the fuzzer starts from files that reach decryption; each attack is
// refused with its kind.
func TestFuzzSeeds(t *testing.T) {
	var k secrets.Keyring
	if err := k.AddAge([]byte(fuzzIdentity)); err != nil {
		t.Fatal(err)
	}
	want := map[string]error{
		"yaml-retag-int": secrets.ErrTampered, "yaml-retag-time": secrets.ErrTampered, "json-retag-float": secrets.ErrTampered,
		"dotenv-retag-bool": secrets.ErrTampered, "ini-retag-int": secrets.ErrTampered, "binary-retag-int": secrets.ErrTampered,
		"yaml-null": secrets.ErrUnencrypted, "yaml-vault": secrets.ErrKeySourceNotAllowed, "dotenv-flattened-vault": secrets.ErrKeySourceNotAllowed,
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSOPS")
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) < 18 {
		t.Fatalf("seed corpus: %d files, %v", len(entries), err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(b), "\n", 4)
		var format int
		if _, err := fmt.Sscanf(lines[1], "uint8(%d)", &format); err != nil {
			t.Fatalf("%s: %q", e.Name(), lines[1])
		}
		data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[2], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out, err := k.Decrypt(context.Background(), fuzzNames[format], []byte(data))
		switch kind := want[e.Name()]; {
		case kind == nil && (err != nil || !strings.Contains(string(out), tagCanary)):
			t.Errorf("%s: %v", e.Name(), err)
		case kind != nil && !errors.Is(err, kind):
			t.Errorf("%s: err = %v, want %v", e.Name(), err, kind)
		}
	}
}
