package registry

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/circlecore/circle/registry/osv"
)

// Finding is one advisory hitting one resolved package version, and the environment's
// verdict on it.
type Finding struct {
	Package  string   `json:"package"`
	Version  string   `json:"version"`
	Advisory string   `json:"advisory"`
	Aliases  []string `json:"aliases,omitempty"`
	Summary  string   `json:"summary,omitempty"`
	// File is the advisory's file in the repository.
	File  string    `json:"file"`
	Score osv.Score `json:"severity"`
	// Fixed is the smallest version the advisory says is fixed, above Version; empty
	// when it records no fix.
	Fixed string `json:"fixed,omitempty"`
	// Upgrade is the smallest version in the registry, enabled in the environment and
	// above Version, that the advisory does not affect: what to move to.
	Upgrade string `json:"upgrade,omitempty"`
	// Allowed is the allow-list entry that accepts the finding, when one is in force.
	Allowed *Allowance `json:"allowed,omitempty"`
	// Fails reports whether the finding fails the environment; Reason says why or why not.
	Fails  bool   `json:"fails"`
	Reason string `json:"reason"`
}

// LicenseFinding is the license verdict on one resolved package version.
type LicenseFinding struct {
	Package string `json:"package"`
	Version string `json:"version"`
	License string `json:"license"`
	OK      bool   `json:"ok"`
	Reason  string `json:"reason,omitempty"`
}

// Report is what an environment's resolved packages look like under its policies.
type Report struct {
	Environment     string           `json:"environment"`
	FailOn          string           `json:"failOn"`
	Vulnerabilities []Finding        `json:"vulnerabilities"`
	Licenses        []LicenseFinding `json:"licenses"`
	// Notes are what a reader should know but that fails nothing: allow-list entries
	// that matched no finding, ranges that could not be evaluated.
	Notes []string `json:"notes,omitempty"`
	// Failed reports whether a finding or a license fails the environment.
	Failed bool `json:"failed"`
}

// Hit is an advisory affecting a package version, before any policy.
type Hit struct {
	Advisory *Advisory
	Match    osv.Match
}

// AdvisoriesFor lists the advisories affecting m (withdrawn ones excluded), by id.
func (r *Registry) AdvisoriesFor(m *Manifest, now time.Time) []Hit {
	var out []Hit
	for _, a := range r.Advisories {
		if match := a.Match(Ecosystem, m.Name, m.Version, now); match.Affected || len(match.Skipped) > 0 {
			out = append(out, Hit{Advisory: a, Match: match})
		}
	}
	return out
}

// Scan checks a resolution against the advisories and the environment's policies: each
// advisory hitting a resolved version fails the environment when its severity reaches the
// failOn threshold and no unexpired allowance accepts it; each license must pass the
// license policy. now decides withdrawals and allowance expiry.
func (r *Registry) Scan(res *Resolution, now time.Time) *Report {
	pol := r.Config.PolicyFor(res.Environment)
	vp := pol.Vulnerabilities
	rep := &Report{Environment: res.Environment, FailOn: vp.FailOn.String(), Vulnerabilities: []Finding{}, Licenses: []LicenseFinding{}}
	used := make([]bool, len(vp.Allow))
	for _, m := range res.Packages {
		for _, hit := range r.AdvisoriesFor(m, now) {
			for _, s := range hit.Match.Skipped {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %s for %s: %s", hit.Advisory.File, hit.Advisory.ID, m.ID(), s))
			}
			if !hit.Match.Affected {
				continue
			}
			f := Finding{Package: m.Name, Version: m.Version, Advisory: hit.Advisory.ID, Aliases: hit.Advisory.Aliases,
				Summary: hit.Advisory.Summary, File: hit.Advisory.File, Score: hit.Advisory.Score()}
			if len(hit.Match.Fixed) > 0 {
				f.Fixed = hit.Match.Fixed[0]
			}
			f.Upgrade = r.upgrade(m, hit.Advisory, res.Environment, now)
			r.judge(&f, hit.Advisory, vp, used, now)
			rep.Failed = rep.Failed || f.Fails
			rep.Vulnerabilities = append(rep.Vulnerabilities, f)
		}
		lr := pol.Licenses.Check(m.License)
		lf := LicenseFinding{Package: m.Name, Version: m.Version, License: m.License, OK: lr.OK, Reason: lr.Reason}
		rep.Failed = rep.Failed || !lf.OK
		rep.Licenses = append(rep.Licenses, lf)
	}
	for i, a := range vp.Allow {
		if !used[i] {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: the allowance for %s (until %s) matches no finding in %s; remove it when it is no longer needed", r.Config.File, a.ID, a.Until, res.Environment))
		}
	}
	sort.SliceStable(rep.Vulnerabilities, func(i, j int) bool {
		a, b := rep.Vulnerabilities[i], rep.Vulnerabilities[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		return a.Advisory < b.Advisory
	})
	return rep
}

// judge applies the vulnerability policy to one finding.
func (r *Registry) judge(f *Finding, adv *Advisory, vp *VulnerabilityPolicy, used []bool, now time.Time) {
	severity := "severity unknown"
	if f.Score.Value >= 0 {
		severity = fmt.Sprintf("severity %.1f %s", f.Score.Value, f.Score.Rating)
	}
	if !vp.FailOn.Fails(f.Score.Value) {
		f.Reason = fmt.Sprintf("%s, below the failOn threshold (%s)", severity, vp.FailOn)
		return
	}
	var expired *Allowance
	for i, a := range vp.Allow {
		if !namesAdvisory(adv, a.ID) {
			continue
		}
		used[i] = true
		if a.Expired(now) {
			expired = &vp.Allow[i]
			continue
		}
		f.Allowed = &vp.Allow[i]
		f.Reason = fmt.Sprintf("%s, allowed until %s: %s", severity, a.Until, a.Reason)
		return
	}
	f.Fails = true
	switch {
	case expired != nil:
		f.Reason = fmt.Sprintf("%s, and its allowance expired after %s (%s)", severity, expired.Until, expired.Reason)
	case f.Score.Value < 0:
		f.Reason = fmt.Sprintf("%s: an advisory without a score fails every threshold but never", severity)
	default:
		f.Reason = fmt.Sprintf("%s, at or above the failOn threshold (%s)", severity, vp.FailOn)
	}
}

func namesAdvisory(adv *Advisory, id string) bool {
	for _, n := range adv.Names() {
		if strings.EqualFold(n, id) {
			return true
		}
	}
	return false
}

// upgrade is the smallest version of m's package above m, enabled in env, that adv does
// not affect.
func (r *Registry) upgrade(m *Manifest, adv *Advisory, env string, now time.Time) string {
	for _, v := range r.packages[m.Name].EnabledIn(env) {
		if v.version.GreaterThan(m.version) && !adv.Match(Ecosystem, v.Name, v.Version, now).Affected {
			return v.Version
		}
	}
	return ""
}
