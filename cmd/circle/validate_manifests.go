package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/fluxcd/pkg/ssa/utils"
	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/build"
	"github.com/circlecore/circle/manifests"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/schema"
	"github.com/circlecore/circle/sources"
)

// checkServerSide is the check name of problems the API server found in a dry run.
const checkServerSide = "server-side"

// manifestResult is what validate learned from the rendered manifests.
type manifestResult struct {
	problems, notes []repo.Problem
	objects         map[string]int // objects per environment
}

// merger turns problems into repo.Problems, one per distinct message, listing every
// environment that has it: a base shared by three overlays reports its problem once.
type merger struct {
	list  []repo.Problem
	index map[string]int
}

func (m *merger) add(env string, is schema.Issue) {
	key := is.String()
	if i, ok := m.index[key]; ok {
		m.list[i].Envs = append(m.list[i].Envs, env)
		return
	}
	if m.index == nil {
		m.index = map[string]int{}
	}
	m.index[key] = len(m.list)
	m.list = append(m.list, repo.Problem{Issue: is, Envs: []string{env}})
}

// issueOf is a manifest problem as the config problems print, masked.
func issueOf(p manifests.Problem, red *redact.Redactor) schema.Issue {
	return schema.Issue{File: p.File, Line: p.Line, Column: p.Column, Path: red.String(p.Where()),
		Message: red.String(p.Message) + " [" + p.Check + "]"}
}

// checkManifests renders every loaded environment that has an overlay, as the daemon
// does but with masked secret values (the structure is what is checked; real values need
// never be in memory here) and with origin annotations, and checks the results.
func (o *validateOptions) checkManifests(ctx context.Context, snap *sources.Snapshot, r *repo.Repo, red *redact.Redactor) (*manifestResult, error) {
	res := &manifestResult{}
	var problems, notes merger
	var envs []manifests.Environment
	dir := r.Settings.Paths.Manifests
	for _, e := range r.Envs {
		overlay := path.Join(dir, e.Name)
		if _, err := fs.Stat(snap.FS, overlay); err != nil {
			continue // no overlay: nothing to deploy to a cluster
		}
		plain, sensitive := e.Split()
		y, err := render.Render(render.Input{FS: snap.FS, Manifests: dir, Env: e.Name, Namespace: r.Settings.Namespace(e.Name),
			Config: plain, Secrets: masked(sensitive, red), Origins: true})
		if err != nil {
			issue := schema.Issue{File: overlay, Message: red.String(err.Error())}
			// A kustomization field render refused is placed where it was written.
			if fe := (*render.FieldError)(nil); errors.As(err, &fe) {
				issue.File, issue.Line = fe.File, fe.Line
			}
			problems.add(e.Name, issue)
			continue
		}
		envs = append(envs, manifests.Environment{Name: e.Name, Manifests: y, Source: overlay + " (rendered)", Policy: build.ManifestPolicy(r.Settings, e.Name)})
	}
	rep, err := manifests.Check(envs, manifests.Options{FS: snap.FS, GeneratedDir: render.GeneratedDir})
	if err != nil {
		return nil, err
	}
	for _, p := range rep.Problems {
		problems.add(p.Env, issueOf(p, red))
	}
	for _, p := range rep.Notes {
		notes.add(p.Env, issueOf(p, red))
	}
	res.objects = rep.Objects
	if o.serverSide && len(envs) > 0 {
		if err := o.dryRun(ctx, envs, red, &problems, &notes); err != nil {
			return nil, err
		}
	}
	res.problems, res.notes = problems.list, notes.list
	return res, nil
}

// dryRun sends every object of every environment to the cluster in a server-side dry run
// (apply.Applier.DryRun), and reports each refusal, and each object not tried, at the file
// the object was written in.
func (o *validateOptions) dryRun(ctx context.Context, envs []manifests.Environment, red *redact.Redactor, problems, notes *merger) error {
	cfg, err := apply.RESTConfig(o.keys.kubeconfig, o.kctx)
	if err != nil {
		return fmt.Errorf("--server-side: kubeconfig: %w", err)
	}
	// controller-runtime, under apply, prints a stack trace to stderr unless given a
	// logger; validate reports what matters itself.
	ctrllog.SetLogger(logr.Discard())
	a, err := apply.New(cfg)
	if err != nil {
		return fmt.Errorf("--server-side: %w", err)
	}
	for _, e := range envs {
		objects, err := utils.ReadObjects(bytes.NewReader(e.Manifests))
		if err != nil {
			return fmt.Errorf("--server-side %s: %w", e.Name, err)
		}
		files := make([]string, len(objects))
		for k, obj := range objects {
			// The origin annotation is for this check, not for the cluster.
			var origin struct {
				Path         string `json:"path"`
				ConfiguredIn string `json:"configuredIn"`
			}
			ann := obj.GetAnnotations()
			_ = yaml.Unmarshal([]byte(ann[render.OriginAnnotation]), &origin)
			delete(ann, render.OriginAnnotation)
			if len(ann) == 0 {
				ann = nil
			}
			obj.SetAnnotations(ann)
			files[k] = origin.Path
			if files[k] == "" && !strings.HasPrefix(origin.ConfiguredIn, render.GeneratedDir+"/") {
				files[k] = origin.ConfiguredIn
			}
		}
		verdicts, err := a.DryRun(ctx, e.Name, objects, red.Mask)
		if err != nil {
			return fmt.Errorf("--server-side: %w", red.Error(err))
		}
		for k, v := range verdicts {
			subject := objects[k].GetKind() + "/" + objects[k].GetName()
			switch {
			case v.NotTried != "":
				notes.add(e.Name, schema.Issue{File: files[k], Path: subject, Message: "not dry-run: " + v.NotTried + " [" + checkServerSide + "]"})
			case v.Refused != nil:
				problems.add(e.Name, schema.Issue{File: files[k], Path: subject, Message: red.String(v.Refused.Error()) + " [" + checkServerSide + "]"})
			}
		}
	}
	return nil
}

// notesText lists what was not checked, after the verdict.
func notesText(notes []repo.Problem) string {
	var b strings.Builder
	for _, n := range notes {
		b.WriteString("note: " + n.String() + "\n")
	}
	return b.String()
}
