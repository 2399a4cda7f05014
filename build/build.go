// Package build is the build stage of the flow: from a loaded revision of the repository to
// each environment's output — its merged configuration, the license files it carries, its
// resolved and scanned package index, and its rendered manifests with the generated
// ConfigMap and Secrets.
//
// The daemon and `circle plan` both build through this package, step by step (Licenses,
// Packages, Env) or all at once (Revision), so a plan shows what the daemon would do.
// Nothing here publishes, applies or writes to disk: outputs stay in memory, and secret
// values leave only inside Files, which go to storage through the encrypting target.
package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/storage/publish"
)

// Output is one environment's build.
type Output struct {
	Env string
	// Files are what the publish stage writes, in a stable order: config.json, the
	// license files, manifests.yaml when the environment has an overlay, and
	// packages/index.json when the repository has packages.
	Files []publish.File
	// Manifests is manifests.yaml's content, nil when the environment has no overlay.
	Manifests []byte
	// Packages is the environment's package index, nil without packages.
	Packages *registry.Index
}

// File returns the output file at p, or nil.
func (o *Output) File(p string) *publish.File {
	for i := range o.Files {
		if o.Files[i].Path == p {
			return &o.Files[i]
		}
	}
	return nil
}

// Env builds one environment of a loaded revision. lics are the license files that apply
// to it (Licenses.ForEnv); reg is the revision's package registry (nil for none); now
// decides advisory withdrawals and allow-list expiry. A build fails closed: packages that
// do not resolve or fail the environment's policy, or an overlay that does not render,
// are an error, and the environment keeps its last good revision.
func Env(ctx context.Context, fsys fs.FS, s *repo.Settings, e *repo.Env, lics []publish.File, reg *registry.Registry, now time.Time) (*Output, error) {
	cfg, err := json.MarshalIndent(e.Config, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", e.Name, err)
	}
	out := &Output{Env: e.Name, Files: []publish.File{{Path: "config.json", Data: append(cfg, '\n'), ContentType: "application/json"}}}
	out.Files = append(out.Files, lics...)

	if _, err := fs.Stat(fsys, path.Join(s.Paths.Manifests, e.Name)); err == nil {
		var licSecret map[string][]byte
		for _, f := range lics {
			if licSecret == nil {
				licSecret = map[string][]byte{}
			}
			licSecret[path.Base(f.Path)] = f.Data
		}
		plain, sensitive := e.Split()
		y, err := render.Render(render.Input{FS: fsys, Manifests: s.Paths.Manifests, Env: e.Name, Namespace: s.Namespace(e.Name), Config: plain, Secrets: sensitive, Licenses: licSecret})
		if err != nil {
			return nil, err
		}
		out.Manifests = y
		out.Files = append(out.Files, publish.File{Path: "manifests.yaml", Data: y, ContentType: "application/yaml"})
	}

	ix, pkgs, err := packageBuild(ctx, reg, e.Name, now)
	if err != nil {
		return nil, err
	}
	out.Packages = ix
	out.Files = append(out.Files, pkgs...)
	return out, nil
}

// Options are what Revision needs beyond the repository.
type Options struct {
	// Load opens the repository (SOPS keys, redactor, environments).
	Load repo.Options
	// Licenses verifies the license files.
	Licenses LicenseOptions
	// Now is the build's clock; zero means time.Now.
	Now time.Time
}

// Result is a whole revision built: what `circle plan` compares between two revisions.
type Result struct {
	// Settings is circle.yaml; nil when it is invalid.
	Settings *repo.Settings
	// Repo is the loaded repository; nil when it has problems.
	Repo *repo.Repo
	// Problems are the repository's problems, at their file:line:col; a revision with
	// any is built for no environment.
	Problems []repo.Problem
	// Licenses is what the licenses step found.
	Licenses *Licenses
	// Registry is the package registry; nil without packages.
	Registry *registry.Registry
	// Outputs are the environments built, in circle.yaml's order.
	Outputs []*Output
	// Failed is why each environment that did not build failed (a refused license, an
	// unresolvable package set, an overlay that does not render), redacted.
	Failed map[string]string
}

// Revision runs every build step over fsys, as the daemon does after its verify stage: load
// and validate, licenses, packages, each environment, then the manifests check. Problems of
// the repository are in the Result, not an error; the error is for I/O.
func Revision(ctx context.Context, fsys fs.FS, opts Options) (*Result, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	res := &Result{Failed: map[string]string{}}
	settings, problems := repo.LoadSettings(fsys)
	if problems != nil {
		res.Problems = problems
		return res, nil
	}
	res.Settings = settings
	loaded, err := repo.Load(ctx, fsys, opts.Load)
	var invalid *repo.Invalid
	if errors.As(err, &invalid) {
		res.Problems = invalid.Problems
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	res.Repo, res.Settings = loaded, loaded.Settings
	red := loaded.Redactor()

	if res.Licenses, err = CheckLicenses(fsys, loaded.Settings, opts.Licenses, now); err != nil {
		return nil, err
	}
	reg, problems, err := Packages(ctx, fsys, loaded.Settings)
	if problems != nil {
		res.Problems = problems
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	res.Registry = reg

	for _, name := range loadedEnvs(loaded) {
		if why, ok := res.Licenses.Refused[name]; ok {
			res.Failed[name] = red.String(why)
			continue
		}
		out, err := Env(ctx, fsys, loaded.Settings, loaded.Env(name), res.Licenses.ForEnv(name), reg, now)
		if err != nil {
			res.Failed[name] = red.String(err.Error())
			continue
		}
		res.Outputs = append(res.Outputs, out)
	}
	problems, err = CheckManifests(loaded.Settings, res.Outputs, red)
	if err != nil {
		return nil, err
	}
	res.Problems = problems
	return res, nil
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

// loadedEnvs are the environments Load loaded, in circle.yaml's order.
func loadedEnvs(r *repo.Repo) []string {
	var out []string
	for _, name := range r.Settings.EnvNames() {
		if r.Env(name) != nil {
			out = append(out, name)
		}
	}
	return out
}
