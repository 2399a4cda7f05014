// Package git is a sources.Source over a Git remote (go-git): file://, http(s)://, ssh://
// and scp-like git@host:path URLs; branch, tag or commit refs; HTTP basic/token and SSH key
// auth with known_hosts checked by default.
//
// The repository is kept in memory, shallow, and never checked out: a snapshot is read
// from the commit's tree objects. Later snapshots fetch only what is new, and Watch asks the
// remote for its head first (one round trip) and does no other work while it has not moved.
package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"testing/fstest"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/Masterminds/semver/v3"

	"github.com/circlecore/circle/sources"
)

// Ref says which revision to follow. Exactly one of the fields is set; none means the
// branch main.
type Ref struct {
	Branch string
	Tag    string
	// SemVer is a range over tags ("^1.2", ">=1.0 <2.0"); the highest matching tag wins.
	// Pre-release tags match only when the range names a pre-release.
	SemVer string
	Commit string
}

// Auth holds credentials. They are never logged and never appear in errors.
type Auth struct {
	// Username and Password for HTTP basic auth; a token goes in Password.
	Username, Password string
	// SSHKey is a private key (PEM/OpenSSH); SSHKeyPassphrase decrypts it if set.
	SSHKey           []byte
	SSHKeyPassphrase string
	// SSHUser defaults to the URL's user, then "git".
	SSHUser string
	// KnownHosts is known_hosts content. SSH remotes need it unless InsecureIgnoreHostKey.
	KnownHosts            []byte
	InsecureIgnoreHostKey bool
}

// Options configure a Git source.
type Options struct {
	URL  string
	Ref  Ref
	Auth Auth
	// MaxFileSize and MaxTreeSize bound what a snapshot reads (default 16 MiB and 256 MiB):
	// a repository that exceeds them is refused with the path that did.
	MaxFileSize, MaxTreeSize int64
	// Verify is the signature policy; a revision that fails it never becomes a snapshot.
	Verify Verify
	// Full fetches the whole history instead of the default depth of one.
	Full bool
	// Retries is how many times a failed remote call is tried again (default 3), with
	// backoff doubling from 250 ms. Refused credentials and missing refs are not retried.
	Retries int
	// Hints, if set, wakes Watch before its next tick (a webhook receiver's channel).
	Hints <-chan struct{}
	// Interval is how often Watch asks the remote for its head.
	Interval time.Duration
	// Timeout bounds each remote operation.
	Timeout time.Duration
	// OnError hears the failures Watch retries at its next tick (unreachable remote, bad
	// credentials), so the daemon can log them; nil ignores them.
	OnError func(error)
	// OnFetch, if set, is told how long each fetch took and how it ended, for metrics.
	OnFetch func(took time.Duration, err error)
}

// Source follows one ref of one remote.
type Source struct {
	opts Options
	auth transport.AuthMethod
	repo *gogit.Repository
	// name is the URL with credentials removed, for errors and logs.
	name   string
	semver *semver.Constraints
	// chosenTag is the tag the semver range last resolved to.
	chosenTag string
	verifier  *verifier
}

var _ sources.Source = (*Source)(nil)

// New checks the options and prepares the credentials; it does not contact the remote.
func New(opts Options) (*Source, error) {
	if opts.Interval == 0 {
		opts.Interval = time.Minute
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.Retries == 0 {
		opts.Retries = 3
	}
	if opts.MaxFileSize == 0 {
		opts.MaxFileSize = 16 << 20
	}
	if opts.MaxTreeSize == 0 {
		opts.MaxTreeSize = 256 << 20
	}
	s := &Source{opts: opts, name: redact(opts.URL)}
	if opts.Ref.SemVer != "" {
		c, err := semver.NewConstraint(opts.Ref.SemVer)
		if err != nil {
			return nil, fmt.Errorf("git source %s: semver range %q: %w", s.name, opts.Ref.SemVer, err)
		}
		s.semver = c
	}
	v, err := newVerifier(opts.Verify)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", s.name, err)
	}
	s.verifier = v
	ep, err := transport.NewEndpoint(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", s.name, err)
	}
	switch ep.Protocol {
	case "ssh":
		s.auth, err = sshAuth(ep, opts.Auth)
	case "http", "https":
		if opts.Auth.Username != "" || opts.Auth.Password != "" {
			s.auth = &githttp.BasicAuth{Username: opts.Auth.Username, Password: opts.Auth.Password}
		}
	case "file":
	default:
		err = fmt.Errorf("unsupported protocol %q", ep.Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", s.name, err)
	}
	return s, nil
}

func sshAuth(ep *transport.Endpoint, a Auth) (transport.AuthMethod, error) {
	if len(a.SSHKey) == 0 {
		return nil, errors.New("ssh remote needs a private key")
	}
	user := a.SSHUser
	if user == "" {
		user = ep.User
	}
	if user == "" {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeys(user, a.SSHKey, a.SSHKeyPassphrase)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	switch {
	case a.InsecureIgnoreHostKey:
		keys.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	case len(a.KnownHosts) == 0:
		return nil, errors.New("ssh remote needs known_hosts (or InsecureIgnoreHostKey)")
	default:
		// knownhosts only reads files; it handles hashed names and markers, so we give it one.
		f, err := os.CreateTemp("", "circle-known-hosts-")
		if err != nil {
			return nil, err
		}
		defer os.Remove(f.Name())
		_, werr := f.Write(a.KnownHosts)
		if cerr := f.Close(); werr != nil || cerr != nil {
			return nil, errors.Join(werr, cerr)
		}
		cb, err := knownhosts.New(f.Name())
		if err != nil {
			return nil, fmt.Errorf("known_hosts: %w", err)
		}
		keys.HostKeyCallback = cb
	}
	return keys, nil
}

// redact removes a password from a URL, the way url.URL.Redacted does, and leaves scp-like
// addresses alone (they cannot carry one).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

func (s *Source) refName() plumbing.ReferenceName {
	switch r := s.opts.Ref; {
	case s.chosenTag != "":
		return plumbing.NewTagReferenceName(s.chosenTag)
	case r.Tag != "":
		return plumbing.NewTagReferenceName(r.Tag)
	case r.Branch != "":
		return plumbing.NewBranchReferenceName(r.Branch)
	case r.Commit != "":
		return "" // a commit is fetched by hash
	default:
		return plumbing.NewBranchReferenceName("main")
	}
}

// Head asks the remote which commit the ref points at, without fetching objects.
func (s *Source) Head(ctx context.Context) (string, error) {
	if c := s.opts.Ref.Commit; c != "" {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	rem := gogit.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{s.opts.URL}})
	var refs []*plumbing.Reference
	err := retry(ctx, s.opts.Retries, func() (err error) {
		refs, err = rem.ListContext(ctx, &gogit.ListOptions{Auth: s.auth})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("ls-remote %s: %w", s.name, err)
	}
	if s.semver != nil {
		tag, hash, err := s.highestTag(refs)
		if err != nil {
			return "", err
		}
		s.chosenTag = tag // Snapshot fetches what Head chose
		return hash, nil
	}
	want := s.refName()
	for _, r := range refs {
		if r.Name() == want {
			return r.Hash().String(), nil
		}
	}
	return "", fmt.Errorf("ls-remote %s: ref %s not found", s.name, want.Short())
}

// highestTag picks the highest tag matching the semver range.
func (s *Source) highestTag(refs []*plumbing.Reference) (string, string, error) {
	var best *semver.Version
	var bestName, bestHash string
	for _, r := range refs {
		if !r.Name().IsTag() {
			continue
		}
		v, err := semver.NewVersion(r.Name().Short())
		if err != nil || !s.semver.Check(v) {
			continue // not a version tag, or out of range
		}
		if best == nil || v.GreaterThan(best) {
			best, bestName, bestHash = v, r.Name().Short(), r.Hash().String()
		}
	}
	if best == nil {
		return "", "", fmt.Errorf("ls-remote %s: no tag matches %q", s.name, s.opts.Ref.SemVer)
	}
	return bestName, bestHash, nil
}

// Snapshot fetches the ref (cloning on first use) and reads the commit's tree.
func (s *Source) Snapshot(ctx context.Context) (*sources.Snapshot, error) {
	if s.semver != nil {
		if _, err := s.Head(ctx); err != nil {
			return nil, err
		}
	}
	return s.snapshot(ctx)
}

// snapshot fetches what the last Head chose; Watch calls it right after Head, so the
// remote is asked for its refs once per poll, not twice.
func (s *Source) snapshot(ctx context.Context) (*sources.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	start := time.Now()
	hash, err := s.fetch(ctx)
	if s.opts.OnFetch != nil {
		s.opts.OnFetch(time.Since(start), err)
	}
	if err != nil {
		return nil, err
	}
	snap := &sources.Snapshot{}
	// An annotated tag points at a tag object; the snapshot is of the commit it tags.
	if tag, err := s.repo.TagObject(hash); err == nil {
		hash = tag.Target
		if snap.Tag, err = signedTag(tag); err != nil {
			return nil, err
		}
	}
	commit, err := s.repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("read commit %s from %s: %w", hash, s.name, err)
	}
	if snap.Commit, err = signedCommit(commit); err != nil {
		return nil, err
	}
	if err := s.verifier.check(snap.Commit, snap.Tag); err != nil {
		return nil, fmt.Errorf("refuse revision from %s: %w", s.name, err)
	}
	if snap.FS, err = s.treeFiles(commit); err != nil {
		return nil, fmt.Errorf("read tree of %s from %s: %w", hash, s.name, err)
	}
	snap.Revision = hash.String()
	return snap, nil
}

func (s *Source) fetch(ctx context.Context) (plumbing.Hash, error) {
	ref := s.refName()
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", ref, ref))
	depth := 1
	if s.opts.Full {
		depth = 0
	}
	if s.opts.Ref.Commit != "" {
		// Most servers refuse a want of a bare SHA (uploadpack.allowAnySHA1InWant is off
		// by default), so fetch the branches whole and find the commit among them.
		spec, depth = "+refs/heads/*:refs/remotes/origin/*", 0
	}
	if s.repo != nil {
		// Incremental: ask for what is new since the commit we hold. With a depth, go-git
		// negotiates as if it held nothing and the server resends the whole tree (4× slower
		// than the git CLI on a 10,000-file repository); without one the pack holds just the
		// new objects. A rewritten history is the cost: it is fetched once, whole.
		depth = 0
	}
	if s.repo == nil {
		repo, err := gogit.Init(memory.NewStorage(), nil)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{s.opts.URL}}); err != nil {
			return plumbing.ZeroHash, err
		}
		s.repo = repo
	}
	err := retry(ctx, s.opts.Retries, func() error {
		return s.repo.FetchContext(ctx, &gogit.FetchOptions{
			RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: s.auth, Depth: depth, Tags: gogit.NoTags, Force: true,
		})
	})
	if err != nil && !errors.Is(err, gogit.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, fmt.Errorf("fetch %s from %s: %w", spec, s.name, err)
	}
	if c := s.opts.Ref.Commit; c != "" {
		h := plumbing.NewHash(c)
		if _, err := s.repo.CommitObject(h); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("commit %s is not on any branch of %s: %w", c, s.name, err)
		}
		return h, nil
	}
	r, err := s.repo.Reference(ref, true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve %s in %s: %w", ref.Short(), s.name, err)
	}
	return r.Hash(), nil
}

// treeFiles reads the commit's files into memory. Symlinks and submodules are left out, so
// nothing a snapshot holds can point outside it; fs.FS itself refuses ".." and absolute
// paths. Sizes are checked from the tree before any blob is read.
func (s *Source) treeFiles(c *object.Commit) (fstest.MapFS, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	files := fstest.MapFS{} // read-only fs.FS over a map: what a snapshot is
	var total int64
	err = tree.Files().ForEach(func(f *object.File) error {
		// Only plain and executable files: go-git's IsFile also counts symlinks, which a
		// snapshot must not carry (their targets may point anywhere).
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable && f.Mode != filemode.Deprecated {
			return nil
		}
		if f.Size > s.opts.MaxFileSize {
			return fmt.Errorf("%s: %d bytes is over the %d-byte file limit", f.Name, f.Size, s.opts.MaxFileSize)
		}
		if total += f.Size; total > s.opts.MaxTreeSize {
			return fmt.Errorf("%s: the tree is over the %d-byte limit", f.Name, s.opts.MaxTreeSize)
		}
		r, err := f.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		files[f.Name] = &fstest.MapFile{Data: b, Mode: 0o444}
		return nil
	})
	return files, err
}

// Watch implements sources.Source: it polls the remote's head every Interval and fetches
// only when it moved. A failed poll is retried at the next tick; the last snapshot stays.
func (s *Source) Watch(ctx context.Context, fn func(*sources.Snapshot) error) error {
	// refused is a head the signature policy turned down: it is reported once, and not
	// fetched and checked again on every poll while the remote stays there.
	last, refused := "", ""
	tick := time.NewTicker(s.opts.Interval)
	defer tick.Stop()
	for {
		head, err := s.Head(ctx)
		if err == nil && head != last && head != refused {
			var snap *sources.Snapshot
			snap, err = s.snapshot(ctx)
			if errors.Is(err, ErrSignature) {
				refused = head
			}
			if err == nil {
				last = snap.Revision
				if err := fn(snap); err != nil {
					return err
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && s.opts.OnError != nil {
			s.opts.OnError(err) // transient: the next tick tries again
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.opts.Hints:
		}
	}
}

// HasCommit reports whether the fetched history holds the commit (a shallow fetch holds
// only the head).
func (s *Source) HasCommit(hash string) bool {
	if s.repo == nil {
		return false
	}
	_, err := s.repo.CommitObject(plumbing.NewHash(hash))
	return err == nil
}

// String is the remote without credentials.
func (s *Source) String() string { return strings.TrimSpace(s.name) }

// retry calls fn until it succeeds, fails permanently, ctx ends, or it has been retried
// n times, waiting 250 ms, 500 ms, 1 s … between tries.
func retry(ctx context.Context, n int, fn func() error) error {
	wait := 250 * time.Millisecond
	for i := 0; ; i++ {
		err := fn()
		if err == nil || errors.Is(err, gogit.NoErrAlreadyUpToDate) || i >= n || permanent(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// permanent reports errors that another try cannot fix.
func permanent(err error) bool {
	return errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrRepositoryNotFound) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "key mismatch") ||
		strings.Contains(err.Error(), "unable to authenticate")
}
