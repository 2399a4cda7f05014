package reconciler

import (
	"context"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
)

// stagePanic is a panic caught in a stage: where, and the stack of the goroutine that
// panicked (a per-environment one's, raised again in the stage's goroutine by
// boundedGroup.Wait).
type stagePanic struct {
	stage, env string
	value      any
	stack      []byte
}

// enter starts a stage: the status names it, and the test seam may act on it.
func (r *Reconciler) enter(st *Status, stage string) {
	st.Stages = append(st.Stages, stage)
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
	p, ok := v.(*stagePanic)
	if !ok {
		p = &stagePanic{stage: partial.Stages[len(partial.Stages)-1], value: v, stack: debug.Stack()}
	}
	where := "the " + p.stage + " stage"
	if p.env != "" {
		where += " of " + p.env
	}
	msg := r.opts.Redactor.String(fmt.Sprintf("internal error in %s: %v (a bug in circle; the stack is in the log)", where, p.value))
	ev := r.log.Error().Str("revision", partial.Revision).Str("stage", p.stage)
	if p.env != "" {
		ev = ev.Str("env", p.env)
	}
	ev.Str("panic", r.opts.Redactor.String(fmt.Sprint(p.value))).Str("stack", string(p.stack)).
		Msg("a stage panicked: revision refused (Internal), last good state kept")

	stages := slices.Clone(partial.Stages)
	if p.stage == "record" {
		stages = stages[:len(stages)-1] // record names itself again below
	}
	st = &Status{Revision: partial.Revision, Reason: ReasonInternal, Message: msg, Files: partial.Files,
		Commit: partial.Commit, Stages: stages, started: partial.started}
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
