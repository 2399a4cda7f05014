package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/repo"
)

// EventSink records Kubernetes Events about the environments of one cluster target, for
// `kubectl describe` readers: apply.Recorder, which attaches them to each environment's
// inventory ConfigMap.
type EventSink interface {
	// Event records an event of eventType (apply.EventNormal or apply.EventWarning) with a
	// CamelCase reason about env. It returns without waiting for the API server to take
	// the event, and it rate-limits and aggregates on its own: the reconciler calls it
	// once per environment and target per reconcile, however often that is. The message
	// is already redacted. An error is logged and never fails the reconcile;
	// apply.ErrNoInventory says the environment has nothing to attach the event to yet.
	Event(ctx context.Context, env, eventType, reason, message string) error
}

var _ EventSink = (*apply.Recorder)(nil)

// Reasons of the events the apply stage records, besides ReasonApplyFailed and
// ReasonRolledBack, which are the environment's status reason as well.
const (
	// EventApplied is a revision applied to a cluster target (Normal), with its counts.
	EventApplied = "Applied"
	// EventPruned is objects an apply deleted because the revision no longer holds them
	// (Normal), named up to maxEventSubjects.
	EventPruned = "Pruned"
	// EventRefused is a revision an environment refused before it reached the target
	// (Warning): the status reason (BuildFailed, SignatureRefused…) is in the message.
	EventRefused = "Refused"
	// EventDriftCorrected is objects the drift check found changed outside Git and put
	// back (Warning: someone or something edits what Circle owns), named up to
	// maxEventSubjects.
	EventDriftCorrected = "DriftCorrected"
)

// maxEventSubjects is how many pruned objects a Pruned event names; the log names all.
const maxEventSubjects = 10

// event records one event about env on target, when the target has an EventSink. Every
// event goes through here, and so through the redactor: an API server's error can quote
// what it was sent.
func (r *Reconciler) event(ctx context.Context, target, env, eventType, reason, message string, log zerolog.Logger) {
	sink := r.opts.Events[target]
	if sink == nil {
		return
	}
	message = r.opts.Redactor.String(message)
	err := sink.Event(ctx, env, eventType, reason, message)
	switch {
	case errors.Is(err, apply.ErrNoInventory):
		log.Debug().Str("env", env).Str("target", target).Str("event", reason).Msg("no inventory ConfigMap yet: event not recorded")
	case err != nil:
		log.Warn().Str("env", env).Str("target", target).Str("event", reason).Err(r.opts.Redactor.Error(err)).Msg("Kubernetes event not recorded")
	}
}

// appliedEvents records what an apply did: Applied with its counts, and Pruned when it
// deleted objects.
func (r *Reconciler) appliedEvents(ctx context.Context, target, env, revision string, res *apply.Result, log zerolog.Logger) {
	r.event(ctx, target, env, apply.EventNormal, EventApplied, fmt.Sprintf("Applied revision %s: %d created, %d configured, %d unchanged, %d deleted",
		revision, len(res.Created), len(res.Configured), len(res.Unchanged), len(res.Deleted)), log)
	if len(res.Deleted) == 0 {
		return
	}
	names := res.Deleted
	more := ""
	if len(names) > maxEventSubjects {
		names, more = names[:maxEventSubjects], fmt.Sprintf(" and %d more", len(res.Deleted)-maxEventSubjects)
	}
	r.event(ctx, target, env, apply.EventNormal, EventPruned, fmt.Sprintf("Pruned %d object(s) no longer in revision %s: %s%s",
		len(res.Deleted), revision, strings.Join(names, ", "), more), log)
}

// failedEvent records an apply that failed: RolledBack when the target's last good build
// was applied again (to is its revision), else ApplyFailed.
func (r *Reconciler) failedEvent(ctx context.Context, target, env, revision string, err error, to string, rolledBack bool, log zerolog.Logger) {
	if rolledBack {
		r.event(ctx, target, env, apply.EventWarning, ReasonRolledBack,
			fmt.Sprintf("Revision %s failed and was rolled back to %s: %v", revision, to, err), log)
		return
	}
	r.event(ctx, target, env, apply.EventWarning, ReasonApplyFailed, fmt.Sprintf("Revision %s failed: %v", revision, err), log)
}

// refusedEvents records, on each cluster target, the environments it lists that refused
// the revision on their own (signature, license, build) while others went on to the apply
// stage: their targets keep the last good build, and say why there.
func (r *Reconciler) refusedEvents(ctx context.Context, revision string, s *repo.Settings, envs []EnvStatus, builds map[string]*pipeline.Output, log zerolog.Logger) {
	for _, t := range s.Targets {
		if t.Kind != "cluster" || r.opts.Events[t.Name] == nil {
			continue
		}
		for _, name := range t.Environments {
			for _, e := range envs {
				if e.Name == name && !e.Ready && builds[name] == nil {
					// The message is the status's, redacted already; event redacts again.
					r.event(ctx, t.Name, name, apply.EventWarning, EventRefused,
						fmt.Sprintf("Revision %s refused (%s); the last good build stays: %s", revision, e.Reason, e.Message), log)
				}
			}
		}
	}
}
