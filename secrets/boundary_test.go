package secrets_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/testenv"
)

// tagCanary is the secret of the tests that play the attacker. It is random-looking so that
// none of its 4-character pieces occurs in an error by chance.
const tagCanary = "qZ7xW3vK9pR2mJ5t"

// Leaks reports which form of canary text holds: the canary itself, upper- or lower-case,
// its base64 or hex, or any 4 characters of it in a row (in any case). Empty if none.
func Leaks(text, canary string) string {
	forms := []string{canary, strings.ToUpper(canary), strings.ToLower(canary),
		base64.StdEncoding.EncodeToString([]byte(canary)), base64.RawStdEncoding.EncodeToString([]byte(canary)),
		base64.URLEncoding.EncodeToString([]byte(canary)), hex.EncodeToString([]byte(canary))}
	for _, f := range forms {
		if strings.Contains(text, f) {
			return f
		}
	}
	lower := strings.ToLower(text)
	for i := 0; i+4 <= len(canary); i++ {
		if piece := strings.ToLower(canary[i : i+4]); strings.Contains(lower, piece) {
			return piece
		}
	}
	return ""
}

func assertNoLeak(t *testing.T, where, text string) {
	t.Helper()
	if f := Leaks(text, tagCanary); f != "" {
		t.Fatalf("%s carries the secret (%q):\n%s", where, f, text)
	}
}

// sopsRun runs the real sops CLI and returns its stdout, stderr and error, for the cases
// where sops itself is expected to fail.
func sopsRun(t *testing.T, env []string, args ...string) ([]byte, string, error) {
	t.Helper()
	bin, err := testenv.Tool(testenv.ToolSOPS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return out, stderr.String(), err
}

// ageKeyring is a fresh age identity and a keyring holding it.
func ageKeyring(t *testing.T) (*age.X25519Identity, *secrets.Keyring) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var k secrets.Keyring
	if err := k.AddAge([]byte(id.String())); err != nil {
		t.Fatal(err)
	}
	return id, &k
}

// encrypt makes a SOPS file of plain with the real sops CLI, for id, with sops' extra flags.
func encrypt(t *testing.T, id *age.X25519Identity, name, plain string, flags ...string) []byte {
	t.Helper()
	args := append([]string{"encrypt", "--age", id.Recipient().String()}, flags...)
	return sopsCLI(t, nil, append(args, plainFile(t, name, plain))...)
}

// retag changes the type tag of the encrypted value on the line holding key.
func retag(t *testing.T, enc []byte, key, tag string) []byte {
	t.Helper()
	lines := strings.Split(string(enc), "\n")
	for i, l := range lines {
		if strings.Contains(l, key) && strings.Contains(l, "type:str]") {
			lines[i] = strings.Replace(l, "type:str]", "type:"+tag+"]", 1)
			return []byte(strings.Join(lines, "\n"))
		}
	}
	t.Fatalf("no encrypted %s in\n%s", key, enc)
	return nil
}

// Item 5 of issue 17. A type tag is not authenticated: changing a secret's type:str to
// int, bool, float or time needs no key, and the real sops CLI then prints the secret in
// its parse error. Circle's error names the file, line and key path, and not the secret,
// in any form; Recipients still reads the file.
func TestTypeTagFlipLeaksNothing(t *testing.T) {
	id, k := ageKeyring(t)
	stores := []struct {
		name, plain, key string
		line             int
		path             string
	}{
		{"prod.sops.yaml", "db:\n    password: " + tagCanary + "\n    user: app\n", "password:", 2, "db.password"},
		{"prod.sops.json", "{\n\t\"db\": {\n\t\t\"password\": \"" + tagCanary + "\"\n\t}\n}\n", `"password"`, 3, "db.password"},
		{"prod.sops.env", "DB_USER=app\nDB_PASSWORD=" + tagCanary + "\n", "DB_PASSWORD=", 2, "DB_PASSWORD"},
		{"prod.sops.ini", "[db]\npassword = " + tagCanary + "\n", "password", 2, "db.password"},
	}
	for _, s := range stores {
		enc := encrypt(t, id, s.name, s.plain)
		if Leaks(string(enc), tagCanary) != "" {
			t.Fatalf("%s: sops left the canary readable", s.name)
		}
		for _, tag := range []string{"int", "bool", "float", "time", "bytes", "nope"} {
			t.Run(s.name+"/"+tag, func(t *testing.T) {
				bad := retag(t, enc, s.key, tag)
				name := "secrets/" + s.name
				_, err := k.Decrypt(context.Background(), name, bad)
				if err == nil {
					t.Fatal("a retagged file decrypted")
				}
				assertNoLeak(t, "Decrypt's error", err.Error())
				if !errors.Is(err, secrets.ErrTampered) {
					t.Errorf("err = %v, want ErrTampered", err)
				}
				var se *secrets.Error
				if !errors.As(err, &se) || len(se.Problems) != 1 {
					t.Fatalf("err = %#v, want one problem", err)
				}
				p := se.Problems[0]
				if p.File != name || p.Line != s.line || p.Path != s.path || !strings.Contains(p.Message, "changed after") {
					t.Errorf("problem = %+v, want %s:%d %s", p, name, s.line, s.path)
				}
				if r, err := secrets.Recipients(name, bad); err != nil || len(r) != 1 {
					t.Errorf("Recipients = %v, %v", r, err)
				}
				// The attack is real: sops itself quotes the secret for the tags it parses.
				if tag == "int" || tag == "float" || tag == "bool" || tag == "time" {
					f := plainFile(t, s.name, string(bad))
					_, stderr, err := sopsRun(t, []string{"SOPS_AGE_KEY=" + id.String()}, "decrypt", f)
					if err == nil || Leaks(stderr, tagCanary) == "" {
						t.Errorf("sops decrypt of the retagged file: %v, and its error does not quote the secret:\n%s", err, stderr)
					}
				}
			})
		}
	}
}

// A type change that still parses is not seen by sops' MAC (it covers the text "123", not
// its type); a float NaN in JSON then fails sops' emitter, whose error quotes the value.
// Circle's does not.
func TestTypeTagFlipThatParses(t *testing.T) {
	id, k := ageKeyring(t)
	enc := encrypt(t, id, "s.json", "{\n\t\"pin\": \"NaN\",\n\t\"code\": \"123\"\n}\n")
	_, err := k.Decrypt(context.Background(), "s.json", retag(t, enc, `"pin"`, "float"))
	if !errors.Is(err, secrets.ErrTampered) || strings.Contains(err.Error(), "NaN") {
		t.Errorf("NaN as float: %v", err)
	}
	got, err := k.Decrypt(context.Background(), "s.json", retag(t, enc, `"code"`, "int"))
	if err != nil || !strings.Contains(string(got), `"code": 123`) {
		t.Errorf("123 as int: %q, %v (sops accepts it: the type tag is not authenticated)", got, err)
	}
}

// Every problem a Decrypt can report, on a file whose every value is the canary: each
// kind's error is the package's own, and none carries the canary.
func TestNoErrorCarriesAValue(t *testing.T) {
	id, k := ageKeyring(t)
	enc := encrypt(t, id, "s.yaml", "a: "+tagCanary+"\nb:\n    - "+tagCanary+"\n    - 5\nc_unencrypted: "+tagCanary+"\n")
	i := bytes.Index(enc, []byte("a: ENC[AES256_GCM,data:")) + len("a: ENC[AES256_GCM,data:")
	flipped := bytes.Clone(enc)
	flipped[i] ^= 1
	var wrong secrets.Keyring
	other, _ := age.GenerateX25519Identity()
	_ = wrong.AddAge([]byte(other.String()))
	cases := map[string]struct {
		ring *secrets.Keyring
		data []byte
		kind error
	}{
		"ciphertext":     {k, flipped, secrets.ErrTampered},
		"moved":          {k, append([]byte("z"), enc[1:]...), secrets.ErrTampered},
		"list item type": {k, retag(t, enc, "    - ENC", "int"), secrets.ErrTampered},
		"clear value":    {k, bytes.Replace(enc, []byte("c_unencrypted: "+tagCanary), []byte("c_unencrypted: x"+tagCanary), 1), secrets.ErrTampered},
		"mac":            {k, regexp.MustCompile(`mac: ENC\[[^\]]*\]`).ReplaceAll(enc, []byte("mac: ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]")), secrets.ErrTampered},
		"no mac":         {k, regexp.MustCompile(`mac: ENC\[[^\]]*\]`).ReplaceAll(enc, []byte(`mac: ""`)), secrets.ErrTampered},
		"wrong key":      {&wrong, enc, secrets.ErrNoKey},
		"plain":          {k, []byte("a: " + tagCanary + "\n"), secrets.ErrNotEncrypted},
		"unparsable":     {k, append([]byte("a: [\n"+tagCanary+"\n"), enc...), secrets.ErrNotEncrypted},
		"added clear":    {k, append([]byte("d: "+tagCanary+"\n"), enc...), secrets.ErrUnencrypted},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := c.ring.Decrypt(context.Background(), "s.yaml", c.data)
			var se *secrets.Error
			if !errors.Is(err, c.kind) || !errors.As(err, &se) {
				t.Fatalf("err = %v, want %v", err, c.kind)
			}
			assertNoLeak(t, "the error", err.Error())
		})
	}
	bad := map[string]string{"dotenv line": "A=1\n" + tagCanary + "\nsops_version=3\n", "json": `{"` + tagCanary}
	for name, data := range bad {
		for _, f := range []string{"s.env", "s.json", "s.ini", "s.yaml"} {
			_, err := k.Decrypt(context.Background(), f, []byte(data))
			if !errors.Is(err, secrets.ErrNotEncrypted) {
				t.Errorf("%s as %s: %v", name, f, err)
			}
			assertNoLeak(t, name+" as "+f, err.Error())
			_, err = secrets.Recipients(f, []byte(data))
			assertNoLeak(t, name+" as "+f, err.Error())
		}
	}
}

// Item 7 of issue 17. What sops itself does with empty values, with the real CLI: "" and
// null stay as they are, in the clear, and out of the MAC, as do empty lists and maps.
func TestSopsCLIEmptyValues(t *testing.T) {
	id, k := ageKeyring(t)
	enc := encrypt(t, id, "e.yaml", "token: \"\"\nreplicas: null\nhosts: []\ndb: {}\npassword: x\n")
	for _, want := range []string{"token: \"\"\n", "replicas: null\n", "hosts: []\n", "db: {}\n"} {
		if !bytes.Contains(enc, []byte(want)) {
			t.Errorf("sops did not leave %q in the clear:\n%s", want, enc)
		}
	}
	// Circle refuses each entry sops cannot vouch for, at its line; the empty map holds no
	// value and is accepted.
	_, err := k.Decrypt(context.Background(), "e.yaml", enc)
	var se *secrets.Error
	if !errors.As(err, &se) || !errors.Is(err, secrets.ErrUnencrypted) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, p := range se.Problems {
		got = append(got, fmt.Sprintf("%d:%d %s", p.Line, p.Column, p.Path))
	}
	if strings.Join(got, ", ") != "1:1 token, 2:1 replicas, 3:1 hosts" {
		t.Errorf("problems at %v", got)
	}
}

// Entries added to a sops-made file without its key. Those sops leaves out of its MAC
// (null, "", []) pass sops' own decrypt; Circle refuses all of them at file:line with the
// key path, even where the file's rules leave values in the clear, and even when the
// attacker also rewrites those rules (they are not authenticated either).
func TestAddedEntriesRefused(t *testing.T) {
	id, k := ageKeyring(t)
	yamlFile := encrypt(t, id, "prod.sops.yaml", "db:\n    password: "+tagCanary+"\nallowed:\n    - 10.0.0.1\n")
	jsonFile := encrypt(t, id, "prod.sops.json", "{\n\t\"db\": {\n\t\t\"password\": \""+tagCanary+"\"\n\t}\n}\n")
	envFile := encrypt(t, id, "prod.sops.env", "DB_PASSWORD="+tagCanary+"\n")
	insert := func(enc []byte, after, add string) []byte {
		i := bytes.Index(enc, []byte(after))
		if i < 0 {
			t.Fatalf("no %q in\n%s", after, enc)
		}
		i += len(after)
		return append(append(bytes.Clone(enc[:i]), add...), enc[i:]...)
	}
	cases := []struct {
		name, file string
		data       []byte
		sopsOK     bool // sops' own decrypt accepts it
		want       string
	}{
		{"null", "prod.sops.yaml", insert(yamlFile, "db:\n", "    replicas: null\n"), true, "prod.sops.yaml:2:5: db.replicas"},
		{"empty string", "prod.sops.yaml", insert(yamlFile, "db:\n", "    host: \"\"\n"), true, "prod.sops.yaml:2:5: db.host"},
		{"empty list", "prod.sops.yaml", insert(yamlFile, "db:\n", "    hosts: []\n"), true, "prod.sops.yaml:2:5: db.hosts"},
		{"clear by suffix", "prod.sops.yaml", insert(yamlFile, "db:\n", "    replicas_unencrypted: null\n"), true, "prod.sops.yaml:2:5: db.replicas_unencrypted"},
		{"clear by a rule the attacker wrote", "prod.sops.yaml",
			[]byte(strings.Replace(string(insert(yamlFile, "db:\n", "    replicas: null\n")), "unencrypted_suffix: _unencrypted", "unencrypted_regex: ^replicas$", 1)),
			true, "prod.sops.yaml:2:5: db.replicas"},
		{"plain value", "prod.sops.yaml", insert(yamlFile, "db:\n", "    port: 5432\n"), false, "prod.sops.yaml:2:5: db.port"},
		{"plain string", "prod.sops.yaml", insert(yamlFile, "db:\n", "    user: admin\n"), false, "prod.sops.yaml:2:5: db.user"},
		{"json null", "prod.sops.json", insert(jsonFile, "{\n", "\t\"replicas\": null,\n"), true, "prod.sops.json:2:2: replicas"},
		{"dotenv empty", "prod.sops.env", append([]byte("REPLICAS=\n"), envFile...), true, "prod.sops.env:1:1: REPLICAS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := k.Decrypt(context.Background(), c.file, c.data)
			if !errors.Is(err, secrets.ErrUnencrypted) || !strings.HasPrefix(err.Error(), c.want+": ") {
				t.Fatalf("err = %v, want %s: …", err, c.want)
			}
			assertNoLeak(t, "the error", err.Error())
			if c.sopsOK {
				_, stderr, err := sopsRun(t, []string{"SOPS_AGE_KEY=" + id.String()}, "decrypt", plainFile(t, c.file, string(c.data)))
				if err != nil {
					t.Errorf("sops' own decrypt refuses it too (the attack would not be real): %v\n%s", err, stderr)
				}
			}
		})
	}
}

// sops' rules for what is encrypted, applied by the real CLI (each of its creation rules)
// to a file with nested maps, lists and comments: Circle decrypts each to exactly what `sops
// decrypt` gives, so its reading of the rules and of the MAC is sops'.
func TestSopsRulesAgree(t *testing.T) {
	id, k := ageKeyring(t)
	plain := `# top comment
db:
    # the password
    password: s3cret
    port: 5432
    port_unencrypted: 5433
    user_plain: app
    tls: true
    ratio: 0.5
hosts:
    # first
    - a.example.com
    - name: b
      weight_unencrypted: 2
# keep: this one
public_key: ssh-ed25519 AAAA
# secret: next
private_key: very
when: 2024-01-02T03:04:05Z
`
	// Each rule as a .sops.yaml creation rule: the CLI has flags for some of them only.
	for _, rule := range []string{
		"",
		"unencrypted_suffix: _plain",
		"encrypted_suffix: _key",
		"unencrypted_regex: ^(port|tls)$",
		"encrypted_regex: ^(password|private_key|hosts)$",
		"unencrypted_comment_regex: keep",
		"encrypted_comment_regex: secret",
		"mac_only_encrypted: true",
		"mac_only_encrypted: true\n    encrypted_regex: ^password$",
	} {
		t.Run(rule, func(t *testing.T) {
			config := plainFile(t, "sops.yaml", "creation_rules:\n  - age: "+id.Recipient().String()+"\n    "+rule+"\n")
			enc := sopsCLI(t, nil, "--config", config, "encrypt", plainFile(t, "r.yaml", plain))
			if rule != "" && !bytes.Contains(enc, []byte(strings.SplitN(rule, ":", 2)[0])) {
				t.Fatalf("sops did not apply %q:\n%s", rule, enc)
			}
			want, stderr, err := sopsRun(t, []string{"SOPS_AGE_KEY=" + id.String()}, "decrypt", plainFile(t, "r.yaml", string(enc)))
			if err != nil {
				t.Fatalf("sops decrypt: %v\n%s", err, stderr)
			}
			got, err := k.Decrypt(context.Background(), "r.yaml", enc)
			if err != nil {
				t.Fatalf("%v\n%s", err, enc)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Circle:\n%s\nsops:\n%s", got, want)
			}
		})
	}
}

// vaultStub stands in for a Vault server on 127.0.0.1 and records every request.
type vaultStub struct {
	*httptest.Server
	mu     sync.Mutex
	tokens []string
}

func newVaultStub(t *testing.T) *vaultStub {
	v := &vaultStub{}
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		v.tokens = append(v.tokens, r.Header.Get("X-Vault-Token"))
		v.mu.Unlock()
		http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
	}))
	t.Cleanup(v.Close)
	return v
}

func (v *vaultStub) requests() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.tokens...)
}

// withVaultKey adds an hc_vault entry naming addr to a sops-made YAML file's metadata, as an
// attacker who can push would: no key is needed. sops tries Vault keys before age keys.
func withVaultKey(enc []byte, addr string) []byte {
	entry := "sops:\n    hc_vault:\n        - vault_address: " + addr + "\n          engine_path: sops\n          key_name: circle\n" +
		"          created_at: \"2025-01-01T00:00:00Z\"\n          enc: vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
	return bytes.Replace(enc, []byte("sops:\n"), []byte(entry), 1)
}

// Item 6 of issue 17. A file's metadata names a Vault server; the process holds a
// VAULT_TOKEN. With nothing allowed, the file is refused at the line of the entry and the
// server sees no request. Allowed, the same server is asked (with the token: this is the
// request the allow-list guards), refuses, and the file opens with its age key.
func TestRemoteKeySourceRefusedWithoutRequest(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "circle-test-vault-token")
	vault := newVaultStub(t)
	forwarded, undo := secrets.CountForwarded()
	defer undo()
	id, k := ageKeyring(t)
	enc := withVaultKey(encrypt(t, id, "prod.sops.yaml", "db:\n    password: "+tagCanary+"\n"), vault.URL)
	line := 1 + bytes.Count(enc[:bytes.Index(enc, []byte("vault_address:"))], []byte("\n"))

	_, err := k.Decrypt(context.Background(), "secrets/prod.sops.yaml", enc)
	want := fmt.Sprintf("secrets/prod.sops.yaml:%d:11: sops.hc_vault[0]: hc_vault key hc_vault:%s/v1/sops/keys/circle is not allowed", line, vault.URL)
	if !errors.Is(err, secrets.ErrKeySourceNotAllowed) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v\nwant %s…", err, want)
	}
	if n := len(vault.requests()); n != 0 || forwarded.Load() != 0 {
		t.Fatalf("the Vault stand-in got %d request(s), %d forwarded", n, forwarded.Load())
	}
	// Another key on the allowed server is another key.
	if err := k.AllowRemote("hc_vault:" + vault.URL + "/v1/sops/keys/other"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Decrypt(context.Background(), "secrets/prod.sops.yaml", enc); !errors.Is(err, secrets.ErrKeySourceNotAllowed) || len(vault.requests()) != 0 {
		t.Fatalf("another key of the same server: %v, %d requests", err, len(vault.requests()))
	}

	if err := k.AllowRemote("hc_vault:" + vault.URL + "/v1/sops/keys/circle"); err != nil {
		t.Fatal(err)
	}
	got, err := k.Decrypt(context.Background(), "secrets/prod.sops.yaml", enc)
	if err != nil || !strings.Contains(string(got), tagCanary) {
		t.Fatalf("allowed: %q, %v", got, err)
	}
	if reqs := vault.requests(); len(reqs) == 0 || reqs[0] != "circle-test-vault-token" || forwarded.Load() == 0 {
		t.Fatalf("allowed: the Vault stand-in got %q, %d forwarded", reqs, forwarded.Load())
	}
	// With no age key, the error says what the allowed server answered.
	var none secrets.Keyring
	_ = none.AllowRemote("hc_vault:" + vault.URL + "/v1/sops/keys/circle")
	if _, err := none.Decrypt(context.Background(), "secrets/prod.sops.yaml", enc); !errors.Is(err, secrets.ErrNoKey) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("no age key: %v", err)
	}
}

// Every remote key type, in every format's metadata and in key groups, is refused before
// a request, at the line of its entry.
func TestRemoteKeySourcesEveryType(t *testing.T) {
	forwarded, undo := secrets.CountForwarded()
	defer undo()
	id, k := ageKeyring(t)
	entries := map[string]string{
		"kms":      "arn: arn:aws:kms:eu-west-1:111122223333:key/abcd\n          role: arn:aws:iam::999999999999:role/attacker",
		"gcp_kms":  "resource_id: projects/p/locations/global/keyRings/r/cryptoKeys/k",
		"azure_kv": "vault_url: https://attacker.vault.azure.net\n          name: k\n          version: v1",
		"hc_vault": "vault_address: http://127.0.0.1:1\n          engine_path: sops\n          key_name: k",
		"hckms":    "key_id: cn-north-4:0f5c4a6e",
	}
	enc := encrypt(t, id, "s.yaml", "a: "+tagCanary+"\n")
	for typ, fields := range entries {
		t.Run(typ, func(t *testing.T) {
			entry := "sops:\n    " + typ + ":\n        - " + fields + "\n          created_at: \"2025-01-01T00:00:00Z\"\n          enc: AAAA\n"
			data := bytes.Replace(enc, []byte("sops:\n"), []byte(entry), 1)
			_, err := k.Decrypt(context.Background(), "s.yaml", data)
			if !errors.Is(err, secrets.ErrKeySourceNotAllowed) || !strings.HasPrefix(err.Error(), "s.yaml:4:11: sops."+typ+"[0]: "+typ+" key ") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	// Key groups (Shamir): the entry is under sops.key_groups.
	m := regexp.MustCompile(`(?s)sops:\n    age:\n(.*?)\n    lastmodified`).FindSubmatchIndex(enc)
	if m == nil {
		t.Fatalf("no age entry in\n%s", enc)
	}
	ageEntries := strings.ReplaceAll("\n"+string(enc[m[2]:m[3]]), "\n", "\n    ")
	grouped := string(enc[:m[0]]) + "sops:\n    key_groups:\n        - hc_vault:\n            - vault_address: http://127.0.0.1:1\n" +
		"              engine_path: sops\n              key_name: k\n              created_at: \"2025-01-01T00:00:00Z\"\n              enc: x\n" +
		"          age:" + ageEntries + "\n    lastmodified" + string(enc[m[1]:])
	got, err := k.Decrypt(context.Background(), "s.yaml", []byte(grouped))
	if !errors.Is(err, secrets.ErrKeySourceNotAllowed) || !strings.HasPrefix(err.Error(), "s.yaml:5:15: sops.key_groups[0].hc_vault[0]: ") {
		t.Errorf("key group: %q, %v\n%s", got, err, grouped)
	}
	// dotenv and INI flatten their metadata; the line is the entry's address field.
	env := encrypt(t, id, "s.env", "A="+tagCanary+"\n")
	env = append(env, "sops_hc_vault__list_0__map_vault_address=http://127.0.0.1:1\nsops_hc_vault__list_0__map_engine_path=sops\nsops_hc_vault__list_0__map_key_name=k\nsops_hc_vault__list_0__map_created_at=2025-01-01T00:00:00Z\nsops_hc_vault__list_0__map_enc=x\n"...)
	line := bytes.Count(env[:bytes.Index(env, []byte("sops_hc_vault__list_0__map_vault_address"))], []byte("\n")) + 1
	if _, err := k.Decrypt(context.Background(), "s.env", env); !errors.Is(err, secrets.ErrKeySourceNotAllowed) || !strings.HasPrefix(err.Error(), fmt.Sprintf("s.env:%d:1: sops.hc_vault[0]: ", line)) {
		t.Errorf("dotenv: %v", err)
	}
	ini := encrypt(t, id, "s.ini", "[a]\nb = "+tagCanary+"\n")
	ini = bytes.Replace(ini, []byte("[sops]\n"), []byte("[sops]\nhc_vault__list_0__map_vault_address = http://127.0.0.1:1\nhc_vault__list_0__map_engine_path = sops\nhc_vault__list_0__map_key_name = k\nhc_vault__list_0__map_created_at = 2025-01-01T00:00:00Z\nhc_vault__list_0__map_enc = x\n"), 1)
	line = bytes.Count(ini[:bytes.Index(ini, []byte("hc_vault__list_0__map_vault_address"))], []byte("\n")) + 1
	if _, err := k.Decrypt(context.Background(), "s.ini", ini); !errors.Is(err, secrets.ErrKeySourceNotAllowed) || !strings.HasPrefix(err.Error(), fmt.Sprintf("s.ini:%d:1: sops.hc_vault[0]: ", line)) {
		t.Errorf("INI: %v", err)
	}
	if forwarded.Load() != 0 {
		t.Fatalf("%d request(s) forwarded", forwarded.Load())
	}
}

// sops' YAML store expands aliases as it loads, before a key is needed: a few lines of
// nested aliases would be billions of values. Circle refuses such a file first.
func TestYAMLAliasBombRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("sops:\n    age:\n        - recipient: age1x\n          enc: x\n    lastmodified: \"2025-01-01T00:00:00Z\"\n    mac: x\n    version: 3.13.3\n")
	var k secrets.Keyring
	_, err := k.Decrypt(context.Background(), "bomb.yaml", []byte(b.String()))
	if !errors.Is(err, secrets.ErrNotEncrypted) || !strings.Contains(err.Error(), "aliases") {
		t.Fatalf("err = %v", err)
	}
	if secrets.IsEncrypted("bomb.yaml", []byte(b.String())) {
		t.Error("IsEncrypted = true")
	}
}

// A Keyring is used by every environment's build at once, while the daemon may add to it:
// run under -race.
func TestKeyringConcurrentUse(t *testing.T) {
	id, k := ageKeyring(t)
	enc := encrypt(t, id, "c.yaml", "a: "+tagCanary+"\n")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if out, err := k.Decrypt(context.Background(), "c.yaml", enc); err != nil || !bytes.Contains(out, []byte(tagCanary)) {
				t.Errorf("Decrypt: %q, %v", out, err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := k.AllowRemote(fmt.Sprintf("hckms:region:key-%d", i)); err != nil {
				t.Error(err)
			}
			_ = k.RemoteAllowed()
		}()
	}
	wg.Wait()
	if n := len(k.RemoteAllowed()); n != 8 {
		t.Errorf("%d allowed, want 8", n)
	}
}
