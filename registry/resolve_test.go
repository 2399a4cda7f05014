package registry

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/circlecore/circle/registry/solver"
)

func resolved(res *Resolution) string {
	var parts []string
	for _, m := range res.Packages {
		parts = append(parts, m.Name+" "+m.Version)
	}
	return strings.Join(parts, ", ")
}

func TestResolve(t *testing.T) {
	fsys := tree()
	fsys["packages/app/1.0.0.yaml"] = &fstest.MapFile{Data: []byte("name: app\nversion: 1.0.0\nlicense: MIT\ndependencies:\n  lib: '>=1.2.0-0'\n")}
	fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte("environments:\n  prod:\n    requires: {web: ^1.0.0}\n  dev:\n    requires: {app: '*'}\n  staging:\n    requires: {app: '*'}\n")}
	r, issues := load(t, fsys)
	if issues != nil {
		t.Fatal(issues)
	}
	ctx := context.Background()

	prod, err := r.Resolve(ctx, "prod", ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := resolved(prod); got != "lib 1.1.0, web 1.0.0" {
		t.Errorf("prod = %s", got)
	}
	// The pre-release is enabled in dev only, and app asks for pre-releases.
	dev, err := r.Resolve(ctx, "dev", ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := resolved(dev); got != "app 1.0.0, lib 1.2.0-beta.1" {
		t.Errorf("dev = %s", got)
	}
	_, err = r.Resolve(ctx, "staging", ResolveOptions{})
	var ns *solver.NoSolutionError
	if !errors.As(err, &ns) {
		t.Fatalf("staging: %v", err)
	}
	if want := "Because every version of app depends on lib >=1.2.0-0 (lib 1.2.0-beta.1 is not enabled in staging) and staging requires app *, version solving failed."; ns.Explanation != want {
		t.Errorf("explanation:\n%s\nwant:\n%s", ns.Explanation, want)
	}
	if !strings.HasPrefix(err.Error(), "resolve staging: ") {
		t.Errorf("error does not name the environment: %v", err)
	}
	// An environment with no requirements resolves to nothing.
	if empty, err := r.Resolve(ctx, "qa", ResolveOptions{}); err != nil || len(empty.Packages) != 0 {
		t.Errorf("qa: %v %v", empty, err)
	}
}

func TestResolve_Lock(t *testing.T) {
	fsys := tree()
	fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte("environments:\n  prod:\n    requires: {web: ^1.0.0, lib: ^1.0.0}\n")}
	r, issues := load(t, fsys)
	if issues != nil {
		t.Fatal(issues)
	}
	res, err := r.Resolve(context.Background(), "prod", ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := res.Lock()
	b := l.JSON()
	if string(b) != string(res.Lock().JSON()) {
		t.Error("the same resolution writes different bytes")
	}
	back, err := ParseLock("packages/prod.lock.json", b)
	if err != nil {
		t.Fatal(err)
	}
	web := back.Get("web")
	if web == nil || web.Version != "1.0.0" || web.Digest != r.Package("web").Version("1.0.0").Digest() || len(web.Artifacts) != 1 || web.Artifacts[0].Size != 17 || web.License != "MIT" || web.Dependencies["lib"] != "^1.1.0" {
		t.Errorf("locked web = %+v", web)
	}
	if !strings.Contains(string(b), "\"environment\": \"prod\",\n  \"requires\": {\n    \"lib\": \"^1.0.0\",\n    \"web\": \"^1.0.0\"\n  },\n  \"packages\": [\n    {\n      \"name\": \"lib\"") {
		t.Errorf("lock layout:\n%s", b)
	}

	// A lock is kept where it still fits: web needs lib ^1.1.0, so lib 1.0.0 cannot stay.
	old := &Lock{Environment: "prod", Packages: []LockedPackage{{Name: "lib", Version: "1.0.0"}}}
	res, err = r.Resolve(context.Background(), "prod", ResolveOptions{Prefer: old})
	if err != nil || resolved(res) != "lib 1.1.0, web 1.0.0" {
		t.Errorf("preferring an unfit lock: %v %v", res, err)
	}
	fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte("environments:\n  prod:\n    requires: {lib: ^1.0.0}\n")}
	r, _ = load(t, fsys)
	res, err = r.Resolve(context.Background(), "prod", ResolveOptions{Prefer: old})
	if err != nil || resolved(res) != "lib 1.0.0" {
		t.Errorf("preferring a fit lock: %v %v", res, err)
	}
}

func TestCheckLock(t *testing.T) {
	fsys := tree()
	r, _ := load(t, fsys)
	res, _ := r.Resolve(context.Background(), "prod", ResolveOptions{})
	fsys["packages/prod.lock.json"] = &fstest.MapFile{Data: res.Lock().JSON()}
	r, issues := load(t, fsys)
	if issues != nil || r.CheckLock("prod") != nil || r.CheckLock("dev") != nil {
		t.Fatalf("a fresh lock has problems: %v %v", issues, r.CheckLock("prod"))
	}
	// lib 1.1.0 is edited in place after being locked, and web 1.0.0 disappears.
	fsys["packages/lib/1.1.0.yaml"] = &fstest.MapFile{Data: []byte("name: lib\nversion: 1.1.0\nlicense: MIT\n")}
	delete(fsys, "packages/web/1.0.0.yaml")
	fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte("environments: {}\n")}
	r, issues = load(t, fsys)
	if issues != nil {
		t.Fatal(issues)
	}
	got := r.CheckLock("prod")
	if len(got) != 2 || !strings.Contains(got.Error(), "packages/prod.lock.json: packages.0.digest: packages/lib/1.1.0.yaml changed after the lock was written") ||
		!strings.Contains(got.Error(), "packages/prod.lock.json: packages.1: web 1.0.0 is locked, but the registry has no such version") {
		t.Errorf("CheckLock = %v", got)
	}
}

func TestResolution_Why(t *testing.T) {
	fsys := tree()
	fsys["packages/cli/2.0.0.yaml"] = &fstest.MapFile{Data: []byte("name: cli\nversion: 2.0.0\nlicense: MIT\ndependencies:\n  web: '*'\n  lib: ~1.1.0\n")}
	fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte("environments:\n  prod:\n    requires: {cli: ^2.0.0}\n")}
	r, issues := load(t, fsys)
	if issues != nil {
		t.Fatal(issues)
	}
	res, err := r.Resolve(context.Background(), "prod", ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := res.Why("lib")
	var path, deps []string
	for _, e := range w.Path {
		path = append(path, e.String())
	}
	for _, e := range w.Dependents {
		deps = append(deps, e.String())
	}
	if w.Version != "1.1.0" || strings.Join(path, "; ") != "prod requires cli ^2.0.0 (cli 2.0.0); cli 2.0.0 depends on lib ~1.1.0 (lib 1.1.0)" {
		t.Errorf("path = %v", path)
	}
	if strings.Join(deps, "; ") != "cli 2.0.0 depends on lib ~1.1.0 (lib 1.1.0); web 1.0.0 depends on lib ^1.1.0 (lib 1.1.0)" {
		t.Errorf("dependents = %v", deps)
	}
	if w := res.Why("cli"); len(w.Path) != 1 || len(w.Dependents) != 1 || w.Dependents[0].From != "prod" {
		t.Errorf("why cli = %+v", w)
	}
	if w := res.Why("nope"); w.Version != "" || w.Path != nil {
		t.Errorf("why nope = %+v", w)
	}
}

// The examples resolve in every environment to what their manifests say.
func TestResolve_Examples(t *testing.T) {
	r, err := Load(context.Background(), os.DirFS("../examples"), Options{Environments: envs})
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		res, err := r.Resolve(context.Background(), env, ResolveOptions{})
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		if got := resolved(res); got != "api 1.2.0, worker 0.3.1" {
			t.Errorf("%s = %s", env, got)
		}
		// The example advisory hits worker before 0.3.1 only; the licenses are allowed.
		if rep := r.Scan(res, now); rep.Failed || len(rep.Vulnerabilities) != 0 || len(rep.Licenses) != 2 || len(rep.Notes) != 0 {
			t.Errorf("%s scan = %+v", env, rep)
		}
	}
	if len(r.Advisories) != 1 || r.Advisories[0].Match(Ecosystem, "worker", "0.3.0", now).Fixed[0] != "0.3.1" {
		t.Errorf("the example advisory does not hit worker 0.3.0, fixed in 0.3.1")
	}
}

// The lock command's two verdicts: a missing, stale or current lock file, and a write that
// happens only when the bytes change.
func TestLockStateAndWrite(t *testing.T) {
	fsys := tree()
	r, _ := load(t, fsys)
	res, err := r.Resolve(context.Background(), "prod", ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.LockStateOf("prod", res); got != LockAbsent {
		t.Errorf("no lock file: %s", got)
	}
	fsys["packages/prod.lock.json"] = &fstest.MapFile{Data: res.Lock().JSON()}
	if r, _ = load(t, fsys); r.LockStateOf("prod", res) != LockCurrent {
		t.Errorf("the resolution's own lock: %s", r.LockStateOf("prod", res))
	}
	fsys["packages/prod.lock.json"] = &fstest.MapFile{Data: (&Lock{Environment: "prod", Packages: []LockedPackage{}}).JSON()}
	if r, _ = load(t, fsys); r.LockStateOf("prod", res) != LockStale {
		t.Errorf("another lock: %s", r.LockStateOf("prod", res))
	}

	root := t.TempDir()
	for i, want := range []bool{true, false} {
		wrote, err := r.WriteLock(root, "prod", res)
		if err != nil || wrote != want {
			t.Errorf("write %d: wrote %t, %v; want %t", i, wrote, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "packages", "prod.lock.json")); err != nil || !bytes.Equal(b, res.Lock().JSON()) {
		t.Errorf("the written lock: %v\n%s", err, b)
	}
	if _, err := r.WriteLock(filepath.Join(root, "packages", "prod.lock.json"), "prod", res); err == nil {
		t.Error("a lock written below a file")
	}

	// The attacker's repository: packages/ is a symlink to a folder outside it. Nothing is
	// written there, and the write is refused.
	outside, repoDir := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(repoDir, "packages")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteLock(repoDir, "prod", res); err == nil {
		t.Error("a lock written through a symlink out of the repository")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written outside the repository: %v", entries)
	}
}
