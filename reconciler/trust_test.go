package reconciler_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/git"
	"github.com/circlecore/circle/sources/signature"
	"github.com/circlecore/circle/state"
	"github.com/circlecore/circle/testenv"
)

// onceSource gives one snapshot to Watch and returns, so Run reconciles it and ends: a
// daemon's whole life, from resume to its first revision.
type onceSource struct{ snap *sources.Snapshot }

func (s onceSource) Snapshot(context.Context) (*sources.Snapshot, error) { return s.snap, nil }

func (s onceSource) Watch(_ context.Context, fn func(*sources.Snapshot) error) error {
	return fn(s.snap)
}

// life starts a daemon on the state directory, lets it reconcile snap, and stops it; it
// returns the status as the state store recorded it, in full and as JSON, and the log.
// Each call is a restart: nothing but the state directory carries over.
func life(t *testing.T, stateDir string, snap *sources.Snapshot, opts reconciler.Options) (*reconciler.Status, string, string) {
	t.Helper()
	store, err := state.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	opts.Keyring, opts.State = exampleKeys(t), store
	d := newDaemon(t, onceSource{snap}, memStore(t), opts)
	if err := d.Run(context.Background()); err != nil {
		t.Fatalf("run: %v\n%s", err, d.logs)
	}
	var st reconciler.Status
	if ok, err := store.Get("status", &st); !ok || err != nil || st.Revision != snap.Revision {
		t.Fatalf("the state store's status: %v %v %s, want %s\n%s", ok, err, st.Revision, snap.Revision, d.logs)
	}
	raw, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	return &st, string(raw), d.logs.String()
}

// The attacker can commit but not sign licenses. A revocation list, once accepted, keeps
// revoking across restarts: deleting licenses/revoked.list does not bring the license
// back, nor does putting back an older list (a replay, refused); only a newer list the
// issuer signed replaces it, and then that one is what a deletion leaves in force.
func TestReconcile_RevocationOutlivesItsList(t *testing.T) {
	stateDir := t.TempDir()
	iss, pub := newIssuer(t)
	root := copyExamples(t)
	write(t, root, "licenses/issuers.pub", pub)
	write(t, root, "licenses/circle-demo.lic", iss.license("lic_prod", "prod", time.Now().Add(365*24*time.Hour)))
	removeList := func() {
		t.Helper()
		if err := os.Remove(filepath.Join(root, "licenses/revoked.list")); err != nil {
			t.Fatal(err)
		}
	}
	revoked := func(st *reconciler.Status) bool {
		p := envByName(st, "prod")
		return !p.Ready && p.Reason == reconciler.ReasonLicenseRefused && strings.Contains(p.Message, "revoked")
	}

	// Serial 2 revokes prod's license: prod refuses the revision, dev takes it.
	write(t, root, "licenses/revoked.list", iss.revoked(2, "lic_prod"))
	st, _, _ := life(t, stateDir, snapshot(t, root), reconciler.Options{})
	if !revoked(st) || !envByName(st, "dev").Ready {
		t.Fatalf("serial 2 revoking lic_prod: %+v", st.Environments)
	}

	// Restart on a commit that deletes the list: still revoked, and the status says the
	// list in force is the one kept from before.
	removeList()
	st, raw, _ := life(t, stateDir, snapshot(t, root), reconciler.Options{})
	if !revoked(st) || !strings.Contains(envByName(st, "prod").Message, "kept from an earlier revision: this revision has no licenses/revoked.list") {
		t.Errorf("after a restart on a commit deleting the list, prod = %+v", envByName(st, "prod"))
	}
	if !strings.Contains(raw, `"revocations":{"file":"licenses/revoked.list","serial":2,"kept":true`) {
		t.Errorf("the status does not say which list applies: %s", raw)
	}
	if !envByName(st, "dev").Ready {
		t.Errorf("dev, whose license nobody revoked: %+v", envByName(st, "dev"))
	}

	// Restart on an older list (serial 1, revoking nothing): a replay, refused everywhere.
	write(t, root, "licenses/revoked.list", iss.revoked(1))
	st, raw, _ = life(t, stateDir, snapshot(t, root), reconciler.Options{})
	if p := envByName(st, "prod"); p.Ready || !strings.Contains(p.Message, "serial 1 is older than serial 2") {
		t.Errorf("an older list after a restart: %+v", p)
	}
	if !strings.Contains(raw, `"reason":"Replayed"`) {
		t.Errorf("the status does not name the replay: %s", raw)
	}

	// A newer list, revoking nothing, replaces the kept one: prod's license is good again.
	write(t, root, "licenses/revoked.list", iss.revoked(3))
	if st, _, _ := life(t, stateDir, snapshot(t, root), reconciler.Options{}); !st.Ready {
		t.Fatalf("serial 3 revoking nothing: %+v", st.Environments)
	}

	// Deleting the list now leaves serial 3 in force, and serial 2 is a replay.
	removeList()
	if st, raw, _ := life(t, stateDir, snapshot(t, root), reconciler.Options{}); !st.Ready || !strings.Contains(raw, `"serial":3,"kept":true`) {
		t.Errorf("serial 3 deleted: %s", raw)
	}
	write(t, root, "licenses/revoked.list", iss.revoked(2, "lic_prod"))
	if st, _, _ := life(t, stateDir, snapshot(t, root), reconciler.Options{}); st.Ready || !strings.Contains(envByName(st, "prod").Message, "serial 2 is older than serial 3") {
		t.Errorf("serial 2 put back after serial 3: %+v", envByName(st, "prod"))
	}
}

// A state store written before lists were kept has a serial and no list: a revision
// without a list is then refused everywhere (what was revoked is unknown), and one with
// the list takes the revision and keeps that list from then on.
func TestReconcile_SerialWithoutListFailsClosed(t *testing.T) {
	stateDir := t.TempDir()
	iss, pub := newIssuer(t)
	root := copyExamples(t)
	write(t, root, "licenses/issuers.pub", pub)
	write(t, root, "licenses/circle-demo.lic", iss.license("lic_all", "", time.Now().Add(365*24*time.Hour)))
	if err := os.Remove(filepath.Join(root, "licenses/revoked.list")); err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put("revocation-serial", 4); err != nil {
		t.Fatal(err)
	}
	store.Close()

	st, _, _ := life(t, stateDir, snapshot(t, root), reconciler.Options{})
	if st.Ready || !strings.Contains(envByName(st, "dev").Message, "serial 4 was accepted before") {
		t.Errorf("no list, serial 4 recorded: %+v", st.Environments)
	}
	write(t, root, "licenses/revoked.list", iss.revoked(4))
	if st, _, _ := life(t, stateDir, snapshot(t, root), reconciler.Options{}); !st.Ready {
		t.Errorf("the list of serial 4 put back: %+v", st.Environments)
	}
	if err := os.Remove(filepath.Join(root, "licenses/revoked.list")); err != nil {
		t.Fatal(err)
	}
	if st, raw, _ := life(t, stateDir, snapshot(t, root), reconciler.Options{}); !st.Ready || !strings.Contains(raw, `"serial":4,"kept":true`) {
		t.Errorf("serial 4, kept, deleted again: %s", raw)
	}
}

// The attacker can push commits and sign them with a key of their own. Repository-listed
// keys are kept with the state, so after a restart a commit is judged by the keys of the
// last revision the environment accepted, not by those the commit itself lists; keys a
// trusted signer brought in survive restarts too, and the operator's keys count as before.
func TestReconcile_SigningKeysOutliveRestart(t *testing.T) {
	alice, mallory, bob, carol := newSigner(t), newSigner(t), newSigner(t), newSigner(t)
	files := exampleFiles(t)
	files["circle.yaml"] = signedProd
	files["keys/signers.pub"] = alice.pub
	repo := testenv.NewGitRepo(t, files)
	src, err := git.New(git.Options{URL: repo.FileURL()})
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	restart := func(opts reconciler.Options) (reconciler.EnvStatus, string) {
		t.Helper()
		snap, err := src.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		st, _, logs := life(t, stateDir, snap, opts)
		return envByName(st, "prod"), logs
	}

	// Alice, listed, signs: prod takes it (the first use ever: logged).
	byAlice := commit(t, repo, map[string]string{"config/prod/extra.yaml": "replicas: 3\n"}, &alice)
	prod, logs := restart(reconciler.Options{})
	if !prod.Ready || prod.LastGood.Revision != byAlice || !strings.Contains(logs, "trusting the repository's listed keys") {
		t.Fatalf("alice's commit on a fresh state: %+v", prod)
	}

	// Restart on mallory's commit that lists mallory's key instead of alice's and is
	// signed by it: refused, judged by alice's key, and no trust on first use is logged.
	commit(t, repo, map[string]string{"keys/signers.pub": mallory.pub, "config/prod/extra.yaml": "replicas: 30\n"}, &mallory)
	prod, logs = restart(reconciler.Options{})
	if prod.Ready || prod.Reason != reconciler.ReasonSignatureRefused || !strings.Contains(prod.Message, "untrusted key") || prod.LastGood.Revision != byAlice {
		t.Errorf("after a restart, a commit vouching for its own signer: %+v", prod)
	}
	if strings.Contains(logs, "trusting the repository's listed keys") {
		t.Error("a restart trusted the revision's own keys")
	}

	// Alice brings bob in; after a restart bob may sign, and mallory still may not.
	commit(t, repo, map[string]string{"keys/signers.pub": alice.pub + bob.pub, "config/prod/extra.yaml": "replicas: 4\n"}, &alice)
	if prod, _ = restart(reconciler.Options{}); !prod.Ready {
		t.Fatalf("alice's commit bringing bob in: %+v", prod)
	}
	byBob := commit(t, repo, map[string]string{"config/prod/extra.yaml": "replicas: 5\n"}, &bob)
	if prod, _ = restart(reconciler.Options{}); !prod.Ready || prod.LastGood.Revision != byBob {
		t.Errorf("bob after a restart, brought in by alice before it: %+v", prod)
	}
	commit(t, repo, map[string]string{"keys/signers.pub": mallory.pub, "config/prod/extra.yaml": "replicas: 31\n"}, &mallory)
	if prod, _ = restart(reconciler.Options{}); prod.Ready || prod.LastGood.Revision != byBob {
		t.Errorf("mallory again: %+v", prod)
	}

	// The operator's keys (--trusted-*-keys) sign on their own, as before, restart or not.
	var daemonKeys signature.Keys
	if err := daemonKeys.Add([]byte(carol.pub)); err != nil {
		t.Fatal(err)
	}
	byCarol := commit(t, repo, map[string]string{"keys/signers.pub": carol.pub, "config/prod/extra.yaml": "replicas: 6\n"}, &carol)
	if prod, _ = restart(reconciler.Options{TrustedKeys: &daemonKeys}); !prod.Ready || prod.LastGood.Revision != byCarol {
		t.Errorf("carol, a daemon key: %+v", prod)
	}
}
