package plan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/repo"
)

// BuildOptions are what Build needs beyond the two trees.
type BuildOptions struct {
	// Load opens both revisions. Its Redactor must be set and is shared, so masks compare
	// across the revisions; its Envs restrict the plan (empty: all).
	Load repo.Options
	// Licenses verifies license files at both revisions.
	Licenses pipeline.LicenseOptions
	// Now is both builds' clock; zero means time.Now.
	Now time.Time
	// Full builds every environment at both revisions, even those whose inputs are the
	// same.
	Full bool
	// Artifacts verifies url: artifacts at both revisions (from its cache, or fetched from
	// the allowed sources); nil leaves them "not fetched".
	Artifacts registry.Fetcher
}

// Builds are two revisions built for a plan.
type Builds struct {
	Base, Head *pipeline.Result
	// Unchanged are the environments whose inputs (pipeline.Inputs: every file their build
	// reads) are the same at both revisions. Like the daemon, Build does not build them:
	// the same files and the same clock build the same output.
	Unchanged []string
	// SecretsChanged are, per environment, the secrets files that differ between the
	// revisions (for Options.SecretsChanged).
	SecretsChanged map[string][]string
}

// Build runs base and head through the daemon's pipeline (pipeline.Run) for Compare: each
// environment whose inputs (pipeline.Inputs: every file its build reads) are the same at
// both revisions is judged but not built, as the daemon skips it. The head is judged whole,
// so a problem in an unchanged environment still shows; the base loads only what it
// builds. Both revisions run at once, each with its environments in parallel up to
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
	// circle.yaml is read here, once per revision, and handed to the pipeline: the inputs
	// of both are compared before either runs.
	bs, _ := repo.LoadSettings(base)
	hs, _ := repo.LoadSettings(head)
	out := &Builds{}
	if hs != nil {
		if err := checkEnvs(opts.Load.Envs, bs, hs); err != nil {
			return nil, err
		}
	}
	skip := map[string]bool{}
	var inputs [2]map[string]string // base's and head's, computed once and handed to the pipeline
	if bs != nil && hs != nil && !opts.Full {
		bi, err := pipeline.Inputs(base, bs)
		if err != nil {
			return nil, err
		}
		hi, err := pipeline.Inputs(head, hs)
		if err != nil {
			return nil, err
		}
		inputs = [2]map[string]string{bi, hi}
		for _, env := range envsOf(hs, opts.Load.Envs) {
			if d, ok := bi[env]; ok && d == hi[env] {
				skip[env] = true
				out.Unchanged = append(out.Unchanged, env)
			}
		}
	}
	var errs [2]error
	var results [2]*pipeline.Result
	var wg sync.WaitGroup
	for i, side := range []struct {
		fsys fs.FS
		s    *repo.Settings
	}{{base, bs}, {head, hs}} {
		wg.Go(func() {
			po := pipeline.Options{Load: opts.Load, Licenses: opts.Licenses, Now: opts.Now, Settings: side.s, Artifacts: opts.Artifacts,
				SkipMissingEnvs: true, LoadBuilt: i == 0, Concurrency: runtime.GOMAXPROCS(0),
			}
			if len(skip) > 0 {
				po.Unchanged = func(map[string]string) map[string]bool { return skip }
				po.Inputs = inputs[i]
			}
			res, err := pipeline.Run(ctx, side.fsys, po)
			// A revision's problems are what the plan shows; anything else stops it.
			if _, invalid := errors.AsType[*repo.Invalid](err); err != nil && !invalid {
				errs[i] = err
			}
			results[i] = res
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	out.Base, out.Head = results[0], results[1]
	if out.SecretsChanged, err = secretsChanged(base, head, bs, hs, envsOf(hs, opts.Load.Envs)); err != nil {
		return nil, err
	}
	return out, nil
}

// checkEnvs refuses an environment that neither revision lists.
func checkEnvs(want []string, base, head *repo.Settings) error {
	for _, w := range want {
		if !slices.Contains(head.EnvNames(), w) && (base == nil || !slices.Contains(base.EnvNames(), w)) {
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
	envs, _ := repo.SelectEnvs(s, want, true) // with skipMissing, never an error
	return envs
}
