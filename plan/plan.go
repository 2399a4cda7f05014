package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/repo"
)

// SchemaVersion names the layout of Plan's JSON encoding. It changes only when a field
// is removed or changes meaning; new fields may be added under the same version.
const SchemaVersion = "circle.plan/v1"

// The actions a change can carry. Each section uses the subset that fits it.
const (
	Added      = "added"
	Changed    = "changed"
	Removed    = "removed"
	Upgraded   = "upgraded"
	Downgraded = "downgraded"
	Created    = "created"
	Deleted    = "deleted"
	// Replaced is an object whose name carries a content hash (a generated ConfigMap or
	// Secret): the old name is pruned and the new one created, shown as one change.
	Replaced = "replaced"
	Issued   = "issued"
	Revoked  = "revoked"
	Refused  = "refused"
	Accepted = "accepted"
	Expiring = "expiring"
)

// The states of an environment in a plan.
const (
	StatusUnchanged = "unchanged"
	StatusChanged   = "changed"
	// StatusFailed means the head revision does not build for the environment: the daemon
	// would keep it on its last good revision.
	StatusFailed = "failed"
	// StatusRemoved means circle.yaml no longer lists the environment.
	StatusRemoved = "removed"
)

// Options tune Compare.
type Options struct {
	// Envs restricts the plan to these environments; empty means every environment of
	// either revision.
	Envs []string
	// Redactor is the one both builds loaded their secrets into (repo.Options.Redactor),
	// so a secret of either revision is masked, with the same salt on both sides: equal
	// values give equal masks, and a change shows as a different mask. Nil uses head's.
	Redactor *redact.Redactor
	// Now is when licenses are judged as expiring; zero means time.Now.
	Now time.Time
	// ExpiryWindow is how close to its expiry an accepted license is reported as
	// expiring: zero means pipeline.ExpiryWarning (30 days), a negative window none.
	ExpiryWindow time.Duration
	// BaseRevision and HeadRevision name the two revisions in the output.
	BaseRevision, HeadRevision string
	// Unchanged are environments whose inputs are the same at both revisions
	// (Builds.Unchanged): they were not built, and are planned as unchanged.
	Unchanged []string
	// SecretsChanged are the secrets files that differ, per environment
	// (Builds.SecretsChanged): Env.Secrets, named and never shown.
	SecretsChanged map[string][]string
	// NotDecrypted says both revisions were built without keys (repo.Options.NoDecrypt):
	// the plan says what it could not compare.
	NotDecrypted bool
}

// DefaultOptions returns the options `circle plan` starts from.
func DefaultOptions() Options {
	return Options{ExpiryWindow: pipeline.ExpiryWarning}
}

// Plan is what moving from the base revision to the head revision would do, per
// environment. Its JSON encoding is the documented, stable `circle plan -o json` schema
// (see the package comment).
type Plan struct {
	Schema string `json:"schema"`
	Base   string `json:"base"`
	Head   string `json:"head"`
	// Problems are the head revision's validation problems, at their file:line:col. A
	// head with problems builds no environment.
	Problems []Problem `json:"problems"`
	// BaseProblems counts the base revision's problems: a base that did not build is
	// compared as if it held nothing.
	BaseProblems int `json:"baseProblems"`
	// NotDecrypted says both revisions were built without keys (circle plan --no-decrypt):
	// the secrets' values, and what is computed from them, were not compared.
	NotDecrypted bool    `json:"notDecrypted,omitempty"`
	Environments []*Env  `json:"environments"`
	Summary      Summary `json:"summary"`
}

// Problem is one validation problem of the head revision.
type Problem struct {
	// Location is file:line:col (or as much of it as is known).
	Location     string   `json:"location"`
	Path         string   `json:"path,omitempty"`
	Message      string   `json:"message"`
	Environments []string `json:"environments,omitempty"`
}

// String is "file:line:col: path: message [envs]", as `circle validate` prints problems.
func (p Problem) String() string {
	s := p.Location
	if s != "" {
		s += ": "
	}
	if p.Path != "" {
		s += p.Path + ": "
	}
	s += p.Message
	if len(p.Environments) > 0 {
		s += " ["
		for i, e := range p.Environments {
			if i > 0 {
				s += ", "
			}
			s += e
		}
		s += "]"
	}
	return s
}

// Summary is the plan in numbers.
type Summary struct {
	Environments int `json:"environments"`
	// Changed counts environments with at least one change; Failed those head does not
	// build for.
	Changed int `json:"changed"`
	Failed  int `json:"failed"`
	// Prunes counts the objects that would be deleted from clusters, replaced
	// (hash-named) objects excepted.
	Prunes int `json:"prunes"`
	// HasChanges and Invalid decide `circle plan`'s exit code: 1 when Invalid, else 2
	// when HasChanges, else 0.
	HasChanges bool `json:"hasChanges"`
	Invalid    bool `json:"invalid"`
}

// Env is one environment's part of the plan. Every list is present (empty, not null) and
// sorted as documented on its type, so two plans of the same revisions encode the same.
type Env struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Error is why head does not build for the environment; BaseError why base did not.
	Error     string `json:"error,omitempty"`
	BaseError string `json:"baseError,omitempty"`
	// Config is sorted by path.
	Config []ConfigChange `json:"config"`
	// Packages is sorted by name.
	Packages []PackageChange `json:"packages"`
	// Advisories are advisories hitting head's resolved packages that did not hit
	// base's, sorted by package then advisory id.
	Advisories []Advisory `json:"advisories"`
	// Licenses is sorted by license id.
	Licenses []LicenseChange `json:"licenses"`
	// Objects is sorted by kind, namespace and name.
	Objects []ObjectChange `json:"objects"`
	// Storage is sorted by path.
	Storage []FileChange `json:"storage"`
	// Secrets are the secrets files that changed, sorted: named, never what changed in
	// them.
	Secrets []string `json:"secrets"`
	// NotDecrypted are the configuration paths whose values the plan could not compare,
	// built without keys (circle plan --no-decrypt); sorted.
	NotDecrypted []string `json:"notDecrypted,omitempty"`
	Counts       Counts   `json:"counts"`
}

// Counts are an environment's changes by section.
type Counts struct {
	Config     int `json:"config"`
	Packages   int `json:"packages"`
	Advisories int `json:"advisories"`
	Licenses   int `json:"licenses"`
	// Warnings are licenses reported as expiring: worth a look, not a change.
	Warnings int `json:"warnings"`
	Created  int `json:"created"`
	Changed  int `json:"changed"`
	Replaced int `json:"replaced"`
	Deleted  int `json:"deleted"`
	Storage  int `json:"storage"`
	Secrets  int `json:"secrets"`
	// Errors counts head's problems naming the environment, plus one when it fails to
	// build.
	Errors int `json:"errors"`
}

// Objects is the number of object changes of every action.
func (c Counts) Objects() int { return c.Created + c.Changed + c.Replaced + c.Deleted }

// Total is the number of changes (warnings and errors excluded).
func (c Counts) Total() int {
	return c.Config + c.Packages + c.Advisories + c.Licenses + c.Objects() + c.Storage + c.Secrets
}

// Compare plans the move from base to head, both built with pipeline.Revision. It never
// fails: what does not build at head is part of the plan (Problems, Env.Error). ctx bounds
// the package resolution Compare repeats for an environment whose build failed, to show
// what moved even so.
func Compare(ctx context.Context, base, head *pipeline.Result, opts Options) *Plan {
	red := opts.Redactor
	if red == nil && head.Repo != nil {
		red = head.Repo.Redactor()
	}
	if red == nil {
		red = redact.New()
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.ExpiryWindow == 0 {
		opts.ExpiryWindow = pipeline.ExpiryWarning
	}
	c := &comparer{ctx: ctx, base: base, head: head, opts: opts, red: red}
	p := &Plan{Schema: SchemaVersion, Base: opts.BaseRevision, Head: opts.HeadRevision, Problems: []Problem{}, Environments: []*Env{},
		BaseProblems: len(base.Problems), NotDecrypted: opts.NotDecrypted}
	for _, pr := range head.Problems {
		p.Problems = append(p.Problems, problemOf(pr))
	}
	for _, name := range c.envNames() {
		p.Environments = append(p.Environments, c.env(name))
	}
	p.Problems = append(p.Problems, c.problems...)
	c.summarize(p)
	// Every string Compare put in the plan passes through the redactor once more, as a
	// whole: a value masked field by field is already safe, but a secret can hide inside
	// a plain one (a URL with a password, an error message quoting a value, a workload
	// whose kustomize replacement copied a secret into it).
	redactAll(p, red)
	return p
}

func problemOf(pr repo.Problem) Problem {
	loc := pr.File
	if pr.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", pr.File, pr.Line, pr.Column)
	}
	return Problem{Location: loc, Path: pr.Path, Message: pr.Message, Environments: pr.Envs}
}

// redactAll runs the JSON form of p through the redactor and reads it back. The JSON form
// is every string the plan holds, and the redactor knows secrets' JSON-escaped spellings;
// its masks are plain ASCII, so the JSON stays valid.
func redactAll(p *Plan, red *redact.Redactor) {
	if red.Len() == 0 {
		return
	}
	b, err := json.Marshal(p)
	if err != nil {
		return // a Plan holds strings, numbers and slices only; it always encodes
	}
	out := red.String(string(b))
	if out == string(b) {
		return
	}
	var q Plan
	if err := json.Unmarshal([]byte(out), &q); err == nil {
		*p = q
	}
}

type comparer struct {
	ctx        context.Context
	base, head *pipeline.Result
	opts       Options
	red        *redact.Redactor
	// problems are what comparing found wrong with head (a claim that shrinks).
	problems []Problem
}

// envNames is the environments to plan: head's in circle.yaml's order, then those only
// base has (removed), restricted to Options.Envs.
func (c *comparer) envNames() []string {
	var names []string
	seen := map[string]bool{}
	for _, r := range []*pipeline.Result{c.head, c.base} {
		if r.Settings == nil {
			continue
		}
		for _, n := range r.Settings.EnvNames() {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	if len(c.opts.Envs) == 0 {
		return names
	}
	want := map[string]bool{}
	for _, e := range c.opts.Envs {
		want[e] = true
	}
	var out []string
	for _, n := range names {
		if want[n] {
			out = append(out, n)
		}
	}
	return out
}

func inSettings(r *pipeline.Result, env string) bool {
	if r.Settings == nil {
		return false
	}
	for _, n := range r.Settings.EnvNames() {
		if n == env {
			return true
		}
	}
	return false
}

// failure is why r did not build env, or "" when it did.
func failure(r *pipeline.Result, env string) string {
	if len(r.Problems) > 0 {
		return fmt.Sprintf("the revision has %d problem(s)", len(r.Problems))
	}
	if why, ok := r.Failed[env]; ok {
		return why.Message
	}
	if r.Output(env) == nil && r.Repo != nil && r.Repo.Env(env) == nil {
		return "not built"
	}
	return ""
}

func (c *comparer) env(name string) *Env {
	e := &Env{Name: name, Config: []ConfigChange{}, Packages: []PackageChange{}, Advisories: []Advisory{},
		Licenses: []LicenseChange{}, Objects: []ObjectChange{}, Storage: []FileChange{}, Secrets: []string{}}
	if changed := c.opts.SecretsChanged[name]; changed != nil {
		e.Secrets = changed
	}
	if !inSettings(c.head, name) && c.head.Settings != nil {
		e.Status = StatusRemoved
		return e
	}
	if slices.Contains(c.opts.Unchanged, name) {
		// Only the clock can tell an unchanged environment anything new.
		e.Licenses = c.compareLicenses(name)
		c.count(e)
		e.Status = StatusUnchanged
		return e
	}
	e.Error = failure(c.head, name)
	if inSettings(c.base, name) || c.base.Settings == nil {
		e.BaseError = failure(c.base, name)
	}

	var baseEnv, headEnv *repo.Env
	if c.base.Repo != nil {
		baseEnv = c.base.Repo.Env(name)
	}
	if c.head.Repo != nil {
		headEnv = c.head.Repo.Env(name)
	}
	if headEnv != nil {
		e.Config = compareConfig(baseEnv, headEnv)
		e.NotDecrypted = headEnv.NotDecrypted
	}
	e.Packages, e.Advisories = c.comparePackages(name)
	e.Licenses = c.compareLicenses(name)
	baseOut, headOut := c.base.Output(name), c.head.Output(name)
	if headOut != nil {
		var baseManifests []byte
		if baseOut != nil {
			baseManifests = baseOut.Manifests
		}
		objects, err := compareObjects(baseManifests, headOut.Manifests, c.red)
		if err != nil && e.Error == "" {
			e.Error = err.Error() // kustomize wrote them; a stream it cannot read is a bug worth seeing
		}
		if objects != nil {
			e.Objects = objects
		}
		e.Storage = compareFiles(baseOut, headOut)
		if found := shrinks(e, headEnv); found != nil {
			c.problems = append(c.problems, found...)
			if e.Error == "" {
				e.Error = found[0].Message
			}
		}
	}
	c.count(e)
	switch {
	case e.Error != "":
		e.Status = StatusFailed
	case e.Counts.Total() > 0:
		e.Status = StatusChanged
	default:
		e.Status = StatusUnchanged
	}
	return e
}

func (c *comparer) count(e *Env) {
	n := &e.Counts
	n.Config, n.Packages, n.Advisories = len(e.Config), len(e.Packages), len(e.Advisories)
	for _, l := range e.Licenses {
		if l.Action == Expiring {
			n.Warnings++
		} else {
			n.Licenses++
		}
	}
	for _, o := range e.Objects {
		switch o.Action {
		case Created:
			n.Created++
		case Changed:
			n.Changed++
		case Replaced:
			n.Replaced++
		case Deleted:
			n.Deleted++
		}
	}
	n.Storage = len(e.Storage)
	n.Secrets = len(e.Secrets)
	for _, p := range c.head.Problems {
		if len(p.Envs) == 0 || slices.Contains(p.Envs, e.Name) {
			n.Errors++
		}
	}
	if e.Error != "" && len(c.head.Problems) == 0 {
		n.Errors++
	}
}

func (c *comparer) summarize(p *Plan) {
	s := &p.Summary
	s.Environments = len(p.Environments)
	s.Invalid = len(p.Problems) > 0
	for _, e := range p.Environments {
		switch e.Status {
		case StatusFailed:
			s.Failed++
			s.Invalid = true
		case StatusChanged, StatusRemoved:
			s.Changed++
		}
		if e.Counts.Total() > 0 || e.Status == StatusRemoved {
			s.HasChanges = true
		}
		s.Prunes += e.Counts.Deleted
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
