package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"sort"
	"time"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/git"
	"github.com/rs/zerolog"
)

// Reconcile runs the stages for one snapshot, top to bottom, and records the outcome. It
// returns an error only when the outcome could not be recorded. Every environment is built
// again, unchanged inputs or not; the loop skips those.
func (r *Reconciler) Reconcile(ctx context.Context, snap *sources.Snapshot) (*Status, error) {
	return r.reconcile(ctx, snap, true)
}

// reconcile runs the stages and records the outcome; a stage that panics fails the
// revision with ReasonInternal instead of ending the daemon (see recovered).
func (r *Reconciler) reconcile(ctx context.Context, snap *sources.Snapshot, force bool) (st *Status, err error) {
	st = &Status{Revision: snap.Revision, Stages: []string{"snapshot"}, started: r.now(), began: time.Now()}
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

	// Settings → verify → inputs → load → licenses → packages → build → check: the
	// pipeline every command runs, with the daemon's signature policy and its memory of
	// what it built.
	res, envs, err := r.runPipeline(ctx, st, snap, force, log)
	if err != nil {
		st, err := r.refuseRevision(ctx, st, envs, err)
		// Each cluster target says, in an Event, that its environments keep their build.
		if res.Settings != nil {
			r.refusedEvents(ctx, snap.Revision, res.Settings, envs, nil, log)
		}
		return st, err
	}

	// Accept: the revision becomes each built (or unchanged) environment's last good.
	builds := r.accept(envs, res, snap.Revision, log)
	if res.Stopped {
		log.Info().Msg("inputs unchanged in every environment: nothing built, published or applied")
		r.refusedEvents(ctx, snap.Revision, res.Settings, envs, builds, log)
		return r.finish(ctx, st)
	}

	// Publish: each accepted environment's build to the storage target. A failed target
	// keeps its last published build; the environment's reason says why.
	if r.opts.Target != nil {
		r.enter(st, "publish")
		r.publishAll(ctx, snap.Revision, envs, builds, log)
	}

	// Apply: each cluster target gets the manifests of its environments, server-side, with
	// pruning. A failed target keeps what it had; the environment's reason says why.
	if len(r.opts.Clusters) > 0 {
		r.enter(st, "apply")
		r.applyAll(ctx, snap.Revision, res.Settings, envs, builds, log)
	}
	return r.finish(ctx, st)
}

// runPipeline runs the revision through pipeline.Run with what only the daemon adds: the
// signature policy (verify), skipping environments whose inputs it already built and the
// targets took, and each stage recorded in the status as it starts. The environments come
// back with the refusals the pipeline made one by one.
func (r *Reconciler) runPipeline(ctx context.Context, st *Status, snap *sources.Snapshot, force bool, log zerolog.Logger) (*pipeline.Result, []EnvStatus, error) {
	var envs []EnvStatus
	res, err := pipeline.Run(ctx, snap.FS, pipeline.Options{
		Load:     repo.Options{Keyring: r.opts.Keyring, Redactor: r.opts.Redactor},
		Licenses: pipeline.LicenseOptions{Keys: r.opts.LicenseKeys, MinSerial: r.revoked.Serial, Kept: r.revoked.List},
		Now:      r.now(),
		Verify: func(s *repo.Settings) map[string]string {
			envs = r.carryOver(s)
			st.Environments = envs
			return r.verify(snap, s, log)
		},
		Unchanged: func(inputs map[string]string) map[string]bool {
			if force {
				return nil
			}
			return r.unchanged(envs, inputs)
		},
		StopUnchanged: true,
		Cache:         r.renders,
		Artifacts:     r.opts.Artifacts,
		Concurrency:   r.opts.Concurrency,
		Enter: func(stage, env string) {
			if env == "" {
				r.enter(st, stage)
			} else if r.stageHook != nil {
				r.stageHook(stage, env)
			}
		},
	})
	st.Problems = res.Problems
	if res.Licenses != nil {
		r.keepRevocations(res.Licenses)
		st.Licenses, st.Revocations = res.Licenses.Status, res.Licenses.Revocations
		for _, l := range res.Licenses.Status {
			if l.Expiring {
				log.Warn().Str("license", l.File).Time("expiresAt", l.ExpiresAt).Msg("license expires within 30 days")
			}
		}
	}
	for i := range envs {
		if f, ok := res.Failed[envs[i].Name]; ok {
			envs[i].refuse(failureReasons[f.Stage], f.Message)
			log.Error().Str("env", envs[i].Name).Str("stage", f.Stage).Str("reason", f.Message).Msg("environment refused; last good revision kept")
		}
	}
	return res, envs, err
}

// refuseRevision records a stage that failed the whole revision: no environment takes it,
// each keeps its last good revision. A load or check problem is the repository's, so it
// is every environment's reason but those the signature policy refused already.
func (r *Reconciler) refuseRevision(ctx context.Context, st *Status, envs []EnvStatus, err error) (*Status, error) {
	var se *pipeline.StageError
	if !errors.As(err, &se) {
		return r.fail(ctx, st, ReasonInvalid, err)
	}
	reason := stageReasons[se.Stage]
	if se.Stage == pipeline.StageLoad || se.Stage == pipeline.StageCheck {
		// The repository is judged whole: every environment not refused already is.
		for i := range envs {
			if envs[i].Reason != ReasonSignatureRefused {
				envs[i].refuse(reason, r.opts.Redactor.String(se.Err.Error()))
			}
		}
	}
	return r.fail(ctx, st, reason, se.Err)
}

// accept makes the revision each built (or unchanged) environment's last good, and returns
// the builds that go to the targets.
func (r *Reconciler) accept(envs []EnvStatus, res *pipeline.Result, revision string, log zerolog.Logger) map[string]*pipeline.Output {
	builds := map[string]*pipeline.Output{}
	at := r.now().UTC()
	for i := range envs {
		name := envs[i].Name
		if res.Unchanged[name] {
			r.acceptUnchanged(&envs[i], revision, r.fingerprint(res.Inputs[name]))
			continue
		}
		out := res.Output(name)
		if out == nil {
			continue
		}
		builds[name] = out
		e := res.Repo.Env(name)
		good := &Good{Revision: revision, At: at, Inputs: r.fingerprint(res.Inputs[name])}
		for _, o := range e.Merged.Origins() {
			good.Values++
			if e.Sensitive(o.Path) {
				good.Secrets++
			}
		}
		envs[i] = EnvStatus{Name: name, Ready: true, Reason: ReasonSucceeded, LastGood: good, Published: envs[i].Published, Applied: envs[i].Applied,
			Packages: packageSet(out.Packages), Clusters: envs[i].Clusters, LastChange: r.lastChange(name, revision, at, out, envs[i].LastChange)}
		if k, ok := r.pendingKeys[name]; ok {
			r.repoKeys[name] = k
		}
		log.Info().Str("env", name).Int("values", good.Values).Int("secrets", good.Secrets).Msg("environment accepted")
	}
	return builds
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

// group bounds the environments (or targets) worked on at once in a stage.
func (r *Reconciler) group(stage string) *pipeline.Group {
	return pipeline.NewGroup(stage, r.opts.Concurrency, r.stageHook)
}

// failureReasons are the status reasons of an environment the pipeline refused alone.
var failureReasons = map[string]string{
	pipeline.StageVerify:   ReasonSignatureRefused,
	pipeline.StageLicenses: ReasonLicenseRefused,
	pipeline.StageBuild:    ReasonBuildFailed,
}

// stageReasons are the status reasons of a stage that failed the whole revision.
var stageReasons = map[string]string{
	pipeline.StageSettings: ReasonInvalid,
	pipeline.StageInputs:   ReasonSnapshotFailed,
	pipeline.StageLoad:     ReasonInvalid,
	pipeline.StageLicenses: ReasonLicenseRefused,
	pipeline.StagePackages: ReasonInvalid,
	pipeline.StageCheck:    ReasonInvalid,
}

// unchanged are the environments whose inputs are those of their last good build and whose
// last reconcile succeeded (so every target took that build); the pipeline leaves out the
// refused ones.
func (r *Reconciler) unchanged(envs []EnvStatus, inputs map[string]string) map[string]bool {
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
		if ok && p.Ready && p.LastGood != nil && p.LastGood.Inputs != "" && p.LastGood.Inputs == r.fingerprint(inputs[e.Name]) {
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
		out[i] = EnvStatus{Name: e.Name, LastGood: prev[e.Name].LastGood, Published: prev[e.Name].Published, Applied: maps.Clone(prev[e.Name].Applied),
			Packages: prev[e.Name].Packages, Clusters: maps.Clone(prev[e.Name].Clusters), LastChange: prev[e.Name].LastChange}
	}
	return out
}
