package solver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
)

// randomUniverse builds a small universe: packages p0..p(n-1), each with up to 3 versions
// among 1.0.0, 1.1.0, 2.0.0, 3.0.0, depending on later packages (and sometimes earlier
// ones, making cycles) with ranges drawn from a list that covers the common forms.
func randomUniverse(t *testing.T, rng *rand.Rand, n int) (*universe, string) {
	ranges := []string{"^1.0.0", "^2.0.0", ">=1.1.0", "<2.0.0", "*", "1.0.0", "^1.0.0 || ^3.0.0", "~1.1.0", ">=2.0.0 <3.0.0"}
	all := []string{"1.0.0", "1.1.0", "2.0.0", "3.0.0"}
	var lines []string
	for p := 0; p < n; p++ {
		perm := rng.Perm(len(all))
		for _, vi := range perm[:1+rng.IntN(3)] {
			line := fmt.Sprintf("p%d %s:", p, all[vi])
			var deps []string
			for q := 0; q < n; q++ {
				if q != p && rng.IntN(4) == 0 {
					deps = append(deps, fmt.Sprintf("p%d %s", q, ranges[rng.IntN(len(ranges))]))
				}
			}
			lines = append(lines, line+" "+strings.Join(deps, ", "))
		}
	}
	var req []string
	for q := 0; q < n; q++ {
		if rng.IntN(3) == 0 {
			req = append(req, fmt.Sprintf("p%d %s", q, ranges[rng.IntN(len(ranges))]))
		}
	}
	return newUniverse(t, lines...), strings.Join(req, ", ")
}

// valid checks a selection against every dependency of what it selects, and that it
// selects nothing unreachable from the requirements.
func valid(u *universe, requires []Dependency, sel map[string]*semver.Version) error {
	reach := map[string]bool{}
	var visit func(deps []Dependency) error
	visit = func(deps []Dependency) error {
		for _, d := range deps {
			v, ok := sel[d.Name]
			if !ok {
				return fmt.Errorf("%s is required but not selected", d.Name)
			}
			if !mustConstraint(d.Range).Check(v) {
				return fmt.Errorf("%s %s does not satisfy %s", d.Name, v, d.Range)
			}
			if !reach[d.Name] {
				reach[d.Name] = true
				if err := visit(u.deps[d.Name+"@"+v.String()]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(requires); err != nil {
		return err
	}
	for n := range sel {
		if !reach[n] {
			return fmt.Errorf("%s is selected but nothing requires it", n)
		}
	}
	return nil
}

func mustConstraint(s string) *semver.Constraints {
	c, err := semver.NewConstraint(s)
	if err != nil {
		panic(err)
	}
	return c
}

// bruteForce reports whether any selection satisfies the requirements, by trying them all.
func bruteForce(u *universe, requires []Dependency) bool {
	var names []string
	for n := range u.versions {
		names = append(names, n)
	}
	sel := map[string]*semver.Version{}
	var try func(i int) bool
	try = func(i int) bool {
		if i == len(names) {
			return valid(u, requires, sel) == nil
		}
		if try(i + 1) {
			return true
		}
		for _, v := range u.versions[names[i]] {
			sel[names[i]] = v
			if try(i + 1) {
				delete(sel, names[i])
				return true
			}
		}
		delete(sel, names[i])
		return false
	}
	return try(0)
}

var lineRefs = regexp.MustCompile(`\((\d+)\)`)

// The solver is sound (every solution it returns is valid) and complete (it fails only
// when exhaustive search finds nothing), on 600 seeded random universes; every failure is
// explained, ending in the conclusion, and every "(n)" refers back to an earlier line.
func TestSolve_AgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	solved, failed := 0, 0
	for i := 0; i < 600; i++ {
		u, req := randomUniverse(t, rng, 2+rng.IntN(4))
		requires := reqs(req)
		sol, err := Solve(context.Background(), u, "root", requires, Options{})
		exists := bruteForce(u, requires)
		var ns *NoSolutionError
		switch {
		case err == nil:
			solved++
			if verr := valid(u, requires, sol.Versions); verr != nil {
				t.Fatalf("universe %d (%s): invalid solution %s: %v\n%v", i, req, solutionString(sol), verr, u.deps)
			}
		case errors.As(err, &ns):
			failed++
			if exists {
				t.Fatalf("universe %d (%s): no solution claimed, but one exists:\n%s\n%v %v", i, req, ns.Explanation, u.versions, u.deps)
			}
			if !strings.HasSuffix(ns.Explanation, "version solving failed.") {
				t.Errorf("universe %d: explanation does not conclude:\n%s", i, ns.Explanation)
			}
			lines := strings.Split(ns.Explanation, "\n")
			defined := map[string]bool{}
			for _, l := range lines {
				if m := regexp.MustCompile(`^\((\d+)\)`).FindStringSubmatch(l); m != nil {
					defined[m[1]] = true
					l = l[len(m[0]):]
				}
				for _, ref := range lineRefs.FindAllStringSubmatch(l, -1) {
					if !defined[ref[1]] {
						t.Errorf("universe %d: line %q refers to (%s) before it is written:\n%s", i, l, ref[1], ns.Explanation)
					}
				}
			}
		default:
			t.Fatalf("universe %d: %v", i, err)
		}
	}
	if solved < 100 || failed < 100 {
		t.Errorf("%d solved, %d failed: the generator no longer covers both", solved, failed)
	}
	t.Logf("%d solved, %d failed", solved, failed)
}
