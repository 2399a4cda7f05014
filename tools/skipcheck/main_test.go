package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// demo is a module whose tests pass, fail and skip the ways a real suite does: a plain
// skip, a skipped subtest among passing ones, and (with FAIL=1) a failure.
var demo = map[string]string{
	"go.mod": "module example.com/demo\n\ngo 1.26\n",
	"demo_test.go": `package demo

import (
	"os"
	"testing"
)

func TestPasses(t *testing.T) { t.Log("fine") }

func TestNeedsTool(t *testing.T) { t.Skip("frobnicate is not installed") }

func TestBackends(t *testing.T) {
	for _, b := range []string{"mem", "file"} {
		t.Run(b, func(t *testing.T) {
			if b == "file" {
				t.Skipf("%s has no conditional reads", b)
			}
		})
	}
}

func TestMaybeFails(t *testing.T) {
	if os.Getenv("FAIL") == "1" {
		t.Fatal("the claim does not hold")
	}
}
`,
	"sub/sub_test.go": "package sub\n\nimport \"testing\"\n\nfunc TestSub(t *testing.T) { t.Skip(\"needs realworld data\") }\n",
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// goTestJSON runs the real `go test -json` on the demo module, as make test does on ours.
func goTestJSON(t *testing.T, dir string, env ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0"}, env...)...)
	out, err := cmd.Output()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("go test -json: %v", err)
	}
	return out
}

func check(t *testing.T, stream []byte, dir, allow string) (int, string) {
	t.Helper()
	list := filepath.Join(t.TempDir(), "allowed-skips.txt")
	if err := os.WriteFile(list, []byte(allow), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code := run(bytes.NewReader(stream), &out, list, filepath.Join(dir, "go.mod"))
	return code, out.String()
}

func TestRun_RealGoTest(t *testing.T) {
	dir := writeTree(t, demo)
	stream := goTestJSON(t, dir)

	// No allow-list entries: every skip fails the run, each named with its reason.
	code, out := check(t, stream, dir, "")
	if code != 1 {
		t.Errorf("three unallowed skips: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"skipped tests: 3, of which 3 not on the allow-list",
		"SKIP  TestNeedsTool: demo_test.go:",
		"frobnicate is not installed",
		"SKIP  TestBackends/file: demo_test.go:",
		"SKIP sub TestSub: sub_test.go:",
		"ok  \texample.com/demo\t",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	for _, noise := range []string{"=== RUN", "--- PASS", "PASS\n", "fine"} {
		if strings.Contains(out, noise) {
			t.Errorf("the report of a passing run shows %q:\n%s", noise, out)
		}
	}

	// All three allowed, one through NAME/...: the run passes.
	allow := `# why each may skip
. TestNeedsTool        # frobnicate is optional
. TestBackends/...     # the file backend has no conditional reads
sub TestSub            # realworld data is beside the repository in CI only
`
	if code, out := check(t, stream, dir, allow); code != 0 || !strings.Contains(out, "skipped tests: 3, each on the allow-list") {
		t.Errorf("every skip allowed: exit %d\n%s", code, out)
	}

	// One left off: that one fails the run, the others do not appear.
	code, out = check(t, stream, dir, strings.Replace(allow, "sub TestSub", "# sub TestSub", 1))
	if code != 1 || !strings.Contains(out, "SKIP sub TestSub") || strings.Contains(out, "TestNeedsTool:") {
		t.Errorf("one skip not allowed: exit %d\n%s", code, out)
	}

	// An entry naming a test that ran shows as a note, and does not fail the run.
	if code, out := check(t, stream, dir, allow+". TestPasses # not any more\n"); code != 0 || !strings.Contains(out, "allows . TestPasses to skip, and it did not") {
		t.Errorf("a stale entry: exit %d\n%s", code, out)
	}

	// Marked "sometimes" (it skips only where its data is absent), a test that ran is no note.
	if code, out := check(t, stream, dir, allow+". TestPasses sometimes # data absent elsewhere\n"); code != 0 || strings.Contains(out, "TestPasses") {
		t.Errorf("a sometimes entry: exit %d\n%s", code, out)
	}

	// A failed test fails the run with its output, even with every skip allowed.
	failing := goTestJSON(t, dir, "FAIL=1")
	code, out = check(t, failing, dir, allow)
	if code != 1 || !strings.Contains(out, "--- FAIL: TestMaybeFails") || !strings.Contains(out, "the claim does not hold") || !strings.Contains(out, "failed tests: 1") {
		t.Errorf("a failing test: exit %d\n%s", code, out)
	}
}

func TestRun_AllowListNeedsReasons(t *testing.T) {
	dir := writeTree(t, demo)
	for _, bad := range []string{
		". TestNeedsTool\n",                        // no reason
		". TestNeedsTool #   \n",                   // an empty one
		"TestNeedsTool # the package is missing\n", // one field
		". TestNeedsTool often # a bad third field\n",
	} {
		code, out := check(t, []byte(`{"Action":"pass","Package":"example.com/demo"}`+"\n"), dir, bad)
		if code != 2 || !strings.Contains(out, "allowed-skips.txt:1:") {
			t.Errorf("allow-list %q: exit %d\n%s", bad, code, out)
		}
	}
}

// An empty stream (go test never ran, or its output went elsewhere) is not a pass.
func TestRun_NoEvents(t *testing.T) {
	dir := writeTree(t, demo)
	if code, out := check(t, nil, dir, ""); code != 1 || !strings.Contains(out, "no `go test -json` events") {
		t.Errorf("no events: exit %d\n%s", code, out)
	}
}

// A build failure fails the run and shows the compiler's message.
func TestRun_BuildFailure(t *testing.T) {
	files := map[string]string{}
	for k, v := range demo {
		files[k] = v
	}
	files["broken_test.go"] = "package demo\n\nfunc broken() { undefined() }\n"
	dir := writeTree(t, files)
	code, out := check(t, goTestJSON(t, dir), dir, "")
	if code != 1 || !strings.Contains(out, "undefined: undefined") {
		t.Errorf("a build failure: exit %d\n%s", code, out)
	}
}
