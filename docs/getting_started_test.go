package docs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var shBlock = regexp.MustCompile("(?s)```sh\n(.*?)```")

// getting-started.md is true: its sh blocks, run in order in one shell as a new user would
// paste them, with circle built from this checkout on PATH, a fresh HOME and the test
// kube-apiserver as the cluster, all succeed, and say what the guide says they say.
func TestGettingStarted(t *testing.T) {
	guide, err := os.ReadFile("getting-started.md")
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	blocks := shBlock.FindAllStringSubmatch(string(guide), -1)
	if len(blocks) < 6 {
		t.Fatalf("%d sh blocks in the guide", len(blocks))
	}
	for _, b := range blocks {
		script.WriteString(b[1])
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "circle"), "../cmd/circle")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	kube := testenv.StartKube(t)
	work, home := t.TempDir(), t.TempDir()
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+home,
		"XDG_CONFIG_HOME=", "KUBECONFIG="+kube.Kubeconfig(t), "CIRCLE_AGE_KEY=", "CIRCLE_KEY_FILES=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the guide's commands failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"dev: valid (6 values, 1 secret, 7 objects)", // what section 2 says validate prints
		"shop-dev.example.com",                       // the plan shows the host moving
		"exit 2",                                     // and exits 2
		"config.json",                                // the published build's files
		"unchanged",                                  // the second install changes nothing
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the guide's output lacks %q:\n%s", want, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(work, "circle-install.yaml")); err != nil || !strings.Contains(string(b), "kind: Deployment") {
		t.Errorf("install --export wrote %d bytes (%v)", len(b), err)
	}
}
