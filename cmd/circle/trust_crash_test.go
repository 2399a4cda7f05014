package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/testenv"
)

// crashDaemon is the real binary on a real state directory (bbolt), started again after
// each kill -9.
type crashDaemon struct {
	t        *testing.T
	bin      string
	args     []string
	api      string
	work     string
	runs     int
	stateDir string
}

func newCrashDaemon(t *testing.T, bin string, args ...string) *crashDaemon {
	work := t.TempDir()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	d := &crashDaemon{t: t, bin: bin, work: work, api: fmt.Sprintf("127.0.0.1:%d", port), stateDir: filepath.Join(work, "state")}
	d.args = append([]string{"serve", "--publish", "file://" + filepath.Join(work, "published"), "--state-dir", d.stateDir,
		"--listen", d.api, "--log-format", "json"}, args...)
	return d
}

// lifeUntil starts the daemon, waits until its status is of revision, kills it with
// SIGKILL (no shutdown: the state store is not closed) and returns that status, as parsed
// and as the API served it, and the daemon's log.
func (d *crashDaemon) lifeUntil(revision string) (*reconciler.Status, string, string) {
	t := d.t
	t.Helper()
	d.runs++
	logPath := filepath.Join(d.work, fmt.Sprintf("run-%d.log", d.runs))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(d.bin, d.args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	deadline := time.Now().Add(time.Minute)
	for {
		var st reconciler.Status
		raw, err := getStatus("http://" + d.api + "/api/v1/status")
		if err == nil && json.Unmarshal([]byte(raw), &st) == nil && st.Revision == revision {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			return &st, raw, logs()
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			t.Fatalf("run %d never reconciled %s:\n%s", d.runs, revision, logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getStatus(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), err
}

// revocationsView is the status's revocations, read apart from reconciler.Status so that
// this test compiles against a daemon without the field (and fails there).
type revocationsView struct {
	File, Reason, Error string
	Serial              uint64
	Kept                bool
}

// revocationsOf reads the revocations of a status as the API served it.
func revocationsOf(t *testing.T, raw string) revocationsView {
	t.Helper()
	var st struct{ Revocations *revocationsView }
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatal(err)
	}
	if st.Revocations == nil {
		return revocationsView{}
	}
	return *st.Revocations
}

func envOf(st *reconciler.Status, name string) reconciler.EnvStatus {
	for _, e := range st.Environments {
		if e.Name == name {
			return e
		}
	}
	return reconciler.EnvStatus{}
}

// Trust that only moves forward, through the real binary killed with SIGKILL between
// revisions, each start reading the same state directory. The attacker pushes commits:
// they cannot sign a license or revocation list, but can delete files, put back old ones,
// and sign commits with a key of their own.
func TestCrash_TrustSurvivesKillNine(t *testing.T) {
	bin := buildBinary(t)

	// The revocation list: serial 2 revokes prod's license; the daemon is killed; a commit
	// deletes the list; the next start still refuses the license, and says why. Then an
	// older list is a replay, also after a kill.
	t.Run("revocation", func(t *testing.T) {
		pub, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pubFile, err := license.MarshalPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		lic, err := license.Issue(&license.License{ID: "lic_prod", Licensee: "Example Corp", Product: "shop",
			IssuedAt: time.Now().Add(-time.Hour), NotBefore: time.Now().Add(-time.Hour), ExpiresAt: time.Now().Add(365 * 24 * time.Hour),
			Metadata: map[string]string{"environments": "prod"}}, key)
		if err != nil {
			t.Fatal(err)
		}
		list := func(serial uint64, ids ...string) string {
			l := &license.RevocationList{Serial: serial}
			for _, id := range ids {
				l.Entries = append(l.Entries, license.Revocation{ID: id, Reason: "key leaked", RevokedAt: time.Now()})
			}
			b, err := license.IssueRevocations(l, key)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		src := copyExamples(t)
		write(t, src, "licenses/issuers.pub", string(pubFile))
		write(t, src, "licenses/circle-demo.lic", string(lic))
		write(t, src, "licenses/revoked.list", list(2, "lic_prod"))
		revision := func() string {
			snap, err := mustDir(t, src).Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return snap.Revision
		}
		d := newCrashDaemon(t, bin, "--source", src, "--key-file", exampleKey)

		st, _, _ := d.lifeUntil(revision())
		if p := envOf(st, "prod"); p.Ready || !strings.Contains(p.Message, "revoked") || !envOf(st, "dev").Ready {
			t.Fatalf("serial 2 revoking prod's license: %+v", st.Environments)
		}

		if err := os.Remove(filepath.Join(src, "licenses/revoked.list")); err != nil {
			t.Fatal(err)
		}
		st, raw, _ := d.lifeUntil(revision())
		p := envOf(st, "prod")
		if p.Ready || p.Reason != reconciler.ReasonLicenseRefused || !strings.Contains(p.Message, "revoked") ||
			!strings.Contains(p.Message, "kept from an earlier revision: this revision has no licenses/revoked.list") {
			t.Errorf("after kill -9 and a commit deleting the list, prod = %+v", p)
		}
		if r := revocationsOf(t, raw); r.File != "licenses/revoked.list" || r.Serial != 2 || !r.Kept || !strings.Contains(r.Error, "this revision has no licenses/revoked.list") {
			t.Errorf("the status does not say the kept list applies: %+v", r)
		}
		if !envOf(st, "dev").Ready {
			t.Errorf("dev: %+v", envOf(st, "dev"))
		}

		write(t, src, "licenses/revoked.list", list(1))
		st, raw, _ = d.lifeUntil(revision())
		if p := envOf(st, "prod"); p.Ready || !strings.Contains(p.Message, "serial 1 is older than serial 2") {
			t.Errorf("after kill -9, an older list: %+v", p)
		}
		if r := revocationsOf(t, raw); r.Reason != "Replayed" || r.Serial != 2 || !r.Kept {
			t.Errorf("the status does not say the older list was a replay: %+v", r)
		}
	})

	// Signing keys: alice, listed in the repository, signs and prod takes it; the daemon is
	// killed; mallory pushes a commit listing only her own key, signed by it; the next
	// start refuses it, judged by alice's key as kept in the state.
	t.Run("signing keys", func(t *testing.T) {
		alice, mallory := sshSigner(t), sshSigner(t)
		files := map[string]string{}
		err := filepath.WalkDir(examplesDir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(examplesDir, p)
			files[filepath.ToSlash(rel)] = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		settings := strings.Replace(files["circle.yaml"], "requireSignedCommits: false   # set true once commits are signed (sources issue)\n",
			"requireSignedCommits: true\n      trustedKeys: [keys/signers.pub]\n", 1)
		if settings == files["circle.yaml"] {
			t.Fatalf("examples/circle.yaml changed: prod's policy is not where this test puts it:\n%s", settings)
		}
		files["circle.yaml"] = settings
		files["keys/signers.pub"] = alice.pub
		repo := testenv.NewGitRepo(t, files)
		d := newCrashDaemon(t, bin, "--source", repo.FileURL(), "--key-file", exampleKey)

		byAlice := alice.commit(t, repo, map[string]string{"config/prod/extra.yaml": "app:\n  replicas: 3\n"})
		st, _, logs := d.lifeUntil(byAlice)
		if p := envOf(st, "prod"); !p.Ready || p.LastGood == nil || p.LastGood.Revision != byAlice {
			t.Fatalf("alice's commit: %+v\n%s", p, logs)
		}

		byMallory := mallory.commit(t, repo, map[string]string{"keys/signers.pub": mallory.pub, "config/prod/extra.yaml": "app:\n  replicas: 7\n"})
		st, _, logs = d.lifeUntil(byMallory)
		p := envOf(st, "prod")
		if p.Ready || p.Reason != reconciler.ReasonSignatureRefused || !strings.Contains(p.Message, "untrusted key") ||
			p.LastGood == nil || p.LastGood.Revision != byAlice {
			t.Errorf("after kill -9, a commit signed by a key only it lists: %+v", p)
		}
		if strings.Contains(logs, "trusting the repository's listed keys") {
			t.Errorf("the restarted daemon trusted the revision's own keys:\n%s", logs)
		}
		if d := envOf(st, "dev"); !d.Ready || d.LastGood.Revision != byMallory {
			t.Errorf("dev, with no signature policy: %+v", d)
		}
	})
}

// sshKey is an SSH signing key made by ssh-keygen.
type sshKey struct {
	path, pub string
}

// sshSigner makes a signing key. ssh-keygen is required: a machine without it fails the
// test rather than skipping what it proves.
func sshSigner(t *testing.T) sshKey {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signing")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{path: path, pub: string(b)}
}

// commit commits files to main signed by the key, pushes, and returns the hash.
func (k sshKey) commit(t *testing.T, repo *testenv.GitRepo, files map[string]string) string {
	t.Helper()
	repo.Commit(t, files, "change")
	env := []string{"GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=gpg.format", "GIT_CONFIG_VALUE_0=ssh",
		"GIT_CONFIG_KEY_1=user.signingkey", "GIT_CONFIG_VALUE_1=" + k.path}
	repo.Git(t, env, "commit", "--quiet", "--amend", "--no-edit", "-S")
	repo.Git(t, nil, "push", "--quiet", "--force", "origin", "main")
	return strings.TrimSpace(repo.Git(t, nil, "rev-parse", "HEAD"))
}
