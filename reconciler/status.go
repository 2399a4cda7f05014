package reconciler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/sources/git"
	"github.com/circlecore/circle/state"
	"github.com/circlecore/circle/storage"
	"github.com/rs/zerolog"
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
	// ReasonRolledBack is an apply that failed (or did not become healthy) on a cluster
	// target and was rolled back to the target's last good build (RollbackOnFailure). It
	// is not tried again: the revision itself is why, and trying would apply it and roll it
	// back over and over. A new revision, or a forced reconcile, tries again.
	ReasonRolledBack = "RolledBack"
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
	Licenses []pipeline.LicenseStatus `json:"licenses,omitempty"`
	// Revocations is the revocation list those licenses were checked against: the
	// revision's, or one accepted before when the revision has none or an older one.
	Revocations *pipeline.RevocationStatus `json:"revocations,omitempty"`
	// Commit is the Git commit behind Revision (nil for a folder): author, date, message
	// (redacted) and whether it is signed.
	Commit *git.Commit `json:"commit,omitempty"`
	// UpdatedAt is when the drift check last changed what this status says of the
	// clusters (health, drift) after ReconciledAt; zero when it has not.
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
	// Reconciling is the revision being reconciled now, if any. Only the HTTP API fills
	// it in (status.json and the state store hold finished reconciles).
	Reconciling *Reconciling `json:"reconciling,omitempty"`

	started time.Time
	// began is when the reconcile began, and entered when each of Stages did, by the
	// process's clock (not Reconciler.now, which tests replace): the log's timings.
	began   time.Time
	entered []time.Time
}

// mark notes that the last of Stages begins now.
func (st *Status) mark() {
	for len(st.entered) < len(st.Stages)-1 { // stages named without mark (snapshot) began with the reconcile
		st.entered = append(st.entered, st.began)
	}
	st.entered = append(st.entered, time.Now())
}

// stageTimes is how long each stage took, in milliseconds, in order: what an operator
// reads to see where a slow reconcile went.
func (st *Status) stageTimes(end time.Time) *zerolog.Event {
	d := zerolog.Dict()
	for i, at := range st.entered {
		next := end
		if i+1 < len(st.entered) {
			next = st.entered[i+1]
		}
		if i < len(st.Stages) {
			d = d.Int64(st.Stages[i], next.Sub(at).Milliseconds())
		}
	}
	return d
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
	// Packages is the package set of the last build the environment accepted; nil when
	// the repository has no packages.
	Packages *PackageSet `json:"packages,omitempty"`
	// Clusters is what each cluster target holds of the environment, by target name: its
	// objects and their health, the last drift found, and the target's own error.
	Clusters map[string]*ClusterState `json:"clusters,omitempty"`
	// LastChange is what the last build the environment accepted changed against the one
	// before (objects and their field paths, storage files; never values). A rebuild of
	// the same revision, or an unchanged environment, keeps it.
	LastChange *LastChange `json:"lastChange,omitempty"`
}

// PackageSet is an environment's package index, summed up: the versions its build
// resolved, each with its license and the advisories that hit it. Names, versions and
// advisory ids are not secret.
type PackageSet struct {
	// Resolved reports whether the requirements resolved; Explanation says why not.
	Resolved    bool   `json:"resolved"`
	Explanation string `json:"explanation,omitempty"`
	// Failed reports whether the scan fails the environment under its policies.
	Failed   bool             `json:"failed,omitempty"`
	Packages []PackageVersion `json:"packages,omitempty"`
}

// PackageVersion is one package at the version the build selected.
type PackageVersion struct {
	Name       string            `json:"name"`
	Version    string            `json:"version"`
	License    string            `json:"license,omitempty"`
	Advisories []PackageAdvisory `json:"advisories,omitempty"`
}

// PackageAdvisory is an advisory that hits a selected version.
type PackageAdvisory struct {
	ID string `json:"id"`
	// Severity is CVSS' rating word (LOW … CRITICAL, or UNKNOWN).
	Severity string `json:"severity,omitempty"`
	Summary  string `json:"summary,omitempty"`
	// Fixed is the first version without it, when one is known.
	Fixed string `json:"fixed,omitempty"`
}

// ClusterState is one cluster target of one environment beyond its last apply (Applied).
type ClusterState struct {
	// Revision is the revision Objects were applied from.
	Revision string `json:"revision,omitempty"`
	// Objects are the objects of that apply, by subject, with their health as last read:
	// after the apply, then at every drift check.
	Objects []ObjectState `json:"objects,omitempty"`
	// HealthAt is when Objects' health was read; zero when it never was (a cluster
	// connection that cannot read it).
	HealthAt time.Time `json:"healthAt,omitzero"`
	// Drift is the last drift the drift check found on this target. It stays (a later
	// apply does not clear it): At and Revision say how old it is.
	Drift *Drift `json:"drift,omitempty"`
	// Error is this target's own last error (redacted), empty once it applies again;
	// ErrorAt is when. With several targets failing, the environment's Message names
	// only one: this names each.
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"errorAt,omitzero"`
}

// Object health words, kstatus' own (apply.ObjectHealth) plus Unknown for an object whose
// health was not read.
const (
	HealthCurrent    = "Current"
	HealthInProgress = "InProgress"
	HealthFailed     = "Failed"
	HealthUnknown    = "Unknown"
)

// ObjectState is one applied object and its health.
type ObjectState struct {
	// Subject is "Kind/namespace/name".
	Subject string `json:"subject"`
	// Health is one of the Health words, or another of kstatus' (Terminating, NotFound).
	Health  string `json:"health"`
	Message string `json:"message,omitempty"`
}

// Drift states: found and not put back (the correcting apply failed), or put back.
const (
	DriftDrifted   = "drifted"
	DriftCorrected = "corrected"
)

// Drift is what one drift check found changed in the cluster since the last apply.
type Drift struct {
	At       time.Time `json:"at"`
	Revision string    `json:"revision"`
	// State is DriftDrifted or DriftCorrected.
	State   string          `json:"state"`
	Objects []DriftedObject `json:"objects"`
	// FieldsKnown is false when the cluster connection could not tell fields (only which
	// objects the correcting apply changed).
	FieldsKnown bool `json:"fieldsKnown"`
	// Error is why the correction failed (redacted), when State is DriftDrifted.
	Error string `json:"error,omitempty"`
}

// DriftedObject is one drifted object: its subject and the paths of its fields that
// differed, never their values.
type DriftedObject struct {
	Subject string   `json:"subject"`
	Missing bool     `json:"missing,omitempty"`
	Fields  []string `json:"fields,omitempty"`
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
	// Inputs is the digest of every file the build read (pipeline.Inputs) and the daemon's
	// targets: a later revision with the same digest is not built again.
	Inputs string `json:"inputs,omitempty"`
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
	st.mark()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := r.status.Put(ctx, StatusKey, bytes.NewReader(append(b, '\n')), &storage.PutOptions{ContentType: "application/json"}); err != nil {
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
func ReadStatus(ctx context.Context, store StatusStore) (*Status, error) {
	rc, _, err := store.Get(ctx, StatusKey)
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	return &st, nil
}
