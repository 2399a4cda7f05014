package signature_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/circlecore/circle/sources/signature"
)

const payload = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\nmessage\n"

// sshSign signs payload with a fresh key using the real ssh-keygen, as git does with
// gpg.format=ssh, and returns the armored signature and the authorized_keys line.
func sshSign(t *testing.T, namespace string) (sig, pub string) {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen (Debian's openssh-client; make testenv installs it): %v %s", err, out)
	}
	msg := filepath.Join(dir, "msg")
	if err := os.WriteFile(msg, []byte(payload), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", namespace, "-f", key, msg).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v %s", err, out)
	}
	s, _ := os.ReadFile(msg + ".sig")
	p, _ := os.ReadFile(key + ".pub")
	return string(s), string(p)
}

// pgpSign signs payload with a fresh key using the real gpg and returns the armored
// detached signature and public key.
func pgpSign(t *testing.T) (sig, pub string) {
	t.Helper()
	home, err := os.MkdirTemp("", "gpg") // short: gpg-agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	gpg := func(stdin string, args ...string) string {
		cmd := exec.Command("gpg", append([]string{"--batch", "--homedir", home}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v (Debian's gnupg; make testenv installs it): %v", args, err)
		}
		return string(out)
	}
	gpg("", "--passphrase", "", "--quick-generate-key", "signer <s@circle.invalid>", "ed25519", "sign", "never")
	return gpg(payload, "--armor", "--detach-sign"), gpg("", "--armor", "--export", "s@circle.invalid")
}

func keys(t *testing.T, data ...string) *signature.Keys {
	t.Helper()
	k := &signature.Keys{}
	for _, d := range data {
		if err := k.Add([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

func refused(t *testing.T, k *signature.Keys, o *signature.Object, want string) {
	t.Helper()
	err := k.Verify(o)
	if !errors.Is(err, signature.ErrSignature) || !strings.Contains(err.Error(), want) {
		t.Errorf("Verify = %v, want a refusal mentioning %q", err, want)
	}
}

func TestSSH(t *testing.T) {
	sig, pub := sshSign(t, "git")
	_, other := sshSign(t, "git")
	o := &signature.Object{Name: "commit abc", Payload: []byte(payload), Signature: sig}
	if err := keys(t, "# team keys\n\n"+other+pub).Verify(o); err != nil {
		t.Fatalf("a good signature was refused: %v", err)
	}
	refused(t, keys(t, other), o, "commit abc: signature check failed: signed by untrusted key SHA256:")
	tampered := *o
	tampered.Payload = []byte(strings.Replace(payload, "message", "massage", 1))
	refused(t, keys(t, pub), &tampered, "does not match the content")

	fileSig, filePub := sshSign(t, "file")
	refused(t, keys(t, filePub), &signature.Object{Name: "commit abc", Payload: []byte(payload), Signature: fileSig}, `namespace "file"`)
	refused(t, keys(t, pub), &signature.Object{Name: "c", Signature: "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"}, "malformed SSH signature")
}

func TestPGP(t *testing.T) {
	sig, pub := pgpSign(t)
	o := &signature.Object{Name: "tag v1", Payload: []byte(payload), Signature: sig}
	if err := keys(t, pub).Verify(o); err != nil {
		t.Fatalf("a good signature was refused: %v", err)
	}
	_, sshPub := sshSign(t, "git")
	refused(t, keys(t, sshPub), o, "no trusted OpenPGP keys")
	tampered := *o
	tampered.Payload = []byte("other")
	refused(t, keys(t, pub), &tampered, "tag v1: signature check failed")
}

func TestUnsignedAndKeys(t *testing.T) {
	_, pub := sshSign(t, "git")
	k := keys(t, pub)
	refused(t, k, &signature.Object{Name: "commit abc", Payload: []byte(payload)}, "commit abc: signature check failed: not signed")
	refused(t, k, nil, "not a Git revision")
	if (&signature.Object{}).Signed() || !(&signature.Object{Signature: "x"}).Signed() {
		t.Error("Signed misreads an object")
	}
	var none *signature.Keys
	if none.Len() != 0 || k.Len() != 1 || none.Merge(k).Len() != 1 || k.Merge(k).Len() != 2 {
		t.Error("Len/Merge")
	}
	if err := (&signature.Keys{}).Add([]byte("ssh-ed25519 notbase64")); err == nil {
		t.Error("a malformed SSH key was accepted")
	}
	if err := (&signature.Keys{}).Add([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----\n")); err == nil {
		t.Error("a malformed OpenPGP key was accepted")
	}
}
