package git_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/circlecore/circle/sources/git"
)

const (
	benchFiles   = 10000
	benchCommits = 500
)

// benchRepo builds a bare repository of benchFiles files and benchCommits commits with
// git fast-import (seconds, where committing file by file would take minutes).
func benchRepo(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "big.git")
	run(b, "", "git", "init", "--quiet", "--bare", "--initial-branch=main", dir)
	var s bytes.Buffer
	for c := 1; c <= benchCommits; c++ {
		fmt.Fprintf(&s, "commit refs/heads/main\ncommitter Bench <b@circle.invalid> %d +0000\ndata 9\ncommit %02d\n", 1700000000+c, c%100)
		// No "from": fast-import continues a branch from its last commit in the stream.
		from, to := 0, benchFiles
		if c > 1 { // later commits each change 20 files
			from, to = (c*20)%benchFiles, (c*20)%benchFiles+20
		}
		for i := from; i < to; i++ {
			body := fmt.Sprintf("key-%d: value %d at commit %d\n%s", i, i, c, bytes.Repeat([]byte("x"), 80))
			fmt.Fprintf(&s, "M 644 inline config/%02d/file-%05d.yaml\ndata %d\n%s\n", i%100, i, len(body), body)
		}
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Stdin = dir, &s
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("fast-import: %v %s", err, out)
	}
	return dir
}

func run(b *testing.B, dir string, name string, args ...string) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@circle.invalid", "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@circle.invalid")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v %s", name, args, err, out)
	}
}

// BenchmarkClone: first snapshot of a 10,000-file repository. go-git keeps the repository
// in memory and reads the tree into the snapshot; the CLI clones shallow and checks out.
func BenchmarkClone(b *testing.B) {
	repo := benchRepo(b)
	b.Run("go-git", func(b *testing.B) {
		for b.Loop() {
			src, err := git.New(git.Options{URL: "file://" + repo})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := src.Snapshot(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("git-cli", func(b *testing.B) {
		for b.Loop() {
			dst := filepath.Join(b.TempDir(), "clone")
			run(b, "", "git", "clone", "--quiet", "--depth", "1", "file://"+repo, dst)
		}
	})
}

// BenchmarkFetchOneCommit: a new commit (20 files changed) lands upstream; the source
// fetches it. go-git's figure includes reading the new tree into the snapshot.
func BenchmarkFetchOneCommit(b *testing.B) {
	repo := benchRepo(b)
	work := filepath.Join(b.TempDir(), "work")
	run(b, "", "git", "clone", "--quiet", "--depth", "1", "file://"+repo, work)
	n := 0
	push := func(b *testing.B) {
		n++
		p := filepath.Join(work, "config", "00", "file-00000.yaml")
		if err := os.WriteFile(p, []byte(fmt.Sprintf("v: %d\n", n)), 0o644); err != nil {
			b.Fatal(err)
		}
		run(b, work, "git", "commit", "--quiet", "-am", "bench")
		run(b, work, "git", "push", "--quiet", "origin", "main")
	}

	b.Run("go-git", func(b *testing.B) {
		src, _ := git.New(git.Options{URL: "file://" + repo})
		if _, err := src.Snapshot(context.Background()); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			b.StopTimer()
			push(b)
			b.StartTimer()
			if _, err := src.Snapshot(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("git-cli", func(b *testing.B) {
		mirror := filepath.Join(b.TempDir(), "mirror")
		run(b, "", "git", "clone", "--quiet", "--bare", "--depth", "1", "file://"+repo, mirror)
		for b.Loop() {
			b.StopTimer()
			push(b)
			b.StartTimer()
			run(b, mirror, "git", "fetch", "--quiet", "--depth", "1", "origin", "+main:main")
		}
	})
}
