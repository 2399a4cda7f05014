package plan

import (
	"bytes"
	"sort"

	"github.com/circlecore/circle/pipeline"
)

// FileChange is one file a publish to the environment's storage targets would write, or
// no longer write.
//
// Digests are left out on purpose: config.json and manifests.yaml hold secret values, and
// an unsalted sha256 of a file whose every other byte is known lets a reader test guesses
// of a secret offline. Sizes say enough to review.
type FileChange struct {
	Path string `json:"path"`
	// Action is added, changed or removed (the new build's manifest no longer names it).
	Action string `json:"action"`
	// Size is head's size in bytes; PreviousSize base's.
	Size         int `json:"size"`
	PreviousSize int `json:"previousSize"`
}

// compareFiles diffs two builds' files by content. A publish writes only what changed
// (objects are content-addressed), then the environment's manifest.
func compareFiles(base, head *pipeline.Output) []FileChange {
	out := []FileChange{}
	old := map[string][]byte{}
	if base != nil {
		for _, f := range base.Files {
			old[f.Path] = f.Data
		}
	}
	for _, f := range head.Files {
		b, ok := old[f.Path]
		delete(old, f.Path)
		switch {
		case !ok:
			out = append(out, FileChange{Path: f.Path, Action: Added, Size: len(f.Data)})
		case !bytes.Equal(b, f.Data):
			out = append(out, FileChange{Path: f.Path, Action: Changed, Size: len(f.Data), PreviousSize: len(b)})
		}
	}
	for p, b := range old {
		out = append(out, FileChange{Path: p, Action: Removed, PreviousSize: len(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
