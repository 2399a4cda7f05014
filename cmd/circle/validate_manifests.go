package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/utils"
	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

// dryRun applies every object of every environment to the cluster in a server-side dry
// run, one at a time so each refusal is reported with its object. The cluster is only
// read: apply.Applier.Diff changes nothing.
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
		// What the same manifests create cannot be in the cluster yet: objects in a new
		// namespace, or of a kind a CRD of theirs defines, are not dry-run.
		created, defined := map[string]bool{}, map[string]bool{}
		for _, obj := range objects {
			switch obj.GroupVersionKind().GroupKind().String() {
			case "Namespace":
				created[obj.GetName()] = true
			case "CustomResourceDefinition.apiextensions.k8s.io":
				group, _, _ := unstructured.NestedString(obj.Object, "spec", "group")
				kind, _, _ := unstructured.NestedString(obj.Object, "spec", "names", "kind")
				defined[kind+"."+group] = true
			}
		}
		for _, obj := range objects {
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
			file := origin.Path
			if file == "" && !strings.HasPrefix(origin.ConfiguredIn, render.GeneratedDir+"/") {
				file = origin.ConfiguredIn
			}
			doc, err := yaml.Marshal(obj.Object)
			if err != nil {
				return err
			}
			subject := obj.GetKind() + "/" + obj.GetName()
			_, err = a.Diff(ctx, e.Name, doc, apply.Options{}, red.Mask)
			var refused *ssaerrors.DryRunErr
			switch {
			case err == nil:
			case errors.As(err, &refused) && apierrors.IsNotFound(refused.Unwrap()) && created[obj.GetNamespace()]:
				notes.add(e.Name, schema.Issue{File: file, Path: subject, Message: fmt.Sprintf(
					"not dry-run: its namespace %s does not exist yet (these manifests create it) [%s]", obj.GetNamespace(), checkServerSide)})
			case errors.As(err, &refused) && defined[obj.GroupVersionKind().GroupKind().String()] &&
				(meta.IsNoMatchError(refused.Unwrap()) || strings.Contains(refused.Unwrap().Error(), "no matches for kind")):
				notes.add(e.Name, schema.Issue{File: file, Path: subject, Message: fmt.Sprintf(
					"not dry-run: its kind is not in the cluster yet (a CustomResourceDefinition of these manifests defines it) [%s]", checkServerSide)})
			case errors.As(err, &refused):
				problems.add(e.Name, schema.Issue{File: file, Path: subject, Message: red.String(refused.Unwrap().Error()) + " [" + checkServerSide + "]"})
			default:
				return fmt.Errorf("--server-side: %w", red.Error(err))
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
