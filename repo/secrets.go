package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/circlecore/circle/schema"
	"github.com/circlecore/circle/secrets"
)

// SecretCheck is the result of trying to open one SOPS file.
type SecretCheck struct {
	File string `json:"file"`
	// Recipients are whom the file was encrypted for.
	Recipients []string `json:"recipients,omitempty"`
	// Error says why it did not open; empty when it did.
	Error string `json:"error,omitempty"`
	// Problems are the error's findings, each at its line and key path when it has one.
	Problems []secrets.Problem `json:"problems,omitempty"`
}

// OK reports whether the file opened.
func (c SecretCheck) OK() bool { return c.Error == "" }

// CheckSecrets tries every SOPS file of the repository with keys: each file in the secrets
// folder, and any *.sops.* file elsewhere. The plaintext is dropped at once. A check's Error
// is built from the secrets package's problems (file, line, key path, message), which never
// hold a value.
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
				c.Error, c.Problems = describe(err)
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

// describe is a failed check's message: each problem with its line and key path, the file
// being named beside it already. An error that is not the secrets package's own (there is
// none today) is reported by its kind only, as its text may come from anywhere.
func describe(err error) (string, []secrets.Problem) {
	var se *secrets.Error
	if !errors.As(err, &se) {
		return "does not open", nil
	}
	parts := make([]string, len(se.Problems))
	for i, p := range se.Problems {
		var b strings.Builder
		if p.Line > 0 {
			fmt.Fprintf(&b, "line %d: ", p.Line)
		}
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Message)
		parts[i] = b.String()
	}
	return strings.Join(parts, "; "), se.Problems
}

// secretIssues turns the secrets package's error into issues at the lines it names, so a
// SOPS file's problems are reported at file:line:col like every other problem. Other errors
// are returned as they are.
func secretIssues(err error) error {
	var se *secrets.Error
	if !errors.As(err, &se) {
		return err
	}
	issues := make(schema.Issues, len(se.Problems))
	for i, p := range se.Problems {
		issues[i] = schema.Issue{File: p.File, Line: p.Line, Column: p.Column, Path: p.Path, Message: p.Message}
	}
	return issues
}
