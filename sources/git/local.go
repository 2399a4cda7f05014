package git

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing/fstest"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/circlecore/circle/sources"
)

// ErrNotInRepository is wrapped by Local's error when the folder is not inside a Git
// work tree.
var ErrNotInRepository = errors.New("not inside a Git repository")

// Local reads one revision of the local Git repository that holds the folder dir, the way
// `circle plan --base main` needs it: rev is anything `git rev-parse` would take that
// go-git resolves (a branch, a tag, a full or short hash, HEAD~1, origin/main), and the
// snapshot is that commit's tree below dir, so a Circle repository kept in a subfolder of a
// larger one (examples/ here) reads as its own root. The work tree and index are never
// looked at: uncommitted changes are not in the snapshot (sources/dir reads those).
//
// The same rules as a remote snapshot apply: regular files only (no symlinks, no
// submodules), each file and the whole tree bounded by caps.
func Local(dir, rev string, caps Caps) (*sources.Snapshot, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// EnableDotGitCommonDir reads a linked work tree (git worktree add) through its
	// common folder, where the objects are.
	repo, err := gogit.PlainOpenWithOptions(abs, &gogit.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, gogit.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("read %s at %s: %w", dir, rev, ErrNotInRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("open the repository of %s: %w", dir, err)
	}
	sub, err := subdir(repo, abs)
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", dir, rev, err)
	}
	hash, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("resolve revision %q in %s: %w", rev, dir, err)
	}
	commit, err := repo.CommitObject(*hash)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", hash, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", hash, err)
	}
	if sub != "" {
		if tree, err = tree.Tree(sub); err != nil {
			return nil, fmt.Errorf("read %s at %s: %w", sub, hash, err)
		}
	}
	files, err := readTree(tree, caps.file(), caps.tree())
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", hash, err)
	}
	signed, err := signedCommit(commit)
	if err != nil {
		return nil, err
	}
	return &sources.Snapshot{Revision: hash.String(), FS: files, Commit: signed}, nil
}

// Caps bound a local snapshot as Options.MaxFileSize and MaxTreeSize bound a remote one;
// zero means the same defaults (16 MiB, 256 MiB).
type Caps struct {
	MaxFileSize, MaxTreeSize int64
}

func (c Caps) file() int64 {
	if c.MaxFileSize > 0 {
		return c.MaxFileSize
	}
	return 16 << 20
}

func (c Caps) tree() int64 {
	if c.MaxTreeSize > 0 {
		return c.MaxTreeSize
	}
	return 256 << 20
}

// subdir is abs relative to the repository's work tree root, slash-separated, "" for the
// root itself.
func subdir(repo *gogit.Repository, abs string) (string, error) {
	wt, err := repo.Worktree()
	if err != nil {
		return "", err // a bare repository has no folder to be in
	}
	root, err := filepath.EvalSymlinks(wt.Filesystem.Root())
	if err != nil {
		return "", err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is outside the work tree %s", abs, root)
	}
	if rel == "." {
		return "", nil
	}
	return filepath.ToSlash(rel), nil
}

// readTree is Source.treeFiles for any tree rather than a commit's root: Local may read a
// subfolder, and reading the whole repository's tree to keep a part would put the size
// limits on the wrong thing.
func readTree(tree *object.Tree, maxFile, maxTree int64) (fstest.MapFS, error) {
	files := fstest.MapFS{}
	var total int64
	err := tree.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable && f.Mode != filemode.Deprecated {
			return nil
		}
		if f.Size > maxFile {
			return fmt.Errorf("%s: %d bytes is over the %d-byte file limit", f.Name, f.Size, maxFile)
		}
		if total += f.Size; total > maxTree {
			return fmt.Errorf("%s: the tree is over the %d-byte limit", f.Name, maxTree)
		}
		r, err := f.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		files[f.Name] = &fstest.MapFile{Data: b, Mode: 0o444}
		return nil
	})
	return files, err
}
