package build

import (
	"fmt"
	"path"

	"github.com/circlecore/circle/manifests"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/schema"
)

// ManifestPolicy is env's manifest policy: the manifests package's defaults, overridden by
// circle.yaml's environments[].policy.manifests.
func ManifestPolicy(s *repo.Settings, env string) manifests.Policy {
	p := manifests.DefaultPolicy(env)
	for _, e := range s.Environments {
		if e.Name != env || e.Policy == nil || e.Policy.Manifests == nil {
			continue
		}
		mp := e.Policy.Manifests
		if mp.RequiredLabels != nil {
			p.RequiredLabels = mp.RequiredLabels
		}
		if mp.DenyLatestTag != nil {
			p.DenyLatestTag = *mp.DenyLatestTag
		}
		p.Disabled = mp.Disable
	}
	return p
}

// CheckManifests checks the built environments' manifests offline (schemas and policies,
// Ingress hosts across them) and returns the problems as the repository's, masked. The
// daemon's outputs carry no origin annotations (they would be applied), so a problem is at
// its line in the rendered stream, which `circle render` shows and `circle validate` maps
// back to the file.
func CheckManifests(s *repo.Settings, outs []*Output, red *redact.Redactor) ([]repo.Problem, error) {
	var envs []manifests.Environment
	for _, o := range outs {
		if o.Manifests != nil {
			envs = append(envs, manifests.Environment{Name: o.Env, Manifests: o.Manifests,
				Source: path.Join(s.Paths.Manifests, o.Env) + " (rendered)", Policy: ManifestPolicy(s, o.Env)})
		}
	}
	if len(envs) == 0 {
		return nil, nil
	}
	rep, err := manifests.Check(envs, manifests.Options{GeneratedDir: render.GeneratedDir, Generated: render.IsGenerated})
	if err != nil {
		return nil, fmt.Errorf("check manifests: %w", err)
	}
	out := make([]repo.Problem, len(rep.Problems))
	for i, p := range rep.Problems {
		out[i] = repo.Problem{Issue: schema.Issue{File: p.File, Line: p.Line, Column: p.Column, Path: red.String(p.Where()),
			Message: red.String(p.Message) + " [" + p.Check + "]"}, Envs: []string{p.Env}}
	}
	return out, nil
}
