package reconciler_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/sources/git"
	"github.com/circlecore/circle/sources/signature"
	"github.com/circlecore/circle/testenv"
)

// signer is an SSH signing key made by ssh-keygen, and the git environment that signs with it.
type signer struct {
	env []string
	pub string
}

func newSigner(t *testing.T) signer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signing")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen (Debian's openssh-client; make testenv installs it): %v %s", err, out)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return signer{env: []string{"GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=gpg.format", "GIT_CONFIG_VALUE_0=ssh",
		"GIT_CONFIG_KEY_1=user.signingkey", "GIT_CONFIG_VALUE_1=" + path}, pub: string(b)}
}

// commit makes a commit on main, signed by s unless s is nil, pushes it and returns the hash.
func commit(t *testing.T, repo *testenv.GitRepo, files map[string]string, s *signer) string {
	t.Helper()
	head := repo.Commit(t, files, "change")
	if s == nil {
		return head
	}
	repo.Git(t, s.env, "commit", "--quiet", "--amend", "--no-edit", "-S")
	repo.Git(t, nil, "push", "--quiet", "--force", "origin", "main")
	return strings.TrimSpace(repo.Git(t, nil, "rev-parse", "HEAD"))
}

func exampleFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	root := "../examples"
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		// These tests drop staging from circle.yaml; the package registry names it.
		if !strings.HasPrefix(filepath.ToSlash(rel), "packages/") {
			files[filepath.ToSlash(rel)] = string(b)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

const signedProd = `apiVersion: circle/v1
environments:
  - name: dev
  - name: prod
    policy:
      requireSignedCommits: true
      trustedKeys: [keys/signers.pub]
`

// Per-environment signature policy from circle.yaml, over a real Git remote: prod takes
// only commits signed by a key the repository listed at prod's last accepted revision;
// dev takes everything.
func TestReconcile_SignaturePolicyPerEnvironment(t *testing.T) {
	alice, bob := newSigner(t), newSigner(t)
	files := exampleFiles(t)
	files["circle.yaml"] = signedProd
	files["keys/signers.pub"] = alice.pub
	repo := testenv.NewGitRepo(t, files)
	src, err := git.New(git.Options{URL: repo.FileURL()})
	if err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t)})
	ctx := context.Background()
	reconcile := func() *reconciler.Status {
		t.Helper()
		snap, err := src.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := d.Reconcile(ctx, snap)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	lastGood := func(st *reconciler.Status, env string) string {
		if g := envByName(st, env).LastGood; g != nil {
			return g.Revision
		}
		return ""
	}

	// Unsigned: dev moves, prod refuses.
	unsigned := strings.TrimSpace(repo.Git(t, nil, "rev-parse", "HEAD"))
	st := reconcile()
	prod := envByName(st, "prod")
	if st.Ready || st.Reason != reconciler.ReasonSignatureRefused || prod.Reason != reconciler.ReasonSignatureRefused ||
		!strings.Contains(prod.Message, "commit "+unsigned+": signature check failed: not signed") || prod.LastGood != nil {
		t.Fatalf("unsigned commit: %+v", st)
	}
	if lastGood(st, "dev") != unsigned {
		t.Errorf("dev did not take the unsigned commit: %+v", st.Environments)
	}

	// Signed by alice, whom the repository lists: prod takes it (first use since start).
	signed := commit(t, repo, map[string]string{"config/prod/extra.yaml": "replicas: 3\n"}, &alice)
	st = reconcile()
	if !st.Ready || lastGood(st, "prod") != signed {
		t.Fatalf("signed by a listed key: %+v", st)
	}
	if !strings.Contains(d.logs.String(), "trusting the repository's listed keys") {
		t.Error("first use of repository-listed keys was not logged")
	}

	// Bob adds himself and signs: the key he adds is not trusted by the commit adding it.
	selfVouched := commit(t, repo, map[string]string{"keys/signers.pub": alice.pub + bob.pub}, &bob)
	st = reconcile()
	if prod := envByName(st, "prod"); prod.Ready || !strings.Contains(prod.Message, "untrusted key") || prod.LastGood.Revision != signed {
		t.Fatalf("a commit vouching for its own signer: %+v", prod)
	}
	if lastGood(st, "dev") != selfVouched {
		t.Error("dev did not move")
	}

	// Alice signs the next commit: bob's key arrives with it, and bob may sign after that.
	byAlice := commit(t, repo, map[string]string{"config/prod/extra.yaml": "replicas: 4\n"}, &alice)
	if st = reconcile(); lastGood(st, "prod") != byAlice {
		t.Fatalf("alice's commit: %+v", envByName(st, "prod"))
	}
	byBob := commit(t, repo, map[string]string{"config/prod/extra.yaml": "replicas: 5\n"}, &bob)
	if st = reconcile(); !st.Ready || lastGood(st, "prod") != byBob {
		t.Fatalf("bob's commit after alice brought his key: %+v", envByName(st, "prod"))
	}
}

func TestReconcile_SignaturePolicyNeedsKeys(t *testing.T) {
	files := exampleFiles(t)
	files["circle.yaml"] = strings.Replace(signedProd, "      trustedKeys: [keys/signers.pub]\n", "", 1)
	repo := testenv.NewGitRepo(t, files)
	src, err := git.New(git.Options{URL: repo.FileURL()})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t)})
	st, err := d.Reconcile(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	if prod := envByName(st, "prod"); prod.Ready || !strings.Contains(prod.Message, "no trusted keys are configured") {
		t.Errorf("no keys anywhere: %+v", prod)
	}

	// The daemon's own keys count; a missing listed file is a clear refusal.
	var daemonKeys signature.Keys
	if err := daemonKeys.Add([]byte(newSigner(t).pub)); err != nil {
		t.Fatal(err)
	}
	files["circle.yaml"] = signedProd
	repo2 := testenv.NewGitRepo(t, files)
	src2, _ := git.New(git.Options{URL: repo2.FileURL()})
	snap2, err := src2.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d = newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t), TrustedKeys: &daemonKeys})
	st, _ = d.Reconcile(context.Background(), snap2)
	if prod := envByName(st, "prod"); prod.Ready || !strings.Contains(prod.Message, "trusted keys: open keys/signers.pub") {
		t.Errorf("missing key file: %+v", prod)
	}

	// A folder has no commit to verify.
	st, _ = d.Reconcile(context.Background(), snapshot(t, writeSettings(t, signedProd)))
	if prod := envByName(st, "prod"); prod.Ready {
		t.Errorf("a folder passed a signature policy: %+v", prod)
	}
}

func writeSettings(t *testing.T, settings string) string {
	root := copyExamples(t)
	write(t, root, "circle.yaml", settings)
	write(t, root, "keys/signers.pub", newSigner(t).pub)
	return root
}
