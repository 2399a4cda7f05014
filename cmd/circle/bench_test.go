package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circlecore/circle/testenv"
)

// procCPU is a process's user+system CPU time, from /proc.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// procStatus is a field of /proc/PID/status in kB (VmHWM: peak resident set; RssAnon:
// the resident heap and stacks, without the mapped binary), in MiB.
func procStatus(pid int, field string) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// daemonPushes is the fewest pushes BenchmarkDaemon takes its percentiles from: with fewer,
// a "p95" is little more than the slowest sample. make bench runs it with -benchtime 30x.
const daemonPushes = 30

// BenchmarkDaemon runs the real binary against the test API server on a Git remote whose
// three environments hold CIRCLE_BENCH_OBJECTS objects each (default 334: about 1,000 in
// all) and reports what issue 9 names: the cold start to every environment applied and
// its peak RSS; the CPU a poll that finds nothing new costs; and, per iteration (b.N of
// them, at least daemonPushes), a push and its webhook to the status showing the new
// revision applied, with p50 and p95. The daemon polls once an hour, so a revision can only
// arrive that fast through its webhook, and every webhook must be accepted (202).
func BenchmarkDaemon(b *testing.B) {
	n := 334
	if v, err := strconv.Atoi(os.Getenv("CIRCLE_BENCH_OBJECTS")); err == nil {
		n = v
	}
	bin := buildBinary(b)
	kube := testenv.StartKube(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	dir := testenv.CopyTree(b, examplesDir)
	for _, env := range []string{"dev", "staging", "prod"} {
		testenv.SetNamespace(b, dir, "deploy/"+env+"/kustomization.yaml", kube.Namespace(b))
	}
	testenv.WriteFile(b, dir, "deploy/base/bench.yaml", testenv.BenchObjects(n))
	testenv.WriteFile(b, dir, "deploy/base/kustomization.yaml", strings.Replace(readFileT(b, dir, "deploy/base/kustomization.yaml"), "resources:\n", "resources:\n  - bench.yaml\n", 1))
	testenv.WriteFile(b, dir, "circle.yaml", strings.Replace(readFileT(b, dir, "circle.yaml"), "targets:\n",
		"targets:\n  - name: kind\n    kind: cluster\n    environments: [dev, staging, prod]\n", 1))
	inv := kube.Namespace(b)
	repo := testenv.NewGitRepo(b, testenv.ReadTree(b, dir))
	head := strings.TrimSpace(repo.Git(b, nil, "rev-parse", "HEAD"))

	hookPort, _ := testenv.FreePort()
	apiPort, _ := testenv.FreePort()
	work := b.TempDir()
	cmd := exec.Command(bin, "serve", "--source", repo.FileURL(), "--interval", "1h",
		"--webhook-addr", fmt.Sprintf("127.0.0.1:%d", hookPort),
		"--publish", "file://"+filepath.Join(work, "out"), "--storage-keyring", newKeyringFile(b),
		"--key-file", exampleKey, "--cluster", "kind="+writeKubeconfig(b, kube), "--inventory-namespace", inv,
		"--listen", fmt.Sprintf("127.0.0.1:%d", apiPort), "--state-dir", filepath.Join(work, "state"), "--log-format", "json")
	cmd.Env = append(os.Environ(), "CIRCLE_WEBHOOK_SECRET=bench")
	logf, _ := os.Create(filepath.Join(work, "daemon.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	srv := serverFlags{server: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	daemonLog := func() string {
		log, _ := os.ReadFile(filepath.Join(work, "daemon.log"))
		return string(log)
	}
	// wait returns once the status shows rev reconciled, failing the benchmark after within.
	wait := func(rev string, within time.Duration) {
		deadline := time.Now().Add(within)
		for {
			if st, err := srv.status(ctx); err == nil && st.Revision == rev {
				if !st.Ready {
					b.Fatalf("revision %s: %s %s", rev, st.Reason, st.Message)
				}
				return
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				b.Fatalf("revision %s not reconciled within %s:\n%s", rev, within, daemonLog())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// hook sends a signed GitHub push event and fails the benchmark unless it is accepted:
	// a 401 (a wrong secret) or a 204 (a ref not followed) would wake nothing.
	hook := func() { signedPush(b, ctx, hookPort) }

	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	wait(head, 5*time.Minute)
	cold := time.Since(start)
	rss, anon := procStatus(cmd.Process.Pid, "VmHWM"), procStatus(cmd.Process.Pid, "RssAnon")

	// A poll that finds nothing new: with polls an hour apart, each one here is woken by a
	// webhook, 200 ms apart so that they do not collapse into one fetch; it asks the remote
	// for its head and finds the same one.
	time.Sleep(time.Second)
	const idlePolls = 25
	c0 := procCPU(cmd.Process.Pid)
	for range idlePolls {
		hook()
		time.Sleep(200 * time.Millisecond)
	}
	perPoll := (procCPU(cmd.Process.Pid) - c0) / idlePolls

	// Each iteration: a commit (untimed), its webhook, and the wait until the daemon's status
	// shows the revision applied everywhere. A minute is far longer than any push takes and
	// far shorter than the hour to the next poll: a webhook that woke nothing fails here.
	var lat []time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		rev := repo.Commit(b, map[string]string{"config/dev/bench.yaml": fmt.Sprintf("app:\n  replicas: %d\n", i%20+1)}, "bench")
		i++
		b.StartTimer()
		t0 := time.Now()
		hook()
		wait(rev, time.Minute)
		lat = append(lat, time.Since(t0))
	}
	for _, line := range strings.Split(daemonLog(), "\n") {
		if strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"level":"warn"`) {
			b.Log(line)
		}
	}
	if p := os.Getenv("CIRCLE_BENCH_LOG"); p != "" {
		_ = os.WriteFile(p, []byte(daemonLog()), 0o644)
	}
	if len(lat) < daemonPushes {
		b.Fatalf("%d pushes: p50 and p95 need at least %d; run with -benchtime %dx or more (make bench does)", len(lat), daemonPushes, daemonPushes)
	}
	b.ReportMetric(float64(3*n), "objects")
	b.ReportMetric(cold.Seconds(), "cold-s")
	b.ReportMetric(rss, "peak-rss-MiB")
	b.ReportMetric(anon, "anon-rss-MiB")
	b.ReportMetric(float64(perPoll.Microseconds())/1000, "idle-poll-cpu-ms")
	b.ReportMetric(float64(len(lat)), "pushes")
	b.ReportMetric(float64(pct(lat, 0.50).Milliseconds()), "push-p50-ms")
	b.ReportMetric(float64(pct(lat, 0.95).Milliseconds()), "push-p95-ms")
}
