package reconciler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/storage"
)

// HealthReader is a Cluster that can tell each object's health now (apply.Applier). A
// cluster without it has its objects' health Unknown, unless an apply that waited for
// health proved them Current.
type HealthReader interface {
	// Health reads the kstatus of each object of env's manifests, changing nothing.
	Health(ctx context.Context, env string, manifests []byte) ([]apply.ObjectHealth, error)
}

// DriftReader is a Cluster that can tell which objects, and which of their fields, an
// apply of the same manifests would put back (apply.Applier). The drift check asks it
// before it corrects; a cluster without it has its drift told by object only (what the
// correcting apply changed).
type DriftReader interface {
	// Drift reports the objects of env's manifests changed since the last apply, changing
	// nothing.
	Drift(ctx context.Context, env string, manifests []byte) ([]apply.Drifted, error)
}

var (
	_ HealthReader = (*apply.Applier)(nil)
	_ DriftReader  = (*apply.Applier)(nil)
)

// packageSet sums an environment's package index up for the status: each selected version
// with its license and advisories. Nil without packages.
func packageSet(ix *registry.Index) *PackageSet {
	if ix == nil {
		return nil
	}
	ps := &PackageSet{Resolved: ix.Resolved, Explanation: ix.Explanation, Failed: ix.Report != nil && ix.Report.Failed}
	for _, p := range ix.Packages {
		for _, v := range p.Versions {
			if !v.Selected {
				continue
			}
			pv := PackageVersion{Name: p.Name, Version: v.Version, License: v.License}
			for _, a := range v.Advisories {
				pv.Advisories = append(pv.Advisories, PackageAdvisory{ID: a.ID, Severity: a.Severity.Rating, Summary: a.Summary, Fixed: a.Fixed})
			}
			ps.Packages = append(ps.Packages, pv)
		}
	}
	return ps
}

// readHealth is the health of the objects an apply to target left (res), read right after
// it, before a rollback can change them: proved Current by an apply that waited and
// succeeded, read from a HealthReader otherwise, Unknown without one. It returns nil when
// there is nothing to say (no result).
func (r *Reconciler) readHealth(ctx context.Context, target, env string, manifests []byte, res *apply.Result, applyErr error) *ClusterState {
	if res == nil {
		return nil
	}
	cs := &ClusterState{}
	health := map[string]apply.ObjectHealth{}
	switch hr, ok := r.opts.Clusters[target].(HealthReader); {
	case applyErr == nil && r.opts.Apply.Wait > 0:
		cs.HealthAt = r.now().UTC()
		for _, l := range [][]string{res.Created, res.Configured, res.Unchanged} {
			for _, s := range l {
				health[s] = apply.ObjectHealth{Subject: s, Status: HealthCurrent}
			}
		}
	case ok:
		hs, err := hr.Health(ctx, env, manifests)
		if err != nil {
			r.log.Warn().Str("env", env).Str("target", target).Err(r.opts.Redactor.Error(err)).Msg("object health unreadable")
			break
		}
		cs.HealthAt = r.now().UTC()
		for _, h := range hs {
			health[h.Subject] = h
		}
	}
	for _, l := range [][]string{res.Created, res.Configured, res.Unchanged} {
		for _, s := range l {
			h, ok := health[s]
			if !ok {
				h.Status = HealthUnknown
			}
			cs.Objects = append(cs.Objects, ObjectState{Subject: s, Health: h.Status, Message: r.opts.Redactor.String(h.Message)})
		}
	}
	slices.SortFunc(cs.Objects, func(a, b ObjectState) int { return strings.Compare(a.Subject, b.Subject) })
	return cs
}

// noteApplied records in e what the apply to target left: the objects and their health
// (read, the revision they came from) and, on failure, the target's own error. Each
// target's state is a new value: the last status, which the API may be serving, shares
// the old ones (carryOver clones only the map).
func (r *Reconciler) noteApplied(e *EnvStatus, target, revision string, read *ClusterState, errMsg string) {
	next := &ClusterState{}
	if old := e.Clusters[target]; old != nil {
		*next = *old
	}
	if read != nil {
		next.Revision, next.Objects, next.HealthAt = revision, read.Objects, read.HealthAt
	}
	next.Error, next.ErrorAt = errMsg, time.Time{}
	if errMsg != "" {
		next.ErrorAt = r.now().UTC()
	}
	if e.Clusters == nil {
		e.Clusters = map[string]*ClusterState{}
	}
	e.Clusters[target] = next
}

// noteDrift records what one drift check of b found: the drift (by object, and by field
// when the cluster could tell), whether the apply put it back, and the objects' health
// now. The status is written again only when that changed something.
func (r *Reconciler) noteDrift(ctx context.Context, b appliedBuild, drifted []apply.Drifted, fieldsKnown bool, res *apply.Result, applyErr error) {
	var d *Drift
	switch {
	case fieldsKnown && len(drifted) > 0:
		d = &Drift{FieldsKnown: true}
		for _, x := range drifted {
			d.Objects = append(d.Objects, DriftedObject{Subject: x.Subject, Missing: x.Missing, Fields: x.Fields})
		}
	case !fieldsKnown && res != nil && len(res.Created)+len(res.Configured) > 0:
		d = &Drift{}
		for _, s := range res.Created {
			d.Objects = append(d.Objects, DriftedObject{Subject: s, Missing: true})
		}
		for _, s := range res.Configured {
			d.Objects = append(d.Objects, DriftedObject{Subject: s})
		}
	}
	if d != nil {
		d.At, d.Revision, d.State = r.now().UTC(), b.revision, DriftCorrected
		if applyErr != nil {
			d.State, d.Error = DriftDrifted, r.opts.Redactor.String(applyErr.Error())
		}
	}
	var health *ClusterState
	if applyErr == nil {
		health = r.readHealth(ctx, b.target, b.env, b.manifests, res, nil)
	}
	r.amend(ctx, func(st *Status) bool {
		i := slices.IndexFunc(st.Environments, func(e EnvStatus) bool { return e.Name == b.env })
		if i < 0 {
			return false
		}
		e := &st.Environments[i]
		old := e.Clusters[b.target]
		next := &ClusterState{}
		if old != nil {
			*next = *old
		}
		if d != nil {
			next.Drift = d
		}
		if health != nil && next.Revision == b.revision {
			next.Objects = health.Objects
			if !health.HealthAt.IsZero() {
				next.HealthAt = health.HealthAt
			}
		}
		if old != nil && d == nil && slices.Equal(old.Objects, next.Objects) {
			return false // only the time of the read moved: not worth a write
		}
		e.Clusters = maps.Clone(e.Clusters)
		if e.Clusters == nil {
			e.Clusters = map[string]*ClusterState{}
		}
		e.Clusters[b.target] = next
		return true
	})
}

// amend changes the last recorded status outside a reconcile (the drift check, which
// holds the run lock, so no reconcile writes meanwhile) and records it again when change
// says it changed: status.json and the state store's status, never a history entry (no
// revision was reconciled). The last status is copied first: the API may be serving it.
func (r *Reconciler) amend(ctx context.Context, change func(*Status) bool) {
	r.mu.RLock()
	last := r.last
	r.mu.RUnlock()
	if last == nil {
		return
	}
	st := *last
	st.Environments = slices.Clone(last.Environments)
	if !change(&st) {
		return
	}
	st.UpdatedAt = r.now().UTC()
	if err := r.rewrite(ctx, &st); err != nil {
		r.log.Warn().Str("revision", st.Revision).Err(r.opts.Redactor.Error(err)).Msg("status not rewritten after the drift check; the API has it")
	}
	r.mu.Lock()
	r.last = &st
	r.mu.Unlock()
}

// rewrite writes an amended status where record wrote it.
func (r *Reconciler) rewrite(ctx context.Context, st *Status) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := r.status.Put(ctx, StatusKey, bytes.NewReader(append(b, '\n')), &storage.PutOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("rewrite %s: %w", st.Revision, err)
	}
	if r.opts.State != nil {
		docs := r.trustDocs()
		docs[stateStatus] = st
		if err := r.opts.State.PutAll(docs); err != nil {
			return fmt.Errorf("rewrite %s: %w", st.Revision, err)
		}
	}
	return nil
}
