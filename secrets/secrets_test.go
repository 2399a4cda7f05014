package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/testenv"
)

const realworld = "../../shared/realworld/sops"

func needRealworld(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(realworld); err != nil {
		t.Skipf("realworld test data not found at %s (it is beside the repository in CI): %v", realworld, err)
	}
	return realworld
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func keyring(t *testing.T, keyFiles ...string) *secrets.Keyring {
	t.Helper()
	var k secrets.Keyring
	for _, f := range keyFiles {
		if err := k.AddFile(f); err != nil {
			t.Fatal(err)
		}
	}
	return &k
}

// The sops project's own encrypted files, opened with its test PGP keys, give what `sops -d`
// gave for them byte for byte.
func TestDecryptSopsProjectFiles(t *testing.T) {
	root := needRealworld(t)
	src := filepath.Join(root, "getsops-sops")
	want := filepath.Join(root, "EXPECTED-decrypted", "getsops-sops")
	k := keyring(t, filepath.Join(src, "pgp", "sops_functional_tests_key.asc"))
	files := []string{
		"example.yaml", "example.ini", "example.txt",
		"examples/all_in_one/config/secret.enc.json",
		"examples/per_file/config.enc/static_github.json",
		"functional-tests/res/format.enc.yaml", "functional-tests/res/format.enc.json",
		"functional-tests/res/format.enc.ini", "functional-tests/res/format.enc.env",
		"functional-tests/res/format-2.enc.ini", "functional-tests/res/multiple_keys.yaml",
		"functional-tests/res/comments.enc.yaml",
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			got, err := k.Decrypt(context.Background(), f, readFile(t, filepath.Join(src, f)))
			if err != nil {
				t.Fatal(err)
			}
			if exp := readFile(t, filepath.Join(want, f)); !bytes.Equal(got, exp) {
				t.Errorf("decrypted %s differs from sops -d:\n got: %q\nwant: %q", f, got, exp)
			}
		})
	}
	// example.json has "anEmptyValue": "", which sops leaves in the clear and out of its
	// MAC: one that could have been added without the key. Circle refuses it at its line.
	_, err := k.Decrypt(context.Background(), "example.json", readFile(t, filepath.Join(src, "example.json")))
	if !errors.Is(err, secrets.ErrUnencrypted) || err.Error() != "example.json:21:2: anEmptyValue: "+msgEmpty {
		t.Errorf("example.json: %v", err)
	}
}

// msgEmpty is the package's message for a null or empty entry.
const msgEmpty = "null or empty value: sops neither encrypts nor authenticates it (its MAC does not cover it), " +
	"so it may have been added after encryption without the key; remove it or give it a value"

// no_mac.yaml has its MAC removed: sops refuses it without --ignore-mac, and so does Circle.
func TestDecryptRefusesFileWithoutMAC(t *testing.T) {
	root := needRealworld(t)
	src := filepath.Join(root, "getsops-sops")
	k := keyring(t, filepath.Join(src, "pgp", "sops_functional_tests_key.asc"))
	_, err := k.Decrypt(context.Background(), "no_mac.yaml", readFile(t, filepath.Join(src, "functional-tests/res/no_mac.yaml")))
	if !errors.Is(err, secrets.ErrTampered) {
		t.Fatalf("err = %v, want ErrTampered", err)
	}
	if !strings.Contains(err.Error(), "no_mac.yaml") {
		t.Errorf("error does not name the file: %v", err)
	}
}

// Flux's test tree: age-encrypted Secrets, dotenv and binary stores, and PGP.
func TestDecryptFluxFiles(t *testing.T) {
	root := needRealworld(t)
	src := filepath.Join(root, "fluxcd-kustomize-controller/internal/controller/testdata/sops")
	want := filepath.Join(root, "EXPECTED-decrypted/fluxcd-kustomize-controller/internal/controller/testdata/sops")
	// Several keys in one keyring: each file finds the one that opens it.
	k := keyring(t, filepath.Join(src, "keys/age.txt"), filepath.Join(src, "keys/age-global.txt"), filepath.Join(src, "keys/pgp.asc"))
	for _, f := range []string{"algorithms/age.yaml", "algorithms/pgp.yaml", "envs/env.env", "files/file.txt", "patches/merge1.yaml", "patches/merge2.yaml", "global/secret.yaml"} {
		t.Run(f, func(t *testing.T) {
			got, err := k.Decrypt(context.Background(), f, readFile(t, filepath.Join(src, f)))
			if err != nil {
				t.Fatal(err)
			}
			if exp := readFile(t, filepath.Join(want, f)); !bytes.Equal(got, exp) {
				t.Errorf("decrypted %s differs from sops -d:\n got: %q\nwant: %q", f, got, exp)
			}
		})
	}
	// sops 3.13 reads post-quantum age recipients, which the sops that made the expected
	// files could not: the value is the literal the file was made from.
	pq := keyring(t, filepath.Join(src, "keys/age-pq.txt"))
	got, err := pq.Decrypt(context.Background(), "age-pq.yaml", readFile(t, filepath.Join(src, "algorithms/age-pq.yaml")))
	if err != nil {
		t.Fatalf("post-quantum age: %v", err)
	}
	if !bytes.Contains(got, []byte("stringData:")) {
		t.Errorf("post-quantum age plaintext has no stringData: %q", got)
	}
}

// A keyring without the right key names the file and its recipients, and no plaintext.
func TestDecryptWrongKey(t *testing.T) {
	root := needRealworld(t)
	src := filepath.Join(root, "fluxcd-kustomize-controller/internal/controller/testdata/sops")
	k := keyring(t, filepath.Join(src, "keys/age-global.txt"))
	_, err := k.Decrypt(context.Background(), "algorithms/age.yaml", readFile(t, filepath.Join(src, "algorithms/age.yaml")))
	if !errors.Is(err, secrets.ErrNoKey) {
		t.Fatalf("err = %v, want ErrNoKey", err)
	}
	for _, want := range []string{"algorithms/age.yaml", "age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// An empty keyring says the same.
	var empty secrets.Keyring
	if _, err := empty.Decrypt(context.Background(), "pgp.yaml", readFile(t, filepath.Join(src, "algorithms/pgp.yaml"))); !errors.Is(err, secrets.ErrNoKey) || !strings.Contains(err.Error(), "35C1A64CD7FC0AB6EB66756B2445463C3234ECE1") {
		t.Fatalf("empty keyring: %v", err)
	}
}

// sopsCLI runs the real sops binary with an environment of its own.
func sopsCLI(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	bin, err := testenv.Tool(testenv.ToolSOPS)
	if err != nil {
		t.Fatal(err) // make testenv installs it; a missing tool fails, never skips
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sops %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

const canary = "canary-7f3a9c1e-plaintext"

func plainFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Files encrypted by the sops CLI with age, in every store, decrypt; tampering and a wrong
// key are refused, and no error carries the plaintext.
func TestSopsCLIAge(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	var k secrets.Keyring
	if err := k.AddAge([]byte("# created for a test\n" + other.String() + "\n" + id.String() + "\n")); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"prod.sops.yaml": "db:\n    password: " + canary + "\n    port: 5432\n",
		"prod.sops.json": "{\n\t\"db\": {\n\t\t\"password\": \"" + canary + "\"\n\t}\n}\n",
		"prod.sops.env":  "DB_PASSWORD=" + canary + "\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			enc := sopsCLI(t, nil, "encrypt", "--age", id.Recipient().String(), plainFile(t, name, content))
			if bytes.Contains(enc, []byte(canary)) {
				t.Fatal("sops left the canary in plaintext")
			}
			if !secrets.IsEncrypted(name, enc) {
				t.Error("IsEncrypted = false for a sops file")
			}
			got, err := k.Decrypt(context.Background(), name, enc)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != content {
				t.Errorf("plaintext = %q, want %q", got, content)
			}
		})
	}

	enc := sopsCLI(t, nil, "encrypt", "--age", id.Recipient().String(), plainFile(t, "s.yaml", cases["prod.sops.yaml"]))
	t.Run("tampered value", func(t *testing.T) {
		// Flip one byte of the password's ciphertext.
		i := bytes.Index(enc, []byte("password: ENC[AES256_GCM,data:")) + len("password: ENC[AES256_GCM,data:")
		bad := bytes.Clone(enc)
		bad[i] ^= 'A' ^ 'B'
		if bad[i] == enc[i] {
			bad[i] = 'A'
		}
		_, err := k.Decrypt(context.Background(), "secrets/prod.sops.yaml", bad)
		if !errors.Is(err, secrets.ErrTampered) {
			t.Fatalf("err = %v, want ErrTampered", err)
		}
		assertClean(t, err)
	})
	t.Run("added plaintext value", func(t *testing.T) {
		// A value in the clear where the file's rules say values are encrypted: refused
		// before any key is asked for, at its line.
		bad := append(bytes.Replace(enc, []byte("db:\n"), []byte("db:\n    extra: hello\n"), 1), '\n')
		_, err := k.Decrypt(context.Background(), "secrets/prod.sops.yaml", bad)
		if !errors.Is(err, secrets.ErrUnencrypted) || !strings.HasPrefix(err.Error(), "secrets/prod.sops.yaml:2:5: db.extra: ") {
			t.Fatalf("err = %v, want ErrUnencrypted at db.extra", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		var wrong secrets.Keyring
		if err := wrong.AddAge([]byte(other.String())); err != nil {
			t.Fatal(err)
		}
		_, err := wrong.Decrypt(context.Background(), "secrets/prod.sops.yaml", enc)
		if !errors.Is(err, secrets.ErrNoKey) || !strings.Contains(err.Error(), id.Recipient().String()) || !strings.Contains(err.Error(), "secrets/prod.sops.yaml") {
			t.Fatalf("err = %v, want ErrNoKey naming the file and %s", err, id.Recipient())
		}
		assertClean(t, err)
	})
	t.Run("recipients", func(t *testing.T) {
		r, err := secrets.Recipients("s.yaml", enc)
		if err != nil || len(r) != 1 || r[0] != "age "+id.Recipient().String() {
			t.Fatalf("Recipients = %v, %v", r, err)
		}
	})
}

func assertClean(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Fatalf("error carries the plaintext: %v", err)
	}
}

// A file encrypted by the sops CLI for a PGP key (imported into a throw-away GnuPG home for
// the CLI only) opens with that key in memory: no gpg, no GNUPGHOME for Circle.
func TestSopsCLIPGP(t *testing.T) {
	root := needRealworld(t)
	keyFile := filepath.Join(root, "fluxcd-kustomize-controller/internal/controller/testdata/sops/keys/pgp.asc")
	gnupg := t.TempDir()
	imp := exec.Command("gpg", "--batch", "--import", keyFile)
	imp.Env = []string{"GNUPGHOME=" + gnupg, "PATH=" + os.Getenv("PATH")}
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("gpg --import (Debian's gnupg; make testenv installs it): %v\n%s", err, out)
	}
	content := "api:\n    token: " + canary + "\n"
	enc := sopsCLI(t, []string{"GNUPGHOME=" + gnupg}, "encrypt", "--pgp", "35C1A64CD7FC0AB6EB66756B2445463C3234ECE1", plainFile(t, "t.yaml", content))
	k := keyring(t, keyFile)
	got, err := k.Decrypt(context.Background(), "t.yaml", enc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Fatalf("plaintext = %q", got)
	}
}

func TestKeyringInputs(t *testing.T) {
	var k secrets.Keyring
	if err := k.AddAge([]byte("AGE-SECRET-KEY-1NOTAKEY")); err == nil {
		t.Error("AddAge accepted a malformed identity")
	}
	if err := k.AddAge([]byte("# only a comment\n")); err == nil {
		t.Error("AddAge accepted a file with no identity")
	}
	if err := k.AddPGP([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnope\n-----END PGP PUBLIC KEY BLOCK-----\n")); err == nil {
		t.Error("AddPGP accepted garbage")
	}
	if err := k.AddFile(filepath.Join(t.TempDir(), "missing.agekey")); err == nil {
		t.Error("AddFile accepted a missing file")
	}
	id, _ := age.GenerateX25519Identity()
	if err := k.AddSecretData(map[string][]byte{"identity.agekey": []byte(id.String()), "README": []byte("ignored")}); err != nil {
		t.Fatal(err)
	}
	if k.Len() != 1 {
		t.Errorf("Len = %d, want 1", k.Len())
	}
	if err := k.AddSecretData(map[string][]byte{"bad.asc": []byte("x")}); err == nil || !strings.Contains(err.Error(), "bad.asc") {
		t.Errorf("AddSecretData with a bad key: %v", err)
	}
	if secrets.IsEncrypted("plain.yaml", []byte("a: 1\n")) {
		t.Error("IsEncrypted = true for plain YAML")
	}
	if _, err := k.Decrypt(context.Background(), "plain.yaml", []byte("a: 1\n")); !errors.Is(err, secrets.ErrNotEncrypted) {
		t.Errorf("Decrypt(plain) = %v, want ErrNotEncrypted", err)
	}
	if _, err := secrets.Recipients("plain.yaml", []byte("a: 1\n")); !errors.Is(err, secrets.ErrNotEncrypted) {
		t.Errorf("Recipients(plain) = %v", err)
	}
}

// A public key alone cannot decrypt, and a passphrase-protected secret key cannot be used
// unattended: both are refused when added.
func TestKeyringRefusesUnusablePGP(t *testing.T) {
	home := t.TempDir()
	gpg := func(stdin string, args ...string) []byte {
		cmd := exec.Command("gpg", append([]string{"--batch", "--pinentry-mode", "loopback"}, args...)...)
		cmd.Env = []string{"GNUPGHOME=" + home, "PATH=" + os.Getenv("PATH")}
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v (Debian's gnupg; make testenv installs it): %v", args, err)
		}
		return out
	}
	gpg("", "--passphrase", "pw", "--quick-gen-key", "locked@test", "ed25519", "default", "never")
	pub := gpg("", "--armor", "--export", "locked@test")
	sec := gpg("", "--passphrase", "pw", "--armor", "--export-secret-keys", "locked@test")
	var k secrets.Keyring
	if err := k.AddPGP(pub); err == nil || !strings.Contains(err.Error(), "no secret key") {
		t.Errorf("public key: %v", err)
	}
	if err := k.AddPGP(sec); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("locked key: %v", err)
	}
}
