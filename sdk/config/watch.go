package config

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// kubeDataLink is the symlink a Kubernetes ConfigMap volume swaps to
// publish a new version of all its files at once.
const kubeDataLink = "..data"

// Watch reloads the configuration whenever one of the files changes,
// until ctx is done or stop is called. stop returns once no callback is
// running any more, so a callback must not call it. Successful changes go
// to [OnChange], failures to [OnError], and a failed reload keeps the
// current configuration.
//
// Changes arriving within about 100ms of each other cause one reload, as
// an editor or a ConfigMap update touches several names per change.
// Environment variables are read again too, but only a file change starts
// a reload.
func (l *Loader) Watch(ctx context.Context) (stop func(), err error) {
	if len(l.opts.files) == 0 {
		return nil, errors.New("config: watch: no File to watch")
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("config: watch: %w", err)
	}
	files := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range l.opts.files {
		files[f.path] = true
		dir := filepath.Dir(f.path)
		if dirs[dir] {
			continue
		}
		dirs[dir] = true
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, fmt.Errorf("config: watch %s: %w", dir, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.Close()
		l.watch(ctx, w, func(name string) bool {
			name = filepath.Clean(name)
			return files[name] || filepath.Base(name) == kubeDataLink && dirs[filepath.Dir(name)]
		})
	}()
	return func() { cancel(); <-done }, nil
}

func (l *Loader) watch(ctx context.Context, w *fsnotify.Watcher, relevant func(string) bool) {
	const ops = fsnotify.Create | fsnotify.Write | fsnotify.Rename | fsnotify.Remove
	timer := time.NewTimer(l.opts.debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op&ops != 0 && relevant(ev.Name) {
				timer.Reset(l.opts.debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			l.report(fmt.Errorf("config: watch: %w", err))
		case <-timer.C:
			if err := l.Reload(); err != nil {
				l.report(err)
			}
		}
	}
}

func (l *Loader) report(err error) {
	if l.opts.onError != nil {
		l.opts.onError(err)
	}
}
