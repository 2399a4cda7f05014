package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/sources/dir"
	"github.com/circlecore/circle/state"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/publish"
	"github.com/circlecore/circle/testenv"
)

// buildBinary builds circle once per test binary run, for tests that must kill a real
// process.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "circle")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The kill -9 test's bounds: at least crashRuns kills in all, of which at least
// crashMidPublish landed while dev's build was being published (some of its objects up,
// its current.json not yet naming the revision) and crashMidApply while it was being
// applied (the inventory's pending set recorded the revision's objects, the apply had not
// finished); kills aimed at those moments are retried with other timings up to
// crashMaxRuns kills. Without these the test passed even when no kill hit either stage.
const (
	crashRuns       = 20
	crashMidPublish = 5
	crashMidApply   = 5
	crashMaxRuns    = 80
)

// kill -9 the daemon again and again while each start has a new revision to publish to
// S3 and apply to the cluster, some kills at random moments and some aimed at the publish
// and apply stages, until enough landed in each; then start it once more. Storage and
// cluster must converge on the latest revision, every build in the bucket must be whole (a
// manifest names only objects that are there and decrypt), and the state store must open.
func TestCrash_KillNineConverges(t *testing.T) {
	bin := buildBinary(t)
	kube := testenv.StartKube(t)
	cs := kube.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ns := kube.Namespace(t)
	bucket := testenv.StartS3(t).NewBucket(t)
	src := copyExamples(t)
	testenv.SetNamespace(t, src, "deploy/dev/kustomization.yaml", ns)
	write(t, src, "circle.yaml", strings.Replace(readFileT(t, src, "circle.yaml"), "targets:\n",
		"targets:\n  - name: kind\n    kind: cluster\n    environments: [dev]\n", 1))
	work := t.TempDir()
	ring, stateDir := newKeyringFile(t), filepath.Join(work, "state")
	kubeconfig := writeKubeconfig(t, kube)
	port, _ := testenv.FreePort()
	api := fmt.Sprintf("127.0.0.1:%d", port)
	start := func(out io.Writer) *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--source", src, "--publish", bucket, "--storage-keyring", ring,
			"--key-file", exampleKey, "--cluster", "kind="+kubeconfig, "--inventory-namespace", ns,
			"--state-dir", stateDir, "--listen", api, "--log-format", "json")
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	probe := newCrashProbe(ctx, t, bucket, ring, cs, ns)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	// Delays after the log line that precedes each stage, adapted after every aimed kill:
	// longer when the kill came before the stage had done anything, shorter when after.
	delay := map[string]time.Duration{"publish": 5 * time.Millisecond, "apply": 100 * time.Millisecond}
	trigger := map[string]string{"publish": `"message":"environment accepted"`, "apply": `"message":"published"`}
	var midPublish, midApply, runs int
	var outcomes []string
	reported := false
	report := func() {
		reported = true
		t.Logf("kill -9: %d runs, %d killed mid-publish, %d mid-apply (want at least %d runs, %d and %d)",
			runs, midPublish, midApply, crashRuns, crashMidPublish, crashMidApply)
		t.Logf("each run (number:aim+delay:where the kill landed): %s", strings.Join(outcomes, " "))
	}
	defer func() {
		if !reported { // the figures so far, when a run stopped the test
			report()
		}
	}()
	for run := 1; run <= crashMaxRuns; run++ {
		if run > crashRuns && midPublish >= crashMidPublish && midApply >= crashMidApply {
			break
		}
		aim := "random"
		switch {
		case run%3 == 0:
		case midPublish < crashMidPublish && (midApply >= crashMidApply || run%3 == 1):
			aim = "publish"
		case midApply < crashMidApply:
			aim = "apply"
		}
		// A value of its own in every run (replicas is at most 20), so each revision
		// publishes a config.json no other run has, and the uploads show it began.
		write(t, src, "config/dev/extra.yaml", fmt.Sprintf("app:\n  replicas: %d\nfeatures:\n  crashRun%d: true\n", (run-1)%19+1, run))
		snap, err := mustDir(t, src).Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		before := probe.look(snap.Revision)
		log, err := os.Create(filepath.Join(work, fmt.Sprintf("run-%02d.log", run)))
		if err != nil {
			t.Fatal(err)
		}
		var w *lineWatch
		var wait time.Duration
		if aim == "random" {
			w = newLineWatch(func(string) bool { return false })
			// A start and its reconcile take about half a second here (after the first):
			// the kill lands anywhere from loading the binary to the end of the apply.
			wait = time.Duration(rng.Int64N(int64(600 * time.Millisecond)))
		} else {
			// Jittered, so that no two aimed kills are alike.
			wait = delay[aim]/2 + time.Duration(rng.Int64N(int64(delay[aim])+1))
			w = newLineWatch(func(l string) bool { return strings.Contains(l, trigger[aim]) && strings.Contains(l, `"env":"dev"`) })
		}
		cmd := start(io.MultiWriter(log, w))
		if aim != "random" {
			select {
			case <-w.hit:
			case <-time.After(30 * time.Second):
				t.Logf("run %d: no %s line for dev within 30s; killed anyway", run, trigger[aim])
			}
		}
		time.Sleep(wait)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		log.Close()
		runs++
		after := probe.look(snap.Revision)
		got := "before publish"
		switch {
		case after.newObjects(before) > 0 && after.devRevision != snap.Revision:
			got = "mid-publish"
			midPublish++
		case after.devRevision != snap.Revision:
		case after.newPending(before) > 0:
			got = "mid-apply"
			midApply++
		case after.appliedSince(before):
			got = "after apply"
		default:
			got = "before apply"
		}
		outcomes = append(outcomes, fmt.Sprintf("%d:%s+%s:%s", run, aim, wait.Round(time.Millisecond), got))
		if aim != "random" && got != "mid-"+aim {
			// Before the aimed stage did anything: wait longer next time; after it: shorter.
			if early := got == "before publish" || aim == "apply" && got == "before apply"; early {
				delay[aim] = delay[aim]*3/2 + 2*time.Millisecond
			} else {
				delay[aim] /= 2
			}
		}
	}
	report()
	if midPublish < crashMidPublish || midApply < crashMidApply {
		t.Fatalf("in %d kills, %d landed mid-publish and %d mid-apply: want at least %d and %d; the crash test proved nothing about the others",
			runs, midPublish, midApply, crashMidPublish, crashMidApply)
	}

	// The last revision, one no killed run had: the daemon must carry it all the way.
	write(t, src, "config/dev/extra.yaml", "app:\n  replicas: 20\nfeatures:\n  crashFinal: true\n")
	snap, err := mustDir(t, src).Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := os.Create(filepath.Join(work, "final.log"))
	final := start(log)
	srv := serverFlags{server: "http://" + api}
	for {
		st, err := srv.status(ctx)
		if err == nil && st.Revision == snap.Revision {
			if !st.Ready {
				t.Fatalf("after the crashes: %+v", st)
			}
			break
		}
		if ctx.Err() != nil {
			b, _ := os.ReadFile(filepath.Join(work, "final.log"))
			t.Fatalf("never converged on %s:\n%s", snap.Revision, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = final.Process.Signal(syscall.SIGTERM)
	_ = final.Wait()
	log.Close()

	// Storage: each environment's current build is whole, and dev's (the only one whose
	// inputs changed) is of the latest revision; the others were not published again.
	for _, env := range []string{"dev", "staging", "prod"} {
		code, out, errOut := run(t, "storage", "build", bucket, env, "-o", "json", "--keyring", ring)
		var m publish.Manifest
		if code != exitOK || json.Unmarshal([]byte(out), &m) != nil {
			t.Fatalf("storage build %s: exit %d %s", env, code, errOut)
		}
		if env == "dev" && m.Revision != snap.Revision {
			t.Errorf("%s: current build of %s, want %s", env, m.Revision, snap.Revision)
		}
		for _, f := range m.Files {
			if code, _, errOut := run(t, "storage", "build", bucket, env, f.Path, "--keyring", ring); code != exitOK {
				t.Errorf("%s: %s of the current build does not read back: %s", env, f.Path, errOut)
			}
		}
	}
	if code, out, errOut := run(t, "storage", "build", bucket, "dev", "config.json", "--keyring", ring); code != exitOK || !strings.Contains(out, `"replicas": 20`) {
		t.Errorf("dev config: exit %d %s\n%s", code, errOut, out)
	}
	if code, out, errOut := run(t, "storage", "verify", bucket, "--keyring", ring); code != exitOK {
		t.Errorf("storage verify after the crashes: exit %d\n%s%s", code, out, errOut)
	}

	// Cluster: one generated ConfigMap, holding the latest config.
	name := kube.OnlyConfigMap(t, ns, "circle-config-", 20*time.Second)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["config.json"], `"replicas": 20`) {
		t.Errorf("cluster config: %v %v", cm.Data, err)
	}

	// State: opens cleanly and remembers the reconciles.
	store, err := state.Open(stateDir)
	if err != nil {
		t.Fatalf("the state store after kill -9: %v", err)
	}
	defer store.Close()
	var st reconciler.Status
	if ok, err := store.Get("status", &st); err != nil || !ok || st.Revision != snap.Revision {
		t.Errorf("state status: %v %v %s", ok, err, st.Revision)
	}
	for _, e := range st.Environments {
		if !e.Ready || e.LastGood == nil || e.LastGood.Revision != snap.Revision {
			t.Errorf("%s after the crashes: %+v", e.Name, e)
		}
	}
}

// crashProbe reads, between two kills, how far the daemon got with a revision: the
// objects in the bucket, the revision dev's current build names, and the inventory's
// recorded sets in the cluster.
type crashProbe struct {
	ctx    context.Context
	t      *testing.T
	store  *storage.Store
	target *publish.Target
	cs     *kubernetes.Clientset
	ns     string
}

type crashState struct {
	objects     map[string]bool
	devRevision string
	pending     map[string]bool
	inventory   map[string]bool
}

func newCrashProbe(ctx context.Context, t *testing.T, bucket, ring string, cs *kubernetes.Clientset, ns string) *crashProbe {
	t.Helper()
	s, err := storage.Open(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	k, err := envelope.ReadKeyringFile(ring)
	if err != nil {
		t.Fatal(err)
	}
	return &crashProbe{ctx: ctx, t: t, store: s, target: publish.New(envelope.New(s, k, "crash test"), ""), cs: cs, ns: ns}
}

func (p *crashProbe) look(revision string) crashState {
	p.t.Helper()
	st := crashState{objects: map[string]bool{}, pending: map[string]bool{}, inventory: map[string]bool{}}
	for a, err := range p.store.Walk(p.ctx, "objects/") {
		if err != nil {
			p.t.Fatalf("list the bucket: %v", err)
		}
		st.objects[a.Key] = true
	}
	m, err := p.target.Current(p.ctx, "dev")
	switch {
	case errors.Is(err, publish.ErrNoBuild):
	case err != nil:
		p.t.Fatalf("dev's current build: %v", err)
	default:
		st.devRevision = m.Revision
	}
	cm, err := p.cs.CoreV1().ConfigMaps(p.ns).Get(p.ctx, "circle-inventory-dev", metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		p.t.Fatalf("dev's inventory: %v", err)
	}
	if err == nil {
		for key, set := range map[string]map[string]bool{"pending": st.pending, "objects": st.inventory} {
			var ids []string
			if raw := cm.Data[key]; raw != "" {
				if err := json.Unmarshal([]byte(raw), &ids); err != nil {
					p.t.Fatalf("dev's inventory %s: %v", key, err)
				}
			}
			for _, id := range ids {
				set[id] = true
			}
		}
	}
	return st
}

// newObjects counts the objects uploaded since before.
func (s crashState) newObjects(before crashState) int { return added(before.objects, s.objects) }

// newPending counts the objects an unfinished apply recorded since before: an apply
// records what it is about to apply as pending first, and clears it when it finishes.
func (s crashState) newPending(before crashState) int {
	if len(s.pending) == 0 {
		return 0
	}
	return added(before.pending, s.pending)
}

// appliedSince tells a finished apply: nothing pending, and new objects in the inventory.
func (s crashState) appliedSince(before crashState) bool {
	return len(s.pending) == 0 && added(before.inventory, s.inventory) > 0
}

func added(before, after map[string]bool) int {
	n := 0
	for k := range after {
		if !before[k] {
			n++
		}
	}
	return n
}

// lineWatch is an io.Writer that closes hit at the first whole line match accepts.
type lineWatch struct {
	mu    sync.Mutex
	part  []byte
	match func(string) bool
	hit   chan struct{}
	done  bool
}

func newLineWatch(match func(string) bool) *lineWatch {
	return &lineWatch{match: match, hit: make(chan struct{})}
}

func (w *lineWatch) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(b), nil
	}
	w.part = append(w.part, b...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		line := string(w.part[:i])
		w.part = w.part[i+1:]
		if w.match(line) {
			w.done = true
			close(w.hit)
			break
		}
	}
	return len(b), nil
}

func mustDir(t *testing.T, root string) *dir.Source {
	t.Helper()
	s, err := dir.New(root, dir.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
