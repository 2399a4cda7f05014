package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/circlecore/circle/testenv"
)

// A keyring sealed under an AWS KMS key (local-kms), through the commands an operator
// runs: init --kms, put/get, rotate (sealed again under the same key), rewrap, retire;
// then the KMS key disabled: loading fails naming the key, and rotate rewrites nothing.
func TestStorage_KMSKeyring(t *testing.T) {
	k := testenv.StartKMS(t)
	keyID := k.NewKey(t)
	ring := filepath.Join(t.TempDir(), "keyring.json")

	// A key that does not exist: init fails naming it and writes no file.
	missing := "00000000-0000-4000-8000-000000000000"
	if code, _, errOut := run(t, "storage", "keyring", "init", ring, "--kms", k.URL(missing)); code == exitOK ||
		!strings.Contains(errOut, "awskms://"+missing) || !strings.Contains(errOut, "NotFoundException") {
		t.Errorf("init under a missing key: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(ring); !os.IsNotExist(err) {
		t.Fatalf("a failed init left %s: %v", ring, err)
	}
	if code, _, errOut := run(t, "storage", "keyring", "init", ring, "--kms", "base64key://c2VjcmV0"); code == exitOK || !strings.Contains(errOut, `scheme "base64key"`) {
		t.Errorf("init with a key in the URL: exit %d\n%s", code, errOut)
	}

	code, out, errOut := run(t, "storage", "keyring", "init", ring, "--kms", k.URL(keyID))
	if code != exitOK || !strings.Contains(out, "primary") {
		t.Fatalf("init --kms: exit %d\n%s%s", code, out, errOut)
	}
	file := readSealed(t, ring, k.URL(keyID))

	dir := t.TempDir()
	url := "file://" + dir
	if code, out, errOut := runIn(t, "password: "+canary+"\n", "storage", "put", url, "secret.yaml", "--keyring", ring); code != exitOK {
		t.Fatalf("put: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := run(t, "storage", "get", url, "secret.yaml", "--keyring", ring); code != exitOK || out != "password: "+canary+"\n" {
		t.Errorf("get: exit %d, %q", code, out)
	}

	// Rotate: sealed again under the same key (a new ciphertext), two keys; rewrap; retire.
	if code, out, errOut := run(t, "storage", "keyring", "rotate", ring); code != exitOK || !strings.Contains(out, "rotated") {
		t.Fatalf("rotate: exit %d\n%s%s", code, out, errOut)
	}
	rotated := readSealed(t, ring, k.URL(keyID))
	if bytes.Equal(rotated["encrypted_keyset"], file["encrypted_keyset"]) {
		t.Error("rotate did not rewrite the sealed keyset")
	}
	if code, out, _ := run(t, "storage", "rewrap", url, "", "--keyring", ring); code != exitOK || !strings.Contains(out, "(rewrapped)") {
		t.Fatalf("rewrap: exit %d\n%s", code, out)
	}
	var shown struct {
		Keys []struct {
			ID      uint32
			Primary bool
		}
	}
	_, out, _ = run(t, "storage", "keyring", "show", ring, "-o", "json")
	if err := json.Unmarshal([]byte(out), &shown); err != nil || len(shown.Keys) != 2 {
		t.Fatalf("show: %v\n%s", err, out)
	}
	for _, key := range shown.Keys {
		if !key.Primary {
			if code, out, errOut := run(t, "storage", "keyring", "retire", ring, jsonNumber(key.ID)); code != exitOK || !strings.Contains(out, "retired") {
				t.Fatalf("retire: exit %d\n%s%s", code, out, errOut)
			}
		}
	}
	readSealed(t, ring, k.URL(keyID))
	if code, out, _ := run(t, "storage", "get", url, "secret.yaml", "--keyring", ring); code != exitOK || out != "password: "+canary+"\n" {
		t.Errorf("get after rotate, rewrap, retire: exit %d, %q", code, out)
	}

	// The KMS key disabled: every load fails naming the key; rotate leaves the file alone.
	before, err := os.ReadFile(ring)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client().DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"storage", "get", url, "secret.yaml", "--keyring", ring},
		{"storage", "keyring", "rotate", ring},
		{"storage", "keyring", "show", ring},
	} {
		code, out, errOut := run(t, args...)
		if code == exitOK || !strings.Contains(errOut, "KMS key awskms://"+keyID+":") || !strings.Contains(errOut, "is disabled") {
			t.Errorf("%s with the KMS key disabled: exit %d\n%s%s", strings.Join(args[:3], " "), code, out, errOut)
		}
	}
	if after, _ := os.ReadFile(ring); !bytes.Equal(before, after) {
		t.Error("the keyring file changed while its KMS key was disabled")
	}
}

// readSealed reads a KMS-sealed keyring file and checks its shape: the KMS URL, a sealed
// keyset, no cleartext one, mode 0600.
func readSealed(t *testing.T, path, keyURL string) map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("keyring file mode: %v", err)
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var got string
	json.Unmarshal(f["kms"], &got)
	if _, clear := f["keyset"]; clear || got != keyURL || len(f["encrypted_keyset"]) == 0 {
		t.Fatalf("sealed keyring file:\n%s", b)
	}
	return f
}
