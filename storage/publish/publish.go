// Package publish writes an environment's build to a storage target so that a reader
// never sees half of it, and reads it back verified.
//
// Layout under the target's prefix P (every object written through the envelope, so
// encrypted and carrying its digest):
//
//	P/target.json                    a random salt for object names, made on first publish
//	P/objects/<id>                   content-addressed objects
//	P/envs/<env>/builds/<seq>.json   one manifest per publish: revision, files, digests
//	P/envs/<env>/current.json        the current manifest, written last
//
// A publish uploads the objects its files need that are not there yet (unchanged content
// is never uploaded again), then the build manifest, then current.json; a single-object
// write is atomic on every backend, so a reader of current.json sees the old build or the
// new one whole. A publish that stops half-way leaves current.json as it was, and the next
// publish uploads what is missing.
//
// Object ids are sha256(salt || sha256(content)), not the content's own digest: a reader
// of the bucket without the keyring cannot confirm a guess of some content by looking for
// its digest among the names.
//
// Old builds are kept for Keep publishes per environment; GC then deletes older
// manifests and objects that no kept manifest of any environment names and that are older
// than GracePeriod (so an object a concurrent publish has just uploaded, and not yet named
// in a manifest, stays).
package publish

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
)

// File is one file of a build.
type File struct {
	Path        string
	Data        []byte
	ContentType string
}

// Entry is a file as a manifest records it.
type Entry struct {
	Path        string `json:"path"`
	Object      string `json:"object"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType,omitempty"`
}

// Manifest is one published build of an environment.
type Manifest struct {
	Format      int       `json:"format"`
	Env         string    `json:"env"`
	Revision    string    `json:"revision"`
	Seq         int64     `json:"seq"`
	PublishedAt time.Time `json:"publishedAt"`
	Files       []Entry   `json:"files"`
}

// Stats says what a publish uploaded.
type Stats struct {
	Uploaded int `json:"uploaded"`
	Skipped  int `json:"skipped"`
	// Unchanged is true when the build equals the current one: nothing was written.
	Unchanged bool `json:"unchanged"`
}

// Target is a storage target's publishing side.
type Target struct {
	store  *envelope.Store
	prefix string
	// Keep is how many builds per environment GC keeps; 0 means 5.
	Keep int
	// GracePeriod protects young unreferenced objects from GC; 0 means one hour.
	GracePeriod time.Duration
	// Concurrency bounds parallel uploads; 0 means 16.
	Concurrency int

	saltOnce sync.Mutex
	salt     []byte
	now      func() time.Time
}

// envName is circle.yaml's #Name: environments are folders of the layout, so a name with
// "/" or ".." would nest in or climb out of another's.
var envName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// ErrNoBuild is returned by Current when an environment has never been published.
var ErrNoBuild = errors.New("no build published")

// New returns the target at prefix (may be empty) of store.
func New(store *envelope.Store, prefix string) *Target {
	return &Target{store: store, prefix: strings.Trim(prefix, "/"), now: time.Now}
}

func (t *Target) key(parts ...string) string {
	if t.prefix != "" {
		parts = append([]string{t.prefix}, parts...)
	}
	return path.Join(parts...)
}

// Publish writes files as env's build at revision. If the files are those of the current
// build, nothing is written and Stats.Unchanged is set.
func (t *Target) Publish(ctx context.Context, env, revision string, files []File) (*Manifest, Stats, error) {
	var st Stats
	if !envName.MatchString(env) {
		return nil, st, fmt.Errorf("publish %q: an environment name is lower-case letters, digits and hyphens (as in circle.yaml)", env)
	}
	salt, err := t.loadSalt(ctx)
	if err != nil {
		return nil, st, fmt.Errorf("publish %s: %w", env, err)
	}
	m := &Manifest{Format: 1, Env: env, Revision: revision}
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		m.Files = append(m.Files, Entry{Path: f.Path, Object: objectID(salt, sum[:]), SHA256: hex.EncodeToString(sum[:]),
			Size: int64(len(f.Data)), ContentType: f.ContentType})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	for i := 1; i < len(m.Files); i++ {
		if m.Files[i].Path == m.Files[i-1].Path {
			return nil, st, fmt.Errorf("publish %s: %s given twice", env, m.Files[i].Path)
		}
	}

	cur, err := t.Current(ctx, env)
	switch {
	case errors.Is(err, ErrNoBuild):
	case err != nil:
		return nil, st, fmt.Errorf("publish %s: %w", env, err)
	default:
		m.Seq = cur.Seq
		if sameFiles(cur, m) && cur.Revision == revision {
			st.Unchanged = true
			return cur, st, nil
		}
	}
	m.Seq++
	m.PublishedAt = t.now().UTC()

	// Objects first, skipping what is there.
	have := map[string]bool{}
	for a, err := range t.store.Backend().Walk(ctx, t.key("objects")+"/") {
		if err != nil {
			return nil, st, fmt.Errorf("publish %s: %w", env, err)
		}
		have[path.Base(a.Key)] = true
	}
	byObject := map[string]File{}
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		byObject[objectID(salt, sum[:])] = f
	}
	g, gctx := errgroup.WithContext(ctx)
	limit := t.Concurrency
	if limit <= 0 {
		limit = 16
	}
	g.SetLimit(limit)
	var mu sync.Mutex
	for _, e := range m.Files {
		if have[e.Object] {
			st.Skipped++
			continue
		}
		have[e.Object] = true // two paths with one content upload once
		f := byObject[e.Object]
		g.Go(func() error {
			_, err := t.store.Put(gctx, t.key("objects", e.Object), bytes.NewReader(f.Data), &envelope.PutOptions{
				SHA256: e.SHA256, Size: e.Size, ContentType: e.ContentType, Revision: revision, Env: env})
			if err == nil {
				mu.Lock()
				st.Uploaded++
				mu.Unlock()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, st, fmt.Errorf("publish %s: %w", env, err)
	}

	// Then the build's manifest, then the pointer: the commit point.
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, st, err
	}
	po := &envelope.PutOptions{ContentType: "application/json", Revision: revision, Env: env}
	if _, err := t.store.Put(ctx, t.key("envs", env, "builds", fmt.Sprintf("%020d.json", m.Seq)), bytes.NewReader(b), po); err != nil {
		return nil, st, fmt.Errorf("publish %s: manifest: %w", env, err)
	}
	if _, err := t.store.Put(ctx, t.key("envs", env, "current.json"), bytes.NewReader(b), po); err != nil {
		return nil, st, fmt.Errorf("publish %s: current: %w", env, err)
	}
	return m, st, nil
}

func sameFiles(a, b *Manifest) bool {
	if len(a.Files) != len(b.Files) {
		return false
	}
	for i := range a.Files {
		if a.Files[i] != b.Files[i] {
			return false
		}
	}
	return true
}

// Current reads env's current manifest.
func (t *Target) Current(ctx context.Context, env string) (*Manifest, error) {
	return t.readManifest(ctx, t.key("envs", env, "current.json"), env)
}

func (t *Target) readManifest(ctx context.Context, key, env string) (*Manifest, error) {
	rc, _, err := t.store.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", env, ErrNoBuild)
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var m Manifest
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", key, err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil { // the digest is checked at the end
		return nil, err
	}
	if m.Format != 1 {
		return nil, fmt.Errorf("manifest %s: format %d", key, m.Format)
	}
	return &m, nil
}

// Open reads one file of a build, verified against the manifest and the object's digest.
func (t *Target) Open(ctx context.Context, m *Manifest, p string) (io.ReadCloser, error) {
	i := sort.Search(len(m.Files), func(i int) bool { return m.Files[i].Path >= p })
	if i == len(m.Files) || m.Files[i].Path != p {
		return nil, fmt.Errorf("%s@%s: %s: %w", m.Env, m.Revision, p, storage.ErrNotFound)
	}
	e := m.Files[i]
	rc, info, err := t.store.Get(ctx, t.key("objects", e.Object))
	if err != nil {
		return nil, err
	}
	if info.SHA256 != e.SHA256 || info.Size != e.Size {
		rc.Close()
		return nil, fmt.Errorf("%s: object %s is not the content the manifest names: %w", p, e.Object, envelope.ErrCorrupt)
	}
	return rc, nil
}

// ReadFile reads one file of a build whole.
func (t *Target) ReadFile(ctx context.Context, m *Manifest, p string) ([]byte, error) {
	rc, err := t.Open(ctx, m, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// GCStats says what GC deleted.
type GCStats struct {
	Builds  int `json:"builds"`
	Objects int `json:"objects"`
}

// GC deletes all but the newest Keep builds of every environment, then the objects no
// kept build names and older than GracePeriod.
func (t *Target) GC(ctx context.Context) (GCStats, error) {
	var st GCStats
	keep := t.Keep
	if keep <= 0 {
		keep = 5
	}
	grace := t.GracePeriod
	if grace <= 0 {
		grace = time.Hour
	}
	builds := map[string][]string{} // env → manifest keys, oldest first (zero-padded seq)
	for a, err := range t.store.Backend().Walk(ctx, t.key("envs")+"/") {
		if err != nil {
			return st, fmt.Errorf("gc: %w", err)
		}
		if dir, _ := path.Split(a.Key); path.Base(dir) == "builds" {
			env := path.Base(path.Dir(path.Dir(a.Key)))
			builds[env] = append(builds[env], a.Key)
		}
	}
	referenced := map[string]bool{}
	for env, keys := range builds {
		cut := max(len(keys)-keep, 0)
		for _, k := range keys[:cut] {
			if err := t.store.Backend().Delete(ctx, k); err != nil {
				return st, fmt.Errorf("gc: %w", err)
			}
			st.Builds++
		}
		for _, k := range keys[cut:] {
			m, err := t.readManifest(ctx, k, env)
			if err != nil {
				return st, fmt.Errorf("gc: %w", err)
			}
			for _, e := range m.Files {
				referenced[e.Object] = true
			}
		}
		// current.json is a copy of the newest build; its objects are already counted.
	}
	cutoff := t.now().Add(-grace)
	for a, err := range t.store.Backend().Walk(ctx, t.key("objects")+"/") {
		if err != nil {
			return st, fmt.Errorf("gc: %w", err)
		}
		if referenced[path.Base(a.Key)] || a.ModTime.After(cutoff) {
			continue
		}
		if err := t.store.Backend().Delete(ctx, a.Key); err != nil {
			return st, fmt.Errorf("gc: %w", err)
		}
		st.Objects++
	}
	return st, nil
}

type targetFile struct {
	Format int    `json:"format"`
	Salt   string `json:"salt"`
}

// loadSalt reads the target's salt, creating it on first use. Concurrent first publishes
// race on a conditional create; the loser reads the winner's.
func (t *Target) loadSalt(ctx context.Context) ([]byte, error) {
	t.saltOnce.Lock()
	defer t.saltOnce.Unlock()
	if t.salt != nil {
		return t.salt, nil
	}
	key := t.key("target.json")
	for range 2 {
		rc, _, err := t.store.Get(ctx, key)
		if err == nil {
			var f targetFile
			err = json.NewDecoder(rc).Decode(&f)
			if err == nil {
				// The digest is checked at the end of the stream: read to it.
				_, err = io.Copy(io.Discard, rc)
			}
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			salt, err := hex.DecodeString(f.Salt)
			if err != nil || len(salt) != 32 {
				return nil, fmt.Errorf("%s: bad salt", key)
			}
			t.salt = salt
			return salt, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		salt := make([]byte, 32)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(targetFile{Format: 1, Salt: hex.EncodeToString(salt)})
		_, err = t.store.Put(ctx, key, bytes.NewReader(b), &envelope.PutOptions{ContentType: "application/json", IfNotExists: true})
		if err == nil {
			t.salt = salt
			return salt, nil
		}
		if !errors.Is(err, storage.ErrExists) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: could not be created or read", key)
}

func objectID(salt, sum []byte) string {
	h := sha256.New()
	h.Write(salt)
	h.Write(sum)
	return hex.EncodeToString(h.Sum(nil))
}
