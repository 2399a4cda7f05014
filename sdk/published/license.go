package published

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/circlecore/circle/license"
)

// LicenseOptions say which license files of an environment's published build a
// [LicenseWatcher] follows, and whom it tells. They mirror license.WatchOptions, with
// paths in the build instead of local files.
type LicenseOptions struct {
	// File is the license's path in the build: the repository's path of the .lic file,
	// such as "licenses/shop.lic" (a build carries the licenses that apply to its
	// environment, under the paths they have in the repository).
	File string
	// Revocations is the revocation list's path in the build, such as
	// "licenses/revoked.list"; empty for none. It is loaded into the Verifier before the
	// license each time.
	Revocations string
	// OnChange is called with each newly verified license, or with nil when the license
	// held stops verifying (expired, revoked by a new list). It runs on the watcher's
	// goroutine (the first time, on WatchLicense's); it must not call Close.
	OnChange func(*license.License)
	// OnError is called with each failure; an error that persists is reported once.
	// A new license that fails, or a build that cannot be read, leaves the license held.
	OnError func(error)
	// Poll is how often current.json is checked for a new build (one metadata request);
	// 0 means 30 seconds.
	Poll time.Duration
	// Recheck is how often the license held is verified again without a new build, so it
	// moves into grace or expires on time; 0 means one minute.
	Recheck time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// LicenseWatcher keeps a verified license current as the environment's published builds
// change.
type LicenseWatcher struct {
	v        *license.Verifier
	opts     LicenseOptions
	lic, rev *File

	mu      sync.RWMutex
	current *license.License
	raw     []byte
	// reported and reporting are the errors of the last reload and of this one.
	reported, reporting map[string]bool

	cancel context.CancelFunc
	done   chan struct{}
}

// WatchLicense reads the license (and revocation list) from env's current build once,
// verifies it with v, reports the outcome through the callbacks, then follows the builds
// until ctx is done or Close is called. It returns an error only for options it cannot
// follow: the license itself may still be missing or refused, which License tells.
//
// v holds the issuer keys the service trusts. Build it from keys the service ships with
// or mounts, not from the build's issuers.pub: the build proves that the files are the
// ones Circle published, and the service's own keys prove who issued the license.
func WatchLicense(ctx context.Context, env *Env, v *license.Verifier, opts LicenseOptions) (*LicenseWatcher, error) {
	if opts.File == "" {
		return nil, errors.New("published: watch license: no File")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Poll <= 0 {
		opts.Poll = 30 * time.Second
	}
	if opts.Recheck <= 0 {
		opts.Recheck = time.Minute
	}
	w := &LicenseWatcher{v: v, opts: opts, lic: env.File(opts.File), done: make(chan struct{})}
	if opts.Revocations != "" {
		w.rev = env.File(opts.Revocations)
	}
	w.reload(ctx)
	ctx, w.cancel = context.WithCancel(ctx)
	go func() {
		defer close(w.done)
		w.loop(ctx)
	}()
	return w, nil
}

// License returns the license held: the last that verified, or nil.
func (w *LicenseWatcher) License() *license.License {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.current
}

// Close stops watching and returns once no callback runs any more.
func (w *LicenseWatcher) Close() {
	w.cancel()
	<-w.done
}

func (w *LicenseWatcher) loop(ctx context.Context) {
	poll := time.NewTicker(w.opts.Poll)
	defer poll.Stop()
	recheck := time.NewTicker(w.opts.Recheck)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			// Both files follow the same current.json, so asking one is enough.
			changed, err := w.lic.Changed(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				w.reporting = map[string]bool{}
				w.report(err)
				w.reported, w.reporting = w.reporting, nil
				continue
			}
			if changed {
				w.reload(ctx)
			}
		case <-recheck.C:
			w.reload(ctx)
		}
	}
}

// reload reads and verifies the revocation list and the license, as license.Watcher
// does for files: a new license that verifies replaces the one held; one that fails
// leaves it, unless the license held no longer verifies itself.
func (w *LicenseWatcher) reload(ctx context.Context) {
	w.reporting = map[string]bool{}
	defer func() { w.reported, w.reporting = w.reporting, nil }()
	now := w.opts.Now()
	if w.rev != nil {
		data, err := w.rev.Read(ctx)
		if err == nil {
			if _, err = w.v.LoadRevocations(data); err != nil {
				err = fmt.Errorf("%s: %w", w.rev.Name(), err)
			}
		}
		if err != nil {
			w.report(err)
		}
	}
	w.mu.RLock()
	held, heldRaw := w.current, w.raw
	w.mu.RUnlock()

	data, err := w.lic.Read(ctx)
	if err == nil {
		var l *license.License
		if l, err = w.v.Verify(data, now); err == nil {
			w.set(l, data)
			return
		}
		err = fmt.Errorf("%s: %w", w.lic.Name(), err)
	}
	w.report(err)
	if held == nil || bytes.Equal(data, heldRaw) {
		if held != nil { // the license held is the one that failed
			w.set(nil, nil)
		}
		return
	}
	l, err := w.v.Verify(heldRaw, now)
	if err != nil {
		w.report(fmt.Errorf("%s (the license held): %w", w.lic.Name(), err))
		w.set(nil, nil)
		return
	}
	w.set(l, heldRaw)
}

// set holds l and calls OnChange when it differs from what was held: another file,
// another state, or none.
func (w *LicenseWatcher) set(l *license.License, raw []byte) {
	w.mu.Lock()
	old, oldRaw := w.current, w.raw
	changed := (old == nil) != (l == nil) ||
		l != nil && (!bytes.Equal(oldRaw, raw) || old.State() != l.State())
	w.current, w.raw = l, raw
	w.mu.Unlock()
	if changed && w.opts.OnChange != nil {
		w.opts.OnChange(l)
	}
}

// report passes err to OnError unless the last reload reported it already.
func (w *LicenseWatcher) report(err error) {
	msg := err.Error()
	seen := w.reported[msg]
	w.reporting[msg] = true
	if !seen && w.opts.OnError != nil {
		w.opts.OnError(err)
	}
}
