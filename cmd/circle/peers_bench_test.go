package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/circlecore/circle/testenv"
)

// peerFigures are one tool's figures from BenchmarkPeers.
type peerFigures struct {
	Tool string `json:"tool"`
	// ColdS is from starting the process(es) to every object of every environment applied.
	ColdS float64 `json:"coldSeconds"`
	// FirstPushMS is the first push after the cold start; PushP50MS and PushP95MS are over
	// the pushes after it.
	FirstPushMS float64 `json:"firstPushMs"`
	PushP50MS   float64 `json:"pushP50Ms"`
	PushP95MS   float64 `json:"pushP95Ms"`
	Pushes      int     `json:"pushes"`
	// NoopCPUMS is the CPU of one reconcile of the current revision, nothing changed.
	NoopCPUMS float64 `json:"noopCpuMs"`
	// PeakRSSMiB is the sum of the processes' VmHWM; AnonMiB and FileMiB split their
	// resident set at the end into heap and stacks, and mapped files (the binary).
	PeakRSSMiB float64 `json:"peakRssMiB"`
	AnonMiB    float64 `json:"anonRssMiB"`
	FileMiB    float64 `json:"fileRssMiB"`
	// CPUS is the CPU of the whole run, every process added.
	CPUS float64 `json:"cpuSeconds"`
	// Wake says how a push woke the tool.
	Wake string `json:"wake"`
}

// peerProcs are a tool's running processes.
type peerProcs []*exec.Cmd

func (p peerProcs) sum(f func(pid int) float64) float64 {
	var t float64
	for _, c := range p {
		t += f(c.Process.Pid)
	}
	return t
}

func (p peerProcs) cpu() time.Duration {
	var t time.Duration
	for _, c := range p {
		t += procCPU(c.Process.Pid)
	}
	return t
}

// finish records the processes' memory and CPU over the run into f, and stops them.
func (p peerProcs) finish(f *peerFigures) {
	f.PeakRSSMiB = p.sum(func(pid int) float64 { return procStatus(pid, "VmHWM") })
	f.AnonMiB = p.sum(func(pid int) float64 { return procStatus(pid, "RssAnon") })
	f.FileMiB = p.sum(func(pid int) float64 { return procStatus(pid, "RssFile") })
	f.CPUS = p.cpu().Seconds()
	p.stop()
}

func (p peerProcs) stop() {
	for _, c := range p {
		_ = c.Process.Signal(syscall.SIGTERM)
		_ = c.Wait()
	}
}

// BenchmarkPeers runs Circle and Flux (source-controller and kustomize-controller, built by
// `make bench-peers`) on the same work, one after the other, in one run: the same test
// kube-apiserver, the same Git remote over HTTP (git-http-backend), three environments of
// CIRCLE_BENCH_OBJECTS objects each (default 334) rendered from the same kustomize
// overlays. Flux applies them through three Kustomizations (targetNamespace), Circle
// through its daemon. Every figure is measured from outside the same way for both: objects
// read back from the API server, CPU and memory from /proc. It prints a table and writes
// JSON to CIRCLE_PEERS_JSON. Skipped without the Flux binaries (make bench-peers builds
// them). CIRCLE_BENCH_LOG names a file to keep Circle's log in.
func BenchmarkPeers(b *testing.B) {
	env := readPeersEnv(b)
	n := 334
	if v, err := strconv.Atoi(os.Getenv("CIRCLE_BENCH_OBJECTS")); err == nil {
		n = v
	}
	pushes := 30
	if v, err := strconv.Atoi(os.Getenv("CIRCLE_PEERS_PUSHES")); err == nil && v >= 5 {
		pushes = v
	}
	coldLimit := 10 * time.Minute
	if v, err := time.ParseDuration(os.Getenv("CIRCLE_PEERS_COLD_LIMIT")); err == nil {
		coldLimit = v
	}
	bin := buildBinary(b)
	kube := testenv.StartKube(b)
	gitHTTP := testenv.StartGitHTTP(b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if _, err := envtest.InstallCRDs(kube.Config, envtest.CRDInstallOptions{Paths: filepath.SplitList(env["CIRCLE_PEERS_FLUX_CRDS"])}); err != nil {
		b.Fatalf("install Flux CRDs: %v", err)
	}
	cs := kube.Clientset(b)
	work := b.TempDir()

	// One repository for both: Circle's overlays as users write them; Flux builds the same
	// overlays and moves their objects to its own namespaces (targetNamespace).
	dir := testenv.CopyTree(b, examplesDir)
	circleNS := map[string]string{}
	for _, e := range []string{"dev", "staging", "prod"} {
		circleNS[e] = kube.Namespace(b)
		testenv.SetNamespace(b, dir, "deploy/"+e+"/kustomization.yaml", circleNS[e])
	}
	testenv.WriteFile(b, dir, "deploy/base/bench.yaml", testenv.BenchObjects(n))
	testenv.WriteFile(b, dir, "deploy/base/kustomization.yaml", strings.Replace(readFileT(b, dir, "deploy/base/kustomization.yaml"), "resources:\n", "resources:\n  - bench.yaml\n", 1))
	testenv.WriteFile(b, dir, "circle.yaml", strings.Replace(readFileT(b, dir, "circle.yaml"), "targets:\n",
		"targets:\n  - name: kind\n    kind: cluster\n    environments: [dev, staging, prod]\n", 1))
	repo := testenv.NewGitRepo(b, testenv.ReadTree(b, dir))
	url := gitHTTP.PublicURL(repo)
	base := readFileT(b, dir, "deploy/base/bench.yaml")
	// push commits a one-field change (the value of cm-0) and returns the value.
	seq := 0
	push := func() string {
		seq++
		value := fmt.Sprintf("push-%d", seq)
		repo.Commit(b, map[string]string{"deploy/base/bench.yaml": strings.Replace(base, "key: value-0\n", "key: "+value+"\n", 1)}, "bench push")
		return value
	}
	// applied waits until every namespace holds the bench objects with cm-0 = value ("" for
	// the value of the commit it was started on: any).
	applied := func(nss []string, value string, within time.Duration) {
		deadline := time.Now().Add(within)
		for _, ns := range nss {
			for !benchApplied(ctx, cs, ns, n, value) {
				if time.Now().After(deadline) {
					b.Fatalf("namespace %s: objects not applied (cm-0 = %q) within %s\n%s", ns, value, within, logTails(work))
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	latencies := func(wake func(), nss []string) (first time.Duration, rest []time.Duration) {
		for i := range pushes + 1 {
			value := push()
			t0 := time.Now()
			wake()
			applied(nss, value, 2*time.Minute)
			if i == 0 {
				first = time.Since(t0)
				continue
			}
			rest = append(rest, time.Since(t0))
		}
		return first, rest
	}

	// Flux: the controllers as local processes with a kubeconfig, the artifact server on
	// 127.0.0.1; one GitRepository and three Kustomizations.
	flux := peerFigures{Tool: "Flux " + env["CIRCLE_PEERS_FLUX_VERSION"], Wake: "reconcile.fluxcd.io/requestedAt on the GitRepository (the notification-controller's Receiver does the same)"}
	{
		fluxNS := map[string]string{}
		for _, e := range []string{"dev", "staging", "prod"} {
			fluxNS[e] = kube.Namespace(b)
		}
		system := kube.Namespace(b)
		kc := writeKubeconfig(b, kube)
		storagePort, _ := testenv.FreePort()
		if err := os.MkdirAll(filepath.Join(work, "flux-artifacts"), 0o755); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		var procs peerProcs
		for _, c := range []struct {
			bin  string
			args []string
		}{
			{env["CIRCLE_PEERS_SOURCE_CONTROLLER"], []string{"--storage-path=" + filepath.Join(work, "flux-artifacts"),
				fmt.Sprintf("--storage-addr=127.0.0.1:%d", storagePort), fmt.Sprintf("--storage-adv-addr=127.0.0.1:%d", storagePort)}},
			{env["CIRCLE_PEERS_KUSTOMIZE_CONTROLLER"], nil},
		} {
			metrics, _ := testenv.FreePort()
			health, _ := testenv.FreePort()
			args := append([]string{"--enable-leader-election=false", "--watch-all-namespaces=true", "--log-level=info",
				fmt.Sprintf("--metrics-addr=127.0.0.1:%d", metrics), fmt.Sprintf("--health-addr=127.0.0.1:%d", health)}, c.args...)
			cmd := exec.Command(c.bin, args...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+kc, "RUNTIME_NAMESPACE="+system)
			logf, _ := os.Create(filepath.Join(work, filepath.Base(c.bin)+".log"))
			cmd.Stdout, cmd.Stderr = logf, logf
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			procs = append(procs, cmd)
		}
		defer procs.stop()
		dyn, err := dynamic.NewForConfig(kube.Config)
		if err != nil {
			b.Fatal(err)
		}
		gitRepos := dyn.Resource(schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}).Namespace(system)
		kustomizations := dyn.Resource(schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}).Namespace(system)
		create := func(ri dynamic.ResourceInterface, obj map[string]any) {
			if _, err := ri.Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
				b.Fatalf("create %v: %v", obj["kind"], err)
			}
		}
		create(gitRepos, map[string]any{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
			"metadata": map[string]any{"name": "bench"},
			"spec":     map[string]any{"url": url, "interval": "60m", "ref": map[string]any{"branch": "main"}}})
		for _, e := range []string{"dev", "staging", "prod"} {
			create(kustomizations, map[string]any{"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
				"metadata": map[string]any{"name": e},
				"spec": map[string]any{"interval": "60m", "path": "./deploy/" + e, "prune": true, "targetNamespace": fluxNS[e],
					"sourceRef": map[string]any{"kind": "GitRepository", "name": "bench"}}})
		}
		nss := []string{fluxNS["dev"], fluxNS["staging"], fluxNS["prod"]}
		applied(nss, "", coldLimit)
		flux.ColdS = time.Since(start).Seconds()

		annotate := func(ri dynamic.ResourceInterface, name, token string) {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, token)
			if _, err := ri.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				b.Fatalf("annotate %s: %v", name, err)
			}
		}
		first, rest := latencies(func() { annotate(gitRepos, "bench", time.Now().Format(time.RFC3339Nano)) }, nss)
		flux.FirstPushMS, flux.PushP50MS, flux.PushP95MS, flux.Pushes = ms(first), ms(pct(rest, 0.50)), ms(pct(rest, 0.95)), len(rest)

		// A no-op reconcile: each Kustomization asked to reconcile the same revision.
		const noops = 5
		c0 := procs.cpu()
		for i := range noops {
			token := fmt.Sprintf("noop-%d", i)
			for _, e := range []string{"dev", "staging", "prod"} {
				annotate(kustomizations, e, token)
			}
			for _, e := range []string{"dev", "staging", "prod"} {
				waitFor(b, 2*time.Minute, "Kustomization "+e+" to handle "+token, func() bool {
					obj, err := kustomizations.Get(ctx, e, metav1.GetOptions{})
					if err != nil {
						return false
					}
					got, _, _ := unstructured.NestedString(obj.Object, "status", "lastHandledReconcileAt")
					return got == token
				})
			}
		}
		flux.NoopCPUMS = float64((procs.cpu() - c0).Milliseconds()) / noops
		procs.finish(&flux)
	}

	// Circle: the daemon, woken by its webhook; the no-op is POST /api/v1/reconcile.
	circle := peerFigures{Tool: "Circle (this checkout)", Wake: "its webhook (a signed GitHub push event)"}
	{
		hookPort, _ := testenv.FreePort()
		apiPort, _ := testenv.FreePort()
		tokenFile := filepath.Join(work, "trigger-token")
		if err := os.WriteFile(tokenFile, []byte("bench-trigger-token-0123456789"), 0o600); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", "--source", url, "--interval", "1h",
			"--webhook-addr", fmt.Sprintf("127.0.0.1:%d", hookPort), "--trigger-token-file", tokenFile,
			"--publish", "file://"+filepath.Join(work, "out"), "--storage-keyring", newKeyringFile(b),
			"--key-file", exampleKey, "--cluster", "kind="+writeKubeconfig(b, kube), "--inventory-namespace", kube.Namespace(b),
			"--listen", fmt.Sprintf("127.0.0.1:%d", apiPort), "--state-dir", filepath.Join(work, "state"), "--log-format", "json")
		cmd.Env = append(os.Environ(), "CIRCLE_WEBHOOK_SECRET=bench")
		logf, _ := os.Create(filepath.Join(work, "circle.log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		srv := serverFlags{server: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		procs := peerProcs{cmd}
		defer procs.stop()
		nss := []string{circleNS["dev"], circleNS["staging"], circleNS["prod"]}
		applied(nss, "", coldLimit)
		circle.ColdS = time.Since(start).Seconds()

		first, rest := latencies(func() { signedPush(b, ctx, hookPort) }, nss)
		circle.FirstPushMS, circle.PushP50MS, circle.PushP95MS, circle.Pushes = ms(first), ms(pct(rest, 0.50)), ms(pct(rest, 0.95)), len(rest)

		const noops = 5
		// Let the last push's reconcile be recorded before timing the no-ops.
		time.Sleep(time.Second)
		c0 := procs.cpu()
		for range noops {
			before, err := srv.status(ctx)
			if err != nil {
				b.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.server+"/api/v1/reconcile", nil)
			req.Header.Set("Authorization", "Bearer bench-trigger-token-0123456789")
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				b.Fatalf("trigger: %v %v", resp, err)
			}
			resp.Body.Close()
			waitFor(b, 2*time.Minute, "the triggered reconcile", func() bool {
				st, err := srv.status(ctx)
				return err == nil && st.ReconciledAt.After(before.ReconciledAt)
			})
		}
		circle.NoopCPUMS = float64((procs.cpu() - c0).Milliseconds()) / noops
		procs.finish(&circle)
	}

	if p := os.Getenv("CIRCLE_BENCH_LOG"); p != "" {
		log, _ := os.ReadFile(filepath.Join(work, "circle.log"))
		_ = os.WriteFile(p, log, 0o644)
	}
	report := peersReport(3*n, circle, flux)
	fmt.Println(report.table())
	if p := os.Getenv("CIRCLE_PEERS_JSON"); p != "" {
		j, _ := json.MarshalIndent(report, "", "  ")
		if err := os.WriteFile(p, append(j, '\n'), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(circle.ColdS/flux.ColdS, "cold-ratio")
	b.ReportMetric(circle.PushP50MS/flux.PushP50MS, "push-p50-ratio")
	b.ReportMetric(circle.NoopCPUMS/flux.NoopCPUMS, "noop-cpu-ratio")
	b.ReportMetric(circle.PeakRSSMiB/flux.PeakRSSMiB, "peak-rss-ratio")
}

// peersRun is what BenchmarkPeers writes: both tools' figures, the ratios Circle / Flux,
// and the machine.
type peersRun struct {
	Objects int                `json:"objects"`
	Machine string             `json:"machine"`
	Circle  peerFigures        `json:"circle"`
	Flux    peerFigures        `json:"flux"`
	Ratios  map[string]float64 `json:"ratios"`
	Goals   map[string]float64 `json:"goals"`
}

func peersReport(objects int, circle, flux peerFigures) *peersRun {
	r := &peersRun{Objects: objects, Machine: machine(), Circle: circle, Flux: flux,
		Ratios: map[string]float64{
			"cold":      circle.ColdS / flux.ColdS,
			"pushP50":   circle.PushP50MS / flux.PushP50MS,
			"firstPush": circle.FirstPushMS / flux.FirstPushMS,
			"noopCPU":   circle.NoopCPUMS / flux.NoopCPUMS,
			"peakRSS":   circle.PeakRSSMiB / flux.PeakRSSMiB,
			"cpu":       circle.CPUS / flux.CPUS,
		},
		Goals: map[string]float64{"cold": 0.5, "pushP50": 0.2, "noopCPU": 0.2, "peakRSS": 0.3},
	}
	return r
}

func (r *peersRun) table() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%d objects in three environments; %s\n\n", r.Objects, r.Machine)
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "figure\t%s\t%s\tratio\tgoal\n", r.Circle.Tool, r.Flux.Tool)
	row := func(name, unit string, c, f float64, key string) {
		goal := ""
		if g, ok := r.Goals[key]; ok {
			goal = fmt.Sprintf("≤ %.1f", g)
		}
		fmt.Fprintf(w, "%s\t%.0f %s\t%.0f %s\t%.2f\t%s\n", name, c, unit, f, unit, r.Ratios[key], goal)
	}
	row("cold: start → all applied", "ms", r.Circle.ColdS*1000, r.Flux.ColdS*1000, "cold")
	row("first push after cold → applied", "ms", r.Circle.FirstPushMS, r.Flux.FirstPushMS, "firstPush")
	row(fmt.Sprintf("push → applied p50 (%d)", r.Circle.Pushes), "ms", r.Circle.PushP50MS, r.Flux.PushP50MS, "pushP50")
	fmt.Fprintf(w, "push → applied p95\t%.0f ms\t%.0f ms\t%.2f\t\n", r.Circle.PushP95MS, r.Flux.PushP95MS, r.Circle.PushP95MS/r.Flux.PushP95MS)
	row("no-op reconcile CPU", "ms", r.Circle.NoopCPUMS, r.Flux.NoopCPUMS, "noopCPU")
	row("peak RSS", "MiB", r.Circle.PeakRSSMiB, r.Flux.PeakRSSMiB, "peakRSS")
	fmt.Fprintf(w, "RSS at end: anon + file\t%.0f + %.0f MiB\t%.0f + %.0f MiB\t\t\n", r.Circle.AnonMiB, r.Circle.FileMiB, r.Flux.AnonMiB, r.Flux.FileMiB)
	row("CPU over the run", "s", r.Circle.CPUS, r.Flux.CPUS, "cpu")
	_ = w.Flush()
	fmt.Fprintf(&sb, "\nwake: Circle by %s; Flux by %s\n", r.Circle.Wake, r.Flux.Wake)
	return sb.String()
}

// benchApplied reports whether ns holds the bench objects of testenv.BenchObjects(n), cm-0's value
// being value (any when empty).
func benchApplied(ctx context.Context, cs *kubernetes.Clientset, ns string, n int, value string) bool {
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "cm-0", metav1.GetOptions{})
	if err != nil || (value != "" && cm.Data["key"] != value) {
		return false
	}
	if value != "" {
		return true // the objects were all there before; the push changed cm-0 only
	}
	last := n - 1
	var err2 error
	switch last % 5 {
	case 0, 1, 2:
		_, err2 = cs.CoreV1().ConfigMaps(ns).Get(ctx, fmt.Sprintf("cm-%d", last), metav1.GetOptions{})
	case 3:
		_, err2 = cs.CoreV1().ServiceAccounts(ns).Get(ctx, fmt.Sprintf("sa-%d", last), metav1.GetOptions{})
	default:
		_, err2 = cs.AppsV1().Deployments(ns).Get(ctx, fmt.Sprintf("web-%d", last), metav1.GetOptions{})
	}
	if err2 != nil {
		return false
	}
	want := 0
	for i := range n {
		if i%5 < 3 {
			want++ // BenchObjects' ConfigMaps
		}
	}
	list, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, c := range list.Items {
		if strings.HasPrefix(c.Name, "cm-") {
			want--
		}
	}
	return want <= 0
}

// signedPush sends the daemon's webhook a signed GitHub push event for main.
func signedPush(b *testing.B, ctx context.Context, port int) {
	body := `{"ref":"refs/heads/main","repository":{"full_name":"org/config"}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/", port), strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", "push")
	mac := hmac.New(sha256.New, []byte("bench"))
	mac.Write([]byte(body))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		b.Fatalf("webhook: %v %v", resp, err)
	}
	resp.Body.Close()
}

func waitFor(b *testing.B, within time.Duration, what string, ok func() bool) {
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			b.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pct is the p-th percentile of lat by nearest rank: the smallest sample with at least p of
// them at or below it.
func pct(lat []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(math.Ceil(p*float64(len(s))))-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// readPeersEnv reads the paths make bench-peers wrote, or skips.
func readPeersEnv(b *testing.B) map[string]string {
	out := map[string]string{}
	f, err := os.Open(filepath.Join(testenv.CacheDir(), "peers.env"))
	if err != nil {
		b.Skipf("the Flux controllers are not built: run `make bench-peers` (%v)", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), "="); ok {
			out[k] = v
		}
	}
	for _, k := range []string{"CIRCLE_PEERS_SOURCE_CONTROLLER", "CIRCLE_PEERS_KUSTOMIZE_CONTROLLER"} {
		if _, err := os.Stat(out[k]); err != nil {
			b.Skipf("%s: %v: run `make bench-peers`", k, err)
		}
	}
	return out
}

// machine says what the figures were measured on.
func machine() string {
	cpus := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpus = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	var mem string
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1]
	}
	kb, _ := strconv.ParseFloat(mem, 64)
	return fmt.Sprintf("%d CPU(s) %s, %.0f GiB", runtime.NumCPU(), cpus, kb/1024/1024)
}

// logTails is the end of every log in dir, for a failure to show why.
func logTails(dir string) string {
	var sb strings.Builder
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		fmt.Fprintf(&sb, "== %s\n%s\n", filepath.Base(l), strings.Join(lines[max(0, len(lines)-25):], "\n"))
	}
	return sb.String()
}
