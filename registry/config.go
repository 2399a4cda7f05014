package registry

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/circlecore/circle/registry/spdx"
	"github.com/circlecore/circle/schema"
)

// Config is packages/environments.yaml: for each environment, the packages it requires (the
// root of its resolution) and the policies its resolved packages must pass. An
// environment of circle.yaml that is not listed requires nothing and has the defaults'
// policies.
//
//	defaults:
//	  vulnerabilities: {failOn: high}
//	  licenses: {allow: [MIT, Apache-2.0, BSD-3-Clause]}
//	environments:
//	  prod:
//	    requires: {api: ~1.2.0}
//	    vulnerabilities:
//	      failOn: medium
//	      allow:
//	        - {id: GHSA-xxxx-xxxx-xxxx, until: 2026-12-31, reason: not reachable from our code}
//
// An environment's vulnerabilities or licenses block replaces the defaults' block whole,
// the way a later config layer replaces a list: a policy is read in one place.
type Config struct {
	Defaults     Policy                `json:"defaults"`
	Environments map[string]*EnvConfig `json:"environments,omitempty"`
	// File is where the configuration was read from.
	File string `json:"-"`
	doc  *document
}

// EnvConfig is one environment's entry.
type EnvConfig struct {
	// Requires maps a package name to the range the environment needs.
	Requires map[string]string `json:"requires,omitempty"`
	Policy
}

// Policy is what an environment holds its resolved packages to.
type Policy struct {
	Vulnerabilities *VulnerabilityPolicy `json:"vulnerabilities,omitempty"`
	Licenses        *spdx.Policy         `json:"licenses,omitempty"`
}

// VulnerabilityPolicy says which advisories fail an environment.
type VulnerabilityPolicy struct {
	// FailOn is the lowest severity that fails; the zero value fails on every advisory.
	FailOn Threshold `json:"failOn,omitzero"`
	// Allow accepts listed advisories until a date.
	Allow []Allowance `json:"allow,omitempty"`
}

// Allowance accepts one advisory for a while.
type Allowance struct {
	// ID is the advisory's id or one of its aliases ("GHSA-…", "CVE-…").
	ID string `json:"id"`
	// Until is the last day (UTC, YYYY-MM-DD) the allowance holds.
	Until string `json:"until"`
	// Reason is why the risk is accepted, shown in every report that uses it.
	Reason string `json:"reason"`
}

// Expired reports whether the allowance no longer holds at now: it holds through the whole
// of its last day, in UTC.
func (a Allowance) Expired(now time.Time) bool {
	until, err := time.Parse(time.DateOnly, a.Until)
	if err != nil {
		return true
	}
	return !now.UTC().Before(until.AddDate(0, 0, 1))
}

// Threshold is a severity boundary: a CVSS base score, written as a number or as a rating.
type Threshold struct {
	// Text is what the file says ("high", "7.5"); empty means "any".
	Text string
	// Score is the lowest score that fails: "any" 0, "low" 0.1, "medium" 4.0, "high" 7.0,
	// "critical" 9.0 (CVSS v3 qualitative ratings), "never" above every score.
	Score float64
}

var ratings = map[string]float64{"any": 0, "low": 0.1, "medium": 4, "high": 7, "critical": 9, "never": math.Inf(1)}

// ParseThreshold reads a rating name or a score from 0 to 10.
func ParseThreshold(s string) (Threshold, error) {
	if sc, ok := ratings[strings.ToLower(s)]; ok {
		return Threshold{Text: strings.ToLower(s), Score: sc}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 10 {
		return Threshold{}, fmt.Errorf("severity threshold %q: want any, low, medium, high, critical, never or a score from 0 to 10", s)
	}
	return Threshold{Text: s, Score: f}, nil
}

// Fails reports whether an advisory of score fails the threshold. A score of -1 (unknown)
// fails every threshold but "never": an advisory whose severity is not known cannot be
// shown to be below the line.
func (t Threshold) Fails(score float64) bool {
	if math.IsInf(t.Score, 1) {
		return false
	}
	return score < 0 || score >= t.Score
}

// String is the threshold as written, "any" when unset.
func (t Threshold) String() string {
	if t.Text == "" {
		return "any"
	}
	return t.Text
}

// MarshalJSON writes the threshold as written.
func (t Threshold) MarshalJSON() ([]byte, error) {
	if f, err := strconv.ParseFloat(t.Text, 64); err == nil {
		return json.Marshal(f)
	}
	return json.Marshal(t.String())
}

// UnmarshalJSON reads a rating name or a number.
func (t *Threshold) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var f json.Number
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("severity threshold: want a rating or a number, got %s", b)
		}
		s = f.String()
	}
	th, err := ParseThreshold(s)
	if err != nil {
		return err
	}
	*t = th
	return nil
}

// IsZero reports an unset threshold.
func (t Threshold) IsZero() bool { return t.Text == "" }

// Requires returns env's requirements.
func (c *Config) Requires(env string) map[string]string {
	if e := c.Environments[env]; e != nil {
		return e.Requires
	}
	return nil
}

// PolicyFor returns env's policies: its own blocks, the defaults' where it has none.
func (c *Config) PolicyFor(env string) Policy {
	p := c.Defaults
	if e := c.Environments[env]; e != nil {
		if e.Vulnerabilities != nil {
			p.Vulnerabilities = e.Vulnerabilities
		}
		if e.Licenses != nil {
			p.Licenses = e.Licenses
		}
	}
	if p.Vulnerabilities == nil {
		p.Vulnerabilities = &VulnerabilityPolicy{}
	}
	if p.Licenses == nil {
		p.Licenses = &spdx.Policy{}
	}
	return p
}

// EnvNames lists the environments the file names, sorted.
func (c *Config) EnvNames() []string {
	names := make([]string, 0, len(c.Environments))
	for n := range c.Environments {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func readConfig(fsys fs.FS, file string) (*Config, schema.Issues) {
	var c Config
	doc, issues := readDocument(fsys, file, "#Environments", &c)
	if issues != nil {
		return nil, issues
	}
	c.File, c.doc = file, doc
	return &c, nil
}

// checkConfig checks what the schema cannot: environments that exist, requirements on
// packages that exist, ranges that parse and match, license identifiers, calendar dates.
func (r *Registry) checkConfig(c *Config) schema.Issues {
	var issues schema.Issues
	check := func(prefix string, p Policy) {
		if p.Licenses != nil {
			for list, ids := range map[string][]string{"allow": p.Licenses.Allow, "deny": p.Licenses.Deny} {
				for i, id := range ids {
					if err := spdx.ValidID(id); err != nil {
						issues = append(issues, c.doc.issue(fmt.Sprintf("%slicenses.%s.%d", prefix, list, i), true, "%v", err))
					}
				}
			}
		}
		if p.Vulnerabilities != nil {
			for i, a := range p.Vulnerabilities.Allow {
				if _, err := time.Parse(time.DateOnly, a.Until); err != nil {
					issues = append(issues, c.doc.issue(fmt.Sprintf("%svulnerabilities.allow.%d.until", prefix, i), true, "%q is not a date (YYYY-MM-DD)", a.Until))
				}
			}
		}
	}
	check("defaults.", c.Defaults)
	for _, env := range c.EnvNames() {
		e := c.Environments[env]
		prefix := "environments." + env
		if r.opts.Environments != nil && !slices.Contains(r.opts.Environments, env) {
			issues = append(issues, c.doc.issue(prefix, false, "environment %q is not defined in circle.yaml (environments: %s)", env, strings.Join(r.opts.Environments, ", ")))
		}
		names := make([]string, 0, len(e.Requires))
		for n := range e.Requires {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			field := prefix + ".requires." + n
			rng, err := ParseRange(e.Requires[n])
			if err != nil {
				issues = append(issues, c.doc.issue(field, true, "%v", err))
				continue
			}
			if is, ok := r.checkRequirement(c.doc, field, n, rng); !ok {
				issues = append(issues, is)
			}
		}
		check(prefix+".", e.Policy)
	}
	return issues
}
