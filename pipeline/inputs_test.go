package pipeline_test

import (
	"os"
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
