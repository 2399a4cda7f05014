package solver

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
)

// universe is a Source built from lines "name version: dep range, dep range".
type universe struct {
	versions map[string][]*semver.Version
	deps     map[string][]Dependency
	asked    map[string]int
	fail     string
}

func newUniverse(t testing.TB, lines ...string) *universe {
	t.Helper()
	u := &universe{versions: map[string][]*semver.Version{}, deps: map[string][]Dependency{}, asked: map[string]int{}}
	for _, l := range lines {
		head, deps, _ := strings.Cut(l, ":")
		f := strings.Fields(head)
		if len(f) != 2 {
			t.Fatalf("bad line %q", l)
		}
		v := semver.MustParse(f[1])
		u.versions[f[0]] = append(u.versions[f[0]], v)
		key := f[0] + "@" + v.String()
		for _, d := range strings.Split(deps, ",") {
			if d = strings.TrimSpace(d); d == "" {
				continue
			}
			name, rng, _ := strings.Cut(d, " ")
			u.deps[key] = append(u.deps[key], Dependency{Name: name, Range: rng})
		}
	}
	return u
}

func (u *universe) Versions(name string) ([]*semver.Version, error) {
	u.asked["versions "+name]++
	if name == u.fail {
		return nil, errors.New("source unavailable")
	}
	return u.versions[name], nil
}

func (u *universe) Dependencies(name string, v *semver.Version) ([]Dependency, error) {
	u.asked["deps "+name+"@"+v.String()]++
	if name+"@"+v.String() == u.fail {
		return nil, errors.New("manifest unreadable")
	}
	return u.deps[name+"@"+v.String()], nil
}

func reqs(s string) []Dependency {
	var out []Dependency
	for _, d := range strings.Split(s, ",") {
		if d = strings.TrimSpace(d); d != "" {
			name, rng, _ := strings.Cut(d, " ")
			out = append(out, Dependency{Name: name, Range: rng})
		}
	}
	return out
}

func solutionString(s *Solution) string {
	var parts []string
	for _, n := range s.Names() {
		parts = append(parts, n+" "+s.Versions[n].Original())
	}
	return strings.Join(parts, ", ")
}

func solve(t *testing.T, u *universe, requires string) (*Solution, error) {
	t.Helper()
	return Solve(context.Background(), u, "root", reqs(requires), Options{})
}

// The worked examples of pub's solver.md, "Examples", with the solutions it derives.
func TestSolve_DocExamples(t *testing.T) {
	cases := []struct {
		name, requires string
		universe       []string
		want           string
		conflicts      int
	}{
		{"no conflicts", "foo ^1.0.0",
			[]string{"foo 1.0.0: bar ^1.0.0", "bar 1.0.0", "bar 2.0.0"},
			"bar 1.0.0, foo 1.0.0", 0},
		{"avoiding conflict during decision making", "foo ^1.0.0, bar ^1.0.0",
			[]string{"foo 1.1.0: bar ^2.0.0", "foo 1.0.0", "bar 1.0.0", "bar 1.1.0", "bar 2.0.0"},
			"bar 1.1.0, foo 1.0.0", 0},
		{"performing conflict resolution", "foo >=1.0.0",
			[]string{"foo 2.0.0: bar ^1.0.0", "foo 1.0.0", "bar 1.0.0: foo ^1.0.0"},
			"foo 1.0.0", 1},
		{"conflict resolution with a partial satisfier", "foo ^1.0.0, target ^2.0.0",
			[]string{"foo 1.1.0: left ^1.0.0, right ^1.0.0", "foo 1.0.0", "left 1.0.0: shared >=1.0.0", "right 1.0.0: shared <2.0.0",
				"shared 2.0.0", "shared 1.0.0: target ^1.0.0", "target 2.0.0", "target 1.0.0"},
			"foo 1.0.0, target 2.0.0", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sol, err := solve(t, newUniverse(t, c.universe...), c.requires)
			if err != nil {
				t.Fatalf("Solve: %v", err)
			}
			if got := solutionString(sol); got != c.want {
				t.Errorf("solution = %s, want %s", got, c.want)
			}
			if sol.Stats.Conflicts != c.conflicts {
				t.Errorf("%d conflicts, want %d (the doc's trace)", sol.Stats.Conflicts, c.conflicts)
			}
		})
	}
}

func explanation(t *testing.T, err error) string {
	t.Helper()
	var ns *NoSolutionError
	if !errors.As(err, &ns) {
		t.Fatalf("err = %v, want *NoSolutionError", err)
	}
	if ns.Error() != ns.Explanation {
		t.Errorf("Error() is not the explanation")
	}
	return ns.Explanation
}

// "Linear Error Reporting": every version of foo needs baz ^3, root needs baz ^1.
func TestSolve_LinearErrorReporting(t *testing.T) {
	u := newUniverse(t, "foo 1.0.0: bar ^2.0.0", "bar 2.0.0: baz ^3.0.0", "baz 1.0.0", "baz 3.0.0")
	_, err := solve(t, u, "foo ^1.0.0, baz ^1.0.0")
	want := `Because every version of foo depends on bar ^2.0.0 which depends on baz ^3.0.0, every version of foo requires baz ^3.0.0.
So, because root requires both baz ^1.0.0 and foo ^1.0.0, version solving failed.`
	if got := explanation(t, err); got != want {
		t.Errorf("explanation:\n%s\nwant:\n%s", got, want)
	}
}

// "Branching Error Reporting": both halves of foo fail, for different reasons; the first
// conclusion gets a line number so the last sentence can refer back to it.
func TestSolve_BranchingErrorReporting(t *testing.T) {
	u := newUniverse(t, "foo 1.0.0: a ^1.0.0, b ^1.0.0", "foo 1.1.0: x ^1.0.0, y ^1.0.0",
		"a 1.0.0: b ^2.0.0", "b 1.0.0", "b 2.0.0", "x 1.0.0: y ^2.0.0", "y 1.0.0", "y 2.0.0")
	_, err := solve(t, u, "foo ^1.0.0")
	want := `    Because foo <1.1.0 depends on a ^1.0.0 which depends on b ^2.0.0, foo <1.1.0 requires b ^2.0.0.
(1) So, because foo <1.1.0 depends on b ^1.0.0, foo <1.1.0 is forbidden.

    Because foo >=1.1.0 depends on x ^1.0.0 which depends on y ^2.0.0, foo >=1.1.0 requires y ^2.0.0.
    And because foo >=1.1.0 depends on y ^1.0.0, foo >=1.1.0 is forbidden.
    And because foo <1.1.0 is forbidden (1), foo is forbidden.
    So, because root requires foo ^1.0.0, version solving failed.`
	if got := explanation(t, err); got != want {
		t.Errorf("explanation:\n%s\nwant:\n%s", got, want)
	}
}

// Failures the user meets most, each explained from the facts behind it.
func TestSolve_Explanations(t *testing.T) {
	cases := []struct {
		name, requires string
		universe       []string
		want           string
	}{
		{"unknown package", "nope ^1.0.0", nil,
			"Because prod requires nope ^1.0.0 (there is no package nope), version solving failed."},
		{"no version matches", "a ^3.0.0", []string{"a 1.0.0", "a 2.0.0"},
			"Because prod requires a ^3.0.0 (no version of a matches), version solving failed."},
		{"transitive conflict with the root", "a ^2.0.0, b ^2.0.0", []string{"a 2.0.0: b ^3.0.0", "b 2.0.0", "b 3.0.0"},
			"Because prod requires a ^2.0.0 which depends on b ^3.0.0, b ^3.0.0 is required.\nSo, because prod requires b ^2.0.0, version solving failed."},
		{"every version unavailable", "a *", []string{"a 2.0.0: b ^3.0.0", "a 1.0.0: c ^1.0.0", "b 2.0.0"},
			"Because a <2.0.0 depends on c ^1.0.0 (there is no package c) and a >=2.0.0 depends on b ^3.0.0 (no version of b matches), a is forbidden.\nSo, because prod requires a *, version solving failed."},
		{"two packages disagree", "a *, b *", []string{"a 1.0.0: c ^1.0.0", "a 2.0.0: c ^2.0.0", "b 1.0.0: c ^3.0.0", "b 2.0.0: c ^3.0.0", "c 1.0.0", "c 2.0.0", "c 3.0.0"},
			"Because a <2.0.0 depends on c ^1.0.0 and a >=2.0.0 depends on c ^2.0.0, every version of a requires c <3.0.0.\nAnd because every version of b depends on c ^3.0.0, a is incompatible with b.\nSo, because prod requires both a * and b *, version solving failed."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Solve(context.Background(), newUniverse(t, c.universe...), "prod", reqs(c.requires), Options{})
			if got := explanation(t, err); got != c.want {
				t.Errorf("explanation:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// Newest first, except what a lock prefers; pre-releases only when a range asks.
func TestSolve_Choices(t *testing.T) {
	u := newUniverse(t, "a 1.0.0", "a 1.1.0", "a 1.2.0-beta.1", "a 2.0.0", "b 1.0.0: a >=1.2.0-0 <2.0.0")
	for _, c := range []struct {
		requires string
		prefer   map[string]string
		want     string
	}{
		{"a ^1.0.0", nil, "a 1.1.0"},
		{"a *", nil, "a 2.0.0"},
		{"a >=1.2.0-0 <2.0.0", nil, "a 1.2.0-beta.1"},
		{"b *", nil, "a 1.2.0-beta.1, b 1.0.0"},
		{"a ^1.0.0", map[string]string{"a": "1.0.0"}, "a 1.0.0"},
		{"a ^1.0.0", map[string]string{"a": "2.0.0"}, "a 1.1.0"}, // the preferred version is not allowed
	} {
		opts := Options{Prefer: map[string]*semver.Version{}}
		for n, v := range c.prefer {
			opts.Prefer[n] = semver.MustParse(v)
		}
		sol, err := Solve(context.Background(), u, "prod", reqs(c.requires), opts)
		if err != nil {
			t.Fatalf("%s: %v", c.requires, err)
		}
		if got := solutionString(sol); got != c.want {
			t.Errorf("%s (prefer %v) = %s, want %s", c.requires, c.prefer, got, c.want)
		}
	}
}

// Cycles and diamonds resolve; dependencies of adjacent versions collapse into one run.
func TestSolve_Graphs(t *testing.T) {
	u := newUniverse(t, "a 1.0.0: b ^1.0.0", "b 1.0.0: a ^1.0.0", "top 1.0.0: left *, right *",
		"left 1.0.0: base ^1.0.0", "right 1.0.0: base >=1.1.0", "base 1.0.0", "base 1.1.0", "base 1.2.0", "base 2.0.0")
	sol, err := solve(t, u, "a *, top *")
	if err != nil {
		t.Fatal(err)
	}
	if got := solutionString(sol); got != "a 1.0.0, b 1.0.0, base 1.2.0, left 1.0.0, right 1.0.0, top 1.0.0" {
		t.Errorf("solution = %s", got)
	}
	if u.asked["versions a"] != 1 || u.asked["deps base@1.2.0"] != 1 {
		t.Errorf("the source was asked more than once: %v", u.asked)
	}
	if _, ok := u.asked["deps base@2.0.0"]; ok {
		t.Errorf("the source was asked about base 2.0.0, which the search never reached")
	}
}

// One input, one answer: the same solution, explanation and statistics every time.
func TestSolve_Deterministic(t *testing.T) {
	lines := []string{"foo 1.0.0: a ^1.0.0, b ^1.0.0", "foo 1.1.0: x ^1.0.0, y ^1.0.0", "a 1.0.0: b ^2.0.0", "b 1.0.0", "b 2.0.0", "x 1.0.0: y ^2.0.0", "y 1.0.0", "y 2.0.0"}
	_, err := solve(t, newUniverse(t, lines...), "foo ^1.0.0")
	first := explanation(t, err)
	for i := 0; i < 20; i++ {
		_, err := solve(t, newUniverse(t, lines...), "foo ^1.0.0")
		if got := explanation(t, err); got != first {
			t.Fatalf("run %d differs:\n%s\nvs\n%s", i, got, first)
		}
	}
}

func TestSolve_Errors(t *testing.T) {
	u := newUniverse(t, "a 1.0.0: b ^1.0.0", "b 1.0.0")
	u.fail = "b"
	if _, err := solve(t, u, "a *"); err == nil || !strings.Contains(err.Error(), "versions of b: source unavailable") {
		t.Errorf("failing Versions: %v", err)
	}
	u.fail = "a@1.0.0"
	if _, err := solve(t, u, "a *"); err == nil || !strings.Contains(err.Error(), "dependencies of a 1.0.0: manifest unreadable") {
		t.Errorf("failing Dependencies: %v", err)
	}
	u.fail = ""
	if _, err := solve(t, u, "a >>1"); err == nil || !strings.Contains(err.Error(), `range ">>1" of a`) {
		t.Errorf("bad range: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Solve(ctx, u, "root", reqs("a *"), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	var ns *NoSolutionError
	if _, err := solve(t, u, "a ^2"); !errors.As(err, &ns) {
		t.Errorf("err = %T %v", err, err)
	}
}

// explainer says why no version matches, in the source's words.
type explainer struct{ *universe }

func (e explainer) Unavailable(name, rng string) string {
	if name == "b" {
		return "b 3.0.0 is not enabled in prod"
	}
	return ""
}

func TestSolve_ExplainerWords(t *testing.T) {
	u := explainer{newUniverse(t, "a 1.0.0: b ^3.0.0", "b 2.0.0")}
	_, err := Solve(context.Background(), u, "prod", reqs("a *, c *"), Options{})
	if got := explanation(t, err); !strings.Contains(got, "(there is no package c)") {
		t.Errorf("explanation %q", got)
	}
	_, err = Solve(context.Background(), u, "prod", reqs("a *"), Options{})
	if got, want := explanation(t, err), "Because every version of a depends on b ^3.0.0 (b 3.0.0 is not enabled in prod) and prod requires a *, version solving failed."; got != want {
		t.Errorf("explanation:\n%s\nwant:\n%s", got, want)
	}
}
