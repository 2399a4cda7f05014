// Package reconciler is the daemon's loop: for each new snapshot of the source it runs the
// stages of the flow in order and records the outcome.
//
// The flow is snapshot → settings → verify → (inputs unchanged?) → load (validate,
// decrypt) → licenses → packages → build → check (manifests) → publish → apply → record,
// each one call in stages (stages.go). The files follow the jobs: loop.go runs reconciles
// as snapshots arrive, with retries and backoff; stages.go is the flow for one revision;
// targets.go publishes and applies, rolls back and checks drift; status.go is what is
// recorded, and how; http.go serves it; trust.go keeps what only moves forward (the
// revocation list, accepted signing keys); recover.go turns a panic into ReasonInternal.
//
// Failure semantics: a revision with any problem in any environment is not accepted for any
// environment (nothing downstream may see half a repository); an environment whose
// signature policy refuses the revision stays on its last good revision while the others
// move on. Either way the reason is in the status and the last good revision stays.
package reconciler

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/signature"
	"github.com/circlecore/circle/state"
)

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
	// Target receives each accepted environment's build, encrypted (publish.Target). Nil
	// skips the publish stage (status only).
	Target Publisher
	// Clusters are the cluster targets (apply.Applier), by their name in circle.yaml's
	// targets; each gets the rendered manifests of the environments the target lists.
	Clusters map[string]Cluster
	// Events, when set, records Kubernetes Events for each cluster target that has a sink
	// here, by the same name as in Clusters (apply.Recorder): applied, pruned, rolled back,
	// apply failed, refused. A target without one records none.
	Events map[string]EventSink
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
	// Artifacts, when set, verifies the package artifacts stored at URLs
	// (pipeline.Options.Artifacts); nil leaves them "not fetched".
	Artifacts registry.Fetcher
}

// Reconciler turns snapshots into published state.
type Reconciler struct {
	source sources.Source
	status StatusStore
	log    zerolog.Logger
	opts   Options
	now    func() time.Time

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
	// renders keeps each environment's last rendered manifests by what they were rendered
	// from: a forced reconcile (trigger, retry) of inputs already built checks, publishes
	// and applies them again without paying kustomize again.
	renders *pipeline.RenderCache
	// prevBuilds is each environment's last accepted build, by name, and its revision: the
	// next one accepted is compared with it for the status' LastChange (lastchange.go).
	// Memory only, as renders: builds hold secrets.
	prevBuilds map[string]prevBuild
	// runCtx and lastSnap let a trigger reconcile the current revision again.
	runCtx   context.Context
	lastSnap *sources.Snapshot
	// inProgress is the reconcile running now, for the API.
	inProgress atomic.Pointer[Reconciling]
	// stageHook, when set, is called as each stage starts (env is "" but in the stages
	// that run per environment). Only tests set it (export_test.go), to make a stage panic.
	stageHook func(stage, env string)
}

// New returns a reconciler reading from source and recording its status in status (the
// storage.Store of the publish URL, beside the builds).
func New(source sources.Source, status StatusStore, log zerolog.Logger, opts Options) *Reconciler {
	if opts.Redactor == nil {
		opts.Redactor = redact.New()
	}
	r := &Reconciler{source: source, status: status, log: log, opts: opts, now: time.Now,
		repoKeys: map[string]listedKeySet{}, metrics: newMetrics(), applied: map[string]appliedBuild{},
		renders: pipeline.NewRenderCache()}
	r.metrics.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "circle_render_cache_hits_total",
		Help: "Renders saved: environments whose manifests a reconcile took from the last render of the same inputs.",
	}, func() float64 { return float64(r.renders.Hits()) }))
	return r
}
