package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/circlecore/circle/registry"
)

// Cache is a folder of verified artifacts, each in a file named by the hex SHA-256 of its
// content (see the package doc for why a file is hashed again when used). Its methods are
// safe for concurrent use, by several processes too: files appear only by rename.
type Cache struct {
	dir string
}

// OpenCache opens the cache folder dir, creating it (readable by its owner only: what a
// repository ships need not be everyone's to read).
func OpenCache(dir string) (*Cache, error) {
	if dir == "" {
		return nil, errors.New("artifact cache: no folder")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("artifact cache: %w", err)
	}
	return &Cache{dir: dir}, nil
}

// Dir is the cache's folder.
func (c *Cache) Dir() string { return c.dir }

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// path is where the artifact of digest sum lives. The digest comes from a manifest, so it
// is checked before it names a file: it is 64 hex digits, never a path.
func (c *Cache) path(sum string) (string, error) {
	if !hexDigest.MatchString(sum) {
		return "", fmt.Errorf("sha256 %q is not 64 lower-case hex digits", sum)
	}
	return filepath.Join(c.dir, sum), nil
}

// Has reports whether the cache holds a's bytes: a file named by a.SHA256 of a.Size bytes
// whose content hashes to its name. A file that does not is removed, so the artifact is
// fetched again.
func (c *Cache) Has(a registry.Artifact) (bool, error) {
	p, err := c.path(a.SHA256)
	if err != nil {
		return false, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("artifact cache: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("artifact cache: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() != a.Size {
		return false, c.drop(p)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("artifact cache: read %s: %w", p, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != a.SHA256 {
		return false, c.drop(p)
	}
	return true, nil
}

// drop removes a cached file that is not what its name says.
func (c *Cache) drop(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("artifact cache: remove bad file: %w", err)
	}
	return nil
}

// Put reads a's bytes from r into the cache: to a temporary file beside the final one,
// hashed and counted on the way, reading at most a.Size+1 bytes. Only bytes that match a
// are renamed into place; otherwise nothing is left and the error is a
// *registry.MismatchError.
func (c *Cache) Put(a registry.Artifact, r io.Reader) error {
	p, err := c.path(a.SHA256)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, ".partial-*")
	if err != nil {
		return fmt.Errorf("artifact cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, a.Size+1))
	if cerr := tmp.Close(); err == nil && cerr != nil {
		return fmt.Errorf("artifact cache: %w", cerr)
	}
	if err != nil {
		return err
	}
	if n != a.Size {
		return &registry.MismatchError{Size: n, Truncated: n > a.Size}
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != a.SHA256 {
		return &registry.MismatchError{Size: n, SHA256: sum}
	}
	// No fsync: a file left short by a power loss fails its digest in Has and is fetched
	// again (the package doc).
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("artifact cache: %w", err)
	}
	return nil
}
