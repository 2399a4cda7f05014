package build

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/circlecore/circle/repo"
)

// Inputs returns, for each environment of s, a digest of every file its build may read:
// the repository's shared parts (circle.yaml, schemas, the base config, packages,
// advisories, licenses, all manifests) and its own config folder and secrets, but not
// another environment's config or secrets. Two revisions with the same digest for an
// environment build it the same, so the daemon skips it.
//
// Manifests are counted whole, not per overlay: an overlay may reach any folder under
// paths.manifests (../staging), and telling which from kustomization files would be
// kustomize's job done twice. A change there rebuilds every environment, which is only
// slower, never wrong.
func Inputs(fsys fs.FS, s *repo.Settings) (map[string]string, error) {
	envs := s.EnvNames()
	type file struct{ path, sum string }
	var files []file
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
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

func under(p, dir string) bool { return strings.HasPrefix(p, dir+"/") }
