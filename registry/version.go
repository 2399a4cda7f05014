package registry

import (
	"fmt"
	"sort"

	"github.com/Masterminds/semver/v3"
)

// ParseVersion parses a manifest's version: strict semver 2.0 (major.minor.patch, an
// optional pre-release after "-" and build metadata after "+"; no "v" prefix, no missing
// parts). Strict because a version names a file and a lock entry: "1.2" and "v1.2.0" would
// be two spellings of one release.
func ParseVersion(s string) (*semver.Version, error) {
	v, err := semver.StrictNewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a semver 2.0 version (major.minor.patch[-pre][+build]): %w", s, err)
	}
	return v, nil
}

// Range is a version range as users write it: "^1.2", "~1.2.3", ">=1.0 <2.0", "1.x", "*",
// "^1 || ^2". It keeps the text it was written as, which explanations quote.
//
// Pre-releases match only when asked for: a range matches 1.3.0-beta.1 only if one of its
// comparisons in the same "||" group names a pre-release (">=1.3.0-0", "^1.3.0-beta"),
// which is the rule of Masterminds/semver.
type Range struct {
	text string
	c    *semver.Constraints
}

// ParseRange parses a range. Comparisons separated by spaces or commas must all hold;
// groups separated by "||" are alternatives.
func ParseRange(s string) (*Range, error) {
	c, err := semver.NewConstraint(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a version range: %w", s, err)
	}
	return &Range{text: s, c: c}, nil
}

// String is the range as it was written.
func (r *Range) String() string { return r.text }

// Allows reports whether v is in the range.
func (r *Range) Allows(v *semver.Version) bool { return r.c.Check(v) }

// Newest returns the highest version of vs the range allows, or nil.
func (r *Range) Newest(vs []*semver.Version) *semver.Version {
	var best *semver.Version
	for _, v := range vs {
		if r.Allows(v) && (best == nil || v.GreaterThan(best)) {
			best = v
		}
	}
	return best
}

// SortVersions sorts versions in ascending semver precedence; versions of equal precedence
// (differing only in build metadata) keep their order.
func SortVersions(vs []*semver.Version) {
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].LessThan(vs[j]) })
}
