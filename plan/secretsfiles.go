package plan

import (
	"bytes"
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/circlecore/circle/repo"
)

// secretsChanged lists, per environment, the secrets files that differ between base and
// head (added, removed or changed): what a plan says of them, in every mode, never what
// changed inside (a review without keys cannot know; one with keys must not show it).
// An environment's files are secrets/<env>.sops.* and everything under secrets/<env>/.
func secretsChanged(base, head fs.FS, bs, hs *repo.Settings, envs []string) (map[string][]string, error) {
	out := map[string][]string{}
	if hs == nil {
		return out, nil
	}
	files := func(fsys fs.FS, s *repo.Settings) (map[string][]byte, error) {
		m := map[string][]byte{}
		if s == nil {
			return m, nil
		}
		err := fs.WalkDir(fsys, s.Paths.Secrets, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == s.Paths.Secrets {
				return fs.SkipAll
			}
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(fsys, p)
			m[p] = b
			return err
		})
		return m, err
	}
	bf, err := files(base, bs)
	if err != nil {
		return nil, err
	}
	hf, err := files(head, hs)
	if err != nil {
		return nil, err
	}
	for _, env := range envs {
		owns := func(p string) bool {
			rel := strings.TrimPrefix(p, hs.Paths.Secrets+"/")
			return strings.HasPrefix(rel, env+".sops.") || strings.HasPrefix(rel, env+"/")
		}
		var changed []string
		for p, b := range hf {
			if owns(p) && !bytes.Equal(b, bf[p]) {
				changed = append(changed, p)
			}
		}
		for p := range bf {
			if _, ok := hf[p]; !ok && owns(path.Clean(p)) {
				changed = append(changed, p)
			}
		}
		slices.Sort(changed)
		if changed != nil {
			out[env] = changed
		}
	}
	return out, nil
}
