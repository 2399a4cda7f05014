package secrets_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"filippo.io/age"
	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/testenv"
)

// A file EncryptYAML writes holds no plaintext value, opens with Circle's keyring and with
// the sops CLI to the same document, and not with another key.
func TestEncryptYAML(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("db:\n  password: s3cr3t-canary-value\n  port: 5432\n")
	enc, err := secrets.EncryptYAML(plain, id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, []byte("s3cr3t-canary-value")) || !bytes.Contains(enc, []byte("ENC[AES256_GCM")) || !bytes.Contains(enc, []byte(id.Recipient().String())) {
		t.Fatalf("encrypted file:\n%s", enc)
	}
	var ring secrets.Keyring
	if err := ring.AddAge([]byte(id.String())); err != nil {
		t.Fatal(err)
	}
	got, err := ring.Decrypt(context.Background(), "secrets/dev.sops.yaml", enc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "s3cr3t-canary-value") || !strings.Contains(string(got), "5432") {
		t.Errorf("decrypted by Circle: %s", got)
	}

	// The sops CLI, given the key, reads the same values.
	bin, err := testenv.Tool(testenv.ToolSOPS)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "age.key")
	os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "dev.sops.yaml"), enc, 0o600)
	cmd := exec.Command(bin, "decrypt", "dev.sops.yaml")
	cmd.Dir, cmd.Env = dir, []string{"HOME=" + dir, "SOPS_AGE_KEY_FILE=" + keyFile}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sops decrypt: %v\n%s", err, out)
	}
	var fromCLI, want map[string]any
	if err := yaml.Unmarshal(out, &fromCLI); err != nil {
		t.Fatal(err)
	}
	yaml.Unmarshal(plain, &want)
	if !reflect.DeepEqual(fromCLI, want) {
		t.Errorf("sops decrypt gave\n%s\nwant\n%s", out, plain)
	}

	other, _ := age.GenerateX25519Identity()
	var wrong secrets.Keyring
	wrong.AddAge([]byte(other.String()))
	if _, err := wrong.Decrypt(context.Background(), "secrets/dev.sops.yaml", enc); err == nil {
		t.Error("another key opened the file")
	}
	if _, err := secrets.EncryptYAML(plain); err == nil {
		t.Error("no recipient: no error")
	}
	if _, err := secrets.EncryptYAML(plain, "not-a-recipient"); err == nil {
		t.Error("a bad recipient: no error")
	}
}
