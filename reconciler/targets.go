package reconciler

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/publish"
)

// Publisher is the publish stage's storage target: publish.Target, which encrypts each
// environment's files and moves its current.json once they are all in.
type Publisher interface {
	Publish(ctx context.Context, env, revision string, files []publish.File) (*publish.Manifest, publish.Stats, error)
	GC(ctx context.Context) (publish.GCStats, error)
}

// Cluster is one cluster target of the apply stage: apply.Applier.
type Cluster interface {
	Apply(ctx context.Context, env string, manifests []byte, opts apply.Options) (*apply.Result, error)
}

// StatusStore keeps the status the record stage writes: storage.Store, the package every
// other write to a storage URL goes through.
type StatusStore interface {
	Put(ctx context.Context, key string, r io.Reader, opts *storage.PutOptions) error
	Get(ctx context.Context, key string) (io.ReadCloser, *storage.Attrs, error)
}

// appliedBuild is one environment's manifests as last applied to one cluster target.
type appliedBuild struct {
	target, env, revision string
	manifests             []byte
}

// driftLoop applies each target's last manifests again on every tick. Server-side apply
// with the same field manager changes nothing when nothing drifted, and puts back the
// fields it owns when something did.
func (r *Reconciler) driftLoop(ctx context.Context) {
	tick := time.NewTicker(r.opts.DriftInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.run.Lock()
		for _, b := range r.applied { // the run lock keeps applyAll from writing it meanwhile
			r.driftCheck(ctx, b)
		}
		r.run.Unlock()
	}
}

// driftCheck applies one target's last manifests again. A panic is logged with its stack
// and ends only this check: the loop, the other targets and the daemon go on.
func (r *Reconciler) driftCheck(ctx context.Context, b appliedBuild) {
	log := r.log.With().Str("revision", b.revision).Str("env", b.env).Str("target", b.target).Logger()
	defer func() {
		if v := recover(); v != nil {
			log.Error().Str("panic", r.opts.Redactor.String(fmt.Sprint(v))).Str("stack", string(debug.Stack())).
				Msg("drift check panicked (a bug in circle); trying again at the next interval")
		}
	}()
	// Which fields drifted can be told only before the apply puts them back.
	var drifted []apply.Drifted
	fieldsKnown := false
	if dr, ok := r.opts.Clusters[b.target].(DriftReader); ok {
		var err error
		if drifted, err = dr.Drift(ctx, b.env, b.manifests); err == nil {
			fieldsKnown = true
		} else {
			log.Warn().Err(r.opts.Redactor.Error(err)).Msg("drifted fields unreadable; the drift is told by object")
		}
	}
	res, err := r.opts.Clusters[b.target].Apply(ctx, b.env, b.manifests, r.opts.Apply)
	switch {
	case err != nil:
		log.Warn().Err(r.opts.Redactor.Error(err)).Msg("drift check failed")
	case len(res.Created)+len(res.Configured) > 0:
		r.metrics.drift.WithLabelValues(b.env, b.target).Add(float64(len(res.Created) + len(res.Configured)))
		corrected := append(res.Created, res.Configured...)
		log.Warn().Strs("corrected", corrected).Msg("drift corrected")
		named := corrected[:min(len(corrected), maxEventSubjects)]
		r.event(ctx, b.target, b.env, apply.EventWarning, EventDriftCorrected, fmt.Sprintf("Put back %d object(s) changed outside Git, to revision %s: %s",
			len(corrected), b.revision, strings.Join(named, ", ")), log)
	}
	r.noteDrift(ctx, b, drifted, fieldsKnown, res, err)
}

// applyAll runs the apply stage: every cluster target of circle.yaml that the daemon has
// a connection for, each environment it lists that was built, in parallel. A target that
// fails (apply or health) keeps what it had; with RollbackOnFailure the manifests it last
// took are applied again, so a half-applied revision does not stay.
func (r *Reconciler) applyAll(ctx context.Context, revision string, s *repo.Settings, envs []EnvStatus, builds map[string]*pipeline.Output, log zerolog.Logger) {
	index := map[string]int{}
	for i, e := range envs {
		index[e.Name] = i
	}
	type job struct {
		target string
		env    int
		res    *apply.Result
		err    error
		health *ClusterState
	}
	var jobs []*job
	for _, t := range s.Targets {
		if t.Kind != "cluster" || r.opts.Clusters[t.Name] == nil {
			continue
		}
		for _, name := range t.Environments {
			if i, ok := index[name]; ok && builds[name] != nil && builds[name].Manifests != nil {
				jobs = append(jobs, &job{target: t.Name, env: i})
			}
		}
	}
	g := r.group("apply")
	for _, j := range jobs {
		name := envs[j.env].Name
		g.Go(name, func() {
			start := time.Now()
			j.res, j.err = r.opts.Clusters[j.target].Apply(ctx, name, builds[name].Manifests, r.opts.Apply)
			r.metrics.targets.WithLabelValues(name, j.target, result(j.err)).Observe(time.Since(start).Seconds())
			j.health = r.readHealth(ctx, j.target, name, builds[name].Manifests, j.res, j.err) // before a rollback changes them
		})
	}
	g.Wait()
	for _, j := range jobs {
		e, name := &envs[j.env], envs[j.env].Name
		key := j.target + "/" + name
		if j.err != nil {
			msg := fmt.Sprintf("target %s: %v", j.target, j.err)
			log.Error().Str("env", name).Str("target", j.target).Err(r.opts.Redactor.Error(j.err)).Msg("apply failed")
			to, ok := r.rollback(ctx, key, log)
			if ok {
				e.refuse(ReasonRolledBack, r.opts.Redactor.String(msg+"; rolled back to "+to))
			} else {
				e.refuse(ReasonApplyFailed, r.opts.Redactor.String(msg))
			}
			r.noteApplied(e, j.target, revision, j.health, r.opts.Redactor.String(j.err.Error()))
			r.failedEvent(ctx, j.target, name, revision, j.err, to, ok, log)
			continue
		}
		r.appliedMu.Lock()
		r.applied[key] = appliedBuild{target: j.target, env: name, revision: revision, manifests: builds[name].Manifests}
		r.appliedMu.Unlock()
		if e.Applied == nil {
			e.Applied = map[string]*Applied{}
		}
		res := j.res
		e.Applied[j.target] = &Applied{Revision: revision, At: r.now().UTC(), Changes: len(res.Created) + len(res.Configured) + len(res.Deleted),
			Objects: len(res.Created) + len(res.Configured) + len(res.Unchanged)}
		r.noteApplied(e, j.target, revision, j.health, "")
		log.Info().Str("env", name).Str("target", j.target).Int("created", len(res.Created)).
			Int("configured", len(res.Configured)).Int("deleted", len(res.Deleted)).Msg("applied")
		r.appliedEvents(ctx, j.target, name, revision, res, log)
	}
	r.refusedEvents(ctx, revision, s, envs, builds, log)
}

// rollback applies again what the target last took for the environment, when configured
// and there is such a build (the manifests live in memory; the first reconcile after a
// start applies them). It returns the revision rolled back to, and whether it was.
func (r *Reconciler) rollback(ctx context.Context, key string, log zerolog.Logger) (string, bool) {
	if !r.opts.RollbackOnFailure {
		return "", false
	}
	r.appliedMu.Lock()
	b, ok := r.applied[key]
	r.appliedMu.Unlock()
	if !ok {
		log.Warn().Str("target", key).Msg("no last good build of this target to roll back to")
		return "", false
	}
	opts := r.opts.Apply
	if _, err := r.opts.Clusters[b.target].Apply(ctx, b.env, b.manifests, opts); err != nil {
		log.Error().Str("env", b.env).Str("target", b.target).Str("to", b.revision).Err(r.opts.Redactor.Error(err)).Msg("roll back failed")
		return "", false
	}
	r.metrics.rollbacks.WithLabelValues(b.env, b.target).Inc()
	log.Warn().Str("env", b.env).Str("target", b.target).Str("to", b.revision).Msg("rolled back to the last good build")
	return b.revision, true
}

// publishEnv writes one environment's build to the storage target.
func (r *Reconciler) publishEnv(ctx context.Context, revision, env string, files []publish.File) (*Published, error) {
	m, st, err := r.opts.Target.Publish(ctx, env, revision, files)
	if err != nil {
		return nil, err
	}
	r.metrics.published.WithLabelValues(env).Add(float64(st.Uploaded))
	r.log.Info().Str("revision", revision).Str("env", env).Int64("seq", m.Seq).Int("uploaded", st.Uploaded).
		Bool("unchanged", st.Unchanged).Msg("published")
	return &Published{Revision: m.Revision, Seq: m.Seq, Files: len(m.Files), Uploaded: st.Uploaded}, nil
}

// publishAll writes each accepted environment's build to the storage target, in parallel
// up to Options.Concurrency, then collects old builds. A failed target keeps its last
// published build; the environment's reason says why.
func (r *Reconciler) publishAll(ctx context.Context, revision string, envs []EnvStatus, builds map[string]*pipeline.Output, log zerolog.Logger) {
	errs := make([]error, len(envs))
	published := make([]*Published, len(envs))
	g := r.group("publish")
	for i := range envs {
		if b := builds[envs[i].Name]; b != nil {
			g.Go(envs[i].Name, func() {
				start := time.Now()
				published[i], errs[i] = r.publishEnv(ctx, revision, envs[i].Name, b.Files)
				r.metrics.targets.WithLabelValues(envs[i].Name, "publish", result(errs[i])).Observe(time.Since(start).Seconds())
			})
		}
	}
	g.Wait()
	for i := range envs {
		switch {
		case errs[i] != nil:
			envs[i].refuse(ReasonPublishFailed, r.opts.Redactor.String(errs[i].Error()))
			log.Error().Str("env", envs[i].Name).Err(r.opts.Redactor.Error(errs[i])).Msg("publish failed; last published build kept")
		case published[i] != nil:
			envs[i].Published = published[i]
		}
	}
	// Old builds go once the new ones are in; a failed collection is retried next time.
	if gc, err := r.opts.Target.GC(ctx); err != nil {
		log.Warn().Err(r.opts.Redactor.Error(err)).Msg("garbage collection of old builds failed")
	} else if gc.Builds+gc.Objects > 0 {
		log.Info().Int("builds", gc.Builds).Int("objects", gc.Objects).Msg("old builds collected")
	}
}
