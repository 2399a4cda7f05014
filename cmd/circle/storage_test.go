package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/testenv"
)

// runIn is run with stdin.
func runIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := executeIn(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// newKeyringFile makes a storage keyring with `circle storage keyring init`, as an operator
// does before a daemon's first start: serve refuses a --storage-keyring that does not exist.
func newKeyringFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keyring.json")
	var out, errOut bytes.Buffer
	if code := execute([]string{"storage", "keyring", "init", p}, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "primary") {
		t.Fatalf("keyring init: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	return p
}

// A --storage-keyring that names no file stops the daemon before it starts, naming the
// file and the command that makes one; serve never makes a key itself, so a mistyped path
// cannot start publishing under a key nobody keeps, after which old builds do not open.
func TestServe_MissingStorageKeyring(t *testing.T) {
	ring := filepath.Join(t.TempDir(), "keyring.json")
	out := filepath.Join(t.TempDir(), "published")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("keys:\n  storage_keyring: "+ring+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, how := range [][]string{
		{"--storage-keyring", ring},
		{"--config", cfg}, // as deploy/ sets it
	} {
		// A daemon that starts anyway runs until the deadline, and fails the test then.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var stderr bytes.Buffer
		cmd := newRootCmd(&bytes.Buffer{}, &stderr)
		cmd.SetArgs(append([]string{"serve", "--source", examplesDir, "--key-file", exampleKey, "--publish", "file://" + out, "--listen", ""}, how...))
		err := cmd.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), ring+" does not exist") || !strings.Contains(err.Error(), "circle storage keyring init") {
			t.Errorf("serve %s with no keyring file: %v\n%s", how[0], err, stderr.String())
		}
		if _, err := os.Stat(ring); !os.IsNotExist(err) {
			t.Fatalf("serve %s made %s: %v", how[0], ring, err)
		}
		if _, err := os.Stat(filepath.Join(out, "status.json")); !os.IsNotExist(err) {
			t.Errorf("serve %s ran without its keyring: %v", how[0], err)
		}
	}
}

func TestStorage_PutGetStatLs(t *testing.T) {
	ring := newKeyringFile(t)
	if st, err := os.Stat(ring); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("keyring file mode: %v %v", st.Mode(), err)
	}
	if code, _, errOut := run(t, "storage", "keyring", "init", ring); code != exitUsage || !strings.Contains(errOut, "exists") {
		t.Errorf("init over an existing keyring: exit %d, %q", code, errOut)
	}
	dir := t.TempDir()
	url := "file://" + dir
	code, out, errOut := runIn(t, "password: "+canary+"\n", "storage", "put", url, "env/prod/secret.yaml", "--keyring", ring,
		"--content-type", "application/yaml", "--revision", "abc123", "--env", "prod")
	if code != exitOK || !strings.Contains(out, "sha256:") || !strings.Contains(out, "tink-aes256-gcm-hkdf-64k") {
		t.Fatalf("put: exit %d\n%s%s", code, out, errOut)
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if b, _ := os.ReadFile(p); err == nil && !d.IsDir() && bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s holds the plaintext", p)
		}
		return nil
	})
	code, out, _ = run(t, "storage", "get", url, "env/prod/secret.yaml", "--keyring", ring)
	if code != exitOK || out != "password: "+canary+"\n" {
		t.Errorf("get: exit %d, %q", code, out)
	}
	dst := filepath.Join(t.TempDir(), "out.yaml")
	if code, _, errOut := run(t, "storage", "get", url, "env/prod/secret.yaml", dst, "--keyring", ring); code != exitOK {
		t.Errorf("get to a file: exit %d %s", code, errOut)
	}
	if b, _ := os.ReadFile(dst); string(b) != "password: "+canary+"\n" {
		t.Errorf("file = %q", b)
	}
	code, out, _ = run(t, "storage", "stat", url, "env/prod/secret.yaml", "-o", "json")
	var info map[string]any
	if err := json.Unmarshal([]byte(out), &info); err != nil || code != exitOK {
		t.Fatalf("stat -o json: exit %d %v\n%s", code, err, out)
	}
	if info["revision"] != "abc123" || info["env"] != "prod" || info["contentType"] != "application/yaml" || info["size"] != float64(len(canary)+11) {
		t.Errorf("stat = %v", info)
	}
	if code, out, _ := run(t, "storage", "ls", url, "env/"); code != exitOK || !strings.Contains(out, "env/prod/secret.yaml") {
		t.Errorf("ls: exit %d\n%s", code, out)
	}
	if code, _, errOut := run(t, "storage", "get", url, "missing", "--keyring", ring); code != exitFailed || !strings.Contains(errOut, "not found") {
		t.Errorf("get missing: exit %d %q", code, errOut)
	}

	// Writes want a keyring, or an explicit --no-encrypt.
	if code, _, errOut := runIn(t, "x", "storage", "put", url, "plain"); code != exitUsage || !strings.Contains(errOut, "--keyring") {
		t.Errorf("put without a keyring: exit %d %q", code, errOut)
	}
	if code, out, _ := runIn(t, "x", "storage", "put", url, "plain", "--no-encrypt"); code != exitOK || !strings.Contains(out, "encryption:   none") {
		t.Errorf("put --no-encrypt: exit %d\n%s", code, out)
	}
}

func TestStorage_SyncVerifyRotate(t *testing.T) {
	ring := newKeyringFile(t)
	src := t.TempDir()
	for name, content := range map[string]string{"a.yaml": "a: 1\n", "sub/b.json": `{"b": 2}`, "c.txt": "c"} {
		os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755)
		os.WriteFile(filepath.Join(src, name), []byte(content), 0o644)
	}
	store := t.TempDir()
	url := "file://" + store
	code, out, errOut := run(t, "storage", "sync", src, url, "site", "--keyring", ring)
	if code != exitOK || !strings.Contains(out, "3 uploaded") {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t, "storage", "sync", src, url, "site", "--keyring", ring, "-o", "json")
	var res struct{ Uploaded, Skipped int }
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitOK || res.Uploaded != 0 || res.Skipped != 3 {
		t.Errorf("re-sync: exit %d %v %+v", code, err, res)
	}
	if code, out, _ := run(t, "storage", "verify", url, "site/", "--keyring", ring); code != exitOK || !strings.Contains(out, "4 object(s), 0 failed") {
		t.Errorf("verify: exit %d\n%s", code, out)
	}

	// Rotate, rewrap, retire: everything still verifies.
	if code, out, _ := run(t, "storage", "keyring", "rotate", ring); code != exitOK || strings.Count(out, "\nkey ") < 1 || !strings.Contains(out, "rotated") {
		t.Fatalf("rotate: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "storage", "rewrap", url, "site/", "--keyring", ring)
	if code != exitOK || strings.Count(out, "(rewrapped)") != 4 {
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
	for _, k := range shown.Keys {
		if !k.Primary {
			if code, out, errOut := run(t, "storage", "keyring", "retire", ring, strings.TrimSpace(jsonNumber(k.ID))); code != exitOK || !strings.Contains(out, "retired") {
				t.Fatalf("retire: exit %d\n%s%s", code, out, errOut)
			}
		}
	}
	if code, out, _ := run(t, "storage", "verify", url, "site/", "--keyring", ring); code != exitOK {
		t.Errorf("verify after retiring the old key: exit %d\n%s", code, out)
	}

	// A flipped byte in the stored object is found.
	var victim string
	filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "a.yaml") {
			victim = p
		}
		return nil
	})
	b, _ := os.ReadFile(victim)
	b[len(b)/2] ^= 1
	os.WriteFile(victim, b, 0o644)
	if code, out, _ := run(t, "storage", "verify", url, "site/", "--keyring", ring); code != exitFailed || !strings.Contains(out, "FAIL  site/a.yaml") {
		t.Errorf("verify of a corrupt object: exit %d\n%s", code, out)
	}
}

func jsonNumber(n uint32) string { b, _ := json.Marshal(n); return string(b) }

// A keyring sealed with SOPS opens with the SOPS keys; it is never rewritten in the clear.
func TestStorage_SOPSKeyring(t *testing.T) {
	bin, err := testenv.Tool(testenv.ToolSOPS)
	if err != nil {
		t.Fatal(err)
	}
	ring := newKeyringFile(t)
	pub := "age1t0ey88ttppf0v0zu30m7g67wmjlmhs52nr6apua6cjr9z32sdg4q6w7k3c" // examples/keys/age.example.key
	sealed := filepath.Join(filepath.Dir(ring), "keyring.sops.json")
	cmd := exec.Command(bin, "encrypt", "--age", pub, "--output", sealed, ring)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sops: %v %s", err, out)
	}
	url := "file://" + t.TempDir()
	if code, _, errOut := runIn(t, "hello", "storage", "put", url, "k", "--keyring", sealed, "--key-file", exampleKey); code != exitOK {
		t.Fatalf("put with a sealed keyring: exit %d %s", code, errOut)
	}
	if code, out, _ := run(t, "storage", "get", url, "k", "--keyring", ring); code != exitOK || out != "hello" {
		t.Errorf("the sealed and clear keyrings differ: %d %q", code, out)
	}
	if code, _, errOut := runIn(t, "x", "storage", "put", url, "k", "--keyring", sealed); code != exitUsage || !strings.Contains(errOut, "age1") {
		t.Errorf("sealed keyring without SOPS keys: exit %d %q", code, errOut)
	}
	before, _ := os.ReadFile(sealed)
	for _, args := range [][]string{{"rotate", sealed}, {"retire", sealed, "1"}, {"show", sealed}} {
		if code, _, errOut := run(t, append([]string{"storage", "keyring"}, args...)...); code != exitUsage || !strings.Contains(errOut, "is SOPS-encrypted") {
			t.Errorf("%s of a sealed keyring: exit %d %q", args[0], code, errOut)
		}
	}
	if after, _ := os.ReadFile(sealed); string(after) != string(before) {
		t.Error("a refused command changed the sealed keyring")
	}
}

// The same commands against the real S3 server.
func TestStorage_S3(t *testing.T) {
	srv := testenv.StartS3(t)
	url := srv.NewBucket(t)
	ring := newKeyringFile(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	if code, out, errOut := run(t, "storage", "sync", src, url, "p", "--keyring", ring); code != exitOK || !strings.Contains(out, "1 uploaded") {
		t.Fatalf("sync to S3: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := run(t, "storage", "verify", url, "--keyring", ring); code != exitOK || !strings.Contains(out, "2 object(s), 0 failed") {
		t.Errorf("verify on S3: exit %d\n%s", code, out)
	}
	if code, _, errOut := run(t, "storage", "ls", "s3://x?endpoint=http://user:secretpw@127.0.0.1:1&region=r&use_path_style=true"); code == exitOK || strings.Contains(errOut, "secretpw") {
		t.Errorf("a failing URL with credentials: exit %d %q", code, errOut)
	}
}

// The way back: `sync URL [PREFIX] DIR` downloads what `sync DIR URL [PREFIX]` uploaded,
// byte for byte; a second download fetches nothing; --delete (and only it) removes files
// that have no object; a tampered object fails naming its key and leaves no file; which way
// a sync goes is read from where the store URL is, and the other direction's flags are
// refused.
func TestStorage_SyncDownload(t *testing.T) {
	ring := newKeyringFile(t)
	src := t.TempDir()
	files := map[string]string{"a.yaml": "a: 1\n", "sub/b.json": `{"b": 2}`, "c.txt": "c"}
	for name, content := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755)
		os.WriteFile(filepath.Join(src, name), []byte(content), 0o644)
	}
	store := t.TempDir()
	url := "file://" + store
	if code, out, errOut := run(t, "storage", "sync", src, url, "site", "--keyring", ring); code != exitOK || !strings.Contains(out, "3 uploaded") {
		t.Fatalf("upload: exit %d\n%s%s", code, out, errOut)
	}
	same := func(dir string, want map[string]string) {
		t.Helper()
		n := 0
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
				rel, _ := filepath.Rel(dir, p)
				if b, _ := os.ReadFile(p); string(b) != want[filepath.ToSlash(rel)] {
					t.Errorf("%s = %q, want %q", rel, b, want[filepath.ToSlash(rel)])
				}
			}
			return nil
		})
		if n != len(want) {
			t.Errorf("%s has %d files, want %d", dir, n, len(want))
		}
	}

	dst := filepath.Join(t.TempDir(), "dst")
	code, out, errOut := run(t, "storage", "sync", url, "site", dst, "--keyring", ring)
	if code != exitOK || !strings.Contains(out, "+sub/b.json\n") || !strings.Contains(out, "3 downloaded (14 bytes), 0 unchanged, 0 deleted") {
		t.Fatalf("download: exit %d\n%s%s", code, out, errOut)
	}
	same(dst, files)
	code, out, _ = run(t, "storage", "sync", url, "site/", dst, "--keyring", ring, "-o", "json")
	var res struct{ Downloaded, Skipped, Deleted int }
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitOK || res.Downloaded != 0 || res.Skipped != 3 {
		t.Errorf("second download: exit %d %v %+v\n%s", code, err, res, out)
	}

	// Without a prefix the whole store comes down, and Sync's index is not a file.
	whole := t.TempDir()
	if code, out, errOut := run(t, "storage", "sync", url, whole, "--keyring", ring); code != exitOK || !strings.Contains(out, "3 downloaded") {
		t.Errorf("download of the whole store: exit %d\n%s%s", code, out, errOut)
	}
	same(whole, map[string]string{"site/a.yaml": "a: 1\n", "site/sub/b.json": `{"b": 2}`, "site/c.txt": "c"})

	// Extra files stay unless --delete.
	os.WriteFile(filepath.Join(dst, "extra.txt"), []byte("mine"), 0o644)
	if code, out, _ := run(t, "storage", "sync", url, "site", dst, "--keyring", ring); code != exitOK || !strings.Contains(out, "0 deleted") {
		t.Errorf("download without --delete: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, "storage", "sync", url, "site", dst, "--keyring", ring, "--delete", "--dry-run"); code != exitOK || out != "-extra.txt\n0 downloaded (0 bytes), 3 unchanged, 1 deleted\n" {
		t.Errorf("download --delete --dry-run: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dst, "extra.txt")); err != nil {
		t.Errorf("a dry run deleted: %v", err)
	}
	if code, out, _ := run(t, "storage", "sync", url, "site", dst, "--keyring", ring, "--delete"); code != exitOK || !strings.Contains(out, "1 deleted") {
		t.Errorf("download --delete: exit %d\n%s", code, out)
	}
	same(dst, files)

	// A flipped byte in the stored object: exit 1 naming the key, and no file.
	victim := filepath.Join(store, "site", "a.yaml")
	b, _ := os.ReadFile(victim)
	b[len(b)/2] ^= 1
	os.WriteFile(victim, b, 0o644)
	fresh := t.TempDir()
	if code, _, errOut := run(t, "storage", "sync", url, "site", fresh, "--keyring", ring); code != exitFailed || !strings.Contains(errOut, "site/a.yaml") || !strings.Contains(errOut, "corrupt") {
		t.Errorf("download of a corrupt object: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(fresh, "a.yaml")); !os.IsNotExist(err) {
		t.Errorf("a corrupt object left a file: %v", err)
	}

	// Which way: by where the store URL is; never a guess.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{src, dst}, "no argument is a store URL"},
		{[]string{url, "mem://", dst}, "are both store URLs"},
		{[]string{src, "site", url}, "comes last"},
		{[]string{src, url, "site", "--delete"}, "--delete is for downloads"},
		{[]string{url, "site", dst, "--keep-extra"}, "--keep-extra is for uploads"},
	} {
		if code, _, errOut := run(t, append(append([]string{"storage", "sync"}, c.args...), "--keyring", ring)...); code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("sync %v: exit %d %q, want %q", c.args, code, errOut, c.want)
		}
	}
}
