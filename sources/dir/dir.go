// Package dir is a sources.Source over a local folder, for local development: it watches
// the folder recursively with fsnotify, waits for bursts of changes to settle (an editor's
// save, a `git checkout`), and names each revision by the hash of its content.
package dir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// The default caps, the Git source's: a desired-state repository is text, and one far
// past these is a mistake or an attack on the memory of the machine reading it.
const (
	DefaultMaxFileSize = 16 << 20
	DefaultMaxTreeSize = 256 << 20
)

// ErrTooLarge is wrapped by the error for a file or a tree over its cap.
var ErrTooLarge = errors.New("over the size limit")

// Options tune a directory source. The caps are the daemon's or the CLI's to set, never
// the folder's: they hold against its content.
type Options struct {
	// Debounce is how long the folder must be quiet after a change before it is read again.
	Debounce time.Duration
	// MaxFileSize and MaxTreeSize bound what a snapshot reads, in bytes (0: the defaults,
	// 16 MiB and 256 MiB). A file over the first, or a tree whose files add up to more than
	// the second, fails the snapshot with an error naming it; nothing over is read.
	MaxFileSize, MaxTreeSize int64
	// OnError hears the snapshots Watch could not make because of a cap, so the daemon can
	// report them; Watch then waits for the next change. Nil ignores them.
	OnError func(error)
}

// DefaultOptions returns the options `circle serve` uses.
func DefaultOptions() Options {
	return Options{Debounce: 250 * time.Millisecond, MaxFileSize: DefaultMaxFileSize, MaxTreeSize: DefaultMaxTreeSize}
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
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	if opts.MaxTreeSize <= 0 {
		opts.MaxTreeSize = DefaultMaxTreeSize
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
// what makes the snapshot immune to edits made while later stages read it. Each file's
// size is checked against the caps before it is read, so an oversized or sparse file costs
// nothing.
func (s *Source) Snapshot(ctx context.Context) (*sources.Snapshot, error) {
	files := fstest.MapFS{} // a read-only fs.FS over a map: exactly what a snapshot is
	var total int64
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
		b, err := s.read(p, rel, &total)
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

// read reads the file at p (rel in the tree) within the caps, adding its size to total.
// The caps are checked against the open file's size before anything is read, and again
// against what was read (at most one byte past the file cap), so a file that grew after
// the check is held to them too.
func (s *Source) read(p, rel string, total *int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := s.check(rel, st.Size(), *total); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(int(st.Size()) + bytes.MinRead) // one read, no regrowth, for a file that kept its size
	if _, err := buf.ReadFrom(io.LimitReader(f, s.opts.MaxFileSize+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	if err := s.check(rel, int64(buf.Len()), *total); err != nil {
		return nil, err
	}
	*total += int64(buf.Len())
	return buf.Bytes(), nil
}

// check holds a file of size bytes, read after total bytes of the tree, to the caps.
func (s *Source) check(rel string, size, total int64) error {
	if size > s.opts.MaxFileSize {
		return fmt.Errorf("%s: %d bytes is over the %d-byte file limit: %w", rel, size, s.opts.MaxFileSize, ErrTooLarge)
	}
	if total+size > s.opts.MaxTreeSize {
		return fmt.Errorf("%s: the tree is over the %d-byte limit (%d bytes with this file): %w",
			rel, s.opts.MaxTreeSize, total+size, ErrTooLarge)
	}
	return nil
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

// Watch implements sources.Source. A snapshot refused by a cap is given to
// Options.OnError, and the next change is waited for.
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
		if errors.Is(err, ErrTooLarge) {
			// The folder's content is at fault, not the source: report it and wait for the
			// change that fixes it, as the Git source waits for the next commit.
			if s.opts.OnError != nil {
				s.opts.OnError(err)
			}
			return nil
		}
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
