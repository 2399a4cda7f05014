package mirror

import (
	"context"
	"crypto/rand"
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
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/circlecore/circle/storage/envelope"
)

// ErrUnsafeKey is wrapped when an object's key, less the prefix, is not a relative path
// that stays inside the folder (".." or "." segments, an empty segment that would make it
// absolute, a NUL byte). Circle's storage API never writes such keys, but anyone else who
// can write to the bucket can, and a download must not let them place a file outside it.
var ErrUnsafeKey = errors.New("key is not a path inside the folder")

// tempInfix marks the files a download writes before renaming them into place; a
// download killed mid-file leaves one (never a half-written file under the real name),
// and a later download with Delete removes it.
const tempInfix = ".circle-tmp-"

// DownloadOptions tune Download.
type DownloadOptions struct {
	// Concurrency is how many objects are downloaded at once; 0 means 16, as for Sync.
	Concurrency int
	// Delete removes the regular files under the folder that have no object (rclone
	// sync). The default leaves them (rclone copy): the folder is where people work, and a
	// download that adds to it by default cannot lose anything there.
	Delete bool
	// DryRun reports what would change and changes nothing.
	DryRun bool
	// Progress, when set, is called after each object is handled, from any goroutine.
	// Bytes and TotalBytes count stored sizes (what a download fetches), since the listing
	// that gives the total knows only those.
	Progress func(Progress)
}

// DownloadResult says what a download did.
type DownloadResult struct {
	Downloaded int   `json:"downloaded"`
	Skipped    int   `json:"skipped"`
	Deleted    int   `json:"deleted"`
	Bytes      int64 `json:"bytes"` // downloaded plaintext bytes
	// Changes lists the paths, relative to the folder and slash-separated, written ("+")
	// and deleted ("-"), in path order.
	Changes []string `json:"changes,omitempty"`
}

// remoteObject is one object to download: its key, its path under the folder and its
// size as listed (stored, so ciphertext).
type remoteObject struct {
	key    string
	rel    string
	stored int64
}

// downloader holds what every object's download shares.
type downloader struct {
	src  *envelope.Store
	root *os.Root // nil in a dry run of a folder that does not exist yet
	dir  string
	idx  index
	dry  bool
}

// Download makes dir hold the objects of src under prefix, decrypted and verified, as
// `rclone sync REMOTE:PREFIX DIR` does (rclone copy unless opts.Delete): the way back of
// Sync. dir is made if missing. Each file is written to a temporary file beside its target
// and renamed into place only once its content matched the object's recorded sha256 and
// size, so a corrupt object fails naming its key and leaves the old file, or none. Every
// write, rename and remove goes through an os.Root of dir, and keys that are not paths
// inside it are refused before anything is written, so neither a hostile key nor a
// symlink in dir places or removes a file outside it.
//
// A file already holding an object's content is not fetched: its digest comes from the
// index Sync keeps (one small read for all objects) or, for an object the index does not
// describe, from the object's metadata (one HEAD), and is compared with the file's when
// the sizes agree. Downloaded files get the modification time the index recorded, so a
// Sync of the folder back to the same prefix reads none of them. Index objects, this
// prefix's and those of syncs to prefixes below it, are bookkeeping and never become files.
func Download(ctx context.Context, src *envelope.Store, prefix, dir string, opts DownloadOptions) (*DownloadResult, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	listPrefix := ""
	if prefix != "" {
		listPrefix = prefix + "/"
	}
	// The whole listing is checked before the first write: a bucket with a hostile key is
	// refused as a whole rather than half-downloaded.
	var (
		objs  []remoteObject
		total int64
	)
	for a, err := range src.Backend().Walk(ctx, listPrefix) {
		if err != nil {
			return nil, fmt.Errorf("download: list %s: %w", listPrefix, err)
		}
		rel := strings.TrimPrefix(a.Key, listPrefix)
		if path.Base(rel) == IndexName {
			continue // Sync's index, of this prefix or of a sync to a prefix below it: no file
		}
		if strings.HasSuffix(rel, "/") && a.Size == 0 && checkRel(strings.TrimSuffix(rel, "/")) == nil {
			continue // a folder marker, as S3 consoles make: no file
		}
		if err := checkRel(rel); err != nil {
			return nil, fmt.Errorf("download: key %q: %w", a.Key, err)
		}
		objs = append(objs, remoteObject{key: a.Key, rel: rel, stored: a.Size})
		total += a.Size
	}

	d := &downloader{src: src, dir: dir, idx: readIndex(ctx, src, listPrefix+IndexName), dry: opts.DryRun}
	root, err := openFolder(dir, opts.DryRun)
	if err != nil {
		return nil, err
	}
	if root != nil {
		defer root.Close()
		d.root = root
	}

	var (
		res   DownloadResult
		mu    sync.Mutex
		done  atomic.Int64
		doneB atomic.Int64
	)
	report := func(stored int64) {
		n, b := done.Add(1), doneB.Add(stored)
		if opts.Progress != nil {
			opts.Progress(Progress{Files: int(n), TotalFiles: len(objs), Bytes: b, TotalBytes: total})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	for _, o := range objs {
		g.Go(func() error {
			size, fetched, err := d.object(gctx, o)
			if err != nil {
				return err
			}
			mu.Lock()
			if fetched {
				res.Downloaded++
				res.Bytes += size
				res.Changes = append(res.Changes, "+"+o.rel)
			} else {
				res.Skipped++
			}
			mu.Unlock()
			report(o.stored)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	// Deletes come after every download succeeded, as in Sync: a failed download leaves
	// the folder with more files, never fewer.
	if opts.Delete && d.root != nil {
		keep := make(map[string]bool, len(objs))
		for _, o := range objs {
			keep[o.rel] = true
		}
		deleted, err := d.deleteExtra(keep)
		if err != nil {
			return nil, err
		}
		res.Deleted = len(deleted)
		for _, p := range deleted {
			res.Changes = append(res.Changes, "-"+p)
		}
	}
	sort.Slice(res.Changes, func(i, j int) bool { return res.Changes[i][1:] < res.Changes[j][1:] })
	return &res, nil
}

// checkRel accepts a key less its prefix when it names a file inside the folder on every
// system: slash-separated, no empty, "." or ".." segment, no NUL.
func checkRel(rel string) error {
	if rel == "" || strings.ContainsRune(rel, 0) || !filepath.IsLocal(filepath.FromSlash(rel)) {
		return ErrUnsafeKey
	}
	for seg := range strings.SplitSeq(rel, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return ErrUnsafeKey
		}
	}
	return nil
}

// openFolder makes dir if needed and opens it as a root. A dry run makes nothing: a
// missing folder is then an empty one, and the root is nil.
func openFolder(dir string, dryRun bool) (*os.Root, error) {
	if dryRun {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	return root, nil
}

// object brings one object's file up to date. It returns the plaintext size and whether
// the object was (or, in a dry run, would be) fetched.
func (d *downloader) object(ctx context.Context, o remoteObject) (int64, bool, error) {
	name := filepath.FromSlash(o.rel)
	want, known := d.idx.Files[o.rel]
	// An entry describes this object only if the object is still the one it recorded.
	known = known && want.StoredSize == o.stored && want.SHA256 != ""
	var existing fs.FileInfo
	if d.root != nil {
		if st, err := d.root.Lstat(name); err == nil && st.Mode().IsRegular() {
			existing = st
		}
	}
	if existing != nil {
		if !known {
			// No index entry (an object put by hand, or no index): the metadata has the
			// digest, one HEAD instead of a download.
			if info, err := d.src.Stat(ctx, o.key); err == nil {
				want, known = entry{Size: info.Size, SHA256: info.SHA256}, true
			}
		}
		if known && existing.Size() == want.Size {
			if sum, err := hashFile(d.root, name); err == nil && sum == want.SHA256 {
				return want.Size, false, nil
			}
		}
	}
	if d.dry {
		return want.Size, true, nil
	}
	var mode fs.FileMode = 0o600 // as `circle storage get`: the plaintext of an encrypted object
	if existing != nil {
		mode = existing.Mode().Perm()
	}
	var mtime int64
	if known {
		mtime = want.ModTime
	}
	size, err := d.fetch(ctx, o, mode, want.SHA256, mtime)
	return size, true, err
}

// fetch downloads one object to a temporary file beside its target and renames it into
// place once the envelope's reader has checked the whole content. mtime, when not 0, is
// the upload's recorded modification time, set when the content is the one it describes.
func (d *downloader) fetch(ctx context.Context, o remoteObject, mode fs.FileMode, indexSum string, mtime int64) (int64, error) {
	name := filepath.FromSlash(o.rel)
	p := filepath.Join(d.dir, name)
	if parent := filepath.Dir(name); parent != "." {
		if err := d.root.MkdirAll(parent, 0o755); err != nil {
			return 0, fmt.Errorf("download %s to %s: %w", o.key, p, err)
		}
	}
	rc, info, err := d.src.Get(ctx, o.key)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", o.key, err)
	}
	defer rc.Close()
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+tempInfix+randomSuffix())
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return 0, fmt.Errorf("download %s to %s: %w", o.key, p, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			d.root.Remove(tmp)
		}
	}()
	// The reader fails at the latest on its last read if the content does not match the
	// recorded digest and size, so a file that reaches the rename is whole and verified.
	n, err := io.Copy(f, rc)
	if err != nil {
		return 0, fmt.Errorf("download %s to %s: %w", o.key, p, err)
	}
	if err := f.Chmod(mode); err != nil { // the umask narrowed OpenFile's
		return 0, fmt.Errorf("download %s to %s: %w", o.key, p, err)
	}
	// Not synced before the rename: an fsync per file cost a third of the benchmark's
	// download time (1,000 files), and what a power loss could leave at a name (an empty
	// or short file, as after cp or rclone) has the wrong size or digest, so the next
	// download fetches it again. A killed process leaves only the temporary file.
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("download %s to %s: %w", o.key, p, err)
	}
	if mtime != 0 && indexSum == info.SHA256 {
		t := time.Unix(0, mtime)
		if err := d.root.Chtimes(tmp, t, t); err != nil {
			return 0, fmt.Errorf("download %s to %s: %w", o.key, p, err)
		}
	}
	if err := d.root.Rename(tmp, name); err != nil {
		return 0, fmt.Errorf("download %s to %s: %w", o.key, p, err)
	}
	renamed = true
	return n, nil
}

// deleteExtra removes the regular files under the root that keep does not name, and then
// the folders that removing them emptied, and returns the removed files' paths. Symlinks
// and other non-regular files are left alone, as Sync leaves them out, and walking the
// root's FS never descends through a symlink.
func (d *downloader) deleteExtra(keep map[string]bool) ([]string, error) {
	var extra []string
	err := fs.WalkDir(d.root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() && !keep[p] {
			extra = append(extra, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("download: list %s: %w", d.dir, err)
	}
	sort.Strings(extra)
	if d.dry {
		return extra, nil
	}
	parents := map[string]bool{}
	for _, p := range extra {
		if err := d.root.Remove(filepath.FromSlash(p)); err != nil {
			return nil, fmt.Errorf("download: delete %s: %w", filepath.Join(d.dir, filepath.FromSlash(p)), err)
		}
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			parents[dir] = true
		}
	}
	// Deepest first; a folder that still holds anything stays (Remove refuses it).
	var dirs []string
	for dir := range parents {
		dirs = append(dirs, dir)
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for _, dir := range dirs {
		_ = d.root.Remove(filepath.FromSlash(dir))
	}
	return extra, nil
}

// hashFile is the hex sha256 of the file at name under root.
func hashFile(root *os.Root, name string) (string, error) {
	f, err := root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
