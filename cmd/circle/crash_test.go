package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/sources/dir"
	"github.com/circlecore/circle/state"
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

// kill -9 the daemon at random moments, 20 times, while each start has a new revision to
// publish to S3 and apply to the cluster; then start it once more. Storage and cluster must
// converge on the latest revision, every build in the bucket must be whole (a manifest
// names only objects that are there and decrypt), and the state store must open.
func TestCrash_KillNineConverges(t *testing.T) {
	bin := buildBinary(t)
	kube := testenv.StartKube(t)
	cs := kube.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := kube.Namespace(t)
	bucket := testenv.StartS3(t).NewBucket(t)
	src := copyExamples(t)
	testenv.SetNamespace(t, src, "deploy/dev/kustomization.yaml", ns)
	write(t, src, "circle.yaml", strings.Replace(readFileT(t, src, "circle.yaml"), "targets:\n",
		"targets:\n  - name: kind\n    kind: cluster\n    environments: [dev]\n", 1))
	work := t.TempDir()
	ring, stateDir := filepath.Join(work, "keyring.json"), filepath.Join(work, "state")
	kubeconfig := writeKubeconfig(t, kube)
	port, _ := testenv.FreePort()
	api := fmt.Sprintf("127.0.0.1:%d", port)
	start := func(log *os.File) *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--source", src, "--publish", bucket, "--storage-keyring", ring,
			"--key-file", exampleKey, "--cluster", "kind="+kubeconfig, "--inventory-namespace", ns,
			"--state-dir", stateDir, "--listen", api, "--log-format", "json")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	midway := 0
	for run := 1; run <= 20; run++ {
		write(t, src, "config/dev/extra.yaml", fmt.Sprintf("app:\n  replicas: %d\n", run))
		logPath := filepath.Join(work, fmt.Sprintf("run-%02d.log", run))
		log, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := start(log)
		time.Sleep(time.Duration(rng.Int64N(int64(1500 * time.Millisecond))))
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		log.Close()
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), `"message":"published"`) && !strings.Contains(string(b), `"message":"reconciled"`) {
			midway++
		}
	}
	t.Logf("%d of 20 runs were killed after publishing began and before the reconcile finished", midway)

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

func mustDir(t *testing.T, root string) *dir.Source {
	t.Helper()
	s, err := dir.New(root, dir.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
