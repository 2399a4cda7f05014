package testenv

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CopyTree copies the folder src (the example repository, usually) into a fresh temporary
// folder a test may change, and returns that folder.
func CopyTree(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("testenv: copy %s: %v", src, err)
	}
	return dst
}

// WriteFile writes content at root/name, making the folders it needs.
func WriteFile(t testing.TB, root, name, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// SOPSEncrypt writes plain at root/name and encrypts it in place with the real sops CLI,
// as a user would: the recipients come from root's .sops.yaml creation rules.
func SOPSEncrypt(t testing.TB, root, name, plain string) {
	t.Helper()
	bin, err := Tool(ToolSOPS)
	if err != nil {
		t.Fatal(err) // make testenv installs it; a missing tool fails, never skips
	}
	WriteFile(t, root, name, plain)
	cmd := exec.Command(bin, "encrypt", "--in-place", filepath.FromSlash(name))
	cmd.Dir = root
	cmd.Env = []string{"HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sops encrypt %s: %v\n%s", name, err, out)
	}
}

// SetNamespace rewrites the namespace: line of the kustomization at root/name (adding one
// if it has none), so tests sharing one API server each deploy into their own namespace.
func SetNamespace(t testing.TB, root, name, ns string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "namespace:") {
			line, found = "namespace: "+ns, true
		}
		out = append(out, line)
	}
	if !found {
		out = append([]string{"namespace: " + ns}, out...)
	}
	if err := os.WriteFile(p, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadTree reads the folder dir into path → content (slash-separated paths), for a commit
// of it with NewGitRepo.
func ReadTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
