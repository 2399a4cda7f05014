// Package dir is a sources.Source over a local folder, for local development: it watches
// the folder recursively with fsnotify, waits for bursts of changes to settle (an editor's
// save, a `git checkout`), and names each revision by the hash of its content.
package dir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing/fstest"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/circlecore/circle/sources"
)

// Options tune a directory source.
type Options struct {
	// Debounce is how long the folder must be quiet after a change before it is read again.
	Debounce time.Duration
}

// DefaultOptions returns the options `circle serve` uses.
func DefaultOptions() Options {
	return Options{Debounce: 250 * time.Millisecond}
}

// Source reads and watches one folder.
type Source struct {
	root string
	opts Options
}

var _ sources.Source = (*Source)(nil)

// New returns a source over the folder root.
func New(root string, opts Options) (*Source, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("source dir %s: %w", root, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("source dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("source dir %s: not a directory", root)
	}
	return &Source{root: abs, opts: opts}, nil
}

// ignored reports whether a path (slash-separated, relative) is not part of the desired
// state: Git's own folder and the temporary files editors write beside the real ones.
func ignored(rel string) bool {
	for _, part := range strings.Split(rel, "/") {
		if part == ".git" {
			return true
		}
	}
	base := path.Base(rel)
	switch {
	case strings.HasSuffix(base, "~"), strings.HasSuffix(base, ".swp"), strings.HasSuffix(base, ".swx"),
		strings.HasPrefix(base, ".#"), strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"),
		base == "4913": // vim's write-permission probe
		return true
	}
	return false
}

// Snapshot reads every file into memory. Config repositories are small, and a copy is
// what makes the snapshot immune to edits made while later stages read it.
func (s *Source) Snapshot(ctx context.Context) (*sources.Snapshot, error) {
	files := fstest.MapFS{} // a read-only fs.FS over a map: exactly what a snapshot is
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		rel, _ := filepath.Rel(s.root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // folders are implied by their files; links and devices are not followed
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[rel] = &fstest.MapFile{Data: b, Mode: 0o444}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", s.root, err)
	}
	return &sources.Snapshot{Revision: revision(files), FS: files}, nil
}

// revision hashes the sorted paths and contents, length-prefixed so no two trees collide.
func revision(files fstest.MapFS) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%d:%s%d:", len(n), n, len(files[n].Data))
		h.Write(files[n].Data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Watch implements sources.Source.
func (s *Source) Watch(ctx context.Context, fn func(*sources.Snapshot) error) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.root, err)
	}
	defer w.Close()
	if err := s.addTree(w, s.root); err != nil {
		return err
	}

	last := ""
	emit := func() error {
		snap, err := s.Snapshot(ctx)
		if err != nil {
			return err
		}
		if snap.Revision == last {
			return nil
		}
		last = snap.Revision
		return fn(snap)
	}
	if err := emit(); err != nil {
		return err
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.Errors:
			return fmt.Errorf("watch %s: %w", s.root, err)
		case ev := <-w.Events:
			rel, _ := filepath.Rel(s.root, ev.Name)
			if ignored(filepath.ToSlash(rel)) {
				continue
			}
			// fsnotify watches one folder level: new subfolders must be added as they appear.
			if ev.Has(fsnotify.Create) {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					if err := s.addTree(w, ev.Name); err != nil {
						return err
					}
				}
			}
			timer.Reset(s.opts.Debounce)
		case <-timer.C:
			if err := emit(); err != nil {
				if errors.Is(err, context.Canceled) {
					return nil
				}
				return err
			}
		}
	}
}

func (s *Source) addTree(w *fsnotify.Watcher, top string) error {
	return filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(s.root, p)
		if rel != "." && ignored(filepath.ToSlash(rel)) {
			return filepath.SkipDir
		}
		if err := w.Add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		return nil
	})
}
