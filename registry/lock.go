package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/circlecore/circle/schema"
)

// Lock pins an environment's resolution: one version of each package, with the digest of
// its manifest (which covers its artifacts' digests). It is written as JSON with a stable
// layout — packages in name order, no timestamps — so the same resolution always writes
// the same bytes and a pull request shows exactly what moved.
type Lock struct {
	Environment string `json:"environment"`
	// Requires are the environment's requirements the lock was resolved from.
	Requires map[string]string `json:"requires,omitempty"`
	Packages []LockedPackage   `json:"packages"`
}

// LockedPackage is one resolved package version.
type LockedPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Digest is the manifest's Digest.
	Digest       string            `json:"digest"`
	License      string            `json:"license,omitempty"`
	Dependencies map[string]string `json:"dependencies,omitempty"`
	Artifacts    []LockedArtifact  `json:"artifacts,omitempty"`
}

// LockedArtifact is an artifact of a locked version: what a deployer fetches and checks.
type LockedArtifact struct {
	Path   string `json:"path,omitempty"`
	URL    string `json:"url,omitempty"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Get returns the locked entry of name, or nil.
func (l *Lock) Get(name string) *LockedPackage {
	for i := range l.Packages {
		if l.Packages[i].Name == name {
			return &l.Packages[i]
		}
	}
	return nil
}

// JSON is the lock file's bytes: indented, ending in a newline.
func (l *Lock) JSON() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(l) // strings, maps and slices always encode
	return b.Bytes()
}

// readLock reads a lock file; its environment must match its name.
func readLock(fsys fs.FS, file string) (*Lock, error) {
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	l, err := ParseLock(file, data)
	if err != nil {
		return nil, err
	}
	if env := strings.TrimSuffix(path.Base(file), lockSuffix); l.Environment != env {
		return nil, schema.Issues{{File: file, Path: "environment", Message: fmt.Sprintf("environment %q does not match the file name (want %q)", l.Environment, env)}}
	}
	return l, nil
}

// ParseLock reads a lock file's bytes. Unknown fields are errors: a lock is written by
// circle, and a hand edit that misspells a field should not silently drop it.
func ParseLock(file string, data []byte) (*Lock, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l Lock
	if err := dec.Decode(&l); err != nil {
		return nil, jsonIssue(file, data, err)
	}
	if l.Environment == "" {
		return nil, schema.Issues{{File: file, Path: "environment", Message: "required field is missing"}}
	}
	return &l, nil
}

// jsonIssue places a JSON decoding error at its line and column.
func jsonIssue(file string, data []byte, err error) schema.Issues {
	offset := int64(-1)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
	}
	is := schema.Issue{File: file, Message: err.Error()}
	if offset >= 0 {
		if offset > int64(len(data)) {
			offset = int64(len(data))
		}
		before := data[:offset]
		is.Line = bytes.Count(before, []byte("\n")) + 1
		// Offset counts the bytes read, the offending one included.
		is.Column = max(int(offset)-1-bytes.LastIndexByte(before, '\n'), 1)
	}
	return schema.Issues{is}
}

// LockState is how an environment's lock file, as the registry read it, stands against a
// resolution.
type LockState string

// The states LockStateOf reports (the words `circle package lock --check` prints).
const (
	LockCurrent LockState = "unchanged" // the file holds exactly the resolution's lock
	LockAbsent  LockState = "absent"    // there is no lock file
	LockStale   LockState = "stale"     // the file holds another lock
)

// LockStateOf compares env's lock file, as read with the registry, with the lock res makes.
func (r *Registry) LockStateOf(env string, res *Resolution) LockState {
	switch old := r.Locks[env]; {
	case old == nil:
		return LockAbsent
	case !bytes.Equal(old.JSON(), res.Lock().JSON()):
		return LockStale
	}
	return LockCurrent
}

// WriteLock writes the lock res makes to env's lock file in the repository folder root,
// atomically, unless the file holds those bytes already; it reports whether it wrote. The
// folder is opened as an os.Root: a symlink in the repository (packages/ pointing at /etc)
// cannot make it read or write outside the folder.
func (r *Registry) WriteLock(root, env string, res *Resolution) (bool, error) {
	data := res.Lock().JSON()
	dir, err := os.OpenRoot(root)
	if err != nil {
		return false, fmt.Errorf("write lock %s: %w", env, err)
	}
	defer dir.Close()
	file := filepath.FromSlash(r.LockFile(env))
	if old, err := dir.ReadFile(file); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := dir.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return false, fmt.Errorf("write lock %s: %w", env, err)
	}
	if err := renameio.WriteFile(file, data, 0o644, renameio.WithRoot(dir)); err != nil {
		return false, fmt.Errorf("write lock %s: %w", env, err)
	}
	return true, nil
}
