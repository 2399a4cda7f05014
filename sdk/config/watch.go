package config

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// kubeDataLink is the symlink a Kubernetes ConfigMap volume swaps to
// publish a new version of all its files at once.
const kubeDataLink = "..data"

// Watch reloads the configuration whenever one of its sources changes,
// until ctx is done or stop is called. stop returns once no callback is
// running any more, so a callback must not call it. Successful changes go
// to [OnChange], failures to [OnError], and a failed reload keeps the
// current configuration.
//
// Files are watched with fsnotify: changes arriving within about 100ms of
// each other cause one reload, as an editor or a ConfigMap update touches
// several names per change. [Remote] sources have no events to watch, so
// they are asked every [PollInterval] whether they changed, which for a
// published build costs one metadata request; only a change reads them.
// Environment variables are read again at each reload, but do not start
// one.
func (l *Loader) Watch(ctx context.Context) (stop func(), err error) {
	remotes := l.remotes()
	var local []source
	for _, f := range l.opts.files {
		if f.remote == nil {
			local = append(local, f)
		}
	}
	if len(local) == 0 && len(remotes) == 0 {
		return nil, errors.New("config: watch: no File or Remote to watch")
	}
	var w *fsnotify.Watcher
	files := map[string]bool{}
	dirs := map[string]bool{}
	if len(local) > 0 {
		if w, err = fsnotify.NewWatcher(); err != nil {
			return nil, fmt.Errorf("config: watch: %w", err)
		}
		for _, f := range local {
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
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if w != nil {
		wg.Go(func() {
			defer w.Close()
			l.watch(ctx, w, func(name string) bool {
				name = filepath.Clean(name)
				return files[name] || filepath.Base(name) == kubeDataLink && dirs[filepath.Dir(name)]
			})
		})
	}
	if len(remotes) > 0 {
		wg.Go(func() { l.poll(ctx, remotes) })
	}
	return func() { cancel(); wg.Wait() }, nil
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
			if err := l.reload(ctx); err != nil && ctx.Err() == nil {
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
