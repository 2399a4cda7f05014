// Package pipeline is the flow of one revision, strung in one place: from a snapshot of
// the repository to each environment's output, through the stages
//
//	settings → verify → inputs → load → licenses → packages → build → check
//
// Every caller runs the same Run: the daemon (which then publishes and applies what was
// built), `circle plan` (both revisions), `circle validate`, `circle render`, `circle diff`
// and `circle apply`. What differs between them is in Options (which environments, skip
// unchanged inputs, masked secret values, origin annotations, a signature policy), never
// which stages run or in what order, so no command can pass a revision the daemon refuses.
//
// Nothing here publishes, applies or writes to disk: outputs stay in memory, and secret
// values leave only inside Output.Files and Output.Manifests, which go to storage through
// the encrypting target and to clusters.
package pipeline

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"slices"
	"time"

	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/repo"
)

// The stages of Run, in order, as Options.Enter and StageError name them. StageVerify is
// entered only when Options.Verify is set, StageUnchanged only when Run stops there;
// StageInputs is never entered (it is part of deciding what to build) but names the stage
// of a StageError when the inputs cannot be read.
const (
	StageSettings  = "settings"  // circle.yaml read and validated, once
	StageVerify    = "verify"    // each environment's signature policy (Options.Verify)
	StageInputs    = "inputs"    // each environment's input digest, for Options.Unchanged
	StageUnchanged = "unchanged" // every environment unchanged: Run stops here
	StageLoad      = "load"      // layers merged, SOPS decrypted, CUE validated
	StageLicenses  = "licenses"  // license files and the revocation list verified
	StagePackages  = "packages"  // the package registry read and checked
	StageBuild     = "build"     // each environment's output, in parallel
	StageCheck     = "check"     // the manifests against Kubernetes schemas and policies
)

// Options are what differs between the callers of Run.
type Options struct {
	// Load opens the repository: SOPS keys, the redactor (one is made when nil), the
	// environments judged and built (empty: all), CUE's evaluation limit. Its Settings is
	// Run's own.
	Load repo.Options
	// Licenses verifies the license files.
	Licenses LicenseOptions
	// Now is the revision's clock (license expiry, advisories); zero means time.Now.
	Now time.Time
	// Settings is circle.yaml when the caller has read it already (a plan compares two
	// revisions' before running them); Run reads it when nil, so it is parsed once.
	Settings *repo.Settings
	// SkipMissingEnvs skips the names of Load.Envs that circle.yaml lacks instead of
	// refusing them (a plan's base, from before an environment was added); when none
	// remain, nothing is loaded or built.
	SkipMissingEnvs bool

	// Verify, when set, is the verify stage: the environments it returns are refused with
	// the reason given. They are still loaded and judged (a repository is judged whole) but
	// not built.
	Verify func(*repo.Settings) map[string]string
	// Unchanged, when set, is given each environment's input digest (Inputs) and names those
	// that need no build: their inputs are those of a build already done. They are loaded
	// and judged but not built.
	Unchanged func(inputs map[string]string) map[string]bool
	// Inputs are the input digests (Inputs) when the caller has computed them already (a
	// plan compares both revisions' before running either); Run computes them when nil and
	// Unchanged or Cache is set.
	Inputs map[string]string
	// StopUnchanged stops Run after the inputs stage when every environment not refused is
	// unchanged (Result.Stopped): nothing is loaded, verified or built. The daemon's way;
	// a plan judges the head whole anyway.
	StopUnchanged bool
	// LoadBuilt loads only the environments that will be built, not every one of Envs: the
	// base of a plan, where only what changed is compared.
	LoadBuilt bool

	// Masked renders secret values as their redaction masks: output that people read
	// (validate, render) shows the structure, and the real values need not be rendered.
	// The Secret's name suffix then differs from the applied one.
	Masked bool
	// Origins annotates each rendered object with the file it was written in, for checks
	// that point at the source (render.OriginAnnotation); never for what is applied.
	Origins bool

	// Cache, when set, keeps each environment's rendered manifests by everything they were
	// rendered from, and gives them back instead of rendering the same inputs again (a
	// forced reconcile of an unchanged revision). Its entries hold secret values: the
	// daemon keeps one in memory; never for output.
	Cache *RenderCache

	// Artifacts, when set, verifies the package artifacts stored at URLs (registry/fetch:
	// only from the sources the operator allows, or from its cache only); without it they
	// are "not fetched", as nothing a repository names is fetched unless the caller says so.
	Artifacts registry.Fetcher

	// Concurrency bounds the environments built at once (≤ 0: DefaultConcurrency).
	Concurrency int
	// Enter, when set, is called as each stage starts (env "") and as each environment's
	// build starts: the daemon records the stages in its status.
	Enter func(stage, env string)
}

// Failure is why one environment was not built: it keeps its last good revision.
type Failure struct {
	// Stage is where it failed: StageVerify, StageLicenses or StageBuild.
	Stage string `json:"stage"`
	// Message says why, redacted.
	Message string `json:"message"`
	// File and Line place the failure when the stage knows where (a kustomization field
	// the renderer refused; the overlay otherwise); File is empty for the other stages.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

// StageError is a stage failing for the whole revision: no environment takes it. Err is a
// *repo.Invalid when the repository has problems (also in Result.Problems), otherwise the
// I/O or verification error.
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string { return e.Stage + ": " + e.Err.Error() }

// Unwrap returns the stage's error.
func (e *StageError) Unwrap() error { return e.Err }

// Result is one revision run through the pipeline: what the stages found, as far as they
// went.
type Result struct {
	// Settings is circle.yaml; nil when it is invalid.
	Settings *repo.Settings
	// Repo is the loaded repository; nil when the revision stopped before, or had problems.
	Repo *repo.Repo
	// Problems are the repository's problems, at their file:line:col; a revision with any
	// is built for no environment.
	Problems []repo.Problem
	// Notes are what the check stage could not check (custom resources without their
	// CRD); they do not make the revision invalid.
	Notes []repo.Problem
	// Objects counts the objects checked, per environment.
	Objects map[string]int
	// Inputs are each environment's input digest; set when Options.Unchanged or Cache is.
	Inputs map[string]string
	// Unchanged are the environments not built because their inputs are unchanged.
	Unchanged map[string]bool
	// Stopped is true when every environment was unchanged (Options.StopUnchanged).
	Stopped bool
	// Licenses is what the licenses stage found.
	Licenses *Licenses
	// Registry is the package registry; nil without packages.
	Registry *registry.Registry
	// Outputs are the environments built, in circle.yaml's order.
	Outputs []*Output
	// Packages are the package indexes the build stage resolved, per environment, for the
	// environments that failed to build too (their packages may be why).
	Packages map[string]*registry.Index
	// Failed are the environments refused one by one, and why.
	Failed map[string]Failure
}

// Run takes one revision through every stage, in order. The returned error is a
// *StageError when a stage failed for the whole revision (problems of the repository are
// then also in the Result), and ctx's error when it was cancelled; the Result holds what
// the stages found before either, and is never nil.
//
// A stage's per-environment work runs in a Group: a panic there is raised again in Run's
// goroutine as a *Panic.
func Run(ctx context.Context, fsys fs.FS, opts Options) (*Result, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Load.Redactor == nil {
		opts.Load.Redactor = redact.New()
	}
	red := opts.Load.Redactor
	enter := func(stage string) {
		if opts.Enter != nil {
			opts.Enter(stage, "")
		}
	}
	res := &Result{Failed: map[string]Failure{}}

	enter(StageSettings)
	settings := opts.Settings
	if settings == nil {
		var problems []repo.Problem
		if settings, problems = repo.LoadSettings(fsys); problems != nil {
			res.Problems = problems
			return res, stageError(ctx, StageSettings, &repo.Invalid{Problems: problems})
		}
	}
	res.Settings = settings
	envs, err := repo.SelectEnvs(settings, opts.Load.Envs, opts.SkipMissingEnvs)
	if err != nil {
		return res, stageError(ctx, StageSettings, err)
	}

	if opts.Verify != nil {
		enter(StageVerify)
		for env, why := range opts.Verify(settings) {
			if slices.Contains(envs, env) {
				res.Failed[env] = Failure{Stage: StageVerify, Message: red.String(why)}
			}
		}
	}

	if opts.Unchanged != nil || opts.Cache != nil {
		if res.Inputs = opts.Inputs; res.Inputs == nil {
			if res.Inputs, err = Inputs(fsys, settings); err != nil {
				return res, stageError(ctx, StageInputs, err)
			}
		}
	}
	if opts.Unchanged != nil {
		res.Unchanged = map[string]bool{}
		for env, ok := range opts.Unchanged(res.Inputs) {
			if _, failed := res.Failed[env]; ok && !failed && slices.Contains(envs, env) {
				res.Unchanged[env] = true
			}
		}
		if opts.StopUnchanged && len(res.Unchanged) > 0 && len(res.Unchanged) == len(envs)-countIn(res.Failed, envs) {
			enter(StageUnchanged)
			res.Stopped = true
			return res, nil
		}
	}
	toBuild := func() []string {
		var out []string
		for _, env := range envs {
			if _, failed := res.Failed[env]; !failed && !res.Unchanged[env] {
				out = append(out, env)
			}
		}
		return out
	}

	enter(StageLoad)
	lo := opts.Load
	lo.Settings, lo.Envs = settings, envs
	if opts.LoadBuilt {
		lo.Envs = toBuild()
	}
	if len(lo.Envs) > 0 { // repo.Load takes no environments for all of them
		loaded, err := repo.Load(ctx, fsys, lo)
		if err != nil {
			var invalid *repo.Invalid
			if errors.As(err, &invalid) {
				res.Problems = invalid.Problems
			}
			return res, stageError(ctx, StageLoad, err)
		}
		res.Repo = loaded
	}

	enter(StageLicenses)
	if res.Licenses, err = CheckLicenses(fsys, settings, opts.Licenses, opts.Now); err != nil {
		return res, stageError(ctx, StageLicenses, err)
	}
	for env, why := range res.Licenses.Refused {
		if _, failed := res.Failed[env]; !failed && slices.Contains(envs, env) {
			res.Failed[env] = Failure{Stage: StageLicenses, Message: red.String(why)}
			delete(res.Unchanged, env)
		}
	}

	enter(StagePackages)
	reg, problems, err := Packages(ctx, fsys, settings, opts.Artifacts)
	if problems != nil {
		res.Problems = problems
		return res, stageError(ctx, StagePackages, &repo.Invalid{Problems: problems})
	}
	if err != nil {
		return res, stageError(ctx, StagePackages, err)
	}
	res.Registry = reg

	enter(StageBuild)
	names := toBuild()
	if res.Repo == nil {
		names = nil
	}
	outs := make([]*Output, len(names))
	indexes := make([]*registry.Index, len(names))
	errs := make([]error, len(names))
	g := NewGroup(StageBuild, opts.Concurrency, opts.Enter)
	for i, env := range names {
		e := res.Repo.Env(env)
		if e == nil {
			continue
		}
		g.Go(env, func() {
			outs[i], indexes[i], errs[i] = buildEnv(ctx, fsys, settings, e, res.Inputs[env], res.Licenses.ForEnv(env), reg, &opts)
		})
	}
	g.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.Packages = map[string]*registry.Index{}
	for i, env := range names {
		if indexes[i] != nil {
			res.Packages[env] = indexes[i]
		}
		if errs[i] != nil {
			res.Failed[env] = buildFailure(settings, env, errs[i], red)
		}
		if outs[i] != nil {
			res.Outputs = append(res.Outputs, outs[i])
		}
	}

	enter(StageCheck)
	chk, err := checkManifests(fsys, settings, res.Repo, res.Outputs, red, opts.Origins)
	if err != nil {
		return res, stageError(ctx, StageCheck, err)
	}
	res.Problems, res.Notes, res.Objects = chk.problems, chk.notes, chk.objects
	if len(res.Problems) > 0 {
		return res, stageError(ctx, StageCheck, &repo.Invalid{Problems: res.Problems})
	}
	return res, nil
}

// stageError is stage failing the revision with err, or ctx's error when it was cancelled:
// a shutdown half-way through a load is not an invalid revision.
func stageError(ctx context.Context, stage string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &StageError{Stage: stage, Err: err}
}

// Output returns env's output, or nil when it was not built.
func (r *Result) Output(env string) *Output {
	for _, o := range r.Outputs {
		if o.Env == env {
			return o
		}
	}
	return nil
}

// buildFailure places a failed build: at the kustomization field the renderer refused,
// else at the overlay.
func buildFailure(s *repo.Settings, env string, err error, red *redact.Redactor) Failure {
	f := Failure{Stage: StageBuild, Message: red.String(err.Error()), File: path.Join(s.Paths.Manifests, env)}
	if fe := (*render.FieldError)(nil); errors.As(err, &fe) {
		f.File, f.Line = fe.File, fe.Line
	}
	return f
}

// countIn counts the environments of envs that m holds.
func countIn(m map[string]Failure, envs []string) int {
	n := 0
	for _, e := range envs {
		if _, ok := m[e]; ok {
			n++
		}
	}
	return n
}
