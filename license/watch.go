package license

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// kubeDataLink is the symlink a Kubernetes Secret or ConfigMap volume swaps to publish a
// new version of all its files at once; the file names are links through it.
const kubeDataLink = "..data"

// WatchOptions say what a Watcher reads and whom it tells.
type WatchOptions struct {
	// File is the license file, e.g. /etc/circle/license/license.lic in a mounted Secret.
	File string
	// Revocations is the revocation list file, if there is one; it is loaded before the
	// license each time, into the Verifier.
	Revocations string
	// OnChange is called with each newly verified license: a new file, or the same one in
	// a new state (valid to in grace). It is called with nil when the license held stops
	// verifying (it expired, or a new revocation list revokes it). It runs on the
	// watcher's goroutine (the first time, on Watch's); it must not call Close.
	OnChange func(*License)
	// OnError is called with each failure: a file that cannot be read, a license or list
	// refused. A new license that fails leaves the one held in place. An error that
	// persists is reported once, not on every recheck.
	OnError func(error)
	// Recheck is how often the files are read and verified again without an event, so a
	// license moves into grace or expires on time and a missed event is caught up with.
	Recheck time.Duration
	// Debounce gathers the events of one change (an editor's rename and write, a Secret's
	// symlink swap) into one reload.
	Debounce time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultWatchOptions returns options for a license file: recheck every minute, 100 ms
// debounce.
func DefaultWatchOptions(file string) WatchOptions {
	return WatchOptions{File: file, Recheck: time.Minute, Debounce: 100 * time.Millisecond}
}

// Watcher keeps a verified license current as its file changes.
type Watcher struct {
	v    *Verifier
	opts WatchOptions

	mu      sync.RWMutex
	current *License
	raw     []byte
	// reported and reporting are the errors of the last reload and of this one: an error
	// that persists is reported once, not on every recheck.
	reported, reporting map[string]bool

	cancel context.CancelFunc
	done   chan struct{}
}

// Watch loads the license (and revocation list) once, reporting the outcome through the
// callbacks, then follows the files with fsnotify until ctx is done or Close is called.
// It returns an error only when it cannot watch: the license itself may still be missing
// or refused, which License tells.
//
// The folders of File and Revocations are watched, not the files, so a file replaced by a
// rename, and a Kubernetes volume's ..data symlink swap, are seen.
func Watch(ctx context.Context, v *Verifier, opts WatchOptions) (*Watcher, error) {
	if opts.File == "" {
		return nil, errors.New("license: watch: no File")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Recheck <= 0 {
		opts.Recheck = time.Minute
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("license: watch: %w", err)
	}
	files := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range []string{opts.File, opts.Revocations} {
		if f == "" {
			continue
		}
		f = filepath.Clean(f)
		files[f] = true
		dir := filepath.Dir(f)
		if dirs[dir] {
			continue
		}
		dirs[dir] = true
		if err := fw.Add(dir); err != nil {
			fw.Close()
			return nil, fmt.Errorf("license: watch %s: %w", dir, err)
		}
	}
	w := &Watcher{v: v, opts: opts, done: make(chan struct{})}
	w.reload()
	ctx, w.cancel = context.WithCancel(ctx)
	go func() {
		defer close(w.done)
		defer fw.Close()
		w.loop(ctx, fw, func(name string) bool {
			name = filepath.Clean(name)
			return files[name] || filepath.Base(name) == kubeDataLink && dirs[filepath.Dir(name)]
		})
	}()
	return w, nil
}

// License returns the license held: the last that verified, or nil.
func (w *Watcher) License() *License {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.current
}

// Close stops watching and returns once no callback runs any more.
func (w *Watcher) Close() {
	w.cancel()
	<-w.done
}

func (w *Watcher) loop(ctx context.Context, fw *fsnotify.Watcher, relevant func(string) bool) {
	const ops = fsnotify.Create | fsnotify.Write | fsnotify.Rename | fsnotify.Remove
	debounce := time.NewTimer(w.opts.Debounce)
	debounce.Stop()
	defer debounce.Stop()
	recheck := time.NewTicker(w.opts.Recheck)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.Events:
			if !ok {
				return
			}
			if ev.Op&ops != 0 && relevant(ev.Name) {
				debounce.Reset(w.opts.Debounce)
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return
			}
			w.report(fmt.Errorf("license: watch: %w", err))
		case <-debounce.C:
			w.reload()
		case <-recheck.C:
			w.reload()
		}
	}
}

// reload reads the revocation list and the license, verifies them, and updates what is
// held: a new license that verifies replaces it; one that fails leaves it, unless the
// license held no longer verifies itself.
func (w *Watcher) reload() {
	w.reporting = map[string]bool{}
	defer func() { w.reported, w.reporting = w.reporting, nil }()
	now := w.opts.Now()
	if w.opts.Revocations != "" {
		data, err := ReadFile(w.opts.Revocations)
		if err == nil {
			_, err = w.v.LoadRevocations(data)
		}
		if err != nil {
			w.report(fmt.Errorf("%s: %w", w.opts.Revocations, err))
		}
	}
	w.mu.RLock()
	held, heldRaw := w.current, w.raw
	w.mu.RUnlock()

	data, err := ReadFile(w.opts.File)
	if err == nil {
		var l *License
		if l, err = w.v.Verify(data, now); err == nil {
			w.set(l, data)
			return
		}
		err = fmt.Errorf("%s: %w", w.opts.File, err)
	}
	w.report(err)
	if held == nil || bytes.Equal(data, heldRaw) {
		// The file held is the one that failed: it no longer verifies.
		if held != nil {
			w.set(nil, nil)
		}
		return
	}
	// A new file failed; the one held stays if it still verifies.
	l, err := w.v.Verify(heldRaw, now)
	if err != nil {
		w.report(fmt.Errorf("%s (the license held): %w", w.opts.File, err))
		w.set(nil, nil)
		return
	}
	w.set(l, heldRaw)
}

// set holds l and calls OnChange when it differs from what was held: another payload,
// another state, or none.
func (w *Watcher) set(l *License, raw []byte) {
	w.mu.Lock()
	old := w.current
	changed := (old == nil) != (l == nil) ||
		l != nil && (!bytes.Equal(old.payload, l.payload) || old.state != l.state)
	w.current, w.raw = l, raw
	w.mu.Unlock()
	if changed && w.opts.OnChange != nil {
		w.opts.OnChange(l)
	}
}

func (w *Watcher) report(err error) {
	msg := err.Error()
	seen := w.reported[msg]
	if w.reporting != nil {
		w.reporting[msg] = true
	}
	if seen {
		return
	}
	if w.opts.OnError != nil {
		w.opts.OnError(err)
	}
}
