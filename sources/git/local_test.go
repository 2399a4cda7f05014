package git_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/circlecore/circle/sources/git"
	"github.com/circlecore/circle/sources/signature"
	"github.com/circlecore/circle/testenv"
)

// gitIn runs the git CLI in dir with a fixed identity and no user configuration.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@circle.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@circle.invalid")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func writeIn(t *testing.T, root, name, content string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Local reads a commit's tree below the folder asked for, by any revision spelling, and
// never the uncommitted work tree.
func TestLocal(t *testing.T) {
	root := t.TempDir()
	gitIn(t, root, "init", "--quiet", "--initial-branch=main")
	writeIn(t, root, "README", "outside\n")
	writeIn(t, root, "conf/circle.yaml", "v: 1\n")
	writeIn(t, root, "conf/config/base/a.yaml", "a: 1\n")
	gitIn(t, root, "add", "--all")
	gitIn(t, root, "commit", "--quiet", "-m", "one")
	first := gitIn(t, root, "rev-parse", "HEAD")
	gitIn(t, root, "tag", "v1")
	writeIn(t, root, "conf/config/base/a.yaml", "a: 2\n")
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "conf", "link")); err != nil {
		t.Fatal(err)
	}
	gitIn(t, root, "add", "--all")
	gitIn(t, root, "commit", "--quiet", "-m", "two")
	writeIn(t, root, "conf/config/base/a.yaml", "a: uncommitted\n")

	for rev, want := range map[string]string{"HEAD": "a: 2\n", "main": "a: 2\n", "HEAD~1": "a: 1\n", "v1": "a: 1\n", first[:8]: "a: 1\n", first: "a: 1\n"} {
		snap, err := git.Local(filepath.Join(root, "conf"), rev, git.Caps{})
		if err != nil {
			t.Fatalf("%s: %v", rev, err)
		}
		b, err := fs.ReadFile(snap.FS, "config/base/a.yaml")
		if err != nil || string(b) != want {
			t.Errorf("%s: config/base/a.yaml = %q, %v; want %q", rev, b, err, want)
		}
		if _, err := fs.Stat(snap.FS, "README"); err == nil {
			t.Errorf("%s: a file above the folder is in the snapshot", rev)
		}
		if _, err := fs.Stat(snap.FS, "link"); err == nil {
			t.Errorf("%s: a symlink is in the snapshot", rev)
		}
		if len(snap.Revision) != 40 || snap.Commit == nil {
			t.Errorf("%s: revision %q, commit %v", rev, snap.Revision, snap.Commit)
		}
	}
	// The root of the work tree reads whole.
	snap, err := git.Local(root, "HEAD", git.Caps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(snap.FS, "conf/circle.yaml"); err != nil {
		t.Errorf("root snapshot: %v", err)
	}

	if _, err := git.Local(filepath.Join(root, "conf"), "nope", git.Caps{}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown revision: %v", err)
	}
	if _, err := git.Local(t.TempDir(), "HEAD", git.Caps{}); !errors.Is(err, git.ErrNotInRepository) {
		t.Errorf("outside a repository: %v", err)
	}
	// A folder that exists only in the work tree, not at the revision.
	writeIn(t, root, "new/x.yaml", "x: 1\n")
	if _, err := git.Local(filepath.Join(root, "new"), "HEAD", git.Caps{}); err == nil {
		t.Error("a folder missing at the revision read without error")
	}
}

// A snapshot's commit reads back as its author, date and message.
func TestDescribe(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"a.txt": "a\n"})
	repo.Commit(t, map[string]string{"a.txt": "b\n"}, "Change a\n\nWhy it changed.")
	src, err := git.New(git.Options{URL: repo.FileURL()})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := git.Describe(snap.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Message, "Change a\n\nWhy it changed.") || !strings.Contains(c.Author, "<") || c.Date.IsZero() || c.Signed {
		t.Errorf("commit = %+v", c)
	}
	if _, err := git.Describe(nil); err == nil {
		t.Error("a nil commit was described")
	}
	if _, err := git.Describe(&signature.Object{Name: "commit x", Payload: []byte("not a commit")}); err == nil {
		t.Error("garbage was described")
	}
}

// A revision read for a plan is held to the caps it is given, as a remote one is: a file or
// a tree over them refuses it, naming the file and the limit.
func TestLocal_Caps(t *testing.T) {
	root := t.TempDir()
	gitIn(t, root, "init", "--quiet", "--initial-branch=main")
	writeIn(t, root, "circle.yaml", "v: 1\n")
	writeIn(t, root, "config/base/big.yaml", "pad: "+strings.Repeat("a", 4000)+"\n")
	gitIn(t, root, "add", "--all")
	gitIn(t, root, "commit", "--quiet", "-m", "big")
	if _, err := git.Local(root, "HEAD", git.Caps{MaxFileSize: 1024}); err == nil || !strings.Contains(err.Error(), "config/base/big.yaml") || !strings.Contains(err.Error(), "1024-byte file limit") {
		t.Errorf("a file over the cap: %v", err)
	}
	if _, err := git.Local(root, "HEAD", git.Caps{MaxTreeSize: 2048}); err == nil || !strings.Contains(err.Error(), "2048") {
		t.Errorf("a tree over the cap: %v", err)
	}
	if _, err := git.Local(root, "HEAD", git.Caps{}); err != nil {
		t.Errorf("under the default caps: %v", err)
	}
}
