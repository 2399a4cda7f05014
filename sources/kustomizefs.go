package sources

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// ErrOutsideSnapshot is wrapped by every error for a path that would leave the snapshot: one
// that climbs above its root with "..", or that passes through a symbolic link.
var ErrOutsideSnapshot = errors.New("path leaves the snapshot")

// ErrReadOnly is wrapped by every error for an attempt to change a snapshot.
var ErrReadOnly = errors.New("snapshot is read-only")

// KustomizeFS returns a read-only sigs.k8s.io/kustomize/kyaml/filesys.FileSystem over fsys, so
// that krusty.MakeKustomizer(...).Run(KustomizeFS(snap.FS), "/deploy/overlays/prod") builds
// from the snapshot and from nothing else.
//
// Absolute paths are taken from the snapshot's root, never from the host: "/etc/passwd" is the
// snapshot's etc/passwd (kustomize's default load restrictions still refuse it unless it lies
// under the kustomization being built). A path that climbs above the root ("../x", "/a/../../x")
// is refused with an error that names it and wraps ErrOutsideSnapshot, rather than being
// clamped to the root the way path.Clean("/../x") would. If fsys can report symbolic links
// (fs.ReadLinkFS), a path through one is refused too, because its target is outside the tree's
// control. Every write fails with an error that wraps ErrReadOnly.
//
// Only reads of the tree pass through here: kustomize fetches an http(s) resource and runs
// `git clone` for a remote base on its own, without asking the file system, so a caller that
// must stay offline has to refuse remote references before the build.
//
// CleanedAbs differs from kustomize's own file systems in one way, on purpose: the directory it
// returns is relative to the snapshot root ("." or "./deploy/overlays/prod"), not absolute. The
// kustomize loader joins a kustomization's references to that directory with filepath.Join,
// which cleans; joined to an absolute "/deploy", "../../../x" would reach this file system as
// "/x", and the climb out of the tree would be invisible. Joined to "./deploy" it arrives as
// "../../x" and is refused. The "./" form keeps ConfirmedDir.HasPrefix right for kustomize's
// load restrictions and cycle checks, which compare these directories with each other.
// Walk and Glob report absolute paths, as kustomize's in-memory file system does.
func KustomizeFS(fsys fs.FS) filesys.FileSystem {
	return kustomizeFS{fsys: fsys}
}

// kustomizeFS is hand-written because kustomize offers no adapter from io/fs: its only
// in-memory file system is filesys.MakeFsInMemory, and copying the snapshot into it would hold
// the tree twice in memory and would still clamp "/.." to "/" without a word, so a
// kustomization reaching above the snapshot would quietly read some other part of it.
type kustomizeFS struct {
	fsys fs.FS
}

var _ filesys.FileSystem = kustomizeFS{}

// resolve turns a kustomize path into an fs.FS name. The check runs on the path with its
// leading separators removed, so path.Clean keeps every ".." that goes above the root
// instead of dropping it.
func resolve(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty path: %w", fs.ErrNotExist)
	}
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		if rel != name {
			return "", fmt.Errorf("path %q climbs above the snapshot root (to %q): %w",
				name, rel, ErrOutsideSnapshot)
		}
		return "", fmt.Errorf("path %q climbs above the snapshot root: %w", name, ErrOutsideSnapshot)
	}
	return rel, nil
}

// stat resolves name and describes what it names. Each element is looked at without following
// links, so a link anywhere on the way is refused before anything is read through it.
func (k kustomizeFS) stat(name string) (string, fs.FileInfo, error) {
	rel, err := resolve(name)
	if err != nil {
		return "", nil, err
	}
	if rel == "." {
		info, err := fs.Stat(k.fsys, rel)
		if err != nil {
			return "", nil, fmt.Errorf("snapshot root: %w", err)
		}
		return rel, info, nil
	}
	var info fs.FileInfo
	for i := 0; i <= len(rel); i++ {
		if i < len(rel) && rel[i] != '/' {
			continue
		}
		info, err = fs.Lstat(k.fsys, rel[:i])
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, fmt.Errorf("%q does not exist in the snapshot: %w", name, fs.ErrNotExist)
		}
		if err != nil {
			return "", nil, fmt.Errorf("%q: %w", name, err)
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return "", nil, fmt.Errorf("path %q goes through the symbolic link %q: %w",
				name, "/"+rel[:i], ErrOutsideSnapshot)
		}
		if i < len(rel) && !info.IsDir() {
			return "", nil, fmt.Errorf("%q does not exist in the snapshot (%q is a file): %w",
				name, "/"+rel[:i], fs.ErrNotExist)
		}
	}
	return rel, info, nil
}

func readOnly(op, name string) error {
	return fmt.Errorf("cannot %s %q: %w", op, name, ErrReadOnly)
}

// Create implements filesys.FileSystem; it always fails.
func (k kustomizeFS) Create(name string) (filesys.File, error) {
	return nil, readOnly("create", name)
}

// Mkdir implements filesys.FileSystem; it always fails.
func (k kustomizeFS) Mkdir(name string) error { return readOnly("make directory", name) }

// MkdirAll implements filesys.FileSystem; it always fails.
func (k kustomizeFS) MkdirAll(name string) error { return readOnly("make directory", name) }

// RemoveAll implements filesys.FileSystem; it always fails, even for a missing path, so a
// caller that tries to clean up learns that nothing here is its to remove.
func (k kustomizeFS) RemoveAll(name string) error { return readOnly("remove", name) }

// WriteFile implements filesys.FileSystem; it always fails.
func (k kustomizeFS) WriteFile(name string, _ []byte) error { return readOnly("write", name) }

// Open implements filesys.FileSystem. The file reads; Write fails.
func (k kustomizeFS) Open(name string) (filesys.File, error) {
	rel, _, err := k.stat(name)
	if err != nil {
		return nil, err
	}
	f, err := k.fsys.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", name, err)
	}
	return &snapshotFile{File: f, name: name}, nil
}

// IsDir implements filesys.FileSystem.
func (k kustomizeFS) IsDir(name string) bool {
	_, info, err := k.stat(name)
	return err == nil && info.IsDir()
}

// Exists implements filesys.FileSystem.
func (k kustomizeFS) Exists(name string) bool {
	_, _, err := k.stat(name)
	return err == nil
}

// ReadDir implements filesys.FileSystem. Names come sorted, which the in-memory file system
// does not promise but which makes builds independent of map order.
func (k kustomizeFS) ReadDir(name string) ([]string, error) {
	rel, info, err := k.stat(name)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", name)
	}
	entries, err := fs.ReadDir(k.fsys, rel)
	if err != nil {
		return nil, fmt.Errorf("read directory %q: %w", name, err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// CleanedAbs implements filesys.FileSystem. See KustomizeFS for why the directory it returns
// is "./"-relative.
func (k kustomizeFS) CleanedAbs(name string) (filesys.ConfirmedDir, string, error) {
	rel, info, err := k.stat(name)
	if err != nil {
		return "", "", err
	}
	if info.IsDir() {
		return confirmedDir(rel), "", nil
	}
	return confirmedDir(path.Dir(rel)), path.Base(rel), nil
}

func confirmedDir(rel string) filesys.ConfirmedDir {
	if rel == "." {
		return "."
	}
	return filesys.ConfirmedDir("./" + rel)
}

// ReadFile implements filesys.FileSystem.
func (k kustomizeFS) ReadFile(name string) ([]byte, error) {
	rel, info, err := k.stat(name)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, fmt.Errorf("cannot read content from non-file %q", name)
	}
	data, err := fs.ReadFile(k.fsys, rel)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", name, err)
	}
	return data, nil
}

// Walk implements filesys.FileSystem like kustomize's in-memory file system: paths are
// absolute, a directory is visited before its entries, entries in lexical order, and links
// are reported but not followed.
func (k kustomizeFS) Walk(name string, walkFn filepath.WalkFunc) error {
	rel, info, err := k.stat(name)
	if err != nil {
		return err
	}
	return k.walk(rel, info, walkFn)
}

func (k kustomizeFS) walk(rel string, info fs.FileInfo, walkFn filepath.WalkFunc) error {
	err := walkFn(absolute(rel), info, nil)
	if !info.IsDir() {
		return err
	}
	if err != nil {
		if errors.Is(err, filepath.SkipDir) {
			return nil
		}
		return err
	}
	entries, err := fs.ReadDir(k.fsys, rel)
	if err != nil {
		return walkFn(absolute(rel), info, err)
	}
	for _, e := range entries {
		child := path.Join(rel, e.Name())
		ci, err := e.Info()
		if err == nil {
			err = k.walk(child, ci, walkFn)
		} else {
			err = walkFn(absolute(child), nil, err)
		}
		if errors.Is(err, filepath.SkipDir) {
			break
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func absolute(rel string) string {
	if rel == "." {
		return "/"
	}
	return "/" + rel
}

// Glob implements filesys.FileSystem like kustomize's in-memory file system: the pattern is
// matched against the absolute path of every file (directories never match), and hidden files
// are left out unless the pattern's last element asks for them. A relative pattern is taken
// from the root too, and its matches are given relative.
func (k kustomizeFS) Glob(pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("glob %q: %w", pattern, err)
	}
	abs := strings.HasPrefix(pattern, "/")
	clean, err := resolve(pattern)
	if err != nil {
		return nil, err
	}
	if abs {
		clean = absolute(clean)
	}
	var matches []string
	err = k.Walk("/", func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		candidate := p[1:]
		if abs {
			candidate = p
		}
		if ok, _ := path.Match(clean, candidate); ok {
			matches = append(matches, candidate)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !filesys.IsHiddenFilePath(pattern) {
		matches = filesys.RemoveHiddenFiles(matches)
	}
	slices.Sort(matches)
	return matches, nil
}

// snapshotFile is an open snapshot file as kustomize expects one: readable, with Write
// refused rather than missing.
type snapshotFile struct {
	fs.File
	name string
}

func (f *snapshotFile) Write([]byte) (int, error) { return 0, readOnly("write", f.name) }
