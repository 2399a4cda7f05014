package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/circlecore/circle/registry/spdx"
	"github.com/circlecore/circle/schema"
)

// Manifest is one version of one package, read from packages/<name>/<version>.yaml.
type Manifest struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
	// License is an SPDX license expression.
	License string `json:"license"`
	// Dependencies maps a package name to the version range this version needs.
	Dependencies map[string]string `json:"dependencies,omitempty"`
	// Environments limits where this version may be resolved; empty means everywhere.
	Environments []string   `json:"environments,omitempty"`
	Artifacts    []Artifact `json:"artifacts,omitempty"`

	// File is the manifest's path in the repository.
	File string `json:"-"`

	version *semver.Version
	ranges  map[string]*Range
	doc     *document
}

// Artifact is a file a package version ships, with the digest and size its bytes must have.
type Artifact struct {
	// Path is relative to the repository root; URL names an object in a storage backend.
	// Exactly one is set.
	Path   string `json:"path,omitempty"`
	URL    string `json:"url,omitempty"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Status says what Load could check: "verified" (the bytes were read and match), or
	// "not fetched" (a storage URL, and no fetcher was given). Never part of the digest.
	Status string `json:"status,omitempty"`
}

// Artifact statuses.
const (
	ArtifactVerified   = "verified"
	ArtifactNotFetched = "not fetched"
)

// SemVer is the parsed version.
func (m *Manifest) SemVer() *semver.Version { return m.version }

// Range is the parsed range of the dependency on name, or nil.
func (m *Manifest) Range(name string) *Range { return m.ranges[name] }

// DependencyNames lists the dependencies in name order, so everything built from them is
// deterministic.
func (m *Manifest) DependencyNames() []string {
	names := make([]string, 0, len(m.Dependencies))
	for n := range m.Dependencies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// EnabledIn reports whether this version may be resolved in env.
func (m *Manifest) EnabledIn(env string) bool {
	return len(m.Environments) == 0 || slices.Contains(m.Environments, env)
}

// Digest identifies the manifest's content: "sha256:" and the hex SHA-256 of its canonical
// JSON (fields in a fixed order, map keys sorted, no statuses). It covers the artifacts'
// digests, so a lock entry pins the bytes too; comments and formatting do not change it.
func (m *Manifest) Digest() string {
	c := *m
	c.Artifacts = make([]Artifact, len(m.Artifacts))
	for i, a := range m.Artifacts {
		a.Status = ""
		c.Artifacts[i] = a
	}
	b, _ := json.Marshal(c) // a struct of strings, maps and slices always marshals
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ID is "name@version".
func (m *Manifest) ID() string { return m.Name + "@" + m.Version }

var packageName = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// ValidName reports whether s follows the package name rules: 1 to 64 lowercase letters,
// digits and single hyphens, starting with a letter.
func ValidName(s string) bool { return len(s) <= 64 && packageName.MatchString(s) }

// readManifest parses and checks one manifest on its own; checks that need the other
// manifests come later.
func readManifest(fsys fs.FS, file string, envs []string) (*Manifest, schema.Issues) {
	var m Manifest
	doc, issues := readDocument(fsys, file, "#Manifest", &m)
	if issues != nil {
		return nil, issues
	}
	m.File, m.doc = file, doc
	var err error
	dir, base := path.Split(file)
	if folder := path.Base(dir); m.Name != folder {
		issues = append(issues, doc.issue("name", true, "name %q does not match its folder %q: a manifest lives at <packages>/<name>/<version>.yaml", m.Name, folder))
	}
	if m.version, err = ParseVersion(m.Version); err != nil {
		issues = append(issues, doc.issue("version", true, "%v", err))
	}
	if stem := strings.TrimSuffix(base, path.Ext(base)); m.Version != stem {
		issues = append(issues, doc.issue("version", true, "version %q does not match the file name %q", m.Version, base))
	}
	if err := spdx.Validate(m.License); err != nil {
		issues = append(issues, doc.issue("license", true, "%v", err))
	}
	m.ranges = map[string]*Range{}
	for _, dep := range m.DependencyNames() {
		p := "dependencies." + dep
		switch {
		case !ValidName(dep):
			issues = append(issues, doc.issue(p, false, "%q is not a package name (lowercase letters, digits and single hyphens, starting with a letter)", dep))
		case dep == m.Name:
			issues = append(issues, doc.issue(p, false, "a package cannot depend on itself"))
		}
		r, err := ParseRange(m.Dependencies[dep])
		if err != nil {
			issues = append(issues, doc.issue(p, true, "%v", err))
			continue
		}
		m.ranges[dep] = r
	}
	seen := map[string]int{}
	for i, e := range m.Environments {
		if j, ok := seen[e]; ok {
			issues = append(issues, doc.issue(fmt.Sprintf("environments.%d", i), true, "environment %q is listed twice (also at index %d)", e, j))
		} else if envs != nil && !slices.Contains(envs, e) {
			issues = append(issues, doc.issue(fmt.Sprintf("environments.%d", i), true, "environment %q is not defined in circle.yaml (environments: %s)", e, strings.Join(envs, ", ")))
		}
		seen[e] = i
	}
	for i, a := range m.Artifacts {
		p := fmt.Sprintf("artifacts.%d", i)
		switch {
		case a.Path == "" && a.URL == "":
			issues = append(issues, doc.issue(p, true, "an artifact needs a path (in the repository) or a url (in a storage backend)"))
		case a.Path != "" && a.URL != "":
			issues = append(issues, doc.issue(p+".url", false, "an artifact has a path or a url, not both"))
		case a.Path != "":
			if err := checkRelPath(a.Path); err != nil {
				issues = append(issues, doc.issue(p+".path", true, "%v", err))
			}
		}
	}
	if issues != nil {
		return nil, issues
	}
	return &m, nil
}

// checkRelPath refuses a path that could leave the repository or mean different files on
// different systems: absolute paths, "..", "." or empty elements, and backslashes.
func checkRelPath(p string) error {
	if strings.Contains(p, `\`) || !fs.ValidPath(p) || p == "." {
		return fmt.Errorf("path %q must be relative to the repository root, slash-separated, without \"..\" or \".\" (it may not leave the repository)", p)
	}
	return nil
}

// asIssues returns err's issues, or one issue for the file.
func asIssues(file string, err error) schema.Issues {
	if is, ok := err.(schema.Issues); ok {
		return is
	}
	return schema.Issues{{File: file, Message: err.Error()}}
}
