package solver

import (
	"context"
	"slices"
	"testing"
)

// learnt lists the incompatibilities conflict resolution derived, as sentences.
func learnt(s *solver) []string {
	var out []string
	seen := map[*incompat]bool{}
	for _, incs := range s.incs {
		for _, inc := range incs {
			if inc.kind == kindDerived && !seen[inc] {
				seen[inc] = true
				out = append(out, s.incString(inc))
			}
		}
	}
	return out
}

// "Conflict Resolution With a Partial Satisfier", with one more version, shared 0.9.0.
// The doc's ranges live on the whole version line, where "shared <2.0.0" alone does not
// satisfy "shared 1.0.0"; here sets are over known versions, and the extra version keeps
// it so. Then the term is satisfied only by left's "shared >=1.0.0" and right's "shared
// <2.0.0" together: the satisfier does not satisfy it alone, the other assignment is a
// previous satisfier, and the solver must still learn the doc's root cause.
func TestResolve_PartialSatisfierLearnsRootCause(t *testing.T) {
	u := newUniverse(t, "foo 1.1.0: left ^1.0.0, right ^1.0.0", "foo 1.0.0", "left 1.0.0: shared >=1.0.0", "right 1.0.0: shared <2.0.0",
		"shared 2.0.0", "shared 1.0.0: target ^1.0.0", "shared 0.9.0", "target 2.0.0", "target 1.0.0")
	s := newSolver(context.Background(), u, "root", reqs("foo ^1.0.0, target ^2.0.0"), Options{})
	if err := s.run(); err != nil {
		t.Fatal(err)
	}
	got := learnt(s)
	for _, want := range []string{
		"foo >=1.1.0 requires target ^1.0.0", // step 28, the root cause
	} {
		if !slices.Contains(got, want) {
			t.Errorf("learnt %q, want %q", got, want)
		}
	}
	if s.partial == 0 {
		t.Errorf("no resolution step had a partial satisfier; learnt %q", got)
	}
	t.Logf("learnt: %q", got)
	if vi := s.decided[s.ids["foo"]]; s.pkgs[s.ids["foo"]].versions[vi].Original() != "1.0.0" {
		t.Errorf("foo = %v", s.pkgs[s.ids["foo"]].versions[vi])
	}
}

// world is a solver over packages foo (1.0.0, 1.1.0, 2.0.0) and bar (1.0.0, 2.0.0), for
// building terms and incompatibilities by hand.
func world(t *testing.T) (*solver, func(name, rng string, pos bool) term) {
	u := newUniverse(t, "foo 1.0.0", "foo 1.1.0", "foo 2.0.0", "bar 1.0.0", "bar 2.0.0")
	s := newSolver(context.Background(), u, "prod", nil, Options{})
	mk := func(name, rng string, pos bool) term {
		p, err := s.pkg(name)
		if err != nil {
			t.Fatal(err)
		}
		set, err := s.rangeSet(p, rng)
		if err != nil {
			t.Fatal(err)
		}
		return term{pkg: p, pos: pos, set: set, label: rng}
	}
	return s, mk
}

func TestTerm_Relations(t *testing.T) {
	_, mk := world(t)
	foo1, foo12 := mk("foo", "^1.0.0", true), mk("foo", ">=1.1.0", true)
	cases := []struct {
		a, b term
		want relation
	}{
		{foo1, foo1, subset},
		{foo1, foo12, overlapping},
		{mk("foo", "2.0.0", true), foo1, disjoint},
		{mk("foo", "2.0.0", true), foo1.negate(), subset},
		{foo1, foo1.negate(), disjoint},
		{foo1, mk("foo", "1.0.0", false), overlapping},
		{foo1.negate(), foo1, disjoint},
		{mk("foo", "1.0.0", false), foo1, overlapping},
		{foo1.negate(), mk("foo", "1.0.0", false), subset},
		{mk("foo", "1.0.0", false), foo1.negate(), overlapping},
	}
	for i, c := range cases {
		if got := relate(c.a, c.b); got != c.want {
			t.Errorf("%d: relate = %v, want %v", i, got, c.want)
		}
	}
	// "not foo ^1.0.0" ∩ "not foo 2.0.0" is "not foo" of both: nothing of foo.
	if got := intersect(foo1.negate(), mk("foo", "2.0.0", false)); got.pos || got.set.count() != 3 || got.label != "" {
		t.Errorf("intersect = %+v", got)
	}
	if got := difference(foo1, foo12); !got.pos || got.set.count() != 1 {
		t.Errorf("difference = %+v", got)
	}
}

// The sentence forms of pub's error reporting, for incompatibilities of every shape.
func TestIncompat_Strings(t *testing.T) {
	s, mk := world(t)
	root := term{pkg: rootID, pos: true, set: s.pkgs[rootID].full}
	foo, bar := mk("foo", "^1.0.0", true), mk("bar", "^2.0.0", true)
	every := term{pkg: foo.pkg, pos: true, set: s.pkgs[foo.pkg].full}
	computed := term{pkg: foo.pkg, pos: true, set: mk("foo", "1.1.0", true).set}
	ends := term{pkg: foo.pkg, pos: true, set: mk("foo", "1.0.0 || 2.0.0", true).set}
	none := term{pkg: foo.pkg, pos: true, set: newBitset(3)}
	for _, c := range []struct {
		inc  *incompat
		want string
	}{
		{&incompat{kind: kindRoot, terms: []term{root.negate()}}, "prod is required"},
		{&incompat{kind: kindDependency, terms: []term{foo, bar.negate()}}, "foo ^1.0.0 depends on bar ^2.0.0"},
		{&incompat{kind: kindDependency, terms: []term{root, bar.negate()}}, "prod requires bar ^2.0.0"},
		{derived([]term{root, foo}, nil, nil), "foo ^1.0.0 is forbidden"},
		{derived([]term{root}, nil, nil), "version solving failed"},
		{derived(nil, nil, nil), "version solving failed"},
		{derived([]term{bar.negate()}, nil, nil), "bar ^2.0.0 is required"},
		{derived([]term{every}, nil, nil), "foo is forbidden"},
		{derived([]term{every, bar.negate()}, nil, nil), "every version of foo requires bar ^2.0.0"},
		{derived([]term{computed}, nil, nil), "foo 1.1.0 is forbidden"},
		{derived([]term{ends}, nil, nil), "foo <1.1.0 || >=2.0.0 is forbidden"},
		{derived([]term{none}, nil, nil), "foo <none> is forbidden"},
		{derived([]term{foo, bar}, nil, nil), "foo ^1.0.0 is incompatible with bar ^2.0.0"},
		{derived([]term{foo.negate(), bar.negate()}, nil, nil), "either foo ^1.0.0 or bar ^2.0.0"},
		{derived([]term{foo, bar, mk("foo", "*", false)}, nil, nil), "foo <none> is incompatible with bar ^2.0.0"},
		{derived([]term{foo, bar, mk("bar", "1.0.0", false)}, nil, nil), "foo ^1.0.0 is incompatible with bar ^2.0.0"},
		{&incompat{kind: kindDerived, terms: []term{foo, bar, mk("foo", "2.0.0", false)}}, "if foo ^1.0.0 and bar ^2.0.0 then foo 2.0.0"},
		{&incompat{kind: kindDerived, terms: []term{foo, bar}}, "foo ^1.0.0 is incompatible with bar ^2.0.0"},
		{&incompat{kind: kindDerived, terms: []term{foo, bar, foo}}, "one of foo ^1.0.0 or bar ^2.0.0 or foo ^1.0.0 must be false"},
		{&incompat{kind: kindDerived, terms: []term{foo.negate(), bar.negate(), foo.negate()}}, "one of foo ^1.0.0 or bar ^2.0.0 or foo ^1.0.0 must be true"},
	} {
		if got := s.incString(c.inc); got != c.want {
			t.Errorf("incString = %q, want %q", got, c.want)
		}
	}
}

// The joining shortcuts: "depends on both", "which depends on", "which is forbidden".
func TestReporter_And(t *testing.T) {
	s, mk := world(t)
	r := &reporter{s: s}
	foo, bar := mk("foo", "^1.0.0", true), mk("bar", "^2.0.0", true)
	fooDep := &incompat{kind: kindDependency, terms: []term{foo, bar.negate()}}
	barForbidden := derived([]term{mk("bar", ">=1.0.0", true)}, nil, nil)
	if got := r.and(fooDep, barForbidden, 0, 2); got != "foo ^1.0.0 depends on bar ^2.0.0 which is forbidden" {
		t.Errorf("forbidden: %q", got)
	}
	if got := r.and(barForbidden, fooDep, 2, 1); got != "foo ^1.0.0 depends on bar ^2.0.0 (1) which is forbidden" {
		t.Errorf("forbidden, reversed: %q", got)
	}
	two := &incompat{kind: kindDerived, terms: []term{foo, mk("baz", "*", true), bar.negate()}}
	if got := r.and(two, barForbidden, 0, 0); got != "if foo ^1.0.0 or baz * then bar ^2.0.0 which is forbidden" {
		t.Errorf("forbidden with two positives: %q", got)
	}
	if got := r.and(fooDep, derived([]term{mk("foo", "2.0.0", true)}, nil, nil), 3, 4); got != "foo ^1.0.0 depends on bar ^2.0.0 (3) and foo 2.0.0 is forbidden (4)" {
		t.Errorf("plain and: %q", got)
	}
	barDep := &incompat{kind: kindDependency, terms: []term{mk("bar", "*", true), mk("foo", "2.0.0", false)}}
	if got := r.and(barDep, fooDep, 1, 0); got != "foo ^1.0.0 depends on bar ^2.0.0 which depends on foo 2.0.0 (1)" {
		t.Errorf("through: %q", got)
	}
	ifThen := &incompat{kind: kindDerived, terms: []term{foo, mk("baz", "*", true), bar.negate()}}
	if got := r.and(ifThen, barDep, 0, 0); got != "if foo ^1.0.0 or baz * then bar ^2.0.0 which depends on foo 2.0.0" {
		t.Errorf("through with two positives: %q", got)
	}
	fooReq := &incompat{kind: kindDerived, terms: []term{foo, mk("bar", "1.0.0", false)}}
	if got := r.and(fooDep, fooReq, 0, 0); got != "foo ^1.0.0 requires both bar ^2.0.0 and bar 1.0.0" {
		t.Errorf("both: %q", got)
	}
}

func TestBitset(t *testing.T) {
	b := fullBitset(130)
	if b.count() != 130 || b.highest() != 129 || len(b) != 3 {
		t.Errorf("full(130): count %d highest %d", b.count(), b.highest())
	}
	e := newBitset(130)
	if !e.empty() || e.highest() != -1 || !e.subsetOf(b) || !e.disjoint(b) {
		t.Error("empty set")
	}
	e.set(64)
	if !e.has(64) || e.has(63) || e.highest() != 64 || b.andNot(e).count() != 129 || e.or(newBitset(130)).count() != 1 {
		t.Error("set/has across words")
	}
	if fullBitset(64).count() != 64 || len(fullBitset(64)) != 1 {
		t.Error("full(64)")
	}
}
