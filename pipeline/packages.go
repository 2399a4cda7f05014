package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/schema"
	"github.com/circlecore/circle/storage/publish"
)

// Packages reads the repository's package registry (manifests, environments.yaml, locks,
// advisories), checked. A repository without a packages folder has none. Problems in the
// manifests are the repository's problems: the revision is invalid. That includes an
// artifact the fetcher (nil: none) refused or found different from its manifest, so every
// environment keeps its last good revision.
func Packages(ctx context.Context, fsys fs.FS, s *repo.Settings, fetcher registry.Fetcher) (*registry.Registry, []repo.Problem, error) {
	if _, err := fs.Stat(fsys, s.Paths.Packages); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	reg, err := registry.Load(ctx, fsys, registry.Options{Packages: s.Paths.Packages, Advisories: s.Paths.Advisories, Environments: s.EnvNames(), Fetcher: fetcher})
	var issues schema.Issues
	if errors.As(err, &issues) {
		problems := make([]repo.Problem, len(issues))
		for i, is := range issues {
			problems[i] = repo.Problem{Issue: is}
		}
		return nil, problems, err
	}
	return reg, nil, err
}

// packageBuild resolves env's packages and scans them under its policies. A requirement
// set that does not resolve, or a scan that fails the policy, fails the build (closed):
// the environment stays on its last good revision. Otherwise the build carries the
// environment's package index (resolution, lock, scan, every version).
func packageBuild(ctx context.Context, reg *registry.Registry, env string, now time.Time) (*registry.Index, []publish.File, error) {
	if reg == nil {
		return nil, nil, nil
	}
	ix, err := reg.Index(ctx, env, now)
	if err != nil {
		return nil, nil, fmt.Errorf("packages: %w", err)
	}
	if !ix.Resolved {
		return ix, nil, fmt.Errorf("packages do not resolve: %s", ix.Explanation)
	}
	if ix.Report != nil && ix.Report.Failed {
		var why []string
		for _, f := range ix.Report.Vulnerabilities {
			if f.Fails {
				why = append(why, fmt.Sprintf("%s@%s: %s (%s)", f.Package, f.Version, f.Advisory, f.Reason))
			}
		}
		for _, l := range ix.Report.Licenses {
			if !l.OK {
				why = append(why, fmt.Sprintf("%s@%s: license %s (%s)", l.Package, l.Version, l.License, l.Reason))
			}
		}
		return ix, nil, fmt.Errorf("packages fail the %s policy: %s", env, strings.Join(why, "; "))
	}
	return ix, []publish.File{{Path: "packages/index.json", Data: ix.JSON(), ContentType: "application/json"}}, nil
}
