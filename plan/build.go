package plan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/circlecore/circle/build"
	"github.com/circlecore/circle/repo"
)

// BuildOptions are what Build needs beyond the two trees.
type BuildOptions struct {
	// Load opens both revisions. Its Redactor must be set and is shared, so masks compare
	// across the revisions; its Envs restrict the plan (empty: all).
	Load repo.Options
	// Licenses verifies license files at both revisions.
	Licenses build.LicenseOptions
	// Now is both builds' clock; zero means time.Now.
	Now time.Time
	// Full builds every environment at both revisions, even those whose inputs are the
	// same.
	Full bool
}

// Builds are two revisions built for a plan.
type Builds struct {
	Base, Head *build.Result
	// Unchanged are the environments whose inputs (build.Inputs: every file their build
	// reads) are the same at both revisions. Like the daemon, Build does not build them:
	// the same files and the same clock build the same output.
	Unchanged []string
}

// Build builds base and head for Compare with the daemon's stages, in the daemon's order:
// circle.yaml, inputs (unchanged environments skipped), load and validate every
// environment (a repository is judged whole), licenses, packages, then each environment
// that changed. Both revisions are built at once, environments in parallel up to
// GOMAXPROCS: on a large repository, kustomize is most of a plan's time.
//
// Problems of a revision are in its Result; the error is for I/O and for Envs naming an
// environment neither revision has.
func Build(ctx context.Context, base, head fs.FS, opts BuildOptions) (*Builds, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	var err error
	if base, err = newIndexFS(base); err != nil {
		return nil, err
	}
	if head, err = newIndexFS(head); err != nil {
		return nil, err
	}
	bs, _ := repo.LoadSettings(base)
	hs, _ := repo.LoadSettings(head)
	out := &Builds{}
	if hs != nil {
		if err := checkEnvs(opts.Load.Envs, bs, hs); err != nil {
			return nil, err
		}
	}
	changed := func(s *repo.Settings) []string { return envsOf(s, opts.Load.Envs) }
	if bs != nil && hs != nil && !opts.Full {
		bi, err := build.Inputs(base, bs)
		if err != nil {
			return nil, err
		}
		hi, err := build.Inputs(head, hs)
		if err != nil {
			return nil, err
		}
		skip := map[string]bool{}
		for _, env := range envsOf(hs, opts.Load.Envs) {
			if d, ok := bi[env]; ok && d == hi[env] {
				skip[env] = true
				out.Unchanged = append(out.Unchanged, env)
			}
		}
		changed = func(s *repo.Settings) []string {
			var out []string
			for _, env := range envsOf(s, opts.Load.Envs) {
				if !skip[env] {
					out = append(out, env)
				}
			}
			return out
		}
	}
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	var errs [2]error
	var results [2]*build.Result
	for i, side := range []struct {
		fsys fs.FS
		s    *repo.Settings
	}{{base, bs}, {head, hs}} {
		wg.Go(func() {
			// Head is loaded whole so a problem in an unchanged environment still shows;
			// base only for the environments compared.
			load := envsOf(side.s, opts.Load.Envs)
			if i == 0 {
				load = changed(side.s)
			}
			results[i], errs[i] = revision(ctx, side.fsys, opts, load, changed(side.s), sem)
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	out.Base, out.Head = results[0], results[1]
	return out, nil
}

// checkEnvs refuses an environment that neither revision lists.
func checkEnvs(want []string, base, head *repo.Settings) error {
	for _, w := range want {
		if !contains(head.EnvNames(), w) && (base == nil || !contains(base.EnvNames(), w)) {
			return fmt.Errorf("environment %q is in neither revision's %s (head has %s)", w, repo.SettingsFile, strings.Join(head.EnvNames(), ", "))
		}
	}
	return nil
}

// envsOf is s's environments, restricted to want when it is set; nil for a nil s.
func envsOf(s *repo.Settings, want []string) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, n := range s.EnvNames() {
		if len(want) == 0 || contains(want, n) {
			out = append(out, n)
		}
	}
	return out
}

// revision is build.Revision with the daemon's skipping: load (and validate) the
// environments in load, build those in changed, and check what was built. An empty load loads nothing, where
// repo.Options.Envs would take it for all.
func revision(ctx context.Context, fsys fs.FS, opts BuildOptions, load, changed []string, sem chan struct{}) (*build.Result, error) {
	res := &build.Result{Failed: map[string]string{}}
	settings, problems := repo.LoadSettings(fsys)
	if problems != nil {
		res.Problems = problems
		return res, nil
	}
	res.Settings = settings
	if len(load) > 0 {
		lo := opts.Load
		lo.Envs, lo.Settings = load, settings
		loaded, err := repo.Load(ctx, fsys, lo)
		var invalid *repo.Invalid
		if errors.As(err, &invalid) {
			res.Problems = invalid.Problems
			return res, nil
		}
		if err != nil {
			return nil, err
		}
		res.Repo = loaded
	}
	var err error
	if res.Licenses, err = build.CheckLicenses(fsys, settings, opts.Licenses, opts.Now); err != nil {
		return nil, err
	}
	reg, problems, err := build.Packages(ctx, fsys, settings)
	if problems != nil {
		res.Problems = problems
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	res.Registry = reg
	if res.Repo == nil {
		return res, nil
	}
	red := res.Repo.Redactor()
	outs := make([]*build.Output, len(changed))
	fails := make([]string, len(changed))
	var wg sync.WaitGroup
	for i, name := range changed {
		if why, ok := res.Licenses.Refused[name]; ok {
			fails[i] = red.String(why)
			continue
		}
		e := res.Repo.Env(name)
		if e == nil {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out, err := build.Env(ctx, fsys, settings, e, res.Licenses.ForEnv(name), reg, opts.Now)
			if err != nil {
				fails[i] = red.String(err.Error())
				return
			}
			outs[i] = out
		})
	}
	wg.Wait()
	for i, name := range changed {
		if fails[i] != "" {
			res.Failed[name] = fails[i]
		}
		if outs[i] != nil {
			res.Outputs = append(res.Outputs, outs[i])
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The daemon's check stage: a manifest that breaks the Kubernetes schemas or an
	// environment's policy is a problem of the revision, which no environment takes.
	if res.Problems, err = build.CheckManifests(settings, res.Outputs, red); err != nil {
		return nil, err
	}
	return res, nil
}
