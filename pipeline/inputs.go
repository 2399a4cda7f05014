package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/repo"
)

// Inputs returns, for each environment of s, a digest of every file its build may read:
// the repository's shared parts (circle.yaml, schemas, the base config, packages and the
// artifacts they name, advisories, licenses, all manifests) and its own config folder and
// secrets, but not another environment's config or secrets, nor files no build reads (a
// README). Two revisions with the same digest for an environment build it the same, so
// the daemon skips it.
//
// Manifests are counted whole, not per overlay: an overlay may reach any folder under
// paths.manifests (../staging). A change there rebuilds every environment, which is only
// slower, never wrong. An overlay may also reach a base outside paths.manifests
// (../../common): the folders render.Reaches finds count too.
func Inputs(fsys fs.FS, s *repo.Settings) (map[string]string, error) {
	envs := s.EnvNames()
	type file struct{ path, sum string }
	var files []file
	read, err := readBy(fsys, s)
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !read(p) {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		files = append(files, file{p, hex.EncodeToString(sum[:])})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	out := make(map[string]string, len(envs))
	for _, env := range envs {
		h := sha256.New()
		for _, f := range files {
			if owner := ownerOf(f.path, s.Paths, envs); owner == "" || owner == env {
				h.Write([]byte(f.path + "\x00" + f.sum + "\n"))
			}
		}
		out[env] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}

// ownerOf is the environment a file belongs to alone (its config folder or its secrets),
// or "" for a file every environment reads.
func ownerOf(p string, paths repo.Paths, envs []string) string {
	for _, env := range envs {
		if under(p, path.Join(paths.Config, env)) || under(p, path.Join(paths.Secrets, env)) ||
			strings.HasPrefix(p, path.Join(paths.Secrets, env)+".sops.") {
			return env
		}
	}
	return ""
}

func under(p, dir string) bool { return dir == "." || strings.HasPrefix(p, dir+"/") }

// readBy tells the files some build reads: circle.yaml, everything under the folders
// circle.yaml names and the kustomization roots the overlays reach, and the repository
// files package manifests name as artifacts.
func readBy(fsys fs.FS, s *repo.Settings) (func(string) bool, error) {
	p := s.Paths
	dirs := []string{p.Schema, p.Config, p.Secrets, p.Packages, p.Advisories, p.Licenses, p.Manifests}
	artifacts := map[string]bool{}
	err := fs.WalkDir(fsys, p.Packages, func(f string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && f == p.Packages {
			return fs.SkipAll
		}
		if err != nil || d.IsDir() || (path.Ext(f) != ".yaml" && path.Ext(f) != ".yml") {
			return err
		}
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return err
		}
		var m struct {
			Artifacts []struct {
				Path string `json:"path"`
			} `json:"artifacts"`
		}
		if yaml.Unmarshal(b, &m) == nil { // a broken manifest is the load stage's to report
			for _, a := range m.Artifacts {
				artifacts[path.Clean(a.Path)] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// An overlay may reach a base outside paths.manifests; its folder is read too. One that
	// cannot be walked now (a broken kustomization, which the build stage reports) makes
	// every file an input: a digest may then change for nothing, never stay for something.
	for _, env := range s.EnvNames() {
		if _, err := fs.Stat(fsys, path.Join(p.Manifests, env)); err != nil {
			continue
		}
		reached, err := render.Reaches(fsys, p.Manifests, env)
		if err != nil {
			return func(string) bool { return true }, nil
		}
		dirs = append(dirs, reached...)
	}
	return func(f string) bool {
		if f == repo.SettingsFile || artifacts[f] {
			return true
		}
		for _, d := range dirs {
			if d != "" && under(f, path.Clean(d)) {
				return true
			}
		}
		return false
	}, nil
}
