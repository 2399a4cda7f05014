package reconciler

import (
	"context"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"

	"github.com/circlecore/circle/pipeline"
)

// enter starts a stage: the status names it, and the test seam may act on it.
func (r *Reconciler) enter(st *Status, stage string) {
	st.Stages = append(st.Stages, stage)
	st.mark()
	if r.stageHook != nil {
		r.stageHook(stage, "")
	}
}

// recovered turns a stage's panic into a recorded failure. A panic is a bug in circle,
// not in the repository, but one bad revision must not crash-loop the daemon: the stack
// goes to the log, the revision is refused for every environment with ReasonInternal, each
// keeps its last good revision as last recorded (what the panicking reconcile had changed
// in its own status is dropped: it stopped half-way), and the loop goes on to the next
// revision. An Internal failure is not retried (see retryable): the same revision would
// panic again.
func (r *Reconciler) recovered(ctx context.Context, partial *Status, v any) (st *Status, err error) {
	p, ok := v.(*pipeline.Panic)
	if !ok {
		p = &pipeline.Panic{Stage: partial.Stages[len(partial.Stages)-1], Value: v, Stack: debug.Stack()}
	}
	msg := r.opts.Redactor.String(p.Error() + " (a bug in circle; the stack is in the log)")
	ev := r.log.Error().Str("revision", partial.Revision).Str("stage", p.Stage)
	if p.Env != "" {
		ev = ev.Str("env", p.Env)
	}
	ev.Str("panic", r.opts.Redactor.String(fmt.Sprint(p.Value))).Str("stack", string(p.Stack)).
		Msg("a stage panicked: revision refused (Internal), last good state kept")

	stages := slices.Clone(partial.Stages)
	if p.Stage == "record" {
		stages = stages[:len(stages)-1] // record names itself again below
	}
	st = &Status{Revision: partial.Revision, Reason: ReasonInternal, Message: msg, Files: partial.Files,
		Commit: partial.Commit, Stages: stages, started: partial.started, began: partial.began}
	r.mu.RLock()
	last := r.last
	r.mu.RUnlock()
	if last != nil {
		st.Environments = slices.Clone(last.Environments) // a copy: the API may be reading the old one
	}
	for i := range st.Environments {
		e := &st.Environments[i]
		e.Ready, e.Reason, e.Message, e.Applied = false, ReasonInternal, msg, maps.Clone(e.Applied)
	}
	// Recording runs outside the stages' recovery: a panic here is one more bug, and is
	// reported as the revision's error (logged, retried) rather than ending the daemon.
	defer func() {
		if v := recover(); v != nil {
			r.log.Error().Str("revision", partial.Revision).Str("panic", fmt.Sprint(v)).Str("stack", string(debug.Stack())).
				Msg("recording an internal failure panicked")
			st, err = nil, fmt.Errorf("record %s: panic: %v", partial.Revision, v)
		}
	}()
	return r.record(ctx, st)
}
