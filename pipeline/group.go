package pipeline

import (
	"fmt"
	"runtime/debug"
	"sync"

	"golang.org/x/sync/errgroup"
)

// DefaultConcurrency is how many environments a stage works on at once when the caller
// sets no bound.
const DefaultConcurrency = 4

// Group runs a stage's per-environment work, at most limit at once: the build stage here,
// and the daemon's publish and apply stages. It is an errgroup.Group with a limit; each
// stage records its own per-environment errors, so its functions return none, and no
// context is cancelled on a first error.
//
// A panic in one of its goroutines would end the process (no recover reaches across
// goroutines), so each is recovered there, and Wait raises the first again as a *Panic in
// the stage's own goroutine, where the caller can turn it into a failed revision.
type Group struct {
	g     errgroup.Group
	stage string
	enter func(stage, env string)

	mu       sync.Mutex
	panicked *Panic
}

// NewGroup returns a Group for stage that runs at most limit functions at once (limit ≤ 0:
// DefaultConcurrency). enter, when set, is called in each goroutine before its work (a
// test seam that sees the overlap).
func NewGroup(stage string, limit int, enter func(stage, env string)) *Group {
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	g := &Group{stage: stage, enter: enter}
	g.g.SetLimit(limit)
	return g
}

// Go runs fn, the stage's work for env, once a slot is free (it waits for one).
func (g *Group) Go(env string, fn func()) {
	g.g.Go(func() error {
		defer func() {
			if v := recover(); v != nil {
				g.mu.Lock()
				if g.panicked == nil {
					g.panicked = &Panic{Stage: g.stage, Env: env, Value: v, Stack: debug.Stack()}
				}
				g.mu.Unlock()
			}
		}()
		if g.enter != nil {
			g.enter(g.stage, env)
		}
		fn()
		return nil
	})
}

// Wait waits for every function, then panics again with the first one's *Panic, if any.
func (g *Group) Wait() {
	_ = g.g.Wait() // the functions return no error
	if g.panicked != nil {
		panic(g.panicked)
	}
}

// Panic is a panic caught in a stage: where, and the stack of the goroutine that panicked
// (an environment's, raised again in the stage's goroutine by Group.Wait).
type Panic struct {
	Stage, Env string
	Value      any
	Stack      []byte
}

// Error says where the panic happened and with what; a Panic is a bug in Circle.
func (p *Panic) Error() string {
	where := "the " + p.Stage + " stage"
	if p.Env != "" {
		where += " of " + p.Env
	}
	return fmt.Sprintf("internal error in %s: %v", where, p.Value)
}
