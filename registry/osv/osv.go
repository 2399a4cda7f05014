// Package osv reads vulnerability records in the Open Source Vulnerability format
// (https://ossf.github.io/osv-schema/, the format osv.dev, GitHub's advisory database,
// Go's vulndb and RustSec publish) and decides which package versions they affect.
//
// Terms, as the schema defines them:
//
//   - A record has an id, aliases (the same vulnerability elsewhere: a CVE, a GHSA),
//     severities, and affected entries; a record with "withdrawn" set no longer applies.
//   - An affected entry names a package (ecosystem and name) and the versions hit: ranges
//     and an explicit versions list.
//   - A range is a list of events on one version line: "introduced" (affected from here,
//     "0" meaning from the first version), "fixed" (not affected from here),
//     "last_affected" (not affected after here) and "limit" (never affected from here).
//     SEMVER ranges use semver ordering; ECOSYSTEM ranges use the ecosystem's own, which
//     this package knows for the ecosystems whose versions are semver (Go, npm,
//     crates.io, Hex, Pub, NuGet and Circle's own); GIT ranges (commit hashes) are not
//     evaluated.
//   - A severity of type CVSS_V3 carries a vector whose base score BaseScore computes.
package osv

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Record is one OSV record. Fields this package does not use are kept as raw JSON in the
// maps so a record can be republished unchanged.
type Record struct {
	SchemaVersion    string         `json:"schema_version,omitempty"`
	ID               string         `json:"id"`
	Modified         time.Time      `json:"modified"`
	Published        *time.Time     `json:"published,omitempty"`
	Withdrawn        *time.Time     `json:"withdrawn,omitempty"`
	Aliases          []string       `json:"aliases,omitempty"`
	Related          []string       `json:"related,omitempty"`
	Summary          string         `json:"summary,omitempty"`
	Details          string         `json:"details,omitempty"`
	Severity         []Severity     `json:"severity,omitempty"`
	Affected         []Affected     `json:"affected,omitempty"`
	References       []Reference    `json:"references,omitempty"`
	DatabaseSpecific map[string]any `json:"database_specific,omitempty"`
}

// Severity is one severity statement: a type ("CVSS_V3", "CVSS_V4", "Ubuntu", …) and its
// score (a vector for CVSS, a word for others).
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Affected is one package the record hits, and which of its versions.
type Affected struct {
	Package           Package        `json:"package"`
	Severity          []Severity     `json:"severity,omitempty"`
	Ranges            []Range        `json:"ranges,omitempty"`
	Versions          []string       `json:"versions,omitempty"`
	EcosystemSpecific map[string]any `json:"ecosystem_specific,omitempty"`
	DatabaseSpecific  map[string]any `json:"database_specific,omitempty"`
}

// Package names a package in an ecosystem.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Purl      string `json:"purl,omitempty"`
}

// Range is a sequence of events on one version line.
type Range struct {
	Type             string         `json:"type"`
	Repo             string         `json:"repo,omitempty"`
	Events           []Event        `json:"events"`
	DatabaseSpecific map[string]any `json:"database_specific,omitempty"`
}

// Event is one point of a range; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Reference is a link about the vulnerability.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Parse reads one record. It checks what matching relies on: an id, a package in every
// affected entry, and one field per event.
func Parse(data []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if r.ID == "" {
		return nil, fmt.Errorf("OSV record without an id")
	}
	for i, a := range r.Affected {
		if a.Package.Name == "" || a.Package.Ecosystem == "" {
			return nil, fmt.Errorf("%s: affected[%d]: package needs an ecosystem and a name", r.ID, i)
		}
		for j, rg := range a.Ranges {
			for k, e := range rg.Events {
				n := 0
				for _, f := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
					if f != "" {
						n++
					}
				}
				if n != 1 {
					return nil, fmt.Errorf("%s: affected[%d].ranges[%d].events[%d]: an event has exactly one of introduced, fixed, last_affected, limit", r.ID, i, j, k)
				}
			}
		}
	}
	return &r, nil
}

// IsWithdrawn reports whether the record was withdrawn at or before now.
func (r *Record) IsWithdrawn(now time.Time) bool {
	return r.Withdrawn != nil && !r.Withdrawn.After(now)
}

// Names lists the record's id and aliases.
func (r *Record) Names() []string { return append([]string{r.ID}, r.Aliases...) }

// semverEcosystems are the ecosystems whose versions are semver, so their ECOSYSTEM ranges
// order like SEMVER ones.
var semverEcosystems = []string{"Go", "npm", "crates.io", "Hex", "Pub", "NuGet", "Circle"}

// SemverOrdered reports whether ecosystem's versions order as semver.
func SemverOrdered(ecosystem string) bool { return slices.Contains(semverEcosystems, ecosystem) }

// Match is what a record says about one package version.
type Match struct {
	// Affected is true when a range or the versions list includes the version.
	Affected bool
	// Fixed lists the fixed versions above the version, in ascending order: Fixed[0] is
	// the smallest upgrade this record accepts. Empty when no fix is recorded.
	Fixed []string
	// Skipped names ranges that could not be evaluated (a GIT range, an ecosystem whose
	// ordering is unknown, a version that does not parse), so a clean result can be read
	// for what it is.
	Skipped []string
}

// Match evaluates the record for version of the package (ecosystem, name), following the
// schema's evaluation rules: within a range, events are applied in version order; the
// versions list counts too. A withdrawn record matches nothing.
func (r *Record) Match(ecosystem, name, version string, now time.Time) Match {
	var m Match
	if r.IsWithdrawn(now) {
		return m
	}
	v, verr := semver.NewVersion(version)
	fixed := map[string]*semver.Version{}
	for i, a := range r.Affected {
		if a.Package.Ecosystem != ecosystem || a.Package.Name != name {
			continue
		}
		for _, listed := range a.Versions {
			if listed == version || verr == nil && sameVersion(listed, v) {
				m.Affected = true
			}
		}
		for j, rg := range a.Ranges {
			where := fmt.Sprintf("affected[%d].ranges[%d]", i, j)
			if rg.Type != "SEMVER" && !(rg.Type == "ECOSYSTEM" && SemverOrdered(ecosystem)) {
				m.Skipped = append(m.Skipped, fmt.Sprintf("%s: %s range of %s not evaluated", where, rg.Type, ecosystem))
				continue
			}
			if verr != nil {
				m.Skipped = append(m.Skipped, fmt.Sprintf("%s: version %q is not semver", where, version))
				continue
			}
			hit, fixes, err := includes(rg.Events, v)
			if err != nil {
				m.Skipped = append(m.Skipped, fmt.Sprintf("%s: %v", where, err))
				continue
			}
			if hit {
				m.Affected = true
				for _, f := range fixes {
					fixed[f.Original()] = f
				}
			}
		}
	}
	if m.Affected {
		for _, f := range fixed {
			m.Fixed = append(m.Fixed, f.Original())
		}
		sort.Slice(m.Fixed, func(i, j int) bool { return fixed[m.Fixed[i]].LessThan(fixed[m.Fixed[j]]) })
	}
	return m
}

func sameVersion(s string, v *semver.Version) bool {
	w, err := semver.NewVersion(s)
	return err == nil && w.Equal(v)
}

type event struct {
	kind int // order among events at one version: introduced, last_affected, fixed, limit
	at   *semver.Version
	zero bool // introduced "0": before every version
}

const (
	introduced = iota
	lastAffected
	fixedAt
	limitAt
)

// includes applies a range's events in version order: introduced turns "affected" on,
// fixed (at or above it) and last_affected (above it) turn it off; a limit ends the range.
// It returns the fixed versions above v.
func includes(evs []Event, v *semver.Version) (bool, []*semver.Version, error) {
	var es []event
	for _, e := range evs {
		var ev event
		var s string
		switch {
		case e.Introduced != "":
			ev.kind, s = introduced, e.Introduced
		case e.LastAffected != "":
			ev.kind, s = lastAffected, e.LastAffected
		case e.Fixed != "":
			ev.kind, s = fixedAt, e.Fixed
		default:
			ev.kind, s = limitAt, e.Limit
		}
		if ev.kind == introduced && s == "0" {
			ev.zero = true
		} else {
			at, err := semver.NewVersion(s)
			if err != nil {
				return false, nil, fmt.Errorf("event version %q is not semver", s)
			}
			ev.at = at
		}
		es = append(es, ev)
	}
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.zero != b.zero {
			return a.zero
		}
		if !a.zero {
			if c := a.at.Compare(b.at); c != 0 {
				return c < 0
			}
		}
		return a.kind < b.kind
	})
	affected := false
	var fixes []*semver.Version
	for _, e := range es {
		switch e.kind {
		case introduced:
			if e.zero || !v.LessThan(e.at) {
				affected = true
			}
		case fixedAt:
			if !v.LessThan(e.at) {
				affected = false
			} else {
				fixes = append(fixes, e.at)
			}
		case lastAffected:
			if v.GreaterThan(e.at) {
				affected = false
			}
		case limitAt:
			if !v.LessThan(e.at) {
				affected = false
			}
		}
	}
	return affected, fixes, nil
}

// Score is how severe a record is.
type Score struct {
	// Value is the CVSS base score, 0 to 10; -1 when unknown.
	Value float64 `json:"score"`
	// Rating is NONE, LOW, MEDIUM, HIGH or CRITICAL (CVSS v3's qualitative scale), or
	// UNKNOWN.
	Rating string `json:"rating"`
	// From says where the score came from: a CVSS vector, or a database's own rating
	// (then Value is the lowest score of that rating).
	From string `json:"from,omitempty"`
}

// ratingFloor is the lowest score of each rating, for records that state only a word.
var ratingFloor = map[string]float64{"NONE": 0, "LOW": 0.1, "MODERATE": 4, "MEDIUM": 4, "HIGH": 7, "CRITICAL": 9}

// Score is the record's worst severity: the highest CVSS v3 base score of its vectors
// (the record's and its affected entries'); without one, the rating a database states
// (database_specific.severity, or an "Ubuntu"-style word), at the lowest score of that
// rating; otherwise unknown (-1).
func (r *Record) Score() Score {
	best := Score{Value: -1, Rating: "UNKNOWN"}
	sevs := append([]Severity(nil), r.Severity...)
	for _, a := range r.Affected {
		sevs = append(sevs, a.Severity...)
	}
	for _, s := range sevs {
		if s.Type != "CVSS_V3" {
			continue
		}
		if v, err := BaseScore(s.Score); err == nil && v > best.Value {
			best = Score{Value: v, Rating: Rating(v), From: s.Score}
		}
	}
	if best.Value >= 0 {
		return best
	}
	words := []string{}
	if w, ok := r.DatabaseSpecific["severity"].(string); ok {
		words = append(words, w)
	}
	for _, s := range sevs {
		if !strings.HasPrefix(s.Type, "CVSS") {
			words = append(words, s.Score)
		}
	}
	for _, w := range words {
		if f, ok := ratingFloor[strings.ToUpper(w)]; ok && f > best.Value {
			rating := strings.ToUpper(w)
			if rating == "MODERATE" {
				rating = "MEDIUM"
			}
			best = Score{Value: f, Rating: rating, From: "database rating " + w}
		}
	}
	return best
}
