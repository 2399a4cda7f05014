package git_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/git"
	"github.com/circlecore/circle/testenv"
)

// gpgKey makes an OpenPGP key in a fresh GNUPGHOME with the real gpg and returns the
// environment that signs with it and its armored public key.
func gpgKey(t *testing.T, name string) (env []string, armored string) {
	t.Helper()
	home, err := os.MkdirTemp("", "gpg") // short: gpg-agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	env = []string{"GNUPGHOME=" + home}
	gpg := func(args ...string) string {
		cmd := exec.Command("gpg", append([]string{"--batch"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return string(out)
	}
	gpg("--passphrase", "", "--quick-generate-key", name+" <"+name+"@circle.invalid>", "ed25519", "sign", "never")
	return append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=user.signingkey", "GIT_CONFIG_VALUE_0="+name+"@circle.invalid"),
		gpg("--armor", "--export", name+"@circle.invalid")
}

// sshKey makes an SSH signing key with ssh-keygen and returns the environment that makes
// git sign with it and its authorized_keys line.
func sshKey(t *testing.T) (env []string, pub string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signing")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return []string{"GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=gpg.format", "GIT_CONFIG_VALUE_0=ssh",
		"GIT_CONFIG_KEY_1=user.signingkey", "GIT_CONFIG_VALUE_1=" + path}, string(b)
}

// signHead re-signs the head of main and pushes it.
func signHead(t *testing.T, repo *testenv.GitRepo, env []string) {
	t.Helper()
	repo.Git(t, env, "commit", "--quiet", "--amend", "--no-edit", "-S")
	repo.Git(t, nil, "push", "--quiet", "--force", "origin", "main")
}

func checkRefused(t *testing.T, opts git.Options, want string) {
	t.Helper()
	src, err := git.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Snapshot(context.Background())
	if !errors.Is(err, git.ErrSignature) || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want a signature refusal mentioning %q", err, want)
	}
}

func TestVerify_OpenPGP(t *testing.T) {
	signEnv, trusted := gpgKey(t, "release")
	otherEnv, _ := gpgKey(t, "mallory")
	repo := testenv.NewGitRepo(t, map[string]string{"a": "1\n"})
	policy := git.Verify{Mode: git.VerifyHead, PGPKeys: trusted}

	checkRefused(t, git.Options{URL: repo.FileURL(), Verify: policy}, "not signed")

	signHead(t, repo, signEnv)
	snap := snapshot(t, git.Options{URL: repo.FileURL(), Verify: policy})
	if read(t, snap, "a") != "1\n" {
		t.Error("signed revision not read")
	}

	signHead(t, repo, otherEnv)
	checkRefused(t, git.Options{URL: repo.FileURL(), Verify: policy}, "commit")

	// Tampered: the signed commit's message changed after signing.
	signHead(t, repo, signEnv)
	tamper(t, repo)
	checkRefused(t, git.Options{URL: repo.FileURL(), Verify: policy}, "commit")
}

func TestVerify_SSH(t *testing.T) {
	signEnv, trusted := sshKey(t)
	otherEnv, _ := sshKey(t)
	repo := testenv.NewGitRepo(t, map[string]string{"a": "1\n"})
	policy := git.Verify{Mode: git.VerifyHead, SSHKeys: []byte(trusted)}

	checkRefused(t, git.Options{URL: repo.FileURL(), Verify: policy}, "not signed")
	signHead(t, repo, signEnv)
	snapshot(t, git.Options{URL: repo.FileURL(), Verify: policy})

	signHead(t, repo, otherEnv)
	checkRefused(t, git.Options{URL: repo.FileURL(), Verify: policy}, "untrusted key")

	signHead(t, repo, signEnv)
	tamper(t, repo)
	checkRefused(t, git.Options{URL: repo.FileURL(), Verify: policy}, "does not match")
}

func TestVerify_Tag(t *testing.T) {
	signEnv, trusted := sshKey(t)
	repo := testenv.NewGitRepo(t, map[string]string{"a": "1\n"})
	repo.Tag(t, "v1.0.0") // annotated, unsigned
	policy := git.Verify{Mode: git.VerifyTag, SSHKeys: []byte(trusted)}
	checkRefused(t, git.Options{URL: repo.FileURL(), Ref: git.Ref{Tag: "v1.0.0"}, Verify: policy}, "tag v1.0.0")

	repo.Git(t, signEnv, "tag", "-s", "-m", "signed", "v1.1.0")
	repo.Git(t, nil, "push", "--quiet", "origin", "v1.1.0")
	snapshot(t, git.Options{URL: repo.FileURL(), Ref: git.Ref{Tag: "v1.1.0"}, Verify: policy})

	checkRefused(t, git.Options{URL: repo.FileURL(), Verify: policy}, "not an annotated tag")
}

func TestVerify_Policy(t *testing.T) {
	for name, v := range map[string]git.Verify{
		"no keys":      {Mode: git.VerifyHead},
		"unknown mode": {Mode: "sometimes", SSHKeys: []byte("x")},
		"bad ssh key":  {Mode: git.VerifyHead, SSHKeys: []byte("ssh-ed25519 notbase64")},
	} {
		if _, err := git.New(git.Options{URL: "file:///x", Verify: v}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// tamper rewrites the head commit's message while keeping its signature header, the way an
// attacker with push access but not the key would, and force-pushes it.
func tamper(t *testing.T, repo *testenv.GitRepo) {
	t.Helper()
	raw := repo.Git(t, nil, "cat-file", "commit", "HEAD")
	raw = strings.TrimRight(raw, "\n") + " (tampered)\n"
	path := filepath.Join(t.TempDir(), "commit")
	if err := os.WriteFile(path, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	hash := strings.TrimSpace(repo.Git(t, nil, "hash-object", "-t", "commit", "-w", path))
	repo.Git(t, nil, "update-ref", "refs/heads/main", hash)
	repo.Git(t, nil, "push", "--quiet", "--force", "origin", "main")
}

// A refused head is reported once, not fetched and checked on every poll; the next signed
// commit goes through.
func TestVerify_WatchRemembersRefusedHead(t *testing.T) {
	env, trusted := sshKey(t)
	repo := testenv.NewGitRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	var mu sync.Mutex
	refusals := 0
	src, err := git.New(git.Options{URL: repo.FileURL(), Interval: 20 * time.Millisecond,
		Verify: git.Verify{Mode: git.VerifyHead, SSHKeys: []byte(trusted)},
		OnError: func(err error) {
			if errors.Is(err, git.ErrSignature) {
				mu.Lock()
				refusals++
				mu.Unlock()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan *sources.Snapshot, 1)
	go func() { _ = src.Watch(ctx, func(s *sources.Snapshot) error { got <- s; return nil }) }()
	time.Sleep(300 * time.Millisecond) // some fifteen polls
	mu.Lock()
	if refusals != 1 {
		t.Errorf("the unsigned head was refused %d times in 15 polls, want once", refusals)
	}
	mu.Unlock()
	repo.Commit(t, map[string]string{"a.yaml": "a: 2\n"}, "signed next")
	signHead(t, repo, env)
	select {
	case s := <-got:
		if read(t, s, "a.yaml") != "a: 2\n" {
			t.Error("wrong revision")
		}
	case <-ctx.Done():
		t.Fatal("the signed commit never arrived")
	}
}
