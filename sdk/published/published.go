// Package published reads, from a service, the build of its environment that Circle
// published to storage: the same objects `circle serve --publish URL` writes and `circle
// storage build` prints, decrypted with the storage keyring and verified against the
// build's manifest (see storage/publish for the layout and storage/envelope for the
// format).
//
// An [Env] is one environment at one storage URL. Its [Env.File] is a view of one file of
// the environment's current build that follows the build as it is republished; it is a
// config.Source, so the environment's configuration is
//
//	ring, err := envelope.ReadKeyringFile("/etc/circle/storage-keyring.json")
//	env, err := published.Open(ctx, "s3://configs?region=eu-west-1", "prod", ring)
//	defer env.Close()
//	l, err := config.New(config.Remote(env.Config()), config.Schema(cueSrc, "#Config"))
//
// and [WatchLicense] follows the environment's published license the same way.
//
// # What is verified
//
// Every object is sealed by the envelope: a read fails unless its data key unwraps with
// the keyring and its content matches the digest it was written with; a file must also
// match the digest its build's manifest records for it. On top of that, a File refuses a
// current.json that names another environment (a build copied from elsewhere) or whose
// sequence number is lower than the one it holds (an older build put back), since both
// would verify. It does not refuse an older build at start-up: a process has nothing to
// compare with then.
//
// # Secrets
//
// An environment's config.json is the whole merged configuration, SOPS secrets included
// (which is why it is only ever stored encrypted): never log a whole document or
// configuration. Nothing in this package logs, and errors name the URL (redacted), the
// environment and the file, never content or keys.
package published

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/circlecore/circle/sdk/config"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/publish"
)

// ErrRefused is wrapped by a read of a build that decrypted and verified but must not be
// used: it names another environment, or it is older than the build already held.
var ErrRefused = errors.New("build refused")

// ConfigFile is where a build keeps the environment's configuration.
const ConfigFile = "config.json"

// Env is one environment's published builds at one storage target. It is safe for
// concurrent use.
type Env struct {
	store  *envelope.Store
	target *publish.Target
	name   string
	prefix string
	// owned says whether Close closes the store: only when Open opened it.
	owned bool
}

// Open opens the storage at url (s3://, azblob://, gs://, file://; see package storage for
// the forms and where credentials come from) and returns env's builds there, read with
// ring. ring is the keyring the daemon publishes with (`circle storage keyring init`; read
// it with envelope.ReadKeyringFile, or decrypt a SOPS-sealed one first). Close the Env when
// done.
//
// Nothing is read yet: a missing build or a wrong keyring shows at the first read.
// The daemon publishes at the root of the target; to read a build under a prefix, use
// [New].
func Open(ctx context.Context, url, env string, ring *envelope.Keyring) (*Env, error) {
	if ring == nil {
		// The daemon never publishes in the clear, and a reader without a keyring would
		// accept objects anyone with write access to the bucket could forge.
		return nil, fmt.Errorf("published: open %s env %s: no keyring", storage.Redacted(url), env)
	}
	b, err := storage.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("published: open env %s: %w", env, err)
	}
	e := New(envelope.New(b, ring, "circle-sdk"), "", env)
	e.owned = true
	return e, nil
}

// New returns env's builds under prefix of store, which stays the caller's to close. It is
// for a caller that already holds a store (a mem:// store in tests, a store shared with
// other code) or publishes under a prefix.
func New(store *envelope.Store, prefix, env string) *Env {
	prefix = strings.Trim(prefix, "/")
	return &Env{store: store, target: publish.New(store, prefix), name: env, prefix: prefix}
}

// Name is the environment's name.
func (e *Env) Name() string { return e.name }

// Close closes the store if Open opened it.
func (e *Env) Close() error {
	if !e.owned {
		return nil
	}
	return e.store.Backend().Close()
}

// Config returns the environment's configuration, config.json, as a [config.Source].
func (e *Env) Config() *File { return e.File(ConfigFile) }

// File returns a view of the file at p (a path in the build, such as "config.json" or
// "licenses/shop.lic") in whichever build is current when it is read. Each call returns a
// new view with its own memory of what it read; keep and reuse it.
func (e *Env) File(p string) *File { return &File{env: e, path: p} }

// Current returns the environment's current build manifest: its revision, sequence number
// and files.
func (e *Env) Current(ctx context.Context) (*publish.Manifest, error) {
	m, err := e.target.Current(ctx, e.name)
	if err != nil {
		return nil, e.errorf("read current build", err)
	}
	return m, nil
}

func (e *Env) errorf(what string, err error) error {
	return fmt.Errorf("published: %s of env %s in %s: %w", what, e.name, e.store.Backend().URL(), err)
}

func (e *Env) currentKey() string {
	return path.Join(e.prefix, "envs", e.name, "current.json")
}

// version returns a string that changes whenever current.json is replaced, from one
// metadata request.
//
// Why a Stat, and these fields: storage.Store has no conditional GET, and the manifest's
// sequence number is inside the encrypted manifest, so reading it costs a GET and a
// decrypt. A Stat is one HEAD request on S3 (GetProperties on Azure, one metadata GET on
// GCS, a stat and a side file on disk) and returns both the backend's version tag (ETag)
// and the envelope's metadata, among it circle-sha256: the digest of the manifest's
// plaintext, which differs for every publish because each manifest carries its sequence
// number and time. Either alone would do on every backend Circle supports; both together
// (with size and time) leave no backend whose ETag is weak or missing able to hide a new
// build. A false change costs one read of the manifest, and no OnChange.
func (e *Env) version(ctx context.Context) (string, error) {
	a, err := e.store.Backend().Stat(ctx, e.currentKey())
	if err != nil {
		return "", e.errorf("check current build", err)
	}
	return strings.Join([]string{a.ETag, a.Metadata[envelope.MetaSHA256], strconv.FormatInt(a.Size, 10),
		a.ModTime.UTC().Format(time.RFC3339Nano)}, " "), nil
}

// File is one file of an environment's current build, as of its last read. It
// implements config.Source. It is safe for concurrent use.
type File struct {
	env  *Env
	path string

	mu sync.Mutex
	// version is the current.json version (see Env.version) data was read from;
	// refused is one whose build was refused, not read again until current.json changes.
	version, refused string
	build            *publish.Manifest
	sha              string
	data             []byte
}

var _ config.Source = (*File)(nil)

// Name names the file for errors and logs: the storage URL (redacted), the environment
// and the path.
func (f *File) Name() string {
	return fmt.Sprintf("%s env %s %s", f.env.store.Backend().URL(), f.env.name, f.path)
}

// Read returns the file's content in the current build, decrypted and verified. When
// current.json has not changed since the last Read it costs one metadata request and
// returns what that Read returned; when a new build carries the same content for the file
// it costs that and one read of the manifest.
//
// A build that fails to decrypt or verify, names another environment or is older than
// the one held is refused (errors.Is finds envelope.ErrCorrupt, envelope.ErrKeyUnknown,
// envelope.ErrKeyRetired or ErrRefused), and Changed reports false for it until
// current.json is replaced again, so a watcher reports a bad build once. The last good
// content stays with Build and the next good build is read as usual.
func (f *File) Read(ctx context.Context) ([]byte, error) {
	// The version is taken before the manifest is read. If current.json is replaced in
	// between, the newer build is read under the older version, and the next Changed
	// sees a version it has not read and reads the same build once more: an extra
	// read, never a missed build.
	v, err := f.env.version(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.data != nil && v == f.version {
		return slices.Clone(f.data), nil
	}
	b, m, sha, err := f.read(ctx)
	if err != nil {
		if refusal(err) {
			f.refused = v
		}
		return nil, err
	}
	f.version, f.refused, f.build, f.sha, f.data = v, "", m, sha, b
	return slices.Clone(b), nil
}

// read reads the current manifest and, unless its entry for the file has the digest of
// what is held, the file.
func (f *File) read(ctx context.Context) ([]byte, *publish.Manifest, string, error) {
	m, err := f.env.Current(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	if m.Env != f.env.name {
		return nil, nil, "", f.env.errorf("read current build", fmt.Errorf("%w: its manifest is of env %q", ErrRefused, m.Env))
	}
	if f.build != nil && m.Seq < f.build.Seq {
		return nil, nil, "", f.env.errorf("read current build", fmt.Errorf("%w: build %d (revision %s) is older than build %d (revision %s) held",
			ErrRefused, m.Seq, m.Revision, f.build.Seq, f.build.Revision))
	}
	i := slices.IndexFunc(m.Files, func(e publish.Entry) bool { return e.Path == f.path })
	if i < 0 {
		return nil, nil, "", f.env.errorf("read "+f.path, fmt.Errorf("build %d (revision %s) has no %s: %w", m.Seq, m.Revision, f.path, storage.ErrNotFound))
	}
	if sha := m.Files[i].SHA256; f.data != nil && sha == f.sha {
		return f.data, m, sha, nil
	}
	b, err := f.env.target.ReadFile(ctx, m, f.path)
	if err != nil {
		return nil, nil, "", f.env.errorf(fmt.Sprintf("read %s of build %d (revision %s)", f.path, m.Seq, m.Revision), err)
	}
	return b, m, m.Files[i].SHA256, nil
}

// refusal reports whether err condemns the build itself, so reading it again cannot
// help, rather than the way to it (a network error, a timeout), which a later poll may
// get past.
func refusal(err error) bool {
	return errors.Is(err, envelope.ErrCorrupt) || errors.Is(err, envelope.ErrKeyUnknown) ||
		errors.Is(err, envelope.ErrKeyRetired) || errors.Is(err, ErrRefused)
}

// Changed reports whether current.json was replaced since the last Read, with one
// metadata request: true when Read would read a new build, false for the build already
// held or one already refused.
func (f *File) Changed(ctx context.Context) (bool, error) {
	v, err := f.env.version(ctx)
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return v != f.version && v != f.refused, nil
}

// Build returns the manifest of the build the last successful Read came from (its
// revision and sequence number, for logs), or nil before one. That build verified, but a
// config.Loader may still have refused it (a schema failure, reported to OnError), so
// log it from OnChange rather than after every poll.
func (f *File) Build() *publish.Manifest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.build
}
