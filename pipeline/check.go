package pipeline

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/circlecore/circle/kubecheck"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/schema"
)

// ManifestPolicy is env's manifest policy: the manifests package's defaults, overridden by
// circle.yaml's environments[].policy.manifests.
func ManifestPolicy(s *repo.Settings, env string) kubecheck.Policy {
	p := kubecheck.DefaultPolicy(env)
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

// checked is what the check stage found.
type checked struct {
	problems, notes []repo.Problem
	objects         map[string]int
}

// checkManifests is the check stage: the built environments' manifests offline, against
// the Kubernetes schemas and each environment's policy (Ingress hosts across them), the
// problems as the repository's, masked, one per distinct message with every environment
// that has it (a base shared by three overlays reports its problem once).
//
// The daemon's outputs carry no origin annotations (they would be applied), so a problem
// is at its line in the rendered stream, which `circle render` shows; with origins (validate),
// at the line of the file the object was written in.
func checkManifests(fsys fs.FS, s *repo.Settings, r *repo.Repo, outs []*Output, red *redact.Redactor, origins bool) (*checked, error) {
	var envs []kubecheck.Environment
	for _, o := range outs {
		if o.Manifests != nil {
			envs = append(envs, kubecheck.Environment{Name: o.Env, Manifests: o.Manifests,
				Source: path.Join(s.Paths.Manifests, o.Env) + " (rendered)", Policy: ManifestPolicy(s, o.Env)})
		}
	}
	if len(envs) == 0 {
		return &checked{}, nil
	}
	mo := kubecheck.Options{GeneratedDir: render.GeneratedDir, Generated: render.IsGenerated}
	if origins {
		mo.FS = fsys
	}
	rep, err := kubecheck.Check(envs, mo)
	if err != nil {
		return nil, fmt.Errorf("check manifests: %w", err)
	}
	var problems, notes repo.ProblemSet
	for _, p := range rep.Problems {
		placeGenerated(&p, r)
		problems.Add(p.Env, issueOf(p, red))
	}
	for _, p := range rep.Notes {
		notes.Add(p.Env, issueOf(p, red))
	}
	return &checked{problems: problems.List(), notes: notes.List(), objects: rep.Objects}, nil
}

// issueOf is a manifest problem as the repository's problems print, masked.
func issueOf(p kubecheck.Problem, red *redact.Redactor) schema.Issue {
	return schema.Issue{File: p.File, Line: p.Line, Column: p.Column, Path: red.String(p.Where()),
		Message: red.String(p.Message) + " [" + p.Check + "]"}
}

// placeGenerated moves a problem about a claim or Ingress that the configuration's
// kubernetes key generated to the line of the configuration that set it (an Ingress's
// host, a claim's size): that is the file a user edits, not the rendered stream.
func placeGenerated(p *kubecheck.Problem, r *repo.Repo) {
	if r == nil {
		return
	}
	e := r.Env(p.Env)
	if e == nil {
		return
	}
	kind, name, _ := strings.Cut(p.Object, "/")
	field := map[string]string{"Ingress": "ingresses." + name + ".host", "PersistentVolumeClaim": "volumes." + name + ".size"}[kind]
	if field == "" {
		return
	}
	if o, ok := e.KubernetesOrigin(field); ok {
		p.File, p.Line, p.Column = o.File, o.Line, o.Column
	}
}
