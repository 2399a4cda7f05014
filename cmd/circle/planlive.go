package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/plan"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/publish"
)

// liveFlags say where the targets a live plan reads are: the cluster targets as circle
// serve names them, and the publish URL with its keyring.
type liveFlags struct {
	live           bool
	clusters       []string
	inventoryNS    string
	publish        string
	storageKeyring storageFlags
}

// runLive plans the head against what the targets hold now (circle plan --live).
func (o *planOptions) runLive(ctx context.Context, path string) (*plan.Plan, error) {
	head, headName, err := o.headSnapshot(ctx, path)
	if err != nil {
		return nil, err
	}
	ring, err := o.keys.keyring(ctx)
	if err != nil {
		return nil, err
	}
	red, err := o.redactor()
	if err != nil {
		return nil, err
	}
	// Real values: the dry run must see what the apply would send. What is shown is masked.
	res, err := pipeline.Run(ctx, head.FS, pipeline.Options{Load: repo.Options{Keyring: ring, Redactor: red, Envs: o.envs}, Now: planNow()})
	if _, invalid := errors.AsType[*repo.Invalid](err); err != nil && !invalid {
		return nil, red.Error(err)
	}
	clusters := map[string]*apply.Applier{}
	for _, c := range o.live.clusters {
		name, cfg, err := clusterConfig(c)
		if err != nil {
			return nil, err
		}
		if clusters[name], err = apply.New(cfg); err != nil {
			return nil, fmt.Errorf("--cluster %s: %w", name, err)
		}
	}
	var target *publish.Target
	if o.live.publish != "" {
		o.live.storageKeyring.keys = o.keys // a SOPS-sealed keyring opens with the plan's keys
		store, err := o.live.storageKeyring.open(ctx, o.live.publish, false)
		if err != nil {
			return nil, fmt.Errorf("--publish %s: %w", storage.Redacted(o.live.publish), err)
		}
		defer store.Backend().Close()
		target = publish.New(store, "")
	}
	live := map[string]*plan.Live{}
	if res.Settings != nil {
		for _, t := range res.Settings.Targets {
			for _, env := range t.Environments {
				out := res.Output(env)
				if out == nil {
					continue
				}
				l := live[env]
				if l == nil {
					l = &plan.Live{Clusters: map[string][]apply.LiveObject{}, Errors: map[string]string{}}
					live[env] = l
				}
				switch {
				case t.Kind == "cluster" && clusters[t.Name] != nil && out.Manifests != nil:
					objs, err := clusters[t.Name].Live(ctx, env, out.Manifests, apply.Options{InventoryNamespace: o.live.inventoryNS, Prune: true})
					if err != nil {
						l.Errors[t.Name] = red.String(err.Error())
						continue
					}
					l.Clusters[t.Name] = objs
				case t.Kind == "storage" && target != nil:
					l.Storage = true
					cur, err := currentBuild(ctx, target, env)
					if err != nil {
						l.Errors[t.Name] = red.String(err.Error())
						continue
					}
					l.Current = cur
				}
			}
		}
	}
	opts := plan.DefaultOptions()
	opts.Envs, opts.Redactor, opts.HeadRevision = o.envs, red, headName
	return plan.CompareLive(ctx, res, live, opts), nil
}

// currentBuild reads the environment's current published build as an output, each file
// verified against the build's manifest; nil when it has none yet.
func currentBuild(ctx context.Context, t *publish.Target, env string) (*pipeline.Output, error) {
	m, err := t.Current(ctx, env)
	if err != nil {
		if errors.Is(err, publish.ErrNoBuild) {
			return nil, nil
		}
		return nil, err
	}
	out := &pipeline.Output{Env: env}
	for _, e := range m.Files {
		b, err := t.ReadFile(ctx, m, e.Path)
		if err != nil {
			return nil, fmt.Errorf("%s build %d: %w", env, m.Seq, err)
		}
		out.Files = append(out.Files, publish.File{Path: e.Path, Data: b, ContentType: e.ContentType})
	}
	return out, nil
}
