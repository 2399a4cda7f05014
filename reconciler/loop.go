package reconciler

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/storage"
)

// Run reconciles every revision the source produces until ctx is done. A failed revision
// is logged and the loop goes on: the last good state stays published.
func (r *Reconciler) Run(ctx context.Context) error {
	if err := r.resume(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.runCtx = ctx
	r.mu.Unlock()
	if r.opts.DriftInterval > 0 && len(r.opts.Clusters) > 0 {
		go r.driftLoop(ctx)
	}
	// The first revision after a start is reconciled in full even when its inputs are those
	// of the last good build: this process has not seen what the targets hold (a cluster
	// edited while it was down, a new publish URL or keyring), and the drift check and
	// rollback need the applied manifests it keeps in memory.
	first := true
	return r.source.Watch(ctx, func(snap *sources.Snapshot) error {
		r.attempt(ctx, snap, r.generation.Add(1), 0, first)
		first = false
		return nil
	})
}

// Trigger asks the source to look for a new revision and reconciles the current one again
// in full, inputs unchanged or not (circle reconcile --now). It returns the revision
// reconciled again, or false before the first one.
func (r *Reconciler) Trigger() (string, bool) {
	if r.opts.Poke != nil {
		r.opts.Poke()
	}
	r.mu.RLock()
	ctx, snap := r.runCtx, r.lastSnap
	r.mu.RUnlock()
	if snap == nil || ctx == nil {
		return "", false
	}
	go r.attempt(ctx, snap, r.generation.Add(1), 0, true)
	return snap.Revision, true
}

// attempt reconciles snap, and when a target failed (publish, apply, or the record
// itself) tries the same revision again after a growing, jittered delay, until it
// succeeds, a newer revision arrives (its generation moves on), or ctx ends. The targets
// that did not fail are not touched again: publish skips unchanged content and apply is
// idempotent.
func (r *Reconciler) attempt(ctx context.Context, snap *sources.Snapshot, gen int64, n int, force bool) {
	r.metrics.queue.Inc()
	r.run.Lock()
	r.metrics.queue.Dec()
	if r.generation.Load() != gen || ctx.Err() != nil {
		r.run.Unlock()
		return
	}
	r.mu.Lock()
	r.lastSnap = snap
	r.mu.Unlock()
	r.inProgress.Store(&Reconciling{Revision: snap.Revision, Since: r.now().UTC()})
	st, err := r.reconcile(ctx, snap, force)
	r.inProgress.Store(nil)
	r.run.Unlock()
	log := r.log.With().Str("revision", snap.Revision).Logger()
	switch {
	case err != nil:
		log.Error().Err(r.opts.Redactor.Error(err)).Msg("reconcile failed; last good state kept")
	case !st.Ready:
		log.Error().Str("reason", st.Reason).Str("detail", st.Message).Int("problems", len(st.Problems)).
			Msg("revision not accepted everywhere; last good state kept")
	default:
		log.Info().Int("files", st.Files).Strs("stages", st.Stages).Dur("took", time.Since(st.began)).
			Dict("stageMs", st.stageTimes(time.Now())).Msg("reconciled")
	}
	if !retryable(st, err) {
		return
	}
	delay := backoff(r.opts.RetryBase, n)
	log.Warn().Dur("in", delay).Int("attempt", n+1).Msg("a target failed; trying the revision again")
	time.AfterFunc(delay, func() { r.attempt(ctx, snap, gen, n+1, true) })
}

// retryable reports whether a reconcile failed at a target, where trying again can help;
// an invalid revision or a refused license stays refused until the repository changes.
func retryable(st *Status, err error) bool {
	if err != nil {
		return true
	}
	for _, e := range st.Environments {
		if e.Reason == ReasonPublishFailed || e.Reason == ReasonApplyFailed {
			return true
		}
	}
	return false
}

// backoff is base·2ⁿ, at most 5 minutes, with ±20% jitter so replicas and targets do not
// retry in step.
func backoff(base time.Duration, n int) time.Duration {
	if base <= 0 {
		base = time.Second
	}
	d := base << min(n, 20)
	if d > 5*time.Minute || d <= 0 {
		d = 5 * time.Minute
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// resume reads the status a previous run recorded, so last good revisions survive a
// restart.
func (r *Reconciler) resume(ctx context.Context) error {
	if r.opts.State != nil {
		var st Status
		ok, err := r.opts.State.Get(stateStatus, &st)
		if err != nil {
			return err
		}
		if err := r.resumeTrust(); err != nil {
			return err
		}
		if ok {
			r.mu.Lock()
			r.last = &st
			r.mu.Unlock()
			return nil
		}
	}
	st, err := ReadStatus(ctx, r.status)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.last = st
	r.mu.Unlock()
	return nil
}
