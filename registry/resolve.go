package registry

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/circlecore/circle/registry/solver"
	"github.com/circlecore/circle/schema"
)

// Resolution is an environment's package set: one version of each package reachable from
// its requirements.
type Resolution struct {
	Environment string
	// Requires are the environment's requirements, from environments.yaml.
	Requires map[string]string
	// Packages are the chosen versions, in name order.
	Packages []*Manifest
	// Stats is the solver's work.
	Stats solver.Stats
}

// ResolveOptions tune Resolve.
type ResolveOptions struct {
	// Prefer is a lock whose versions are kept where they still fit, so re-resolving
	// moves only what must move. Nil resolves newest-first.
	Prefer *Lock
}

// Resolve picks a version of every package env needs, newest first among the versions
// enabled in env (preferring a lock's when given). When none exists the error is a
// *solver.NoSolutionError whose Explanation says why, naming env as the requirer.
func (r *Registry) Resolve(ctx context.Context, env string, opts ResolveOptions) (*Resolution, error) {
	reqs := r.Config.Requires(env)
	deps := make([]solver.Dependency, 0, len(reqs))
	for name, rng := range reqs {
		deps = append(deps, solver.Dependency{Name: name, Range: rng})
	}
	var sopts solver.Options
	if opts.Prefer != nil {
		sopts.Prefer = map[string]*semver.Version{}
		for _, lp := range opts.Prefer.Packages {
			if v, err := semver.NewVersion(lp.Version); err == nil {
				sopts.Prefer[lp.Name] = v
			}
		}
	}
	sol, err := solver.Solve(ctx, &envSource{r: r, env: env}, env, deps, sopts)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", env, err)
	}
	res := &Resolution{Environment: env, Requires: reqs, Stats: sol.Stats}
	for _, name := range sol.Names() {
		res.Packages = append(res.Packages, r.packages[name].Version(sol.Versions[name].Original()))
	}
	return res, nil
}

// envSource is the registry as one environment sees it: only the versions enabled there.
type envSource struct {
	r   *Registry
	env string
}

// Versions lists the versions of name enabled in the environment.
func (s *envSource) Versions(name string) ([]*semver.Version, error) {
	p := s.r.packages[name]
	if p == nil {
		return nil, nil
	}
	var out []*semver.Version
	for _, m := range p.EnabledIn(s.env) {
		out = append(out, m.version)
	}
	return out, nil
}

// Dependencies lists a version's dependencies in name order.
func (s *envSource) Dependencies(name string, v *semver.Version) ([]solver.Dependency, error) {
	m := s.r.packages[name].Version(v.Original())
	if m == nil {
		return nil, fmt.Errorf("no manifest for %s %s", name, v)
	}
	var out []solver.Dependency
	for _, d := range m.DependencyNames() {
		out = append(out, solver.Dependency{Name: d, Range: m.Dependencies[d]})
	}
	return out, nil
}

// Unavailable says when the versions a range wants exist but are not enabled in the
// environment: the usual reason a dependency resolves in dev and not in prod.
func (s *envSource) Unavailable(name, rng string) string {
	p := s.r.packages[name]
	r, err := ParseRange(rng)
	if p == nil || err != nil {
		return ""
	}
	var disabled []string
	for _, m := range p.Versions {
		if r.Allows(m.version) && !m.EnabledIn(s.env) {
			disabled = append(disabled, m.Version)
		}
	}
	switch len(disabled) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("%s %s is not enabled in %s", name, disabled[0], s.env)
	}
	return fmt.Sprintf("%s %s are not enabled in %s", name, strings.Join(disabled, ", "), s.env)
}

// Lock records the resolution.
func (res *Resolution) Lock() *Lock {
	l := &Lock{Environment: res.Environment, Requires: res.Requires, Packages: []LockedPackage{}}
	for _, m := range res.Packages {
		lp := LockedPackage{Name: m.Name, Version: m.Version, Digest: m.Digest(), License: m.License, Dependencies: m.Dependencies}
		for _, a := range m.Artifacts {
			lp.Artifacts = append(lp.Artifacts, LockedArtifact{Path: a.Path, URL: a.URL, SHA256: a.SHA256, Size: a.Size})
		}
		l.Packages = append(l.Packages, lp)
	}
	return l
}

// Get returns the chosen version of name, or nil.
func (res *Resolution) Get(name string) *Manifest {
	i := sort.Search(len(res.Packages), func(i int) bool { return res.Packages[i].Name >= name })
	if i < len(res.Packages) && res.Packages[i].Name == name {
		return res.Packages[i]
	}
	return nil
}

// Edge is one requirement in a resolution: From (the environment, or "name@version")
// needs To within Range, and To resolved to Version.
type Edge struct {
	From    string `json:"from"`
	Range   string `json:"range"`
	To      string `json:"to"`
	Version string `json:"version"`
}

// String reads "api 1.2.0 depends on worker ^0.3.0 (worker 0.3.1)".
func (e Edge) String() string {
	verb := "depends on"
	if !strings.Contains(e.From, "@") {
		verb = "requires"
	}
	return fmt.Sprintf("%s %s %s %s (%s %s)", strings.Replace(e.From, "@", " ", 1), verb, e.To, e.Range, e.To, e.Version)
}

// Why explains a package's place in a resolution.
type Why struct {
	Package string `json:"package"`
	// Version is the chosen version; empty when the resolution does not include it.
	Version string `json:"version,omitempty"`
	// Path is the shortest chain of requirements from the environment to the package.
	Path []Edge `json:"path,omitempty"`
	// Dependents are every requirement on the package: the environment's, and each
	// chosen version's.
	Dependents []Edge `json:"dependents,omitempty"`
}

// Why says why name is in the resolution: the shortest chain of requirements from the
// environment to it, and everything that requires it.
func (res *Resolution) Why(name string) *Why {
	w := &Why{Package: name}
	target := res.Get(name)
	if target == nil {
		return w
	}
	w.Version = target.Version
	// Breadth first from the environment, in name order: the first path found is the
	// shortest, and always the same one.
	prev := map[string]Edge{}
	queue := []string{}
	for _, n := range sortedKeys(res.Requires) {
		if m := res.Get(n); m != nil {
			e := Edge{From: res.Environment, Range: res.Requires[n], To: n, Version: m.Version}
			if n == name {
				w.Dependents = append(w.Dependents, e)
			}
			if _, seen := prev[n]; !seen {
				prev[n] = e
				queue = append(queue, n)
			}
		}
	}
	for _, m := range res.Packages {
		if rng, ok := m.Dependencies[name]; ok {
			w.Dependents = append(w.Dependents, Edge{From: m.ID(), Range: rng, To: name, Version: target.Version})
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, d := range res.Get(n).DependencyNames() {
			if _, seen := prev[d]; seen {
				continue
			}
			dm := res.Get(d)
			prev[d] = Edge{From: res.Get(n).ID(), Range: res.Get(n).Dependencies[d], To: d, Version: dm.Version}
			queue = append(queue, d)
		}
	}
	for at := name; ; {
		e, ok := prev[at]
		if !ok {
			break
		}
		w.Path = append([]Edge{e}, w.Path...)
		if e.From == res.Environment {
			break
		}
		at = strings.SplitN(e.From, "@", 2)[0]
	}
	return w
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CheckLock compares env's lock file with the manifests: a locked version whose manifest
// is gone, or whose manifest changed after the lock was written (its digest differs), is a
// problem — a version must not change under a lock. It says nothing when there is no lock.
func (r *Registry) CheckLock(env string) schema.Issues {
	l := r.Locks[env]
	if l == nil {
		return nil
	}
	file := r.LockFile(env)
	var issues schema.Issues
	for i, lp := range l.Packages {
		p := r.packages[lp.Name]
		var m *Manifest
		if p != nil {
			m = p.Version(lp.Version)
		}
		switch {
		case m == nil:
			issues = append(issues, schema.Issue{File: file, Path: fmt.Sprintf("packages.%d", i), Message: fmt.Sprintf("%s %s is locked, but the registry has no such version", lp.Name, lp.Version)})
		case m.Digest() != lp.Digest:
			issues = append(issues, schema.Issue{File: file, Path: fmt.Sprintf("packages.%d.digest", i), Message: fmt.Sprintf("%s changed after the lock was written (digest %s, locked %s): a released version must not change; release a new version", m.File, m.Digest(), lp.Digest)})
		}
	}
	return issues
}
