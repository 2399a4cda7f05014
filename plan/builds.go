package plan

import (
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/redact"
)

// CompareBuilds diffs two builds of one environment, prev (nil for none) and next: the
// objects of their manifests and the files of their storage targets, as a plan reports
// them. The daemon calls it with the build it accepted before, to say what its last change
// changed, without loading the repository at both revisions as Compare does.
//
// Secret data is masked (red) in From and To, but the values of everything else are
// there: a caller that shows the result to readers without the keys keeps Path and
// Action only.
func CompareBuilds(prev, next *pipeline.Output, red *redact.Redactor) ([]ObjectChange, []FileChange, error) {
	if next == nil {
		return nil, nil, nil
	}
	var prevManifests []byte
	if prev != nil {
		prevManifests = prev.Manifests
	}
	objects, err := compareObjects(prevManifests, next.Manifests, red)
	if err != nil {
		return nil, nil, err
	}
	return objects, compareFiles(prev, next), nil
}
