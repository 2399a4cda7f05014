package repo_test

// Issue 4's acceptance benchmark: loading and validating a generated repository of 1,000
// config files across three environments with repo.Load (what `circle validate` does),
// beside `cue vet` of the same data and schema.
//
//	go test -run '^$' -bench 'Validate|CueVet' -benchtime 5x ./repo/
//
// Ratio = BenchmarkValidate's ns/op over BenchmarkCueVet's; the goal is ≤ 1.0.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/testenv"
)

// benchFiles is the size of the benchmark's repository: config files in all layers. 1,000
// is issue 4's figure; CIRCLE_BENCH_FILES changes it, to see how the cost scales.
var benchFiles = func() int {
	if n, err := strconv.Atoi(os.Getenv("CIRCLE_BENCH_FILES")); err == nil && n >= 10 {
		return n
	}
	return 1000
}()

var benchEnvs = []string{"dev", "staging", "prod"}

const benchSettings = `apiVersion: circle/v1
environments:
  - name: dev
  - name: staging
  - name: prod
`

// benchSchema constrains every generated value; #Service is closed, as definitions are.
const benchSchema = `package bench

// One service per top-level key, named after it.
#Config: [N=string]: #Service & {name: N}

#Service: {
	name:     =~"^[a-z][a-z0-9-]{0,62}$"
	replicas: int & >=1 & <=50 | *1
	port:     int & >0 & <65536
	env: [=~"^[A-Z][A-Z0-9_]*$"]: string
	tags: [...=~"^[a-z][a-z0-9-]*$"]
	limits: {
		cpu:    =~"^[0-9]+m$"
		memory: =~"^[0-9]+(Mi|Gi)$"
	}
}
`

// benchFilesCUE places each data file of the unmerged baseline at its own path, so files
// that override one another are each checked against #Config without being unified.
const benchFilesCUE = `package bench

files: [string]: #Config
`

// benchRepo is a generated repository and what its environments must merge to.
type benchRepo struct {
	dir string
	// files lists, per environment, its layers' config files in load order (base, then
	// the environment), relative to dir.
	files map[string][]string
	// merged is, per environment, the data after layering and before the schema's
	// defaults: what baseline/merged-<env>.yaml holds.
	merged map[string]map[string]any
	// want is merged with the schema's defaults applied: what Env.Config must equal.
	want map[string]map[string]any
}

// genBenchRepo writes a repository of n config files into a temporary directory: 60% of
// them in config/base, each defining one to three services, the rest split between the
// environments, each overriding fields of three base services (scalars, map entries, a
// whole list) and adding a service of its own. No override deletes with null: CUE has no
// deletion, so cue vet could not check such a file unmerged (BenchmarkCueVetFiles). The expected merged
// data is computed here, by the generator, not by Circle. baseline/ holds cue vet's inputs:
// merged-<env>.yaml and files.cue.
func genBenchRepo(tb testing.TB, n int) *benchRepo {
	tb.Helper()
	dir := tb.TempDir()
	rng := rand.New(rand.NewPCG(4, uint64(n)))
	write := func(rel string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	writeYAML := func(rel string, v any) {
		b, err := yaml.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		write(rel, b)
	}
	write("circle.yaml", []byte(benchSettings))
	write("schema/app.cue", []byte(benchSchema))
	write("baseline/files.cue", []byte(benchFilesCUE))

	teams := []string{"payments", "search", "checkout", "identity", "platform", "data"}
	regions := []string{"eu-west-1", "us-east-1", "ap-south-1"}
	service := func(name string, port int) map[string]any {
		s := map[string]any{
			"name": name,
			"port": port,
			"env": map[string]any{
				"LOG_LEVEL":    "info",
				"REGION":       regions[rng.IntN(len(regions))],
				"FEATURE_FLAG": "enabled",
				"UPSTREAM_URL": fmt.Sprintf("http://%s.internal:%d", name, port),
			},
			"tags": []any{"team-" + teams[rng.IntN(len(teams))], fmt.Sprintf("tier-%d", 1+rng.IntN(3))},
			"limits": map[string]any{
				"cpu":    fmt.Sprintf("%dm", 100*(1+rng.IntN(8))),
				"memory": fmt.Sprintf("%dMi", 128*(1+rng.IntN(8))),
			},
		}
		// A quarter of the services leave replicas to the schema's default.
		if rng.IntN(4) != 0 {
			s["replicas"] = 1 + rng.IntN(10)
		}
		return s
	}

	type file struct {
		rel  string
		data map[string]any
	}
	nBase := n * 6 / 10
	var base []file
	var baseNames []string
	port := 1024
	for i := range nBase {
		data := map[string]any{}
		for j := range 1 + i%3 {
			name := fmt.Sprintf("svc-%04d-%c", i, 'a'+j)
			data[name] = service(name, port)
			baseNames = append(baseNames, name)
			port++
		}
		rel := fmt.Sprintf("config/base/svc-%04d.yaml", i)
		writeYAML(rel, data)
		base = append(base, file{rel, data})
	}

	r := &benchRepo{dir: dir, files: map[string][]string{}, merged: map[string]map[string]any{}, want: map[string]map[string]any{}}
	rest := n - nBase
	next := 0 // base services are overridden round-robin, three per env file
	for e, env := range benchEnvs {
		count := rest / len(benchEnvs)
		if e < rest%len(benchEnvs) {
			count++
		}
		files := append([]file(nil), base...)
		for k := range count {
			data := map[string]any{}
			for o := range 3 {
				name := baseNames[next%len(baseNames)]
				next++
				ov := map[string]any{}
				switch (k + o) % 4 {
				case 0:
					ov["replicas"] = 2 + rng.IntN(40)
					ov["env"] = map[string]any{"LOG_LEVEL": "debug"}
				case 1:
					ov["limits"] = map[string]any{"memory": fmt.Sprintf("%dGi", 1+rng.IntN(4))}
					ov["env"] = map[string]any{"FEATURE_FLAG": "disabled", "ENVIRONMENT": env}
				case 2:
					ov["tags"] = []any{"env-" + env, "canary"}
				case 3:
					ov["port"] = 20000 + rng.IntN(10000)
					ov["limits"] = map[string]any{"cpu": "2000m", "memory": "4Gi"}
				}
				data[name] = ov
			}
			own := fmt.Sprintf("%s-only-%04d", env, k)
			data[own] = service(own, 40000+k)
			rel := fmt.Sprintf("config/%s/ovr-%04d.yaml", env, k)
			writeYAML(rel, data)
			files = append(files, file{rel, data})
		}
		merged := map[string]any{}
		for _, f := range files {
			r.files[env] = append(r.files[env], f.rel)
			layer(merged, f.data)
		}
		r.merged[env] = merged
		writeYAML("baseline/merged-"+env+".yaml", merged)
		want := map[string]any{}
		layer(want, merged)
		for _, s := range want {
			if s := s.(map[string]any); s["replicas"] == nil {
				s["replicas"] = 1
			}
		}
		r.want[env] = want
	}
	return r
}

// layer merges src into dst with Circle's documented rules, written independently of
// package layers: maps deep-merge, anything else is replaced whole, null deletes. Maps are
// copied, never shared, so dst can be changed afterwards.
func layer(dst, src map[string]any) {
	for k, v := range src {
		switch v := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			d, ok := dst[k].(map[string]any)
			if !ok {
				d = map[string]any{}
				dst[k] = d
			}
			layer(d, v)
		default:
			dst[k] = v
		}
	}
}

// check loads r with Circle and compares every environment's config with the generator's
// expectation.
func (r *benchRepo) check(tb testing.TB) {
	tb.Helper()
	got, err := repo.Load(tb.Context(), os.DirFS(r.dir), repo.Options{})
	if err != nil {
		tb.Fatalf("circle: %v", err)
	}
	for _, env := range benchEnvs {
		e := got.Env(env)
		if e == nil {
			tb.Fatalf("circle: no environment %s", env)
		}
		g, _ := json.Marshal(e.Config)
		w, _ := json.Marshal(r.want[env])
		if !bytes.Equal(g, w) {
			tb.Fatalf("%s: Circle's merged config differs from the generator's: %s", env, firstDiff(e.Config, r.want[env]))
		}
	}
}

func firstDiff(got, want map[string]any) string {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return fmt.Sprintf("unexpected key %s", k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, _ := json.Marshal(got[k])
		w, _ := json.Marshal(want[k])
		if !bytes.Equal(g, w) {
			return fmt.Sprintf("%s:\n got  %s\n want %s", k, g, w)
		}
	}
	return "(equal per key; encoding differs)"
}

// cueVetMerged is the baseline: per environment, the merged data vetted against #Config,
// requiring concrete values, as Circle does.
func (r *benchRepo) cueVetMerged(cue, env string) *exec.Cmd {
	cmd := exec.Command(cue, "vet", "-c", "-d", "#Config", "schema/app.cue", "baseline/merged-"+env+".yaml")
	cmd.Dir = r.dir
	return cmd
}

// cueVetFiles is the unmerged baseline: per environment, every file of its layers checked
// against #Config on its own (each placed at files.<filename>, since cue would unify files
// and fail on an override), without concreteness since an overlay file sets only some
// fields. cue vet's -d ignores -c=false, hence -l.
func (r *benchRepo) cueVetFiles(cue, env string) *exec.Cmd {
	args := []string{"vet", "-c=false", "--with-context", "-l", `"files"`, "-l", "filename", "schema/app.cue", "baseline/files.cue"}
	args = append(args, r.files[env]...)
	cmd := exec.Command(cue, args...)
	cmd.Dir = r.dir
	return cmd
}

func cueTool(tb testing.TB) string {
	tb.Helper()
	cue, err := testenv.Tool(testenv.ToolCUE)
	if err != nil {
		tb.Fatal(err) // make testenv installs it
	}
	return cue
}

func run(tb testing.TB, cmd *exec.Cmd) {
	tb.Helper()
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s: %v\n%s", strings.Join(cmd.Args[:5], " "), err, out)
	}
}

func TestBenchRepoValid(t *testing.T) {
	r := genBenchRepo(t, 30)
	if got := len(r.files["dev"]) + len(r.files["staging"]) + len(r.files["prod"]) - 2*18; got != 30 {
		t.Fatalf("generated %d files, want 30", got)
	}
	r.check(t)
	// The generator's expectation is not the base alone: overlays changed it.
	if bytes.Equal(mustJSON(r.want["dev"]), mustJSON(r.want["prod"])) {
		t.Fatal("dev and prod merge to the same config")
	}

	cue, err := testenv.Tool(testenv.ToolCUE)
	if err != nil {
		cue = ""
		t.Logf("cue vet baseline not checked: %v", err)
	} else {
		for _, env := range benchEnvs {
			run(t, r.cueVetMerged(cue, env))
			run(t, r.cueVetFiles(cue, env))
		}
	}

	// Both sides apply the schema: a port out of range fails each of them.
	bad := filepath.Join(r.dir, "config", "base", "svc-0001.yaml")
	data, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("port: "), []byte("port: 7000"), 1)
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Load(t.Context(), os.DirFS(r.dir), repo.Options{}); err == nil || !strings.Contains(err.Error(), "svc-0001.yaml") {
		t.Errorf("circle accepted port 7000…: %v", err)
	}
	if cue != "" {
		if out, err := r.cueVetFiles(cue, "dev").CombinedOutput(); err == nil {
			t.Errorf("cue vet accepted port 7000…:\n%s", out)
		}
		svc := r.merged["dev"]["svc-0001-a"].(map[string]any)
		svc["port"] = 70000 + svc["port"].(int)
		b, _ := yaml.Marshal(r.merged["dev"])
		if err := os.WriteFile(filepath.Join(r.dir, "baseline", "merged-dev.yaml"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := r.cueVetMerged(cue, "dev").CombinedOutput(); err == nil {
			t.Errorf("cue vet accepted port %v:\n%s", svc["port"], out)
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkValidate is `circle validate`: repo.Load of all three environments.
func BenchmarkValidate(b *testing.B) {
	r := genBenchRepo(b, benchFiles)
	r.check(b)
	fsys := os.DirFS(r.dir)
	cpu := cpuTime()
	for b.Loop() {
		if _, err := repo.Load(b.Context(), fsys, repo.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
	reportPerEnv(b)
}

// cpuTime is the process's CPU time so far (user and system). On a shared machine wall time
// says more about the neighbours than about Load; CPU time per op does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, since time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuTime()-since)/float64(b.N)/1e6, "cpu-ms/op")
	}
}

// BenchmarkValidateSecrets is BenchmarkValidate with sensitive values: an API_TOKEN (a
// secret by its key) for one base service in ten, so every environment has secrets and
// Load also runs the two passes that find values the schema derives from them (derive.go).
// The tokens are plain YAML, not SOPS, to measure evaluation rather than decryption.
func BenchmarkValidateSecrets(b *testing.B) {
	r := genBenchRepo(b, benchFiles)
	var tokens strings.Builder
	for i := 0; i < benchFiles*6/10; i += 10 {
		fmt.Fprintf(&tokens, "svc-%04d-a:\n  env:\n    API_TOKEN: tok-%04d-%x\n", i, i, i*7919)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "config", "base", "zz-tokens.yaml"), []byte(tokens.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	fsys := os.DirFS(r.dir)
	got, err := repo.Load(b.Context(), fsys, repo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if !got.Env("prod").Sensitive("svc-0000-a.env.API_TOKEN") {
		b.Fatal("the tokens are not sensitive: the benchmark would measure nothing")
	}
	cpu := cpuTime()
	for b.Loop() {
		if _, err := repo.Load(b.Context(), fsys, repo.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
	reportPerEnv(b)
}

// BenchmarkCueVet is the baseline: cue vet of each environment's merged data, three
// processes per op.
func BenchmarkCueVet(b *testing.B) {
	cue := cueTool(b)
	r := genBenchRepo(b, benchFiles)
	r.check(b)
	for _, env := range benchEnvs {
		run(b, r.cueVetMerged(cue, env))
	}
	for b.Loop() {
		for _, env := range benchEnvs {
			run(b, r.cueVetMerged(cue, env))
		}
	}
	reportPerEnv(b)
}

// BenchmarkCueVetFiles vets the 1,000 files unmerged: per environment, base's and the
// environment's files each on their own, three processes per op.
func BenchmarkCueVetFiles(b *testing.B) {
	cue := cueTool(b)
	r := genBenchRepo(b, benchFiles)
	for _, env := range benchEnvs {
		run(b, r.cueVetFiles(cue, env))
	}
	for b.Loop() {
		for _, env := range benchEnvs {
			run(b, r.cueVetFiles(cue, env))
		}
	}
	reportPerEnv(b)
}

func reportPerEnv(b *testing.B) {
	if b.N == 0 {
		return
	}
	op := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(op/1e6, "ms/op")
	b.ReportMetric(op/1e6/float64(len(benchEnvs)), "ms/env")
	b.ReportMetric(float64(benchFiles), "files")
}
