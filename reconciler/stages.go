package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/circlecore/circle/build"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/git"
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
