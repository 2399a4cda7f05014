// Package reconciler is the daemon's loop: for each new snapshot of the source it runs the
// stages of the flow in order and records the outcome.
//
// The flow is snapshot → settings → verify → (inputs unchanged?) → load (validate,
// decrypt) → licenses → packages → build → check (manifests) → publish → apply → record. Today all but apply exist: build makes each environment's merged
// configuration and rendered manifests, publish writes them encrypted; apply, packages and
// licenses arrive with their issues, each as one call in Reconcile.
//
// Failure semantics: a revision with any problem in any environment is not accepted for any
// environment (nothing downstream may see half a repository); an environment whose
// signature policy refuses the revision stays on its last good revision while the others
// move on. Either way the reason is in the status and the last good revision stays.
package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/build"
	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/git"
	"github.com/circlecore/circle/sources/signature"
	"github.com/circlecore/circle/state"
	"github.com/circlecore/circle/storage/publish"
)

// StatusKey is the object the record stage writes in the publish bucket.
const StatusKey = "status.json"

// Reasons a revision or an environment is where it is, one per stage that can fail.
const (
	ReasonSucceeded        = "Succeeded"
	ReasonSnapshotFailed   = "SnapshotFailed"
	ReasonInvalid          = "Invalid"
	ReasonSignatureRefused = "SignatureRefused"
	ReasonBuildFailed      = "BuildFailed"
	ReasonLicenseRefused   = "LicenseRefused"
	ReasonPublishFailed    = "PublishFailed"
	ReasonApplyFailed      = "ApplyFailed"
	// ReasonInternal is a stage that panicked: a bug in Circle, not in the repository. The
	// revision is refused everywhere, the stack is in the log, and the daemon goes on.
	ReasonInternal = "Internal"
)

// Status is what the daemon last did, as readers of the bucket see it. Nothing in it is
// secret: messages pass through the redactor and values are never included.
type Status struct {
	// Revision is the last revision attempted.
	Revision string `json:"revision"`
	// ReconciledAt is when that attempt finished.
	ReconciledAt time.Time `json:"reconciledAt"`
	// Ready is true when every environment accepted Revision.
	Ready bool `json:"ready"`
	// Reason is one of the Reason constants; Message says more.
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
	// Problems are the repository's problems at Revision, at their file:line:col.
	Problems []repo.Problem `json:"problems,omitempty"`
	// Files is how many files the snapshot held.
	Files int `json:"files"`
	// Stages lists the stages that ran, in order.
	Stages []string `json:"stages"`
	// Environments is each environment's state, in circle.yaml's order.
	Environments []EnvStatus `json:"environments,omitempty"`
	// Licenses are the revision's license files as the licenses stage found them.
	Licenses []build.LicenseStatus `json:"licenses,omitempty"`
	// Revocations is the revocation list those licenses were checked against: the
	// revision's, or one accepted before when the revision has none or an older one.
	Revocations *build.RevocationStatus `json:"revocations,omitempty"`
	// Commit is the Git commit behind Revision (nil for a folder): author, date, message
	// (redacted) and whether it is signed.
	Commit *git.Commit `json:"commit,omitempty"`
	// Reconciling is the revision being reconciled now, if any. Only the HTTP API fills
	// it in (status.json and the state store hold finished reconciles).
	Reconciling *Reconciling `json:"reconciling,omitempty"`

	started time.Time
}

// Reconciling is a reconcile in progress.
type Reconciling struct {
	Revision string    `json:"revision"`
	Since    time.Time `json:"since"`
}

// EnvStatus is one environment's state.
type EnvStatus struct {
	Name string `json:"name"`
	// Ready is true when the environment accepted the last attempted revision.
	Ready   bool   `json:"ready"`
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
	// LastGood is the last revision the environment accepted; it stays through failures.
	LastGood *Good `json:"lastGood,omitempty"`
	// Published is the build last published to the storage target.
	Published *Published `json:"published,omitempty"`
	// Applied is the last apply to each cluster target, by target name.
	Applied map[string]*Applied `json:"applied,omitempty"`
}

// Applied is an apply the apply stage made to one cluster target.
type Applied struct {
	Revision string    `json:"revision"`
	At       time.Time `json:"at"`
	// Changes counts created, configured and deleted objects; Objects all of them.
	Changes int `json:"changes"`
	Objects int `json:"objects"`
}

// Published is a build the publish stage wrote.
type Published struct {
	Revision string `json:"revision"`
	Seq      int64  `json:"seq"`
	Files    int    `json:"files"`
	// Uploaded counts the objects this publish uploaded; the rest were there already.
	Uploaded int `json:"uploaded"`
}

// Good is an accepted revision.
type Good struct {
	Revision string    `json:"revision"`
	At       time.Time `json:"at"`
	// Values and Secrets count the environment's configuration values.
	Values  int `json:"values"`
	Secrets int `json:"secrets"`
	// Inputs is the digest of every file the build read (build.Inputs) and the daemon's
	// targets: a later revision with the same digest is not built again.
	Inputs string `json:"inputs,omitempty"`
}

// Options are what the stages need beyond the source and the publish bucket.
type Options struct {
	// Keyring opens the repository's SOPS files.
	Keyring *secrets.Keyring
	// Redactor learns every secret the load stage decrypts; the daemon's log writer should
	// pass through the same one. Nil means a fresh one.
	Redactor *redact.Redactor
	// TrustedKeys sign revisions for environments whose policy requires signed commits,
	// in addition to the keys the repository lists.
	TrustedKeys *signature.Keys
	// Target receives each accepted environment's build, encrypted. Nil skips the
	// publish stage (status only).
	Target *publish.Target
	// Clusters are the cluster targets, by their name in circle.yaml's targets; each gets
	// the rendered manifests of the environments the target lists.
	Clusters map[string]*apply.Applier
	// Apply tunes every apply (inventory namespace, prune, health wait).
	Apply apply.Options
	// DriftInterval, when set, re-applies each cluster target's last applied manifests on
	// that interval, so objects changed outside Git (kubectl edit) are put back.
	DriftInterval time.Duration
	// RetryBase is the first delay before a revision whose target failed is tried again;
	// it doubles each time, up to 5 minutes. 0 means one second.
	RetryBase time.Duration
	// State, when set, keeps the status, the revocation list in force, each environment's
	// repository-listed signing keys and its history across restarts (the state directory;
	// in a cluster, the PVC).
	State *state.Store
	// LicenseKeys are the issuer keys license files must be signed with. Nil uses the
	// repository's own licenses/issuers.pub (which proves the files intact, not who made
	// them).
	LicenseKeys *license.Keyring
	// Concurrency bounds how many environments build, publish and apply at once; 0 means 4.
	Concurrency int
	// TriggerToken, when set, enables POST /api/v1/reconcile for a caller that presents it
	// as a bearer token (circle reconcile --now).
	TriggerToken string
	// Poke, when set, asks the source to look for a new revision now (a trigger does).
	Poke func()
	// RollbackOnFailure applies a target's last good build again when applying a new one
	// fails or does not become healthy.
	RollbackOnFailure bool
}

// Reconciler turns snapshots into published state.
type Reconciler struct {
	source  sources.Source
	publish *blob.Bucket
	log     zerolog.Logger
	opts    Options
	now     func() time.Time

	// last is the status last recorded; it carries each environment's last good revision
	// across failed revisions and, read back from the bucket, across restarts. The loop
	// writes it under mu; the HTTP API reads it.
	mu      sync.RWMutex
	last    *Status
	metrics *metrics
	// repoKeys are the signing keys the repository listed, per environment, at the last
	// revision that environment accepted; the state store keeps them (trust.go).
	repoKeys map[string]listedKeySet
	// pendingKeys are the keys listed at the revision being reconciled; they replace
	// repoKeys for the environments that accept it.
	pendingKeys map[string]listedKeySet
	// revoked is the revocation list in force and its serial: it applies when a revision
	// has none, and a lower serial is a replay. The state store keeps it (trust.go).
	revoked keptRevocations
	// run serialises reconciles (a retry and a new revision never overlap); generation
	// counts revisions, so a retry of an older one gives up.
	run        sync.Mutex
	generation atomic.Int64
	// applied is what each cluster target last received per environment, by
	// "target/env": the drift check applies it again. Guarded by appliedMu: targets apply
	// in parallel.
	appliedMu sync.Mutex
	applied   map[string]appliedBuild
	// runCtx and lastSnap let a trigger reconcile the current revision again.
	runCtx   context.Context
	lastSnap *sources.Snapshot
	// inProgress is the reconcile running now, for the API.
	inProgress atomic.Pointer[Reconciling]
	// stageHook, when set, is called as each stage starts (env is "" but in the stages
	// that run per environment). Only tests set it (export_test.go), to make a stage panic.
	stageHook func(stage, env string)
}

// New returns a reconciler reading from source and writing to the publish bucket.
func New(source sources.Source, publish *blob.Bucket, log zerolog.Logger, opts Options) *Reconciler {
	if opts.Redactor == nil {
		opts.Redactor = redact.New()
	}
	return &Reconciler{source: source, publish: publish, log: log, opts: opts, now: time.Now,
		repoKeys: map[string]listedKeySet{}, metrics: newMetrics(), applied: map[string]appliedBuild{}}
}

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
	return r.source.Watch(ctx, func(snap *sources.Snapshot) error {
		r.attempt(ctx, snap, r.generation.Add(1), 0, false)
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
	res, err := r.opts.Clusters[b.target].Apply(ctx, b.env, b.manifests, r.opts.Apply)
	switch {
	case err != nil:
		log.Warn().Err(r.opts.Redactor.Error(err)).Msg("drift check failed")
	case len(res.Created)+len(res.Configured) > 0:
		r.metrics.drift.WithLabelValues(b.env, b.target).Add(float64(len(res.Created) + len(res.Configured)))
		log.Warn().Strs("corrected", append(res.Created, res.Configured...)).Msg("drift corrected")
	}
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
		log.Error().Str("reason", st.Reason).Str("message", st.Message).Int("problems", len(st.Problems)).
			Msg("revision not accepted everywhere; last good state kept")
	default:
		log.Info().Int("files", st.Files).Strs("stages", st.Stages).Msg("reconciled")
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
	st, err := ReadStatus(ctx, r.publish)
	if gcerrors.Code(errors.Unwrap(err)) == gcerrors.NotFound {
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

// Reconcile runs the stages for one snapshot, top to bottom, and records the outcome. It
// returns an error only when the outcome could not be recorded. Every environment is built
// again, unchanged inputs or not; the loop skips those.
func (r *Reconciler) Reconcile(ctx context.Context, snap *sources.Snapshot) (*Status, error) {
	return r.reconcile(ctx, snap, true)
}

// reconcile runs the stages and records the outcome; a stage that panics fails the
// revision with ReasonInternal instead of ending the daemon (see recovered).
func (r *Reconciler) reconcile(ctx context.Context, snap *sources.Snapshot, force bool) (st *Status, err error) {
	st = &Status{Revision: snap.Revision, Stages: []string{"snapshot"}, started: r.now()}
	defer func() {
		if v := recover(); v != nil {
			st, err = r.recovered(ctx, st, v)
		}
	}()
	return r.stages(ctx, st, snap, force)
}

// stages is Reconcile's body: each stage in order, st filled in as they go.
func (r *Reconciler) stages(ctx context.Context, st *Status, snap *sources.Snapshot, force bool) (*Status, error) {
	log := r.log.With().Str("revision", snap.Revision).Logger()

	// Snapshot: count what the source gave us, and say whose commit it is.
	if snap.Commit != nil {
		if c, err := git.Describe(snap.Commit); err == nil {
			c.Message = r.opts.Redactor.String(c.Message)
			st.Commit = c
		}
	}
	if err := r.count(snap, st); err != nil {
		return r.fail(ctx, st, ReasonSnapshotFailed, err)
	}

	// Settings: circle.yaml names the environments and their policies.
	r.enter(st, "settings")
	settings, problems := repo.LoadSettings(snap.FS)
	if problems != nil {
		st.Problems = problems
		return r.fail(ctx, st, ReasonInvalid, &repo.Invalid{Problems: problems})
	}
	envs := r.carryOver(settings)
	st.Environments = envs

	// Verify: each environment's signature policy. A refused environment keeps its last good
	// revision; the others go on.
	r.enter(st, "verify")
	accepted := r.verify(snap, settings, envs, log)

	// Inputs: an environment whose files are those of its last good build, and which its
	// targets took, is not built again. When that is every accepted one, the repository is
	// as it was (or differs only outside what any build reads): nothing more to do.
	inputs, err := build.Inputs(snap.FS, settings)
	if err != nil {
		return r.fail(ctx, st, ReasonSnapshotFailed, err)
	}
	for env, d := range inputs {
		inputs[env] = r.fingerprint(d)
	}
	unchanged := map[string]bool{}
	if !force {
		unchanged = r.unchanged(envs, accepted, inputs)
	}
	if len(unchanged) > 0 && len(unchanged) == countTrue(accepted) {
		r.enter(st, "unchanged")
		for i := range envs {
			if unchanged[envs[i].Name] {
				r.acceptUnchanged(&envs[i], snap.Revision, inputs[envs[i].Name])
			}
		}
		log.Info().Msg("inputs unchanged in every environment: nothing built, published or applied")
		return r.finish(ctx, st)
	}

	// Load: layers merged, SOPS decrypted, CUE validated, for every environment (the
	// refused ones too: a repository is judged whole).
	r.enter(st, "load")
	loaded, err := repo.Load(ctx, snap.FS, repo.Options{Keyring: r.opts.Keyring, Redactor: r.opts.Redactor, Settings: settings})
	var invalid *repo.Invalid
	if errors.As(err, &invalid) {
		st.Problems = invalid.Problems
	}
	if err != nil {
		for i := range envs {
			if envs[i].Reason != ReasonSignatureRefused {
				envs[i].refuse(ReasonInvalid, r.opts.Redactor.String(err.Error()))
			}
		}
		return r.fail(ctx, st, ReasonInvalid, err)
	}

	// Licenses: every license file verified; an environment that uses a refused one (or any,
	// when the revocation list is bad or replayed) stays on its last good revision.
	r.enter(st, "licenses")
	lics, err := build.CheckLicenses(snap.FS, loaded.Settings, build.LicenseOptions{Keys: r.opts.LicenseKeys, MinSerial: r.revoked.Serial, Kept: r.revoked.List}, r.now())
	if err != nil {
		return r.fail(ctx, st, ReasonLicenseRefused, err)
	}
	r.keepRevocations(lics)
	st.Licenses, st.Revocations = lics.Status, lics.Revocations
	for i := range envs {
		name := envs[i].Name
		if why, ok := lics.Refused[name]; ok && accepted[name] {
			accepted[name] = false
			envs[i].refuse(ReasonLicenseRefused, why)
			log.Error().Str("env", name).Str("reason", why).Msg("license refused; last good revision kept")
		}
	}
	for _, l := range lics.Status {
		if l.Expiring {
			log.Warn().Str("license", l.File).Time("expiresAt", l.ExpiresAt).Msg("license expires within 30 days")
		}
	}

	// Packages: the registry read and checked once; each environment resolves and scans
	// its own set in the build stage.
	r.enter(st, "packages")
	reg, problems, err := build.Packages(ctx, snap.FS, loaded.Settings)
	if err != nil {
		st.Problems = problems
		return r.fail(ctx, st, ReasonInvalid, err)
	}

	// Build: each verified environment's output. One that fails to build stays on its last
	// good revision; the others go on.
	r.enter(st, "build")
	builds := map[string]*build.Output{}
	results := make([]struct {
		out *build.Output
		err error
	}, len(envs))
	g := r.group("build")
	for i := range envs {
		name := envs[i].Name
		if !accepted[name] || unchanged[name] {
			continue
		}
		g.Go(name, func() {
			results[i].out, results[i].err = build.Env(ctx, snap.FS, loaded.Settings, loaded.Env(name), lics.ForEnv(name), reg, r.now())
		})
	}
	g.Wait()
	for i := range envs {
		name := envs[i].Name
		if !accepted[name] || unchanged[name] {
			continue
		}
		out, err := results[i].out, results[i].err
		if err != nil {
			accepted[name] = false
			envs[i].refuse(ReasonBuildFailed, r.opts.Redactor.String(err.Error()))
			log.Error().Str("env", name).Err(r.opts.Redactor.Error(err)).Msg("build failed; last good revision kept")
			continue
		}
		builds[name] = out
	}

	// Check: the built manifests against the Kubernetes schemas and each environment's
	// policy, offline. A problem is the repository's: no environment takes the revision.
	r.enter(st, "check")
	outs := make([]*build.Output, 0, len(builds))
	for _, e := range envs {
		if b := builds[e.Name]; b != nil {
			outs = append(outs, b)
		}
	}
	problems, err = build.CheckManifests(loaded.Settings, outs, r.opts.Redactor)
	if err == nil && len(problems) > 0 {
		st.Problems = problems
		err = &repo.Invalid{Problems: problems}
	}
	if err != nil {
		for i := range envs {
			if envs[i].Reason != ReasonSignatureRefused {
				envs[i].refuse(ReasonInvalid, r.opts.Redactor.String(err.Error()))
			}
		}
		return r.fail(ctx, st, ReasonInvalid, err)
	}

	// Accept: the revision becomes each built environment's last good.
	at := r.now().UTC()
	for i := range envs {
		if !accepted[envs[i].Name] {
			continue
		}
		if unchanged[envs[i].Name] {
			r.acceptUnchanged(&envs[i], snap.Revision, inputs[envs[i].Name])
			continue
		}
		e := loaded.Env(envs[i].Name)
		good := &Good{Revision: snap.Revision, At: at, Inputs: inputs[e.Name]}
		for _, o := range e.Merged.Origins() {
			good.Values++
			if e.Sensitive(o.Path) {
				good.Secrets++
			}
		}
		envs[i] = EnvStatus{Name: e.Name, Ready: true, Reason: ReasonSucceeded, LastGood: good, Published: envs[i].Published, Applied: envs[i].Applied}
		if k, ok := r.pendingKeys[e.Name]; ok {
			r.repoKeys[e.Name] = k
		}
		log.Info().Str("env", e.Name).Int("values", good.Values).Int("secrets", good.Secrets).Msg("environment accepted")
	}

	// Publish: each accepted environment's build to the storage target. A failed target
	// keeps its last published build; the environment's reason says why.
	if r.opts.Target != nil {
		r.enter(st, "publish")
		errs := make([]error, len(envs))
		published := make([]*Published, len(envs))
		g := r.group("publish")
		for i := range envs {
			if b := builds[envs[i].Name]; b != nil {
				g.Go(envs[i].Name, func() {
					start := time.Now()
					published[i], errs[i] = r.publishEnv(ctx, snap.Revision, envs[i].Name, b.Files)
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

	// Apply: each cluster target gets the manifests of its environments, server-side, with
	// pruning. A failed target keeps what it had; the environment's reason says why.
	if len(r.opts.Clusters) > 0 {
		r.enter(st, "apply")
		r.applyAll(ctx, snap.Revision, loaded.Settings, envs, builds, log)
	}
	return r.finish(ctx, st)
}

// finish sums the environments up into the revision's status and records it.
func (r *Reconciler) finish(ctx context.Context, st *Status) (*Status, error) {
	envs := st.Environments
	st.Ready, st.Reason = true, ReasonSucceeded
	for _, e := range envs {
		if !e.Ready {
			st.Ready, st.Reason = false, e.Reason
			st.Message = fmt.Sprintf("%s: %s", e.Name, e.Message)
			break
		}
	}
	return r.record(ctx, st)
}

// applyAll runs the apply stage: every cluster target of circle.yaml that the daemon has
// a connection for, each environment it lists that was built, in parallel. A target that
// fails (apply or health) keeps what it had; with RollbackOnFailure the manifests it last
// took are applied again, so a half-applied revision does not stay.
func (r *Reconciler) applyAll(ctx context.Context, revision string, s *repo.Settings, envs []EnvStatus, builds map[string]*build.Output, log zerolog.Logger) {
	index := map[string]int{}
	for i, e := range envs {
		index[e.Name] = i
	}
	type job struct {
		target string
		env    int
		res    *apply.Result
		err    error
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
		})
	}
	g.Wait()
	for _, j := range jobs {
		e, name := &envs[j.env], envs[j.env].Name
		key := j.target + "/" + name
		if j.err != nil {
			e.refuse(ReasonApplyFailed, r.opts.Redactor.String(fmt.Sprintf("target %s: %v", j.target, j.err)))
			log.Error().Str("env", name).Str("target", j.target).Err(r.opts.Redactor.Error(j.err)).Msg("apply failed")
			r.rollback(ctx, key, log)
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
		log.Info().Str("env", name).Str("target", j.target).Int("created", len(res.Created)).
			Int("configured", len(res.Configured)).Int("deleted", len(res.Deleted)).Msg("applied")
	}
}

// rollback applies again what the target last took for the environment, when configured
// and there is such a build (not after a restart: manifests are not kept in the state).
func (r *Reconciler) rollback(ctx context.Context, key string, log zerolog.Logger) {
	if !r.opts.RollbackOnFailure {
		return
	}
	r.appliedMu.Lock()
	b, ok := r.applied[key]
	r.appliedMu.Unlock()
	if !ok {
		log.Warn().Str("target", key).Msg("no last good build of this target to roll back to")
		return
	}
	opts := r.opts.Apply
	if _, err := r.opts.Clusters[b.target].Apply(ctx, b.env, b.manifests, opts); err != nil {
		log.Error().Str("env", b.env).Str("target", b.target).Str("to", b.revision).Err(r.opts.Redactor.Error(err)).Msg("roll back failed")
		return
	}
	r.metrics.rollbacks.WithLabelValues(b.env, b.target).Inc()
	log.Warn().Str("env", b.env).Str("target", b.target).Str("to", b.revision).Msg("rolled back to the last good build")
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

// group bounds the environments (or targets) worked on at once in a stage.
func (r *Reconciler) group(stage string) *boundedGroup {
	n := r.opts.Concurrency
	if n <= 0 {
		n = 4
	}
	g := &boundedGroup{stage: stage, hook: r.stageHook}
	g.g.SetLimit(n)
	return g
}

// boundedGroup is an errgroup.Group with a limit, for a stage's per-environment work. Each
// stage records its own per-environment errors, so its functions return none, and no
// context is cancelled on a first error.
//
// A panic in one of its goroutines would end the process (no recover reaches across
// goroutines), so each is recovered there and the first is raised again by Wait, in the
// stage's own goroutine, where reconcile turns it into ReasonInternal.
type boundedGroup struct {
	g     errgroup.Group
	stage string
	hook  func(stage, env string)

	mu       sync.Mutex
	panicked *stagePanic
}

// Go runs fn, the stage's work for env, once a slot is free (it waits for one).
func (g *boundedGroup) Go(env string, fn func()) {
	g.g.Go(func() error {
		defer func() {
			if v := recover(); v != nil {
				g.mu.Lock()
				if g.panicked == nil {
					g.panicked = &stagePanic{stage: g.stage, env: env, value: v, stack: debug.Stack()}
				}
				g.mu.Unlock()
			}
		}()
		if g.hook != nil {
			g.hook(g.stage, env)
		}
		fn()
		return nil
	})
}

// Wait waits for every function, then panics again with the first one's panic, if any.
func (g *boundedGroup) Wait() {
	_ = g.g.Wait() // the functions return no error
	if g.panicked != nil {
		panic(g.panicked)
	}
}

// unchanged are the accepted environments whose inputs are those of their last good
// build and whose last reconcile succeeded (so every target took that build).
func (r *Reconciler) unchanged(envs []EnvStatus, accepted map[string]bool, inputs map[string]string) map[string]bool {
	out := map[string]bool{}
	if r.last == nil {
		return out
	}
	prev := map[string]EnvStatus{}
	for _, e := range r.last.Environments {
		prev[e.Name] = e
	}
	for _, e := range envs {
		p, ok := prev[e.Name]
		if ok && accepted[e.Name] && p.Ready && p.LastGood != nil && p.LastGood.Inputs != "" && p.LastGood.Inputs == inputs[e.Name] {
			out[e.Name] = true
		}
	}
	return out
}

// acceptUnchanged moves an unchanged environment's last good revision on; what it
// published and applied stays as it was (the same content, under its first revision).
func (r *Reconciler) acceptUnchanged(e *EnvStatus, revision, inputs string) {
	good := *e.LastGood
	good.Revision, good.At, good.Inputs = revision, r.now().UTC(), inputs
	e.LastGood, e.Ready, e.Reason, e.Message = &good, true, ReasonSucceeded, ""
}

// fingerprint folds into an environment's input digest what of the daemon's own settings
// decides its outputs: which targets get them and who may sign licenses. Restarted with a
// new cluster target, the daemon builds again instead of skipping the target.
func (r *Reconciler) fingerprint(inputs string) string {
	names := make([]string, 0, len(r.opts.Clusters))
	for n := range r.opts.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%v\n%t\n%t\n", inputs, names, r.opts.Target != nil, r.opts.LicenseKeys != nil)
	return hex.EncodeToString(h.Sum(nil))
}

func countTrue(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

func (r *Reconciler) count(snap *sources.Snapshot, st *Status) error {
	return fs.WalkDir(snap.FS, ".", func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			st.Files++
		}
		return err
	})
}

// carryOver starts this revision's environment list from the last status, so each keeps
// its last good revision.
func (r *Reconciler) carryOver(s *repo.Settings) []EnvStatus {
	prev := map[string]EnvStatus{}
	if r.last != nil {
		for _, e := range r.last.Environments {
			prev[e.Name] = e
		}
	}
	out := make([]EnvStatus, len(s.Environments))
	for i, e := range s.Environments {
		// Applied is a copy: the apply stage writes into it while the API may be serving
		// the last status, which holds the old one.
		out[i] = EnvStatus{Name: e.Name, LastGood: prev[e.Name].LastGood, Published: prev[e.Name].Published, Applied: maps.Clone(prev[e.Name].Applied)}
	}
	return out
}

// refuse marks the environment as not taking this revision, for reason: it keeps its last
// good revision, and message (redacted by the caller) says why.
func (e *EnvStatus) refuse(reason, message string) {
	e.Ready, e.Reason, e.Message = false, reason, message
}

// fail records a revision that no environment accepted.
func (r *Reconciler) fail(ctx context.Context, st *Status, reason string, err error) (*Status, error) {
	st.Ready, st.Reason, st.Message = false, reason, r.opts.Redactor.String(err.Error())
	if st.Environments == nil && r.last != nil {
		st.Environments = append([]EnvStatus(nil), r.last.Environments...) // a copy: the API may be reading the old one
	}
	for i := range st.Environments {
		if st.Environments[i].Reason == "" || st.Environments[i].Ready {
			st.Environments[i].refuse(reason, st.Message)
		}
	}
	return r.record(ctx, st)
}

// record writes the status last, so a reader never sees a revision whose stages did not
// finish.
func (r *Reconciler) record(ctx context.Context, st *Status) (*Status, error) {
	st.ReconciledAt = r.now().UTC()
	st.Stages = append(st.Stages, "record")
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := r.publish.WriteAll(ctx, StatusKey, append(b, '\n'), &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return nil, fmt.Errorf("record %s: %w", st.Revision, err)
	}
	if r.opts.State != nil {
		if err := r.remember(st); err != nil {
			return nil, fmt.Errorf("record %s: %w", st.Revision, err)
		}
	}
	r.mu.Lock()
	r.last = st
	r.mu.Unlock()
	r.metrics.observe(st, r.now().Sub(st.started))
	return st, nil
}

// Keys of the daemon's documents in the state store.
const (
	stateStatus = "status"
)

// remember writes the status with the trust it was judged by (the revocation list, the
// signing keys: one transaction, so they never disagree), then each environment's history
// entry, to the state store.
func (r *Reconciler) remember(st *Status) error {
	docs := r.trustDocs()
	docs[stateStatus] = st
	if err := r.opts.State.PutAll(docs); err != nil {
		return err
	}
	entries := map[string]state.Entry{}
	for _, e := range st.Environments {
		entries[e.Name] = state.Entry{Revision: st.Revision, At: st.ReconciledAt, Duration: st.ReconciledAt.Sub(st.started),
			Ready: e.Ready, Reason: e.Reason, Message: e.Message}
	}
	return r.opts.State.Append(entries)
}

// ReadStatus reads the status the record stage last wrote.
func ReadStatus(ctx context.Context, bucket *blob.Bucket) (*Status, error) {
	b, err := bucket.ReadAll(ctx, StatusKey)
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	return &st, nil
}
