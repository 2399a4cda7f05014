// Package sources turns a place where desired state lives into snapshots: a revision id and
// a read-only file tree that every later stage reads. A snapshot never changes after it is
// made, so a stage can read it while the source moves on.
//
// Implementations live in their own packages, named for what they read: sources/dir (a
// local folder, watched with fsnotify) and sources/git (a Git remote, with go-git).
package sources

import (
	"context"
	"io/fs"

	"github.com/circlecore/circle/sources/signature"
)

// Snapshot is one revision of the desired state.
type Snapshot struct {
	// Revision identifies the content: a commit hash for Git, "sha256:<hex>" of the tree for
	// a folder. Two snapshots with the same Revision have the same files.
	Revision string
	// FS is the tree, read-only. Paths are slash-separated and relative to the root.
	FS fs.FS
	// Commit and Tag are the signed objects behind a Git revision (Tag only when the ref is
	// an annotated tag), kept so later stages can apply per-environment signature
	// policies. Nil for a folder.
	Commit, Tag *signature.Object
}

// Source produces snapshots.
type Source interface {
	// Snapshot reads the current state and returns it. It does not change the source.
	Snapshot(ctx context.Context) (*Snapshot, error)
	// Watch calls fn with a snapshot each time the revision changes, starting with the
	// current one, until ctx is done or fn returns an error; it returns that error, or nil
	// when ctx is done.
	Watch(ctx context.Context, fn func(*Snapshot) error) error
}
