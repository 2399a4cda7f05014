// Command skipcheck reads `go test -json` on its standard input and prints what a person
// needs of it: each package's result line, the output of every test that failed, and a
// summary of the tests that skipped. It exits 1 when a test failed, or when a test skipped
// that the allow-list does not name: a test that did not run must either fail or have a
// written reason, so CI cannot pass with tests that silently stopped running (a missing
// tool, a server that was not installed).
//
//	set -o pipefail; go test -json ./... | go run ./tools/skipcheck -allow .ci/allowed-skips.txt
//
// The allow-list has one entry a line, "PACKAGE TEST # why": PACKAGE relative to the module
// ("storage", "." for the root package), TEST a test's full name, or NAME/... for a test and
// every subtest under it. The comment is required. Blank lines and lines starting with #
// are ignored.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

func main() {
	allow := flag.String("allow", "", "the allow-list file: PACKAGE TEST # why, one a line")
	gomod := flag.String("gomod", "go.mod", "the module's go.mod, for the module path the allow-list's packages are relative to")
	flag.Parse()
	os.Exit(run(os.Stdin, os.Stdout, *allow, *gomod))
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output and build-fail
}

// entry is one line of the allow-list.
type entry struct {
	pkg, test, why string
	line           int
	used           bool
	// sometimes marks a test that skips on some machines only (its data is absent), so
	// that it ran is no sign the entry is stale.
	sometimes bool
}

// allows reports whether e names pkg's test.
func (e *entry) allows(module, pkg, test string) bool {
	want := module
	if e.pkg != "." {
		want = path.Join(module, e.pkg)
	}
	if pkg != want {
		return false
	}
	if prefix, ok := strings.CutSuffix(e.test, "/..."); ok {
		return test == prefix || strings.HasPrefix(test, prefix+"/")
	}
	return test == e.test
}

func readAllowList(name string) ([]*entry, error) {
	if name == "" {
		return nil, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("allow-list: %w", err)
	}
	var out []*entry
	var problems []error
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields, why, _ := strings.Cut(line, "#")
		f := strings.Fields(fields)
		why = strings.TrimSpace(why)
		switch {
		case len(f) != 2 && (len(f) != 3 || f[2] != "sometimes"):
			problems = append(problems, fmt.Errorf("%s:%d: want PACKAGE TEST [sometimes] # why, got %q", name, i+1, line))
		case why == "":
			problems = append(problems, fmt.Errorf("%s:%d: %s %s: say after # why it may skip", name, i+1, f[0], f[1]))
		default:
			out = append(out, &entry{pkg: f[0], test: f[1], why: why, line: i + 1, sometimes: len(f) == 3})
		}
	}
	return out, errors.Join(problems...)
}

// modulePath reads the module line of a go.mod.
func modulePath(gomod string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", fmt.Errorf("module path: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`), nil
		}
	}
	return "", fmt.Errorf("module path: no module line in %s", gomod)
}

type skip struct{ pkg, test, why string }

// run checks the stream in and writes the report to out; it returns the exit code.
func run(in io.Reader, out io.Writer, allowFile, gomod string) int {
	allowed, err := readAllowList(allowFile)
	if err != nil {
		fmt.Fprintln(out, err)
		return 2
	}
	module, err := modulePath(gomod)
	if err != nil {
		fmt.Fprintln(out, err)
		return 2
	}

	var (
		events, failedTests int
		failed              bool
		skips               []skip
		ran                 = map[string]bool{} // packages whose tests ran
		pending             = map[string][]string{}
	)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20) // a test may print long lines
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, sc.Text()) // not an event: go's own messages, shown as they are
			continue
		}
		events++
		key := e.Package + " " + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Test == "":
			switch e.Action {
			case "output":
				if o := e.Output; o != "PASS\n" && !framing(o) {
					fmt.Fprint(out, o)
				}
			case "fail":
				failed = true
				ran[e.Package] = true
			case "pass":
				ran[e.Package] = true
			}
		default:
			switch e.Action {
			case "output":
				if !framing(e.Output) {
					pending[key] = append(pending[key], e.Output)
				}
			case "fail":
				failed = true
				failedTests++
				fmt.Fprint(out, strings.Join(pending[key], ""))
				delete(pending, key)
			case "pass":
				delete(pending, key)
			case "skip":
				skips = append(skips, skip{pkg: e.Package, test: e.Test, why: skipReason(pending[key])})
				delete(pending, key)
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "skipcheck: reading the test events: %v\n", err)
		return 1
	}
	// A test binary that crashed or timed out leaves tests that never finished: their
	// output is what explains it.
	if failed && len(pending) > 0 {
		keys := make([]string, 0, len(pending))
		for k := range pending {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprint(out, strings.Join(pending[k], ""))
		}
	}
	if events == 0 {
		fmt.Fprintln(out, "skipcheck: no `go test -json` events on the standard input")
		return 1
	}

	var refused []skip
	for _, s := range skips {
		ok := false
		for _, a := range allowed {
			if a.allows(module, s.pkg, s.test) {
				a.used, ok = true, true
			}
		}
		if !ok {
			refused = append(refused, s)
		}
	}
	fmt.Fprintln(out)
	switch {
	case len(skips) == 0:
		fmt.Fprintln(out, "skipped tests: none")
	case len(refused) == 0:
		fmt.Fprintf(out, "skipped tests: %d, each on the allow-list %s\n", len(skips), allowFile)
	default:
		fmt.Fprintf(out, "skipped tests: %d, of which %d not on the allow-list %s (a test that cannot run fails; or list it there with the reason):\n",
			len(skips), len(refused), allowFile)
		for _, s := range refused {
			fmt.Fprintf(out, "  SKIP %s %s: %s\n", strings.TrimPrefix(strings.TrimPrefix(s.pkg, module), "/"), s.test, s.why)
		}
	}
	for _, a := range allowed {
		if !a.used && !a.sometimes && ran[path.Join(module, strings.TrimPrefix(a.pkg, "."))] {
			fmt.Fprintf(out, "note: %s:%d allows %s %s to skip, and it did not: remove the entry if it no longer skips\n", allowFile, a.line, a.pkg, a.test)
		}
	}
	if failedTests > 0 {
		fmt.Fprintf(out, "failed tests: %d\n", failedTests)
	}
	if failed || len(refused) > 0 {
		return 1
	}
	return 0
}

// framing tells the lines test2json adds around a test's own output (=== RUN and the
// like), which a person reading a failure does not need.
func framing(line string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// skipReason is what the test said when it skipped: its output after the "--- SKIP" line,
// on one line.
func skipReason(lines []string) string {
	var why []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		why = append(why, l)
	}
	if len(why) == 0 {
		return "(no reason given)"
	}
	return strings.Join(why, " ")
}
