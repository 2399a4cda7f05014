package solver

import (
	"fmt"
	"strings"
)

// kind says where an incompatibility came from.
type kind int

const (
	// kindRoot is {not root}: the root must be selected.
	kindRoot kind = iota
	// kindDependency is {depender, not dependee}: a dependency of a run of versions.
	kindDependency
	// kindUnavailable is {depender}: it depends on a range no version matches.
	kindUnavailable
	// kindDerived is learnt by conflict resolution from its two causes.
	kindDerived
)

type incompat struct {
	terms []term
	kind  kind
	// causes of a derived incompatibility: the conflicting one and the satisfier's cause.
	causes [2]*incompat
	// dep is the dependency behind kindDependency and kindUnavailable; reason says, for
	// kindUnavailable, why no version matches.
	dep    Dependency
	reason string
}

// derived builds the incompatibility learnt from c1 and c2, normalised as the description
// asks: one term per package (same-package terms intersected), and positive root terms
// dropped when others remain, since the root is always selected.
func derived(terms []term, c1, c2 *incompat) *incompat {
	var out []term
	index := map[int]int{}
	for _, t := range terms {
		if i, ok := index[t.pkg]; ok {
			out[i] = intersect(out[i], t)
			continue
		}
		index[t.pkg] = len(out)
		out = append(out, t)
	}
	if len(out) > 1 {
		kept := out[:0]
		for _, t := range out {
			if !(t.pos && t.pkg == rootID) {
				kept = append(kept, t)
			}
		}
		out = kept
	}
	return &incompat{terms: out, kind: kindDerived, causes: [2]*incompat{c1, c2}}
}

// failure reports an incompatibility that says the root cannot be selected: version
// solving has failed.
func (inc *incompat) failure() bool {
	return len(inc.terms) == 0 || len(inc.terms) == 1 && inc.terms[0].pos && inc.terms[0].pkg == rootID
}

// String is the incompatibility as a clause of a sentence, pub's way: "foo ^1.0.0 depends
// on bar ^2.0.0", "foo >=1.1.0 requires baz ^3.0.0", "foo <1.1.0 is forbidden".
func (s *solver) incString(inc *incompat) string {
	switch inc.kind {
	case kindRoot:
		return s.terse(inc.terms[0].negate(), false) + " is required"
	case kindDependency:
		return fmt.Sprintf("%s %s %s", s.terse(inc.terms[0], true), s.verb(inc), s.terse(inc.terms[1].negate(), false))
	case kindUnavailable:
		return fmt.Sprintf("%s %s %s %s (%s)", s.terse(inc.terms[0], true), s.verb(inc), inc.dep.Name, inc.dep.Range, inc.reason)
	}
	if inc.failure() {
		return "version solving failed"
	}
	if len(inc.terms) == 1 {
		t := inc.terms[0]
		if t.pos {
			return s.terse(t, false) + " is forbidden"
		}
		return s.terse(t.negate(), false) + " is required"
	}
	var pos, neg []term
	for _, t := range inc.terms {
		if t.pos {
			pos = append(pos, t)
		} else {
			neg = append(neg, t)
		}
	}
	if len(inc.terms) == 2 && len(pos) != 1 {
		if len(pos) == 2 {
			return fmt.Sprintf("%s is incompatible with %s", s.terse(pos[0], false), s.terse(pos[1], false))
		}
		return fmt.Sprintf("either %s or %s", s.terse(neg[0].negate(), false), s.terse(neg[1].negate(), false))
	}
	switch {
	case len(pos) == 1:
		return fmt.Sprintf("%s requires %s", s.terse(pos[0], true), s.inverses(neg, " or "))
	case len(pos) > 1 && len(neg) > 0:
		return fmt.Sprintf("if %s then %s", s.terses(pos, " and "), s.inverses(neg, " or "))
	case len(pos) > 1:
		return fmt.Sprintf("one of %s must be false", s.terses(pos, " or "))
	default:
		return fmt.Sprintf("one of %s must be true", s.inverses(neg, " or "))
	}
}

// verb is how a dependency reads: the root "requires", a package "depends on".
func (s *solver) verb(inc *incompat) string {
	if (inc.kind == kindDependency || inc.kind == kindUnavailable) && inc.terms[0].pkg != rootID {
		return "depends on"
	}
	return "requires"
}

func (s *solver) terses(ts []term, sep string) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = s.terse(t, false)
	}
	return strings.Join(parts, sep)
}

func (s *solver) inverses(ts []term, sep string) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = s.terse(t.negate(), false)
	}
	return strings.Join(parts, sep)
}

// terse prints the positive reading of t: the root by its name, "every version of foo"
// (or "foo") for all of foo's versions, otherwise "foo <range>".
func (s *solver) terse(t term, allowEvery bool) string {
	if t.pkg == rootID {
		return s.rootName
	}
	p := s.pkgs[t.pkg]
	if t.label != "" {
		return p.name + " " + t.label
	}
	if t.set.equal(p.full) {
		if allowEvery {
			return "every version of " + p.name
		}
		return p.name
	}
	return p.name + " " + p.render(t.set)
}

// render prints a set of p's versions as ranges between known versions, pub's way: a run
// from the oldest version has no lower bound, a run to the newest no upper bound.
func (p *pkgInfo) render(set bitset) string {
	n := len(p.versions)
	var runs []string
	for i := 0; i < n; i++ {
		if !set.has(i) {
			continue
		}
		j := i
		for j+1 < n && set.has(j+1) {
			j++
		}
		runs = append(runs, p.runLabel(i, j))
		i = j
	}
	if len(runs) == 0 {
		return "<none>"
	}
	return strings.Join(runs, " || ")
}

// runLabel prints versions lo..hi: ">=lo <next" with open ends at the oldest and newest
// version, a single version in the middle as itself, and "" for every version.
func (p *pkgInfo) runLabel(lo, hi int) string {
	n := len(p.versions)
	switch {
	case lo == 0 && hi == n-1:
		return ""
	case lo == 0:
		return "<" + p.versions[hi+1].Original()
	case hi == n-1:
		return ">=" + p.versions[lo].Original()
	case lo == hi:
		return p.versions[lo].Original()
	}
	return ">=" + p.versions[lo].Original() + " <" + p.versions[hi+1].Original()
}
