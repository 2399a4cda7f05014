package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/fluxcd/pkg/ssa/utils"
	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/schema"
)

// checkServerSide is the check name of problems the API server found in a dry run.
const checkServerSide = "server-side"

// dryRun sends every object of every environment to the cluster in a server-side dry run
// (apply.Applier.DryRun), and reports each refusal, and each object not tried, at the file
// the object was written in.
func (o *validateOptions) dryRun(ctx context.Context, envs []*pipeline.Output, red *redact.Redactor, problems, notes *repo.ProblemSet) error {
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
		if e.Manifests == nil {
			continue // no overlay: nothing to deploy to a cluster
		}
		objects, err := utils.ReadObjects(bytes.NewReader(e.Manifests))
		if err != nil {
			return fmt.Errorf("--server-side %s: %w", e.Env, err)
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
		verdicts, err := a.DryRun(ctx, e.Env, objects, red.Mask)
		if err != nil {
			return fmt.Errorf("--server-side: %w", red.Error(err))
		}
		for k, v := range verdicts {
			subject := objects[k].GetKind() + "/" + objects[k].GetName()
			switch {
			case v.NotTried != "":
				notes.Add(e.Env, schema.Issue{File: files[k], Path: subject, Message: "not dry-run: " + v.NotTried + " [" + checkServerSide + "]"})
			case v.Refused != nil:
				problems.Add(e.Env, schema.Issue{File: files[k], Path: subject, Message: red.String(v.Refused.Error()) + " [" + checkServerSide + "]"})
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
