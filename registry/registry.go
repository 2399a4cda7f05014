package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/circlecore/circle/schema"
)

// Options says where the registry's files are and what they may refer to.
type Options struct {
	// Packages is the folder of manifests (circle.yaml paths.packages); default "packages".
	Packages string
	// Advisories is the folder of OSV records (circle.yaml paths.advisories); default
	// "advisories".
	Advisories string
	// Environments are the environments circle.yaml defines. A manifest or
	// environments.yaml naming another is an error. Nil accepts any name.
	Environments []string
	// Fetcher, when set, verifies the artifacts stored at URLs (registry/fetch is Circle's:
	// it fetches only from the sources the operator allows). Without it, URL artifacts are
	// left "not fetched" with a note, and nothing a manifest names is fetched.
	Fetcher Fetcher
}

// Fetcher verifies the artifacts a manifest names by URL. It belongs to the operator, not
// the repository: the repository only names URLs, and the Fetcher decides whether any of
// them is fetched.
type Fetcher interface {
	// Fetch makes sure the bytes at a.URL are a.Size bytes whose SHA-256 is a.SHA256. It
	// returns nil only when it read such bytes, from the URL or from a cache that holds
	// them; an error wrapping ErrNotFetched when it did not look (offline and not cached),
	// which leaves the artifact "not fetched" with a note; a *MismatchError when it read
	// other bytes; and any other error when it could not or would not read them (a URL
	// outside the allowed sources, not found, a timeout). It is called once per distinct
	// artifact per Load, and may be called from one goroutine at a time.
	Fetch(ctx context.Context, a Artifact) error
}

// ErrNotFetched is what a Fetcher wraps when it did not fetch an artifact and has no
// verified copy of it: not a problem of the repository, a note.
var ErrNotFetched = errors.New("not fetched")

// MismatchError is an artifact whose bytes are not the ones its manifest names, so the
// problem is reported at the field that differs: the size when the sizes differ, the
// digest otherwise.
type MismatchError struct {
	// Size is the number of bytes the artifact has. When Truncated, reading stopped there,
	// one byte past the manifest's size (or at the server's stated length): the artifact has
	// at least that many.
	Size      int64
	Truncated bool
	// SHA256 is the hex digest of the bytes, set when the sizes matched.
	SHA256 string
}

func (e *MismatchError) Error() string {
	switch {
	case e.SHA256 != "":
		return "sha256 " + e.SHA256 + " of the bytes read differs"
	case e.Truncated:
		return fmt.Sprintf("more than %d bytes", e.Size-1)
	default:
		return fmt.Sprintf("%d bytes", e.Size)
	}
}

// DefaultOptions are the paths circle.yaml defaults to.
func DefaultOptions() Options { return Options{Packages: "packages", Advisories: "advisories"} }

// Registry is every package manifest of one repository snapshot, checked.
type Registry struct {
	packages map[string]*Package
	names    []string
	// Config is packages/environments.yaml: each environment's requirements and policies.
	Config *Config
	// Locks are the lock files found, by environment.
	Locks map[string]*Lock
	// Advisories are the OSV records of the advisories folder.
	Advisories []*Advisory
	// Notes are things Load could not check but are not problems: URL artifacts not
	// fetched.
	Notes schema.Issues
	opts  Options
	// declared are the package folders holding manifests, valid or not: a dependency on
	// a package whose manifest is broken is reported once, at the manifest.
	declared map[string]bool
}

// Package is every version of one package, oldest first.
type Package struct {
	Name     string
	Versions []*Manifest
}

// Newest is the highest version, or nil.
func (p *Package) Newest() *Manifest {
	if len(p.Versions) == 0 {
		return nil
	}
	return p.Versions[len(p.Versions)-1]
}

// Version finds the manifest of version v (compared by precedence, so "1.2.0" finds
// "1.2.0+build.1"), or nil.
func (p *Package) Version(v string) *Manifest {
	want, err := semver.NewVersion(v)
	if err != nil {
		return nil
	}
	for _, m := range p.Versions {
		if m.version.Equal(want) {
			return m
		}
	}
	return nil
}

// EnabledIn lists the versions env may resolve, oldest first.
func (p *Package) EnabledIn(env string) []*Manifest {
	var out []*Manifest
	for _, m := range p.Versions {
		if m.EnabledIn(env) {
			out = append(out, m)
		}
	}
	return out
}

// Packages lists the packages in name order.
func (r *Registry) Packages() []*Package {
	out := make([]*Package, len(r.names))
	for i, n := range r.names {
		out[i] = r.packages[n]
	}
	return out
}

// Package returns the package called name, or nil.
func (r *Registry) Package(name string) *Package { return r.packages[name] }

// Options are the options the registry was loaded with, defaults filled in.
func (r *Registry) Options() Options { return r.opts }

// Environment files the packages folder may hold beside the package folders.
const (
	ConfigFile = "environments.yaml"
	lockSuffix = ".lock.json"
)

// LockFile is where the lock of env lives in the repository, e.g. packages/prod.lock.json.
func (r *Registry) LockFile(env string) string { return path.Join(r.opts.Packages, env+lockSuffix) }

// Load reads and checks the registry of a snapshot: every manifest (schema, name and
// version matching the path, unique versions, dependencies that exist and match a version,
// environments that exist, artifact digests and sizes against the bytes), environments.yaml,
// the lock files and the advisories. It reads through fsys only.
//
// A registry with problems returns them all as schema.Issues, each at its file:line:col.
func Load(ctx context.Context, fsys fs.FS, opts Options) (*Registry, error) {
	def := DefaultOptions()
	if opts.Packages == "" {
		opts.Packages = def.Packages
	}
	if opts.Advisories == "" {
		opts.Advisories = def.Advisories
	}
	r := &Registry{opts: opts, packages: map[string]*Package{}, Locks: map[string]*Lock{}, declared: map[string]bool{}}
	var issues schema.Issues
	manifests, configFile, lockFiles, is := r.list(fsys)
	issues = append(issues, is...)
	for _, f := range manifests {
		r.declared[path.Base(path.Dir(f))] = true
		m, is := readManifest(fsys, f, opts.Environments)
		issues = append(issues, is...)
		if m == nil {
			continue
		}
		p := r.packages[m.Name]
		if p == nil {
			p = &Package{Name: m.Name}
			r.packages[m.Name] = p
			r.names = append(r.names, m.Name)
		}
		p.Versions = append(p.Versions, m)
	}
	sort.Strings(r.names)
	issues = append(issues, r.sortVersions()...)
	issues = append(issues, r.checkReferences()...)
	if configFile != "" {
		cfg, is := readConfig(fsys, configFile)
		issues = append(issues, is...)
		if cfg != nil {
			issues = append(issues, r.checkConfig(cfg)...)
			r.Config = cfg
		}
	}
	if r.Config == nil {
		r.Config = &Config{File: path.Join(opts.Packages, ConfigFile)}
	}
	for _, f := range lockFiles {
		l, err := readLock(fsys, f)
		if err != nil {
			issues = append(issues, asIssues(f, err)...)
			continue
		}
		r.Locks[l.Environment] = l
	}
	advisories, is := loadAdvisories(fsys, opts.Advisories)
	issues = append(issues, is...)
	r.Advisories = advisories
	issues = append(issues, r.verifyArtifacts(ctx, fsys)...)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(issues) > 0 {
		sortIssues(issues)
		return nil, issues
	}
	sortIssues(r.Notes)
	return r, nil
}

// list sorts the packages folder's files into manifests, environments.yaml and locks, and
// reports files that fit none of the layout's places.
func (r *Registry) list(fsys fs.FS) (manifests []string, config string, locks []string, issues schema.Issues) {
	root := r.opts.Packages
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll // no packages folder: an empty registry
			}
			return err
		}
		rel := strings.TrimPrefix(p, root+"/")
		if p == root {
			return nil
		}
		depth := strings.Count(rel, "/") + 1
		name := path.Base(p)
		ext := path.Ext(name)
		switch {
		case d.IsDir() && depth == 1:
			if !ValidName(name) {
				issues = append(issues, schema.Issue{File: p, Message: fmt.Sprintf("%q is not a package name (lowercase letters, digits and single hyphens, starting with a letter)", name)})
				return fs.SkipDir
			}
		case d.IsDir():
			issues = append(issues, schema.Issue{File: p, Message: "unexpected folder: manifests live at " + root + "/<name>/<version>.yaml"})
			return fs.SkipDir
		case ext == ".md" || name == ".gitkeep":
		case depth == 1 && name == ConfigFile:
			config = p
		case depth == 1 && strings.HasSuffix(name, lockSuffix):
			locks = append(locks, p)
		case depth == 2 && (ext == ".yaml" || ext == ".yml"):
			manifests = append(manifests, p)
		default:
			issues = append(issues, schema.Issue{File: p, Message: "unexpected file: manifests live at " + root + "/<name>/<version>.yaml, beside " + root + "/" + ConfigFile + " and " + root + "/<env>" + lockSuffix})
		}
		return nil
	})
	if err != nil {
		issues = append(issues, schema.Issue{File: root, Message: fmt.Sprintf("read: %v", err)})
	}
	return manifests, config, locks, issues
}

// sortVersions orders each package's versions and reports two files for one version:
// "1.2.0.yaml" beside "1.2.0.yml", or versions differing only in build metadata, which
// semver does not order.
func (r *Registry) sortVersions() schema.Issues {
	var issues schema.Issues
	for _, n := range r.names {
		p := r.packages[n]
		sort.SliceStable(p.Versions, func(i, j int) bool {
			if c := p.Versions[i].version.Compare(p.Versions[j].version); c != 0 {
				return c < 0
			}
			return p.Versions[i].File < p.Versions[j].File
		})
		kept := p.Versions[:0]
		for _, m := range p.Versions {
			if len(kept) > 0 && kept[len(kept)-1].version.Equal(m.version) {
				prev := kept[len(kept)-1]
				issues = append(issues, m.doc.issue("version", true, "version %s of %s is also declared in %s: each version is declared once (build metadata does not make a new version)", m.Version, m.Name, prev.File))
				continue
			}
			kept = append(kept, m)
		}
		p.Versions = kept
	}
	return issues
}

// checkReferences reports dependencies on packages that do not exist or on ranges no
// version matches.
func (r *Registry) checkReferences() schema.Issues {
	var issues schema.Issues
	for _, p := range r.Packages() {
		for _, m := range p.Versions {
			for _, dep := range m.DependencyNames() {
				rng := m.ranges[dep]
				if rng == nil || !ValidName(dep) {
					continue
				}
				if is, ok := r.checkRequirement(m.doc, "dependencies."+dep, dep, rng); !ok {
					issues = append(issues, is)
				}
			}
		}
	}
	return issues
}

// checkRequirement checks that the package dep exists and that rng matches one of its
// versions.
func (r *Registry) checkRequirement(doc *document, field, dep string, rng *Range) (schema.Issue, bool) {
	target := r.packages[dep]
	if target == nil && r.declared[dep] {
		return schema.Issue{}, true
	}
	if target == nil {
		return doc.issue(field, false, "unknown package %q: there is no %s/%s/ folder", dep, r.opts.Packages, dep), false
	}
	for _, v := range target.Versions {
		if rng.Allows(v.version) {
			return schema.Issue{}, true
		}
	}
	return doc.issue(field, true, "%s %s matches none of %s's versions (%s)", dep, rng, dep, versionList(target.Versions)), false
}

func versionList(ms []*Manifest) string {
	vs := make([]string, len(ms))
	for i, m := range ms {
		vs[i] = m.Version
	}
	return strings.Join(vs, ", ")
}

// verifyArtifacts reads every artifact in the repository once and compares its size and
// digest with what the manifests say; URL artifacts go to the fetcher when one is set.
func (r *Registry) verifyArtifacts(ctx context.Context, fsys fs.FS) schema.Issues {
	// Each distinct artifact is read once: versions often ship the same file.
	cache := map[string]error{}
	once := func(key string, check func() error) error {
		if err, ok := cache[key]; ok {
			return err
		}
		err := check()
		cache[key] = err
		return err
	}
	var issues schema.Issues
	for _, p := range r.Packages() {
		for _, m := range p.Versions {
			for i := range m.Artifacts {
				if ctx.Err() != nil {
					return issues
				}
				a := &m.Artifacts[i]
				field := fmt.Sprintf("artifacts.%d", i)
				var err error
				switch {
				case a.Path != "":
					field += ".path"
					err = once(fmt.Sprintf("path:%s:%s:%d", a.Path, a.SHA256, a.Size), func() error { return verifyFile(fsys, *a) })
				case r.opts.Fetcher == nil:
					a.Status = ArtifactNotFetched
					r.Notes = append(r.Notes, m.doc.issue(field+".url", true, "%s not fetched: storage artifacts are verified when fetched, and no fetcher is configured", a.URL))
					continue
				default:
					field += ".url"
					err = once(fmt.Sprintf("url:%s:%s:%d", a.URL, a.SHA256, a.Size), func() error { return r.opts.Fetcher.Fetch(ctx, *a) })
				}
				where := a.Path + a.URL
				var mm *MismatchError
				switch {
				case err == nil:
					a.Status = ArtifactVerified
				case errors.Is(err, ErrNotFetched):
					a.Status = ArtifactNotFetched
					r.Notes = append(r.Notes, m.doc.issue(field, true, "%s %v", where, err))
				case errors.As(err, &mm) && mm.SHA256 != "":
					issues = append(issues, m.doc.issue(fmt.Sprintf("artifacts.%d.sha256", i), true, "sha256 does not match the bytes of %s (sha256 %s)", where, mm.SHA256))
				case errors.As(err, &mm) && mm.Truncated:
					issues = append(issues, m.doc.issue(fmt.Sprintf("artifacts.%d.size", i), true, "size %d does not match %s, which has more than %d bytes (reading stopped there)", a.Size, where, a.Size))
				case errors.As(err, &mm):
					issues = append(issues, m.doc.issue(fmt.Sprintf("artifacts.%d.size", i), true, "size %d does not match %s, which has %d bytes", a.Size, where, mm.Size))
				default:
					issues = append(issues, m.doc.issue(field, true, "artifact %s: %v", where, err))
				}
			}
		}
	}
	return issues
}

// verifyFile compares a file of the snapshot with a's size and digest.
func verifyFile(fsys fs.FS, a Artifact) error {
	f, err := openFile(fsys, a.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != a.Size {
		return &MismatchError{Size: n}
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != a.SHA256 {
		return &MismatchError{Size: n, SHA256: sum}
	}
	return nil
}

// openFile opens a regular file of the snapshot.
func openFile(fsys fs.FS, name string) (io.ReadCloser, error) {
	f, err := fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("not found in the repository")
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, errors.New("not a regular file")
	}
	return f, nil
}
