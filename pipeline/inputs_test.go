package pipeline_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/testenv"
)

func inputs(t *testing.T, dir string) map[string]string {
	t.Helper()
	s, problems := repo.LoadSettings(os.DirFS(dir))
	if problems != nil {
		t.Fatal(problems)
	}
	in, err := pipeline.Inputs(os.DirFS(dir), s)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// An environment's input digest moves with the files its build reads and no others.
func TestInputs(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	before := inputs(t, dir)
	for _, c := range []struct {
		file    string
		changes []string
	}{
		{"README.md", nil},
		{"notes/todo.txt", nil},
		{"config/dev/extra.yaml", []string{"dev"}},
		{"secrets/prod/extra.yaml", []string{"prod"}},
		{"secrets/staging.sops.yaml", []string{"staging"}},
		{"config/base/extra.yaml", []string{"dev", "staging", "prod"}},
		{"deploy/prod/extra.yaml", []string{"dev", "staging", "prod"}}, // an overlay may reach any folder
		{"artifacts/api-1.2.0.tar.txt", []string{"dev", "staging", "prod"}},
		{"circle.yaml", []string{"dev", "staging", "prod"}},
	} {
		content := "changed: " + c.file + "\n"
		if c.file == "circle.yaml" {
			b, _ := os.ReadFile(dir + "/circle.yaml")
			content = string(b) + "# changed\n"
		}
		testenv.WriteFile(t, dir, c.file, content)
		after := inputs(t, dir)
		changed := map[string]bool{}
		for _, env := range c.changes {
			changed[env] = true
		}
		for _, env := range []string{"dev", "staging", "prod"} {
			if (after[env] != before[env]) != changed[env] {
				t.Errorf("%s: %s's digest moved %t, want %t", c.file, env, after[env] != before[env], changed[env])
			}
		}
		before = after
	}
}

// An overlay that reaches a base outside paths.manifests (../../common) reads the files
// there: changing one moves the digest, so the daemon does not skip it as unchanged; a file
// beside it that no overlay reaches still does not. A kustomization that cannot be walked
// makes every file an input.
func TestInputs_BaseOutsideManifests(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	testenv.WriteFile(t, dir, "common/kustomization.yaml", "resources:\n  - cm.yaml\n")
	testenv.WriteFile(t, dir, "common/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: common\ndata:\n  k: v1\n")
	k, err := os.ReadFile(dir + "/deploy/dev/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	testenv.WriteFile(t, dir, "deploy/dev/kustomization.yaml", strings.Replace(string(k), "  - ../base\n", "  - ../base\n  - ../../common\n", 1))
	before := inputs(t, dir)
	testenv.WriteFile(t, dir, "common/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: common\ndata:\n  k: v2\n")
	after := inputs(t, dir)
	if after["dev"] == before["dev"] {
		t.Error("a change in a base the dev overlay reaches outside deploy/ left dev's digest as it was")
	}
	testenv.WriteFile(t, dir, "elsewhere/notes.yaml", "x: 1\n")
	if again := inputs(t, dir); again["dev"] != after["dev"] {
		t.Error("a file no overlay reaches moved dev's digest")
	}
	testenv.WriteFile(t, dir, "deploy/dev/kustomization.yaml", "resources: [\n")
	broken := inputs(t, dir)
	testenv.WriteFile(t, dir, "elsewhere/notes.yaml", "x: 2\n")
	if inputs(t, dir)["prod"] == broken["prod"] {
		t.Error("with an overlay that cannot be walked, every file should count")
	}
}

// Input digests are taken from hostile repositories before anything is validated: an
// overlay naming a URL, a Git remote or a path out of the snapshot makes no request, starts
// no process and reads nothing outside (every file then counts as an input, which only
// rebuilds), and a cycle of bases or a chain longer than render's limit ends at once.
func TestInputs_HostileOverlay(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	// A git on PATH that leaves a mark if anything runs it.
	bin, mark := t.TempDir(), filepath.Join(t.TempDir(), "git-ran")
	testenv.WriteFile(t, bin, "git", "#!/bin/sh\ntouch "+mark+"\n")
	if err := os.Chmod(filepath.Join(bin, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	outside := t.TempDir()
	testenv.WriteFile(t, outside, "kustomization.yaml", "resources:\n  - cm.yaml\n")
	for name, kustomization := range map[string]string{
		"a URL":                "resources:\n  - " + srv.URL + "/cm.yaml\n",
		"a Git remote":         "resources:\n  - " + srv.URL + "/org/repo.git//base?ref=main\n  - github.com/org/repo//base?ref=main\n",
		"a path out":           "resources:\n  - ../../../../../../../.." + outside + "\n",
		"an absolute path":     "resources:\n  - " + outside + "\n",
		"a cycle":              "resources:\n  - ../dev\n",
		"a component by URL":   "components:\n  - " + srv.URL + "/component\n",
		"a generator file URL": "configMapGenerator:\n  - name: x\n    files:\n      - " + srv.URL + "/secret.txt\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := testenv.CopyTree(t, "../examples")
			testenv.WriteFile(t, dir, "deploy/dev/kustomization.yaml", kustomization)
			done := make(chan map[string]string, 1)
			go func() { done <- inputs(t, dir) }()
			var got map[string]string
			select {
			case got = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("input digests did not finish within 30 s")
			}
			if len(got) != 3 {
				t.Errorf("digests %v, want one per environment", got)
			}
			// Nothing outside the snapshot is read: changing it moves no digest.
			testenv.WriteFile(t, outside, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "+name+"\n")
			if again := inputs(t, dir); again["dev"] != got["dev"] {
				t.Error("a file outside the snapshot moved dev's digest")
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d request(s) reached the server named in the kustomizations", n)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("git was run")
	}

	// A chain of bases longer than render's limit is cut short, not followed.
	dir := testenv.CopyTree(t, "../examples")
	testenv.WriteFile(t, dir, "deploy/dev/kustomization.yaml", "resources:\n  - ../chain/0\n")
	for i := range 300 {
		testenv.WriteFile(t, dir, fmt.Sprintf("deploy/chain/%d/kustomization.yaml", i), fmt.Sprintf("resources:\n  - ../%d\n", i+1))
	}
	start := time.Now()
	if got := inputs(t, dir); len(got) != 3 || time.Since(start) > 30*time.Second {
		t.Errorf("a 300-deep chain: %v in %s", got, time.Since(start))
	}
}
