package plan

import (
	"fmt"
	"sort"

	"github.com/Masterminds/semver/v3"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/registry"
)

// PackageChange is one package whose resolved version differs between the revisions.
type PackageChange struct {
	Name string `json:"name"`
	// Action is added, removed, upgraded, downgraded, or changed (same version, another
	// manifest digest: its artifacts or dependencies were edited in place).
	Action string `json:"action"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	// Why lists the ranges that moved: the environment's requirement, or a dependent's
	// dependency range. Empty when no range moved (the lock file or the set of versions
	// changed).
	Why []string `json:"why"`
	// License is head's version's SPDX expression, and LicenseOK the license policy's
	// verdict on it, with LicenseReason when it fails.
	License       string `json:"license,omitempty"`
	LicenseOK     bool   `json:"licenseOK"`
	LicenseReason string `json:"licenseReason,omitempty"`
	// Advisories are the ids of advisories hitting head's version.
	Advisories []string `json:"advisories"`
}

// Advisory is an advisory that hits head's resolution and did not hit base's.
type Advisory struct {
	Package string `json:"package"`
	Version string `json:"version"`
	ID      string `json:"id"`
	Summary string `json:"summary,omitempty"`
	// Severity is the CVSS score's rating (LOW…CRITICAL, UNKNOWN) and Score its value (-1
	// unknown).
	Severity string  `json:"severity"`
	Score    float64 `json:"score"`
	Fixed    string  `json:"fixed,omitempty"`
	// Fails reports whether it fails the environment's policy; Reason is the verdict.
	Fails  bool   `json:"fails"`
	Reason string `json:"reason"`
}

// index is env's package index at r, as its build resolved it: for a build that failed
// too, so a failing head still shows what moved and which advisory fails it.
func (c *comparer) index(r *pipeline.Result, env string) *registry.Index {
	return r.Packages[env]
}

func (c *comparer) comparePackages(env string) ([]PackageChange, []Advisory) {
	changes, advisories := []PackageChange{}, []Advisory{}
	bi, hi := c.index(c.base, env), c.index(c.head, env)
	if hi == nil || hi.Lock == nil {
		return changes, advisories // no packages at head, or they do not resolve (Env.Error)
	}
	var bl *registry.Lock
	if bi != nil {
		bl = bi.Lock
	}
	if bl == nil {
		bl = &registry.Lock{}
	}
	for _, name := range lockNames(bl, hi.Lock) {
		b, h := bl.Get(name), hi.Lock.Get(name)
		var pc PackageChange
		switch {
		case b == nil:
			pc = PackageChange{Name: name, Action: Added, To: h.Version}
		case h == nil:
			pc = PackageChange{Name: name, Action: Removed, From: b.Version}
		case b.Version != h.Version:
			pc = PackageChange{Name: name, Action: direction(b.Version, h.Version), From: b.Version, To: h.Version}
		case b.Digest != h.Digest:
			pc = PackageChange{Name: name, Action: Changed, From: b.Version, To: h.Version, Why: []string{"the manifest of " + name + "@" + h.Version + " changed (digest)"}}
		default:
			continue
		}
		if pc.Why == nil {
			pc.Why = why(name, bi, hi, bl)
		}
		pc.Advisories = []string{}
		if h != nil {
			pc.License, pc.LicenseOK = h.License, true
			if hi.Report != nil {
				for _, lf := range hi.Report.Licenses {
					if lf.Package == name && lf.Version == h.Version {
						pc.License, pc.LicenseOK, pc.LicenseReason = lf.License, lf.OK, lf.Reason
					}
				}
				for _, f := range hi.Report.Vulnerabilities {
					if f.Package == name && f.Version == h.Version {
						pc.Advisories = append(pc.Advisories, f.Advisory)
					}
				}
			}
		}
		changes = append(changes, pc)
	}
	if hi.Report != nil {
		seen := map[string]bool{}
		if bi != nil && bi.Report != nil {
			for _, f := range bi.Report.Vulnerabilities {
				seen[f.Package+"@"+f.Version+" "+f.Advisory] = true
			}
		}
		for _, f := range hi.Report.Vulnerabilities {
			if seen[f.Package+"@"+f.Version+" "+f.Advisory] {
				continue
			}
			advisories = append(advisories, Advisory{Package: f.Package, Version: f.Version, ID: f.Advisory, Summary: f.Summary,
				Severity: f.Score.Rating, Score: f.Score.Value, Fixed: f.Fixed, Fails: f.Fails, Reason: f.Reason})
		}
		sort.Slice(advisories, func(i, j int) bool {
			a, b := advisories[i], advisories[j]
			if a.Package != b.Package {
				return a.Package < b.Package
			}
			if a.Version != b.Version {
				return a.Version < b.Version
			}
			return a.ID < b.ID
		})
	}
	return changes, advisories
}

// lockNames is the packages of either lock, in name order.
func lockNames(a, b *registry.Lock) []string {
	set := map[string]bool{}
	for _, l := range []*registry.Lock{a, b} {
		for _, p := range l.Packages {
			set[p.Name] = true
		}
	}
	return sortedKeys(set)
}

// direction compares two versions; a version that is not semver (the registry refuses
// those, but a plan must not crash on one) counts as an upgrade.
func direction(from, to string) string {
	f, err1 := semver.NewVersion(from)
	t, err2 := semver.NewVersion(to)
	if err1 == nil && err2 == nil && t.LessThan(f) {
		return Downgraded
	}
	return Upgraded
}

// why finds the ranges on name that differ between the revisions: the environment's own
// requirement, and each dependent's dependency range (dependents as head resolved them,
// compared with the same package in base's lock).
func why(name string, bi, hi *registry.Index, bl *registry.Lock) []string {
	out := []string{}
	var breq string
	if bi != nil {
		breq = bi.Requires[name]
	}
	if hreq := hi.Requires[name]; hreq != breq {
		out = append(out, rangeMove("requires", breq, hreq))
	}
	dependents := map[string]bool{}
	for _, p := range hi.Lock.Packages {
		if _, ok := p.Dependencies[name]; ok {
			dependents[p.Name] = true
		}
	}
	for _, p := range bl.Packages {
		if _, ok := p.Dependencies[name]; ok {
			dependents[p.Name] = true
		}
	}
	for _, d := range sortedKeys(dependents) {
		var from, to, who string
		if p := bl.Get(d); p != nil {
			from = p.Dependencies[name]
			who = d + "@" + p.Version
		}
		if p := hi.Lock.Get(d); p != nil {
			to = p.Dependencies[name]
			who = d + "@" + p.Version
		}
		if from != to {
			out = append(out, rangeMove(who+" depends on it", from, to))
		}
	}
	return out
}

func rangeMove(what, from, to string) string {
	switch {
	case from == "":
		return fmt.Sprintf("%s: %s (new)", what, to)
	case to == "":
		return fmt.Sprintf("%s: %s (dropped)", what, from)
	}
	return fmt.Sprintf("%s: %s → %s", what, from, to)
}
