package pipeline_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/testenv"
)

// run is Run on dir with the example keys and the tests' clock, opts' other fields as given.
func run(t *testing.T, dir string, opts pipeline.Options) (*pipeline.Result, error) {
	t.Helper()
	opts.Load.Keyring = keyring(t)
	opts.Now = now
	res, err := pipeline.Run(context.Background(), os.DirFS(dir), opts)
	if res == nil {
		t.Fatalf("Run returned a nil Result (err %v)", err)
	}
	return res, err
}

// built lists the environments of res.Outputs, in order, comma-separated.
func built(res *pipeline.Result) string {
	var names []string
	for _, o := range res.Outputs {
		names = append(names, o.Env)
	}
	return strings.Join(names, ",")
}

// recorder is an Options.Enter that keeps what it was called with; the build stage calls
// it from several goroutines.
type recorder struct {
	mu     sync.Mutex
	stages []string            // stage starts (env ""), in order
	envs   map[string][]string // per-environment starts, by stage
}

func (r *recorder) enter(stage, env string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if env == "" {
		r.stages = append(r.stages, stage)
		return
	}
	if r.envs == nil {
		r.envs = map[string][]string{}
	}
	r.envs[stage] = append(r.envs[stage], env)
}

func (r *recorder) stageList() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.stages, ",")
}

func refuseProd(*repo.Settings) map[string]string {
	return map[string]string{"prod": "commit abc123 is not signed"}
}

// The daemon records each stage as it starts, and each environment's build: the stages
// come in the documented order, verify only when there is a policy, one build per
// environment.
func TestRun_Stages(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	for _, tc := range []struct {
		name   string
		verify func(*repo.Settings) map[string]string
		want   string
	}{
		{"with verify", func(*repo.Settings) map[string]string { return nil }, "settings,verify,load,licenses,packages,build,check"},
		{"without verify", nil, "settings,load,licenses,packages,build,check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			res, err := run(t, dir, pipeline.Options{Verify: tc.verify, Enter: rec.enter})
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.stageList(); got != tc.want {
				t.Errorf("stages\n got %s\nwant %s", got, tc.want)
			}
			envs := slices.Clone(rec.envs[pipeline.StageBuild])
			slices.Sort(envs)
			if strings.Join(envs, ",") != "dev,prod,staging" {
				t.Errorf("build entered for %v, want each of dev, staging, prod once", rec.envs[pipeline.StageBuild])
			}
			if len(rec.envs) != 1 {
				t.Errorf("per-environment starts outside the build stage: %v", rec.envs)
			}
			if built(res) != "dev,staging,prod" {
				t.Errorf("built %s", built(res))
			}
		})
	}
}

// With Options.Unchanged set, the daemon's status shows the inputs stage (the constants
// Computing the inputs is part of judging what to build, not a stage of its own in the
// status (the daemon's status lists the stages a user reads about); it is named only when
// it fails the revision.
func TestRun_StagesInputs(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	var rec recorder
	res, err := run(t, dir, pipeline.Options{Enter: rec.enter,
		Unchanged: func(map[string]string) map[string]bool { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.stageList(), "settings,load,licenses,packages,build,check"; got != want {
		t.Errorf("stages with Unchanged\n got %s\nwant %s", got, want)
	}
	if len(res.Inputs) != 3 {
		t.Errorf("inputs %v, want one digest per environment", res.Inputs)
	}
}

// An environment the signature policy refuses keeps its last good revision, with the
// reason, while the others build; the repository is still judged whole, refused
// environment included.
func TestRun_Verify(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	res, err := run(t, dir, pipeline.Options{Verify: refuseProd})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := res.Failed["prod"]
	if !ok || f.Stage != pipeline.StageVerify || !strings.Contains(f.Message, "commit abc123 is not signed") {
		t.Errorf("prod failure %+v (present %v), want the verify stage with the reason", f, ok)
	}
	if len(res.Failed) != 1 {
		t.Errorf("failed %v, want prod only", res.Failed)
	}
	if res.Output("prod") != nil || built(res) != "dev,staging" {
		t.Errorf("built %s, want dev,staging", built(res))
	}
	if res.Repo == nil || res.Repo.Env("prod") == nil {
		t.Error("a refused environment should still be loaded and judged")
	}

	// A problem in the refused environment still makes the revision invalid.
	testenv.WriteFile(t, dir, "config/prod/db.yaml", "db:\n  port: not-a-number\n")
	res, err = run(t, dir, pipeline.Options{Verify: refuseProd})
	var se *pipeline.StageError
	if !errors.As(err, &se) || se.Stage != pipeline.StageLoad {
		t.Fatalf("err %v, want a StageError at load", err)
	}
	if _, ok := errors.AsType[*repo.Invalid](err); !ok {
		t.Errorf("err %v, want a *repo.Invalid", err)
	}
	if len(res.Problems) == 0 || len(res.Outputs) != 0 {
		t.Errorf("problems %v, built %s", res.Problems, built(res))
	}
	if res.Failed["prod"].Stage != pipeline.StageVerify {
		t.Errorf("prod should still be recorded as refused by verify: %v", res.Failed)
	}
}

// The daemon skips builds whose inputs are those of a build already done, and stops early
// when nothing it may build changed.
func TestRun_Unchanged(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	var seen map[string]string
	res, err := run(t, dir, pipeline.Options{Unchanged: func(in map[string]string) map[string]bool {
		seen = in
		return map[string]bool{"dev": true}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		if seen[env] == "" {
			t.Errorf("Unchanged was given no digest for %s: %v", env, seen)
		}
	}
	if len(seen) != 3 {
		t.Errorf("digests %v, want the three environments", seen)
	}
	if !maps(res.Inputs, seen) {
		t.Errorf("Result.Inputs %v, want what Unchanged was given %v", res.Inputs, seen)
	}
	if !res.Unchanged["dev"] || len(res.Unchanged) != 1 || res.Output("dev") != nil || built(res) != "staging,prod" {
		t.Errorf("unchanged %v, built %s; want dev skipped, staging and prod built", res.Unchanged, built(res))
	}
	if res.Stopped {
		t.Error("stopped with environments to build")
	}

	all := func(map[string]string) map[string]bool {
		return map[string]bool{"dev": true, "staging": true, "prod": true}
	}
	var rec recorder
	res, err = run(t, dir, pipeline.Options{Unchanged: all, StopUnchanged: true, Enter: rec.enter})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stopped || res.Repo != nil || len(res.Outputs) != 0 {
		t.Errorf("all unchanged: stopped %v, repo %v, built %q", res.Stopped, res.Repo != nil, built(res))
	}
	if s := rec.stageList(); !strings.HasSuffix(s, ","+pipeline.StageUnchanged) || strings.Contains(s, pipeline.StageLoad) {
		t.Errorf("stages %s, want the last to be %q and no load", s, pipeline.StageUnchanged)
	}

	// Refused environments do not count against stopping, and are not unchanged.
	res, err = run(t, dir, pipeline.Options{Verify: refuseProd, Unchanged: all, StopUnchanged: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stopped || res.Unchanged["prod"] || !res.Unchanged["dev"] || !res.Unchanged["staging"] {
		t.Errorf("stopped %v, unchanged %v; want stopped, dev and staging unchanged, prod not", res.Stopped, res.Unchanged)
	}
	if res.Failed["prod"].Stage != pipeline.StageVerify {
		t.Errorf("failed %v, want prod refused by verify", res.Failed)
	}

	// Without StopUnchanged, unchanged environments are still loaded and judged.
	res, err = run(t, dir, pipeline.Options{Unchanged: all})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped || res.Repo == nil || res.Repo.Env("dev") == nil || len(res.Outputs) != 0 {
		t.Errorf("all unchanged without StopUnchanged: stopped %v, repo %v, built %q", res.Stopped, res.Repo != nil, built(res))
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A plan's base loads only what it builds: unchanged environments are not loaded.
func TestRun_LoadBuilt(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	res, err := run(t, dir, pipeline.Options{LoadBuilt: true, Unchanged: func(map[string]string) map[string]bool {
		return map[string]bool{"dev": true, "staging": true}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Repo == nil || res.Repo.Env("dev") != nil || res.Repo.Env("staging") != nil || res.Repo.Env("prod") == nil {
		t.Fatalf("repo %+v, want prod loaded alone", res.Repo)
	}
	if built(res) != "prod" {
		t.Errorf("built %s, want prod", built(res))
	}
}

// Naming an environment circle.yaml lacks is refused, unless the caller asks to skip it
// (a plan's base from before the environment existed).
func TestRun_Envs(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	res, err := run(t, dir, pipeline.Options{Load: repo.Options{Envs: []string{"prod", "gone"}}})
	var se *pipeline.StageError
	if !errors.As(err, &se) || se.Stage != pipeline.StageSettings || !strings.Contains(err.Error(), `"gone"`) {
		t.Errorf("err %v, want a StageError at settings naming \"gone\"", err)
	}
	if len(res.Outputs) != 0 {
		t.Errorf("built %s", built(res))
	}

	res, err = run(t, dir, pipeline.Options{Load: repo.Options{Envs: []string{"prod", "gone"}}, SkipMissingEnvs: true})
	if err != nil {
		t.Fatal(err)
	}
	if built(res) != "prod" || res.Repo == nil || res.Repo.Env("dev") != nil {
		t.Errorf("built %s, want prod alone", built(res))
	}

	res, err = run(t, dir, pipeline.Options{Load: repo.Options{Envs: []string{"gone"}}, SkipMissingEnvs: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 0 || res.Repo != nil {
		t.Errorf("none remaining: built %q, repo %v; want nothing loaded or built", built(res), res.Repo != nil)
	}
}

// secretData decodes the data of every Secret named circle-secrets-* in a manifest stream.
func secretData(t *testing.T, manifests []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	dec := yaml.NewDecoder(bytes.NewReader(manifests))
	for {
		var obj struct {
			Kind     string
			Metadata struct{ Name string }
			Data     map[string]string
		}
		if err := dec.Decode(&obj); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if obj.Kind != "Secret" || !strings.HasPrefix(obj.Metadata.Name, render.SecretName+"-") {
			continue
		}
		for k, v := range obj.Data {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			out[k] = string(b)
		}
	}
	if len(out) == 0 {
		t.Fatal("no circle-secrets Secret with data in the manifests")
	}
	return out
}

// Output people read (validate, render) shows masks, never secret values, and points at
// the source files when asked; what is applied carries the real values and no origins.
func TestRun_MaskedOrigins(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	testenv.SOPSEncrypt(t, dir, "secrets/prod.sops.yaml", "db:\n  password: "+canary+"\n")
	b64 := base64.StdEncoding.EncodeToString([]byte(canary))[:16]

	res, err := run(t, dir, pipeline.Options{Masked: true})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Output("prod").Manifests
	if bytes.Contains(m, []byte(canary)) || bytes.Contains(m, []byte(b64)) {
		t.Error("masked manifests carry the secret")
	}
	for k, v := range secretData(t, m) {
		if strings.Contains(v, canary) {
			t.Errorf("masked Secret key %s decodes to the secret", k)
		}
		if !strings.Contains(v, "**redacted:") {
			t.Errorf("masked Secret key %s = %q, want masks", k, v)
		}
	}
	if bytes.Contains(m, []byte(render.OriginAnnotation)) {
		t.Error("origin annotations without Origins")
	}

	res, err = run(t, dir, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m = res.Output("prod").Manifests
	if v := secretData(t, m)["secrets.json"]; !strings.Contains(v, canary) || !strings.HasPrefix(strings.TrimSpace(v), "{") {
		t.Errorf("unmasked secrets.json = %q, want JSON holding the secret", v)
	}
	if bytes.Contains(m, []byte(canary)) {
		t.Error("the secret is in the manifests in plain text")
	}

	res, err = run(t, dir, pipeline.Options{Origins: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Outputs {
		if !bytes.Contains(o.Manifests, []byte(render.OriginAnnotation)) {
			t.Errorf("%s manifests lack %s with Origins", o.Env, render.OriginAnnotation)
		}
	}
}

// A caller that has read circle.yaml (a plan) has Run use it, not read it again.
func TestRun_Settings(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	s := settings(t, dir)
	s.Environments = slices.DeleteFunc(s.Environments, func(e repo.Environment) bool { return e.Name == "staging" })
	// The package policies are judged against the settings too: drop staging there.
	b, err := os.ReadFile(dir + "/packages/environments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const stagingPkgs = "  staging:\n    requires:\n      api: ^1.2.0\n"
	if !bytes.Contains(b, []byte(stagingPkgs)) {
		t.Fatal("the example packages/environments.yaml changed")
	}
	testenv.WriteFile(t, dir, "packages/environments.yaml", strings.Replace(string(b), stagingPkgs, "", 1))
	// circle.yaml on disk now is no longer valid: reading it again would fail the settings stage.
	testenv.WriteFile(t, dir, "circle.yaml", "apiVersion: circle/v1\nenvironments: 3\n")
	res, err := run(t, dir, pipeline.Options{Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	if res.Settings != s {
		t.Error("Result.Settings is not the caller's")
	}
	if built(res) != "dev,prod" {
		t.Errorf("built %s, want dev,prod (the caller's settings)", built(res))
	}
}

// A cancelled revision (the daemon shutting down) ends with the context's error, and
// still a Result.
func TestRun_Cancelled(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := pipeline.Run(ctx, os.DirFS(dir), pipeline.Options{Load: repo.Options{Keyring: keyring(t)}, Now: now})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if res == nil {
		t.Fatal("nil Result")
	}
	if len(res.Outputs) != 0 {
		t.Errorf("built %s after cancellation", built(res))
	}
}

// The daemon tells a shutdown from an invalid revision: Run's doc promises ctx's error
// when cancelled, not a *StageError (which the reconciler records as the stage's failure,
// refusing every environment as invalid).
func TestRun_CancelledNotStageError(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := pipeline.Run(ctx, os.DirFS(dir), pipeline.Options{Load: repo.Options{Keyring: keyring(t)}, Now: now})
	if se, ok := errors.AsType[*pipeline.StageError](err); ok {
		t.Errorf("a cancelled Run returned a *StageError at %q (%v), want ctx's error", se.Stage, err)
	}
}

// limitProbe runs n functions in g, each waiting until limit of them run at once (or a
// timeout), and returns the most that ran at once.
func limitProbe(t *testing.T, g *pipeline.Group, n, limit int) int {
	t.Helper()
	var running, most atomic.Int32
	for i := range n {
		g.Go("env"+string(rune('a'+i)), func() {
			r := running.Add(1)
			defer running.Add(-1)
			deadline := time.Now().Add(5 * time.Second)
			for running.Load() < int32(limit) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(5 * time.Millisecond) // room for one over the limit to show
			for {
				m := most.Load()
				cur := max(r, running.Load())
				if cur <= m || most.CompareAndSwap(m, cur) {
					break
				}
			}
		})
	}
	g.Wait()
	return int(most.Load())
}

// A stage works on at most its limit of environments at once, tells Enter which, and a
// panic in one becomes a *Panic in the stage's goroutine, saying where.
func TestGroup(t *testing.T) {
	var mu sync.Mutex
	entered := map[string]string{}
	g := pipeline.NewGroup(pipeline.StageBuild, 2, func(stage, env string) {
		mu.Lock()
		entered[env] = stage
		mu.Unlock()
	})
	if most := limitProbe(t, g, 6, 2); most != 2 {
		t.Errorf("at most %d at once, want 2", most)
	}
	if len(entered) != 6 {
		t.Errorf("entered %v, want six environments", entered)
	}
	for env, stage := range entered {
		if stage != pipeline.StageBuild {
			t.Errorf("%s entered with stage %q", env, stage)
		}
	}

	if most := limitProbe(t, pipeline.NewGroup(pipeline.StageBuild, 0, nil), 2*pipeline.DefaultConcurrency, pipeline.DefaultConcurrency); most != pipeline.DefaultConcurrency {
		t.Errorf("limit 0: at most %d at once, want DefaultConcurrency (%d)", most, pipeline.DefaultConcurrency)
	}

	g = pipeline.NewGroup(pipeline.StageBuild, 2, nil)
	var done atomic.Bool
	g.Go("dev", func() { time.Sleep(10 * time.Millisecond); done.Store(true) })
	g.Go("prod", func() { panic("boom") })
	p := func() (v any) {
		defer func() { v = recover() }()
		g.Wait()
		return nil
	}()
	pp, ok := p.(*pipeline.Panic)
	if !ok {
		t.Fatalf("Wait raised %T %v, want a *pipeline.Panic", p, p)
	}
	if pp.Stage != pipeline.StageBuild || pp.Env != "prod" || pp.Value != "boom" || len(pp.Stack) == 0 {
		t.Errorf("panic %+v", pp)
	}
	if !strings.Contains(pp.Error(), "internal error in the build stage of prod") || !strings.Contains(pp.Error(), "boom") {
		t.Errorf("panic says %q", pp.Error())
	}
	if !done.Load() {
		t.Error("Wait raised the panic before the other functions were done")
	}
}

// A policy breach in a base shared by every overlay is one problem naming each
// environment, and the revision fails at the check stage.
func TestRun_CheckProblemsMerged(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	b, err := os.ReadFile(dir + "/deploy/base/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const at = "          image: registry.example.com/shop/api:1.2.0\n"
	if !bytes.Contains(b, []byte(at)) {
		t.Fatal("the example deployment changed")
	}
	testenv.WriteFile(t, dir, "deploy/base/deployment.yaml",
		strings.Replace(string(b), at, at+"          securityContext:\n            privileged: true\n", 1))
	res, err := run(t, dir, pipeline.Options{Origins: true})
	var se *pipeline.StageError
	if !errors.As(err, &se) || se.Stage != pipeline.StageCheck {
		t.Fatalf("err %v, want a StageError at check", err)
	}
	if _, ok := errors.AsType[*repo.Invalid](err); !ok {
		t.Errorf("err %v, want a *repo.Invalid", err)
	}
	var privileged []repo.Problem
	for _, p := range res.Problems {
		if strings.Contains(p.Message, "[no-privileged]") {
			privileged = append(privileged, p)
		}
	}
	if len(privileged) != 1 {
		t.Fatalf("privileged problems %v, want one", res.Problems)
	}
	envs := slices.Clone(privileged[0].Envs)
	slices.Sort(envs)
	if strings.Join(envs, ",") != "dev,prod,staging" {
		t.Errorf("problem envs %v, want the three", privileged[0].Envs)
	}
	if p := privileged[0]; p.File != "deploy/base/deployment.yaml" {
		t.Errorf("problem at %s:%d, want the base", p.File, p.Line)
	}
}

// Input digests the caller computed already (a plan, for both revisions) are used as they
// are, not computed again: the unchanged test sees them, and so does the Result.
func TestRun_InputsGiven(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	given := map[string]string{"dev": "sha256:given-dev", "staging": "sha256:given-staging", "prod": "sha256:given-prod"}
	var seen map[string]string
	res, err := run(t, dir, pipeline.Options{Inputs: given, Unchanged: func(in map[string]string) map[string]bool {
		seen = in
		return map[string]bool{"dev": in["dev"] == "sha256:given-dev"}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if seen["prod"] != "sha256:given-prod" || res.Inputs["staging"] != "sha256:given-staging" {
		t.Errorf("inputs seen %v, in the result %v: want the given ones", seen, res.Inputs)
	}
	if !res.Unchanged["dev"] || built(res) != "staging,prod" {
		t.Errorf("unchanged %v, built %s", res.Unchanged, built(res))
	}
}
