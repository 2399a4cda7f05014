package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/circlecore/circle/schema"
)

var envs = []string{"dev", "staging", "prod"}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// tree is a small valid repository: web depends on lib; lib has three versions.
func tree() fstest.MapFS {
	art := "web 1.0.0 bundle\n"
	return fstest.MapFS{
		"artifacts/web-1.0.0.tgz": {Data: []byte(art)},
		"packages/web/1.0.0.yaml": {Data: []byte(fmt.Sprintf(`name: web
version: 1.0.0
description: The web front end.
license: MIT
dependencies:
  lib: ^1.1.0
artifacts:
  - path: artifacts/web-1.0.0.tgz
    sha256: %s
    size: %d
`, digestOf(art), len(art)))},
		"packages/lib/1.0.0.yaml":        {Data: []byte("name: lib\nversion: 1.0.0\nlicense: Apache-2.0\n")},
		"packages/lib/1.1.0.yaml":        {Data: []byte("name: lib\nversion: 1.1.0\nlicense: Apache-2.0\n")},
		"packages/lib/1.2.0-beta.1.yaml": {Data: []byte("name: lib\nversion: 1.2.0-beta.1\nlicense: Apache-2.0\nenvironments: [dev]\n")},
		"packages/environments.yaml": {Data: []byte(`defaults:
  licenses:
    allow: [MIT, Apache-2.0]
environments:
  prod:
    requires:
      web: ^1.0.0
`)},
	}
}

func load(t *testing.T, fsys fstest.MapFS) (*Registry, []string) {
	t.Helper()
	r, err := Load(context.Background(), fsys, Options{Environments: envs})
	var issues schema.Issues
	if errors.As(err, &issues) {
		out := make([]string, len(issues))
		for i, is := range issues {
			out[i] = is.String()
		}
		return nil, out
	}
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return r, nil
}

func TestLoad_Valid(t *testing.T) {
	r, issues := load(t, tree())
	if issues != nil {
		t.Fatalf("issues: %v", issues)
	}
	var names []string
	for _, p := range r.Packages() {
		names = append(names, p.Name)
	}
	if strings.Join(names, " ") != "lib web" {
		t.Errorf("packages = %v", names)
	}
	lib := r.Package("lib")
	if got := versionList(lib.Versions); got != "1.0.0, 1.1.0, 1.2.0-beta.1" {
		t.Errorf("lib versions = %s, want ascending precedence", got)
	}
	if lib.Newest().Version != "1.2.0-beta.1" || lib.Version("1.1.0") == nil || lib.Version("9.9.9") != nil || lib.Version("x") != nil {
		t.Errorf("Newest/Version lookups wrong")
	}
	if got := versionList(lib.EnabledIn("prod")); got != "1.0.0, 1.1.0" {
		t.Errorf("lib in prod = %s: the beta is enabled in dev only", got)
	}
	web := r.Package("web").Versions[0]
	if web.Artifacts[0].Status != ArtifactVerified {
		t.Errorf("artifact status = %q", web.Artifacts[0].Status)
	}
	if web.Range("lib").String() != "^1.1.0" || web.ID() != "web@1.0.0" || web.SemVer().Major() != 1 {
		t.Errorf("manifest accessors wrong: %v %v", web.Range("lib"), web.ID())
	}
	if r.Config.Requires("prod")["web"] != "^1.0.0" || r.Config.Requires("dev") != nil {
		t.Errorf("requirements = %v", r.Config.Environments)
	}
	if r.LockFile("prod") != "packages/prod.lock.json" || r.Options().Advisories != "advisories" {
		t.Errorf("LockFile = %s", r.LockFile("prod"))
	}
}

// The example repository loads clean: its manifests are what users copy.
func TestLoad_Examples(t *testing.T) {
	r, err := Load(context.Background(), os.DirFS("../examples"), Options{Environments: envs})
	if err != nil {
		t.Fatalf("examples: %v", err)
	}
	if r.Package("api") == nil || r.Package("worker") == nil {
		t.Fatalf("examples lack api or worker")
	}
	for _, p := range r.Packages() {
		for _, m := range p.Versions {
			for _, a := range m.Artifacts {
				if a.Path != "" && a.Status != ArtifactVerified {
					t.Errorf("%s: artifact %s not verified", m.File, a.Path)
				}
			}
		}
	}
}

// Each broken tree reports its problem at the file, line, column and field where a user fixes it.
func TestLoad_Problems(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(fstest.MapFS)
		want  []string
		count int
	}{
		{"name differs from folder", set("packages/lib/1.0.0.yaml", "name: libx\nversion: 1.0.0\nlicense: MIT\n"),
			[]string{`packages/lib/1.0.0.yaml:1:7: name: name "libx" does not match its folder "lib"`}, 1},
		{"version differs from file", set("packages/lib/1.0.0.yaml", "name: lib\nversion: 1.0.1\nlicense: MIT\n"),
			[]string{`packages/lib/1.0.0.yaml:2:10: version: version "1.0.1" does not match the file name "1.0.0.yaml"`}, 1},
		{"not semver", set("packages/lib/1.0.yaml", "name: lib\nversion: \"1.0\"\nlicense: MIT\n"),
			[]string{`packages/lib/1.0.yaml:2:10: version: invalid value "1.0" (out of bound =~`}, 1},
		{"bad name", set("packages/lib/1.0.0.yaml", "name: Lib\nversion: 1.0.0\nlicense: MIT\n"),
			[]string{`packages/lib/1.0.0.yaml:1:7: name: invalid value "Lib"`}, 1},
		{"misspelt field", set("packages/lib/1.0.0.yaml", "name: lib\nversion: 1.0.0\nlicence: MIT\n"),
			[]string{`packages/lib/1.0.0.yaml:3:1: licence: field not allowed; did you mean "license"?`, "license: required field is missing"}, 2},
		{"unknown license", set("packages/lib/1.0.0.yaml", "name: lib\nversion: 1.0.0\nlicense: MIT OR Apache-3.0\n"),
			[]string{`packages/lib/1.0.0.yaml:3:10: license: license expression "MIT OR Apache-3.0": unknown license 'Apache-3.0'`}, 1},
		{"unknown dependency", set("packages/lib/1.0.0.yaml", "name: lib\nversion: 1.0.0\nlicense: MIT\ndependencies:\n  nope: ^1\n"),
			[]string{`packages/lib/1.0.0.yaml:5:3: dependencies.nope: unknown package "nope": there is no packages/nope/ folder`}, 1},
		{"range matches nothing", set("packages/web/1.0.0.yaml", "name: web\nversion: 1.0.0\nlicense: MIT\ndependencies:\n  lib: ^2.0.0\n"),
			[]string{`packages/web/1.0.0.yaml:5:8: dependencies.lib: lib ^2.0.0 matches none of lib's versions (1.0.0, 1.1.0, 1.2.0-beta.1)`}, 1},
		{"bad range", set("packages/web/1.0.0.yaml", "name: web\nversion: 1.0.0\nlicense: MIT\ndependencies:\n  lib: '>>1'\n"),
			[]string{`packages/web/1.0.0.yaml:5:8: dependencies.lib: ">>1" is not a version range`}, 1},
		{"self dependency", set("packages/lib/1.0.0.yaml", "name: lib\nversion: 1.0.0\nlicense: MIT\ndependencies:\n  lib: ^1\n"),
			[]string{`packages/lib/1.0.0.yaml:5:3: dependencies.lib: a package cannot depend on itself`}, 1},
		{"bad dependency name", set("packages/lib/1.0.0.yaml", "name: lib\nversion: 1.0.0\nlicense: MIT\ndependencies:\n  Bad_Name: ^1\n"),
			[]string{`dependencies.Bad_Name: "Bad_Name" is not a package name`}, 1},
		{"same version twice", set("packages/lib/1.0.0.yml", "name: lib\nversion: 1.0.0\nlicense: MIT\n"),
			[]string{`packages/lib/1.0.0.yml:2:10: version: version 1.0.0 of lib is also declared in packages/lib/1.0.0.yaml`}, 1},
		{"build metadata is not a new version", set("packages/lib/1.1.0+build.2.yaml", "name: lib\nversion: 1.1.0+build.2\nlicense: MIT\n"),
			[]string{`packages/lib/1.1.0.yaml:2:10: version: version 1.1.0 of lib is also declared in packages/lib/1.1.0+build.2.yaml`}, 1},
		{"digest mismatch", set("artifacts/web-1.0.0.tgz", "web 1.0.0 bundlE\n"),
			[]string{`packages/web/1.0.0.yaml:9:13: artifacts.0.sha256: sha256 does not match the bytes of artifacts/web-1.0.0.tgz (sha256 `}, 1},
		{"size mismatch", set("artifacts/web-1.0.0.tgz", "web 1.0.0 bundle, longer\n"),
			[]string{`packages/web/1.0.0.yaml:10:11: artifacts.0.size: size 17 does not match artifacts/web-1.0.0.tgz, which has 25 bytes`}, 1},
		{"artifact missing", del("artifacts/web-1.0.0.tgz"),
			[]string{`packages/web/1.0.0.yaml:8:11: artifacts.0.path: artifact artifacts/web-1.0.0.tgz: not found in the repository`}, 1},
		{"artifact is a folder", set("artifacts/dir/x", "x"), nil, 0},
		{"path escapes", set("packages/lib/1.0.0.yaml", "name: lib\nversion: 1.0.0\nlicense: MIT\nartifacts:\n  - path: ../../etc/passwd\n    sha256: "+strings.Repeat("a", 64)+"\n    size: 1\n  - path: /etc/passwd\n    sha256: "+strings.Repeat("a", 64)+"\n    size: 1\n"),
			[]string{`packages/lib/1.0.0.yaml:5:11: artifacts.0.path: path "../../etc/passwd" must be relative to the repository root`, `packages/lib/1.0.0.yaml:8:11: artifacts.1.path: path "/etc/passwd" must be relative`}, 2},
		{"path and url", set("packages/lib/1.0.0.yaml", "name: lib\nversion: 1.0.0\nlicense: MIT\nartifacts:\n  - path: a\n    url: s3://b/a\n    sha256: "+strings.Repeat("a", 64)+"\n    size: 1\n  - sha256: "+strings.Repeat("a", 64)+"\n    size: 1\n"),
			[]string{`artifacts.0.url: an artifact has a path or a url, not both`, `packages/lib/1.0.0.yaml:9:5: artifacts.1: an artifact needs a path (in the repository) or a url`}, 2},
		{"bad digest syntax", set("packages/lib/1.0.0.yaml", "name: lib\nversion: 1.0.0\nlicense: MIT\nartifacts:\n  - path: a\n    sha256: ABC\n    size: -1\n"),
			[]string{`packages/lib/1.0.0.yaml:6:13: artifacts.0.sha256: invalid value "ABC"`, `packages/lib/1.0.0.yaml:7:11: artifacts.0.size: invalid value -1 (out of bound >=0)`}, 2},
		{"unknown environment", set("packages/lib/1.0.0.yaml", "name: lib\nversion: 1.0.0\nlicense: MIT\nenvironments: [dev, qa, dev]\n"),
			[]string{`packages/lib/1.0.0.yaml:4:21: environments.1: environment "qa" is not defined in circle.yaml (environments: dev, staging, prod)`, `environments.2: environment "dev" is listed twice`}, 2},
		{"stray files", func(m fstest.MapFS) {
			m["packages/notes.txt"] = &fstest.MapFile{Data: []byte("x")}
			m["packages/lib/deep/1.0.0.yaml"] = &fstest.MapFile{Data: []byte("x")}
			m["packages/Bad/1.0.0.yaml"] = &fstest.MapFile{Data: []byte("x")}
			m["packages/lib/README.md"] = &fstest.MapFile{Data: []byte("ok")}
		}, []string{`packages/notes.txt: unexpected file`, `packages/lib/deep: unexpected folder`, `packages/Bad: "Bad" is not a package name`}, 3},
		{"yaml syntax", set("packages/lib/1.0.0.yaml", "name: lib\nversion: [1.0.0\n"),
			[]string{`packages/lib/1.0.0.yaml:`}, 1},
		{"top level is a list", set("packages/lib/1.0.0.yaml", "- a\n- b\n"),
			[]string{`packages/lib/1.0.0.yaml:1:1: the top level must be a mapping`}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := tree()
			c.edit(fsys)
			_, issues := load(t, fsys)
			if c.count == 0 {
				if issues != nil {
					t.Fatalf("unexpected issues: %v", issues)
				}
				return
			}
			if len(issues) != c.count {
				t.Errorf("%d issue(s), want %d:\n%s", len(issues), c.count, strings.Join(issues, "\n"))
			}
			all := strings.Join(issues, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("issues lack %q:\n%s", w, all)
				}
			}
		})
	}
}

func set(name, content string) func(fstest.MapFS) {
	return func(m fstest.MapFS) { m[name] = &fstest.MapFile{Data: []byte(content)} }
}

func del(name string) func(fstest.MapFS) {
	return func(m fstest.MapFS) { delete(m, name) }
}

func TestLoad_ArtifactFolder(t *testing.T) {
	fsys := tree()
	fsys["packages/lib/1.0.0.yaml"] = &fstest.MapFile{Data: []byte("name: lib\nversion: 1.0.0\nlicense: MIT\nartifacts:\n  - path: artifacts\n    sha256: " + strings.Repeat("a", 64) + "\n    size: 0\n")}
	_, issues := load(t, fsys)
	if len(issues) != 1 || !strings.Contains(issues[0], "artifacts.0.path: artifact artifacts: not a regular file") {
		t.Errorf("issues = %v", issues)
	}
}

// A storage artifact is left "not fetched" with a note, or verified through a fetcher.
func TestLoad_URLArtifacts(t *testing.T) {
	body := "remote bytes"
	fsys := tree()
	fsys["packages/lib/1.0.0.yaml"] = &fstest.MapFile{Data: []byte(fmt.Sprintf("name: lib\nversion: 1.0.0\nlicense: MIT\nartifacts:\n  - url: s3://bucket/lib-1.0.0.tgz\n    sha256: %s\n    size: %d\n", digestOf(body), len(body)))}

	r, err := Load(context.Background(), fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := r.Package("lib").Versions[0].Artifacts[0]
	if a.Status != ArtifactNotFetched || len(r.Notes) != 1 || !strings.Contains(r.Notes[0].String(), "packages/lib/1.0.0.yaml:5:10: artifacts.0.url: s3://bucket/lib-1.0.0.tgz not fetched") {
		t.Errorf("status %q, notes %v", a.Status, r.Notes)
	}

	fetched := 0
	fetch := fetcherFunc(func(_ context.Context, a Artifact) error {
		fetched++
		if a.URL != "s3://bucket/lib-1.0.0.tgz" {
			return fmt.Errorf("no object %s", a.URL)
		}
		if int64(len(body)) != a.Size {
			return &MismatchError{Size: int64(len(body))}
		}
		if sum := digestOf(body); sum != a.SHA256 {
			return &MismatchError{Size: a.Size, SHA256: sum}
		}
		return nil
	})
	r, err = Load(context.Background(), fsys, Options{Fetcher: fetch})
	if err != nil {
		t.Fatal(err)
	}
	if a := r.Package("lib").Versions[0].Artifacts[0]; a.Status != ArtifactVerified || len(r.Notes) != 0 || fetched != 1 {
		t.Errorf("fetched %d, status %q, notes %v", fetched, a.Status, r.Notes)
	}

	body = "tampered"
	_, err = Load(context.Background(), fsys, Options{Fetcher: fetch})
	if err == nil || !strings.Contains(err.Error(), "packages/lib/1.0.0.yaml:7:11: artifacts.0.size: size 12 does not match s3://bucket/lib-1.0.0.tgz, which has 8 bytes") {
		t.Errorf("tampered object: %v", err)
	}
	body = "remote bytez"
	_, err = Load(context.Background(), fsys, Options{Fetcher: fetch})
	if err == nil || !strings.Contains(err.Error(), "packages/lib/1.0.0.yaml:6:13: artifacts.0.sha256: sha256 does not match the bytes of s3://bucket/lib-1.0.0.tgz (sha256 "+digestOf(body)+")") {
		t.Errorf("tampered object: %v", err)
	}
	over := fetcherFunc(func(_ context.Context, a Artifact) error { return &MismatchError{Size: a.Size + 1, Truncated: true} })
	_, err = Load(context.Background(), fsys, Options{Fetcher: over})
	if err == nil || !strings.Contains(err.Error(), "artifacts.0.size: size 12 does not match s3://bucket/lib-1.0.0.tgz, which has more than 12 bytes") {
		t.Errorf("endless object: %v", err)
	}
	offline := fetcherFunc(func(_ context.Context, a Artifact) error { return fmt.Errorf("%w: not in the cache", ErrNotFetched) })
	r, err = Load(context.Background(), fsys, Options{Fetcher: offline})
	if err != nil || len(r.Notes) != 1 || !strings.Contains(r.Notes[0].String(), "artifacts.0.url: s3://bucket/lib-1.0.0.tgz not fetched: not in the cache") ||
		r.Package("lib").Versions[0].Artifacts[0].Status != ArtifactNotFetched {
		t.Errorf("offline: %v, %v", err, r.Notes)
	}
	fsys["packages/lib/1.0.0.yaml"].Data = []byte(strings.Replace(string(fsys["packages/lib/1.0.0.yaml"].Data), "bucket", "other", 1))
	_, err = Load(context.Background(), fsys, Options{Fetcher: fetch})
	if err == nil || !strings.Contains(err.Error(), "packages/lib/1.0.0.yaml:5:10: artifacts.0.url: artifact s3://other/lib-1.0.0.tgz: no object") {
		t.Errorf("missing object: %v", err)
	}
}

// fetcherFunc is a Fetcher made of a function.
type fetcherFunc func(context.Context, Artifact) error

func (f fetcherFunc) Fetch(ctx context.Context, a Artifact) error { return f(ctx, a) }

func TestLoad_NoPackagesFolder(t *testing.T) {
	r, err := Load(context.Background(), fstest.MapFS{"circle.yaml": {Data: []byte("x")}}, Options{})
	if err != nil || len(r.Packages()) != 0 || r.Config == nil || r.Config.Requires("prod") != nil {
		t.Errorf("empty repository: %v, %+v", err, r)
	}
}

func TestLoad_Cancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, tree(), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestConfig_Problems(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown env and package", "environments:\n  qa:\n    requires:\n      nope: ^1\n",
			[]string{`packages/environments.yaml:2:3: environments.qa: environment "qa" is not defined in circle.yaml`, `packages/environments.yaml:4:7: environments.qa.requires.nope: unknown package "nope"`}},
		{"bad range", "environments:\n  prod:\n    requires:\n      web: '^^1'\n", []string{`packages/environments.yaml:4:12: environments.prod.requires.web: "^^1" is not a version range`}},
		{"range matches nothing", "environments:\n  prod:\n    requires:\n      web: ^2\n", []string{`environments.prod.requires.web: web ^2 matches none of web's versions (1.0.0)`}},
		{"bad license id", "defaults:\n  licenses:\n    deny: [GPL-9.0]\n",
			[]string{`packages/environments.yaml:3:12: defaults.licenses.deny.0: license expression "GPL-9.0": unknown license`}},
		{"bad threshold", "environments:\n  prod:\n    vulnerabilities:\n      failOn: severe\n",
			[]string{`packages/environments.yaml:4:15: environments.prod.vulnerabilities.failOn: conflicting values "severe" and number`}},
		{"bad date", "environments:\n  prod:\n    vulnerabilities:\n      allow:\n        - id: GHSA-1\n          until: 2026-02-30\n          reason: accepted\n",
			[]string{`packages/environments.yaml:6:18: environments.prod.vulnerabilities.allow.0.until: "2026-02-30" is not a date (YYYY-MM-DD)`}},
		{"allow without reason", "environments:\n  prod:\n    vulnerabilities:\n      allow:\n        - id: GHSA-1\n          until: 2026-02-01\n",
			[]string{`environments.prod.vulnerabilities.allow.0.reason: required field is missing`}},
		{"expression in a policy list", "defaults:\n  licenses:\n    allow: [MIT OR Apache-2.0, GPL-2.0-only WITH Nope-exception]\n",
			[]string{`defaults.licenses.allow.0: "MIT OR Apache-2.0" is not a single license identifier`, `defaults.licenses.allow.1: "Nope-exception" is not an SPDX license exception`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := tree()
			fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte(c.yaml)}
			_, issues := load(t, fsys)
			all := strings.Join(issues, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("issues lack %q:\n%s", w, all)
				}
			}
		})
	}
}

func TestConfig_PolicyFor(t *testing.T) {
	fsys := tree()
	fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte(`defaults:
  vulnerabilities: {failOn: high}
  licenses: {allow: [MIT]}
environments:
  prod:
    vulnerabilities:
      failOn: 5.5
      allow: [{id: CVE-1, until: 2026-03-31, reason: r}]
  dev:
    licenses: {deny: [GPL-3.0-only]}
`)}
	r, issues := load(t, fsys)
	if issues != nil {
		t.Fatal(issues)
	}
	prod, dev, staging := r.Config.PolicyFor("prod"), r.Config.PolicyFor("dev"), r.Config.PolicyFor("staging")
	if prod.Vulnerabilities.FailOn.Score != 5.5 || prod.Licenses.Allow[0] != "MIT" || len(prod.Vulnerabilities.Allow) != 1 {
		t.Errorf("prod = %+v", prod)
	}
	if dev.Vulnerabilities.FailOn.String() != "high" || dev.Licenses.Allow != nil || dev.Licenses.Deny[0] != "GPL-3.0-only" {
		t.Errorf("dev = %+v: its licenses block replaces the defaults' whole", dev)
	}
	if staging.Vulnerabilities.FailOn.Score != 7 {
		t.Errorf("staging = %+v", staging)
	}
	if (&Config{}).PolicyFor("x").Vulnerabilities.FailOn.String() != "any" {
		t.Errorf("no configuration: the default threshold is not any")
	}
	if got := strings.Join(r.Config.EnvNames(), ","); got != "dev,prod" {
		t.Errorf("EnvNames = %s", got)
	}
	a := prod.Vulnerabilities.Allow[0]
	day := time.Date(2026, 3, 31, 23, 59, 0, 0, time.UTC)
	if a.Expired(day) || !a.Expired(day.Add(time.Minute)) || !(Allowance{Until: "x"}).Expired(day) {
		t.Errorf("an allowance holds through its last day, UTC")
	}
}

func TestThreshold(t *testing.T) {
	for _, c := range []struct {
		text  string
		score float64
		fails []float64
		holds []float64
	}{
		{"any", 0, []float64{0, 0.1, 9.8, -1}, nil},
		{"low", 0.1, []float64{0.1, -1}, []float64{0}},
		{"medium", 4, []float64{4, 6.9}, []float64{3.9}},
		{"HIGH", 7, []float64{7, 10}, []float64{6.9}},
		{"critical", 9, []float64{9, -1}, []float64{8.9}},
		{"never", -1, nil, []float64{10, -1}},
		{"5.5", 5.5, []float64{5.5}, []float64{5.4}},
	} {
		th, err := ParseThreshold(c.text)
		if err != nil {
			t.Fatal(err)
		}
		if c.score >= 0 && th.Score != c.score {
			t.Errorf("%s: score %v", c.text, th.Score)
		}
		for _, s := range c.fails {
			if !th.Fails(s) {
				t.Errorf("%s: %v does not fail", c.text, s)
			}
		}
		for _, s := range c.holds {
			if th.Fails(s) {
				t.Errorf("%s: %v fails", c.text, s)
			}
		}
		b, _ := th.MarshalJSON()
		var back Threshold
		if err := back.UnmarshalJSON(b); err != nil || back.Score != th.Score {
			t.Errorf("%s: JSON round trip %s → %+v, %v", c.text, b, back, err)
		}
	}
	for _, bad := range []string{"severe", "11", "-1", ""} {
		if _, err := ParseThreshold(bad); err == nil {
			t.Errorf("ParseThreshold(%q) accepted", bad)
		}
	}
	var th Threshold
	if err := th.UnmarshalJSON([]byte(`{}`)); err == nil {
		t.Error("a threshold that is an object was accepted")
	}
}

// The digest covers what the manifest says, not how it is written.
func TestManifest_Digest(t *testing.T) {
	a, _ := load(t, tree())
	fsys := tree()
	fsys["packages/lib/1.1.0.yaml"] = &fstest.MapFile{Data: []byte("# a comment\nlicense:   Apache-2.0\nversion: \"1.1.0\"\nname: lib\n")}
	b, _ := load(t, fsys)
	fsys["packages/lib/1.1.0.yaml"] = &fstest.MapFile{Data: []byte("name: lib\nversion: 1.1.0\nlicense: MIT\n")}
	c, _ := load(t, fsys)
	da, db, dc := a.Package("lib").Version("1.1.0").Digest(), b.Package("lib").Version("1.1.0").Digest(), c.Package("lib").Version("1.1.0").Digest()
	if da != db {
		t.Errorf("reformatting changed the digest: %s vs %s", da, db)
	}
	if da == dc || !strings.HasPrefix(da, "sha256:") || len(da) != 71 {
		t.Errorf("digests %s %s", da, dc)
	}
	web := a.Package("web").Versions[0]
	before := web.Digest()
	web.Artifacts[0].Status = "something else"
	if web.Digest() != before {
		t.Error("the artifact status changed the digest")
	}
}

func TestLock_Files(t *testing.T) {
	fsys := tree()
	fsys["packages/prod.lock.json"] = &fstest.MapFile{Data: []byte(`{"environment": "prod", "packages": [{"name": "web", "version": "1.0.0", "digest": "sha256:00"}]}`)}
	r, issues := load(t, fsys)
	if issues != nil {
		t.Fatal(issues)
	}
	if l := r.Locks["prod"]; l == nil || l.Get("web") == nil || l.Get("lib") != nil {
		t.Fatalf("locks = %+v", r.Locks)
	}
	for name, c := range map[string]struct{ data, want string }{
		"wrong env":     {`{"environment": "dev", "packages": []}`, `packages/prod.lock.json: environment: environment "dev" does not match the file name (want "prod")`},
		"syntax":        {"{\n  \"environment\": \"prod\",\n  \"packages\": [,]\n}", `packages/prod.lock.json:3:16: invalid character ','`},
		"unknown field": {`{"environment": "prod", "pakages": []}`, `unknown field "pakages"`},
		"type":          {"{\"environment\": 3}", `packages/prod.lock.json:1:17: json: cannot unmarshal number`},
		"no env":        {`{"packages": []}`, `packages/prod.lock.json: environment: required field is missing`},
	} {
		fsys["packages/prod.lock.json"] = &fstest.MapFile{Data: []byte(c.data)}
		_, issues := load(t, fsys)
		if len(issues) != 1 || !strings.Contains(issues[0], c.want) {
			t.Errorf("%s: issues %v, want %q", name, issues, c.want)
		}
	}
}
