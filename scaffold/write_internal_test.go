package scaffold

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// writeNew never replaces a file, even one made after Write checked the paths (O_EXCL),
// and says which; a file it cannot create is the system's error.
func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a")
	if err := writeNew(f, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeNew(f, []byte("two"), 0o600); !errors.Is(err, ErrExists) {
		t.Errorf("over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(f); string(b) != "one" {
		t.Errorf("the file was replaced: %q", b)
	}
	if err := writeNew(filepath.Join(dir, "missing", "b"), nil, 0o600); err == nil || errors.Is(err, ErrExists) {
		t.Errorf("into a missing folder: %v", err)
	}
}
