package plan_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/plan"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/secrets"
)

// now is the clock of every build and plan in these tests: after the example license was
// issued and the example advisory published, years before the license expires.
var now = time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)

const examples = "../examples"

// examplesFS is the example repository in memory, for a test to change.
func examplesFS(t testing.TB) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	err := filepath.WalkDir(examples, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(examples, p)
		out[filepath.ToSlash(rel)] = &fstest.MapFile{Data: b, Mode: 0o444}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// clone copies a MapFS so base and head can differ.
func clone(m fstest.MapFS) fstest.MapFS {
	out := make(fstest.MapFS, len(m))
	for k, v := range m {
		c := *v
		out[k] = &c
	}
	return out
}

func keyring(t testing.TB) *secrets.Keyring {
	t.Helper()
	var ring secrets.Keyring
	if err := ring.AddFile(filepath.Join(examples, "keys", "age.example.key")); err != nil {
		t.Fatal(err)
	}
	return &ring
}

// newRedactor is a redactor with a fixed salt, so outputs are the same run after run.
func newRedactor() *redact.Redactor { return redact.New(redact.WithSalt([]byte("plan-test"))) }

// planOf builds two revisions as circle plan does and compares them.
func planOf(t testing.TB, base, head fs.FS, envs ...string) *plan.Plan {
	t.Helper()
	red := newRedactor()
	b, err := plan.Build(context.Background(), base, head, plan.BuildOptions{Load: repo.Options{Keyring: keyring(t), Redactor: red, Envs: envs}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return plan.Compare(context.Background(), b.Base, b.Head, plan.Options{Redactor: red, Now: now, Envs: envs, Unchanged: b.Unchanged,
		BaseRevision: "base", HeadRevision: "head"})
}

// revisionOf builds one revision whole, with pipeline.Run; its problems are in the Result.
func revisionOf(t testing.TB, fsys fs.FS, red *redact.Redactor) *pipeline.Result {
	t.Helper()
	r, err := pipeline.Run(context.Background(), fsys, pipeline.Options{Load: repo.Options{Keyring: keyring(t), Redactor: red}, Now: now})
	if _, invalid := errors.AsType[*repo.Invalid](err); err != nil && !invalid {
		t.Fatal(err)
	}
	return r
}
