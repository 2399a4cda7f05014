// Package reconciler is the daemon's loop: for each new snapshot of the source it runs the
// stages of the flow in order and records the outcome.
//
// The flow is snapshot → load → validate → decrypt → build → plan → publish → apply →
// record. Today only snapshot and record exist: each revision the source produces is
// recorded as status.json in the publish bucket. The other stages arrive with their issues
// (configuration, storage, packages, licenses, deployment), each as one call in Reconcile.
package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"

	"github.com/rs/zerolog"
	"gocloud.dev/blob"

	"github.com/circlecore/circle/sources"
)

// StatusKey is the object the record stage writes in the publish bucket.
const StatusKey = "status.json"

// Status is what the daemon last did, as readers of the bucket see it.
type Status struct {
	// Revision is the last revision reconciled.
	Revision string `json:"revision"`
	// ReconciledAt is when that finished.
	ReconciledAt time.Time `json:"reconciledAt"`
	// Files is how many files the snapshot held.
	Files int `json:"files"`
	// Stages lists the stages that ran, in order.
	Stages []string `json:"stages"`
}

// Reconciler turns snapshots into published state.
type Reconciler struct {
	source  sources.Source
	publish *blob.Bucket
	log     zerolog.Logger
	now     func() time.Time
}

// New returns a reconciler reading from source and writing to the publish bucket.
func New(source sources.Source, publish *blob.Bucket, log zerolog.Logger) *Reconciler {
	return &Reconciler{source: source, publish: publish, log: log, now: time.Now}
}

// Run reconciles every revision the source produces until ctx is done. A failed revision
// is logged and the loop goes on: the last good state stays published.
func (r *Reconciler) Run(ctx context.Context) error {
	return r.source.Watch(ctx, func(snap *sources.Snapshot) error {
		log := r.log.With().Str("revision", snap.Revision).Logger()
		st, err := r.Reconcile(ctx, snap)
		if err != nil {
			log.Error().Err(err).Msg("reconcile failed; last good state kept")
			return nil
		}
		log.Info().Int("files", st.Files).Strs("stages", st.Stages).Msg("reconciled")
		return nil
	})
}

// Reconcile runs the stages for one snapshot, top to bottom.
func (r *Reconciler) Reconcile(ctx context.Context, snap *sources.Snapshot) (*Status, error) {
	st := &Status{Revision: snap.Revision, Stages: []string{"snapshot"}}

	// Snapshot: count what the source gave us.
	err := fs.WalkDir(snap.FS, ".", func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			st.Files++
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", snap.Revision, err)
	}

	// Record: written last, so a reader never sees a revision whose stages did not finish.
	st.ReconciledAt = r.now().UTC()
	st.Stages = append(st.Stages, "record")
	if err := r.record(ctx, st); err != nil {
		return nil, err
	}
	return st, nil
}

func (r *Reconciler) record(ctx context.Context, st *Status) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := r.publish.WriteAll(ctx, StatusKey, append(b, '\n'), &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("record %s: %w", st.Revision, err)
	}
	return nil
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
