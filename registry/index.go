package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/circlecore/circle/registry/osv"
	"github.com/circlecore/circle/registry/solver"
)

// Index is what the registry publishes for one environment: its resolution (or why there
// is none), the lock, the scan report, and every package with its versions, digests,
// licenses and advisories. It carries no timestamp: the same repository content gives the
// same bytes, so a publisher that stores content-addressed objects uploads it only when it
// changed.
type Index struct {
	Environment string            `json:"environment"`
	Requires    map[string]string `json:"requires,omitempty"`
	// Resolved reports whether the requirements resolved; Explanation says why not.
	Resolved    bool   `json:"resolved"`
	Explanation string `json:"explanation,omitempty"`
	Lock        *Lock  `json:"lock,omitempty"`
	// Report is the scan of the resolution under the environment's policies.
	Report   *Report        `json:"report,omitempty"`
	Packages []IndexPackage `json:"packages"`
}

// IndexPackage is one package and all its versions, oldest first.
type IndexPackage struct {
	Name     string         `json:"name"`
	Versions []IndexVersion `json:"versions"`
}

// IndexVersion is one version as the index shows it.
type IndexVersion struct {
	Version      string            `json:"version"`
	Digest       string            `json:"digest"`
	License      string            `json:"license"`
	Description  string            `json:"description,omitempty"`
	Dependencies map[string]string `json:"dependencies,omitempty"`
	Artifacts    []Artifact        `json:"artifacts,omitempty"`
	// Enabled reports whether the environment may resolve this version; Selected whether
	// its resolution did.
	Enabled  bool `json:"enabled"`
	Selected bool `json:"selected"`
	// Advisories are those affecting this version, withdrawn ones excluded.
	Advisories []IndexAdvisory `json:"advisories,omitempty"`
}

// IndexAdvisory is an advisory as the index lists it under a version.
type IndexAdvisory struct {
	ID       string    `json:"id"`
	Aliases  []string  `json:"aliases,omitempty"`
	Summary  string    `json:"summary,omitempty"`
	Severity osv.Score `json:"severity"`
	Fixed    string    `json:"fixed,omitempty"`
}

// Index builds env's index. Versions are kept at the environment's lock file where they
// still fit, as Resolve does with a lock. A requirement set that does not resolve is not an
// error: the index says so, with the explanation, and lists the packages. now decides
// withdrawals and allow-list expiry.
func (r *Registry) Index(ctx context.Context, env string, now time.Time) (*Index, error) {
	ix := &Index{Environment: env, Requires: r.Config.Requires(env), Packages: []IndexPackage{}}
	res, err := r.Resolve(ctx, env, ResolveOptions{Prefer: r.Locks[env]})
	var ns *solver.NoSolutionError
	switch {
	case errors.As(err, &ns):
		ix.Explanation = ns.Explanation
	case err != nil:
		return nil, err
	default:
		ix.Resolved = true
		ix.Lock = res.Lock()
		ix.Report = r.Scan(res, now)
	}
	for _, p := range r.Packages() {
		ip := IndexPackage{Name: p.Name, Versions: []IndexVersion{}}
		for _, m := range p.Versions {
			iv := IndexVersion{Version: m.Version, Digest: m.Digest(), License: m.License, Description: m.Description,
				Dependencies: m.Dependencies, Artifacts: m.Artifacts, Enabled: m.EnabledIn(env)}
			iv.Selected = res != nil && res.Get(m.Name) == m
			for _, hit := range r.AdvisoriesFor(m, now) {
				if !hit.Match.Affected {
					continue
				}
				ia := IndexAdvisory{ID: hit.Advisory.ID, Aliases: hit.Advisory.Aliases, Summary: hit.Advisory.Summary, Severity: hit.Advisory.Score()}
				if len(hit.Match.Fixed) > 0 {
					ia.Fixed = hit.Match.Fixed[0]
				}
				iv.Advisories = append(iv.Advisories, ia)
			}
			ip.Versions = append(ip.Versions, iv)
		}
		ix.Packages = append(ix.Packages, ip)
	}
	return ix, nil
}

// JSON is the index's bytes: indented, stable, ending in a newline.
func (ix *Index) JSON() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(ix) // strings, numbers, maps and slices always encode
	return b.Bytes()
}
