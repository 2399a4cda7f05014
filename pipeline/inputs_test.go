package pipeline_test

import (
	"os"
	"strings"
	"testing"

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
