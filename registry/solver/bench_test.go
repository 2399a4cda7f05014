package solver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
)

// generated is a Source over a generated universe, kept in maps so the benchmark measures
// the solver, not a parser.
type generated struct {
	versions map[string][]*semver.Version
	deps     map[string][]Dependency // "name@version"
	requires []Dependency
}

func (g *generated) Versions(name string) ([]*semver.Version, error) { return g.versions[name], nil }
func (g *generated) Dependencies(name string, v *semver.Version) ([]Dependency, error) {
	return g.deps[name+"@"+v.Original()], nil
}

// randomGenerated is the benchmark universe: n packages × 20 versions (1.0.0 … 4.4.0),
// each version depending on up to 4 packages further down the list with a range drawn
// from the forms users write; the root requires 30 packages. Seeded: the same seed is
// the same universe.
func randomGenerated(n int, seed uint64) *generated {
	rng := rand.New(rand.NewPCG(seed, seed))
	g := &generated{versions: map[string][]*semver.Version{}, deps: map[string][]Dependency{}}
	name := func(i int) string { return fmt.Sprintf("p%04d", i) }
	randomRange := func() string {
		major, minor := 1+rng.IntN(4), rng.IntN(5)
		switch rng.IntN(6) {
		case 0:
			return fmt.Sprintf("^%d.0.0", major)
		case 1:
			return fmt.Sprintf(">=%d.%d.0", major, minor)
		case 2:
			return fmt.Sprintf("~%d.%d.0", major, minor)
		case 3:
			return fmt.Sprintf("%d.x", major)
		case 4:
			return fmt.Sprintf(">=%d.0.0 <%d.0.0", major, major+1+rng.IntN(2))
		}
		return "*"
	}
	for i := 0; i < n; i++ {
		for major := 1; major <= 4; major++ {
			for minor := 0; minor < 5; minor++ {
				v := semver.MustParse(fmt.Sprintf("%d.%d.0", major, minor))
				g.versions[name(i)] = append(g.versions[name(i)], v)
				var deps []Dependency
				for k := rng.IntN(5); k > 0 && i+1 < n; k-- {
					deps = append(deps, Dependency{Name: name(i + 1 + rng.IntN(min(n-i-1, 50))), Range: randomRange()})
				}
				g.deps[name(i)+"@"+v.Original()] = deps
			}
		}
	}
	for k := 0; k < 30; k++ {
		g.requires = append(g.requires, Dependency{Name: name(rng.IntN(n)), Range: randomRange()})
	}
	return g
}

// newestAlwaysWrong forces backtracking: the root pins q to its oldest version; each of n
// packages p_i has 20 versions, version v needing r_i exactly v, and r_i v needing q >= v.
// Newest-first picks p_i 20, learns that it cannot work only after choosing r_i, backjumps,
// and so on down to version 0: 20 conflicts per package.
func newestAlwaysWrong(n int) *generated {
	g := &generated{versions: map[string][]*semver.Version{}, deps: map[string][]Dependency{}}
	for v := 0; v < 20; v++ {
		g.versions["q"] = append(g.versions["q"], semver.MustParse(fmt.Sprintf("%d.0.0", v)))
	}
	g.requires = []Dependency{{Name: "q", Range: "=0.0.0"}}
	for i := 0; i < n; i++ {
		p, r := fmt.Sprintf("p%04d", i), fmt.Sprintf("r%04d", i)
		g.requires = append(g.requires, Dependency{Name: p, Range: "*"})
		for v := 0; v < 20; v++ {
			ver := semver.MustParse(fmt.Sprintf("%d.0.0", v))
			g.versions[p] = append(g.versions[p], ver)
			g.versions[r] = append(g.versions[r], ver)
			g.deps[p+"@"+ver.Original()] = []Dependency{{Name: r, Range: "=" + ver.Original()}}
			g.deps[r+"@"+ver.Original()] = []Dependency{{Name: "q", Range: ">=" + ver.Original()}}
		}
	}
	return g
}

func (g *generated) universe() *universe {
	return &universe{versions: g.versions, deps: g.deps, asked: map[string]int{}}
}

// The benchmark universes resolve, to valid solutions, the same way every time.
func TestSolve_GeneratedUniverses(t *testing.T) {
	for _, c := range []struct {
		name string
		g    *generated
	}{
		{"1000x20 random", randomGenerated(1000, 42)},
		{"newest always wrong, 60 packages", newestAlwaysWrong(60)},
	} {
		start := time.Now()
		sol, err := Solve(context.Background(), c.g, "root", c.g.requires, Options{})
		elapsed := time.Since(start)
		var ns *NoSolutionError
		if errors.As(err, &ns) {
			t.Fatalf("%s: no solution:\n%s", c.name, ns.Explanation)
		}
		if err != nil {
			t.Fatal(err)
		}
		// Dependencies were recorded under Original(); valid() looks them up by String(),
		// which is the same for these plain versions.
		if err := valid(c.g.universe(), c.g.requires, sol.Versions); err != nil {
			t.Fatalf("%s: invalid solution: %v", c.name, err)
		}
		again, _ := Solve(context.Background(), c.g, "root", c.g.requires, Options{})
		if solutionString(again) != solutionString(sol) || again.Stats != sol.Stats {
			t.Errorf("%s: a second solve differs", c.name)
		}
		t.Logf("%s: %d packages selected, %+v, %v", c.name, len(sol.Versions), sol.Stats, elapsed)
		if c.name[0] == 'n' && sol.Stats.Conflicts < 60*19 {
			t.Errorf("the backtracking universe took %d conflicts, want at least %d: it no longer forces backtracking", sol.Stats.Conflicts, 60*19)
		}
		for _, v := range sol.Versions {
			if c.name[0] == 'n' && v.Major() != 0 {
				t.Errorf("%s: a version other than the oldest was chosen: %v", c.name, v)
				break
			}
		}
	}
}

// BenchmarkSolve_Random1000x20 is the goal: ≤ 1 s for 1,000 packages × 20 versions.
func BenchmarkSolve_Random1000x20(b *testing.B) {
	g := randomGenerated(1000, 42)
	var stats Stats
	for b.Loop() {
		sol, err := Solve(context.Background(), g, "root", g.requires, Options{})
		if err != nil {
			b.Fatal(err)
		}
		stats = sol.Stats
	}
	b.ReportMetric(float64(stats.Decisions), "decisions")
	b.ReportMetric(float64(stats.Conflicts), "conflicts")
}

// BenchmarkSolve_Backtracking200 is the worst case for newest-first: 200 packages whose 19
// newest versions all fail late, 3,800 conflicts.
func BenchmarkSolve_Backtracking200(b *testing.B) {
	g := newestAlwaysWrong(200)
	var stats Stats
	for b.Loop() {
		sol, err := Solve(context.Background(), g, "root", g.requires, Options{})
		if err != nil {
			b.Fatal(err)
		}
		stats = sol.Stats
	}
	b.ReportMetric(float64(stats.Decisions), "decisions")
	b.ReportMetric(float64(stats.Conflicts), "conflicts")
}
