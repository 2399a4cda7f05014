package repo

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"strings"

	"github.com/circlecore/circle/secrets"
)

// SecretCheck is the result of trying to open one SOPS file.
type SecretCheck struct {
	File string `json:"file"`
	// Recipients are whom the file was encrypted for.
	Recipients []string `json:"recipients,omitempty"`
	// Error says why it did not open; empty when it did.
	Error string `json:"error,omitempty"`
}

// OK reports whether the file opened.
func (c SecretCheck) OK() bool { return c.Error == "" }

// CheckSecrets tries every SOPS file of the repository with keys: each file in the secrets
// folder, and any *.sops.* file elsewhere. The plaintext is dropped at once.
func CheckSecrets(ctx context.Context, fsys fs.FS, s *Settings, keys *secrets.Keyring) ([]SecretCheck, error) {
	if keys == nil {
		keys = &secrets.Keyring{}
	}
	var out []SecretCheck
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// .sops.yaml is sops' own creation-rules file, not an encrypted one.
		if d.IsDir() || path.Base(p) == ".sops.yaml" || !(isUnder(p, s.Paths.Secrets) || strings.Contains(path.Base(p), ".sops.")) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		c := SecretCheck{File: p}
		c.Recipients, err = secrets.Recipients(p, data)
		switch {
		case errors.Is(err, secrets.ErrNotEncrypted) && isUnder(p, s.Paths.Secrets) && !configExts[path.Ext(p)]:
			return nil // a README beside the secrets
		case err != nil:
			c.Error = "not encrypted with SOPS"
		default:
			if _, err := keys.Decrypt(ctx, p, data); err != nil {
				c.Error = strings.TrimPrefix(err.Error(), "decrypt "+p+": ")
			}
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

func isUnder(p, dir string) bool {
	return dir == "." || strings.HasPrefix(p, dir+"/")
}
