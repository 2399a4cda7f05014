package secrets_test

import (
	"strings"
	"testing"

	"filippo.io/age"
	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/secrets"
)

// Without a key, a SOPS file gives its structure: each encrypted value as a stand-in of its
// type tag, the values its rules leave in the clear as they are, and no secret.
func TestStandIns(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	const canary = "standins-canary-secret"
	for _, name := range []string{"prod.sops.yaml", "prod.sops.json"} {
		plain := "db:\n  password: " + canary + "\n  port: 6543\n  ratio: 1.5\n  tls: true\n  hosts: [a, b]\nnote_unencrypted: public\n"
		if strings.HasSuffix(name, ".json") {
			plain = `{"db": {"password": "` + canary + `", "port": 6543, "ratio": 1.5, "tls": true, "hosts": ["a", "b"]}, "note_unencrypted": "public"}`
		}
		enc := encrypt(t, id, name, plain)
		out, err := secrets.StandIns(name, enc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(string(out), canary) {
			t.Fatalf("%s: the stand-ins hold the secret", name)
		}
		var m map[string]any
		if err := yaml.Unmarshal(out, &m); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		db := m["db"].(map[string]any)
		if db["password"] != "" || db["port"] != float64(0) || db["ratio"] != 0.5 || db["tls"] != false || m["note_unencrypted"] != "public" {
			t.Errorf("%s: stand-ins %v", name, m)
		}
		if hosts, _ := db["hosts"].([]any); len(hosts) != 2 || hosts[0] != "" {
			t.Errorf("%s: a list's stand-ins %v", name, db["hosts"])
		}
	}
	if _, err := secrets.StandIns("x.sops.yaml", []byte("a: 1\n")); err == nil {
		t.Error("a file that is not SOPS: no error")
	}
	// An entry its rules say is encrypted but is not is refused, as Decrypt refuses it.
	enc := encrypt(t, id, "p.sops.yaml", "a: secret-a\n")
	tampered := strings.Replace(string(enc), "a: ENC[", "b: plain\na: ENC[", 1)
	if _, err := secrets.StandIns("p.sops.yaml", []byte(tampered)); err == nil {
		t.Error("an entry in the clear: no error")
	}
}
