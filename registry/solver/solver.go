package solver

import (
	"container/heap"
	"context"
	"fmt"
	"sort"

	"github.com/Masterminds/semver/v3"
)

// Dependency is a package and the range of its versions that is acceptable.
type Dependency struct {
	Name string `json:"name"`
	// Range is a Masterminds/semver range: "^1.2", "~1.2.3", ">=1.0 <2.0", "1.x", "*",
	// "^1 || ^2". Explanations quote it as written.
	Range string `json:"range"`
}

// Source answers the solver's two questions about the universe of packages. Both are
// asked lazily, only about packages and versions the search reaches, and each at most
// once per Solve.
type Source interface {
	// Versions lists the versions of the package that may be selected, in any order
	// (the solver sorts them). An unknown package has none: that is not an error, the
	// dependency on it fails to resolve and is explained.
	Versions(name string) ([]*semver.Version, error)
	// Dependencies lists what one of those versions depends on.
	Dependencies(name string, v *semver.Version) ([]Dependency, error)
}

// Explainer is an optional interface of a Source: it says why no version of a package
// matches a range, in the source's own terms ("worker 2.0.0 is not enabled in prod"),
// for explanations. An empty answer falls back to the solver's own words.
type Explainer interface {
	Unavailable(name, rng string) string
}

// Options tune a solve.
type Options struct {
	// Prefer names a version to try first for a package when it is allowed, instead of
	// the newest: a lock's versions, so re-resolving changes only what must change.
	Prefer map[string]*semver.Version
}

// Solution is one version of every package reachable from the root's requirements.
type Solution struct {
	// Versions maps each selected package to its version.
	Versions map[string]*semver.Version
	Stats    Stats
}

// Names lists the selected packages in name order.
func (s *Solution) Names() []string {
	names := make([]string, 0, len(s.Versions))
	for n := range s.Versions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Stats count the work a solve did: what a benchmark reports and what tells a search that
// backtracked from one that did not.
type Stats struct {
	// Decisions counts versions chosen, including ones later undone.
	Decisions int `json:"decisions"`
	// Conflicts counts incompatibilities found satisfied, each resolved by backjumping.
	Conflicts int `json:"conflicts"`
	// Incompatibilities counts all incompatibilities, external and learnt.
	Incompatibilities int `json:"incompatibilities"`
}

// NoSolutionError is Solve's error when no selection satisfies every dependency.
type NoSolutionError struct {
	// Explanation is the human proof, one sentence per line, in the style of pub's
	// error reporting.
	Explanation string
	Stats       Stats
}

// Error is the explanation.
func (e *NoSolutionError) Error() string { return e.Explanation }

const rootID = 0

type pkgInfo struct {
	name     string
	versions []*semver.Version // ascending
	full     bitset
	deps     [][]Dependency // per version index, sorted by name; nil until fetched
	fetched  []bool
	sets     map[string]bitset // range text -> versions it allows
}

type assignment struct {
	term     term
	decision bool
	level    int
	cause    *incompat
	// after is the intersection of the package's assignments up to this one: what the
	// partial solution says of the package here. Kept so backtracking and satisfier search
	// need no recomputation.
	after term
}

type runKey struct {
	pkg, lo, hi int
	dep         Dependency
}

type solver struct {
	ctx      context.Context
	src      Source
	opts     Options
	rootName string
	pkgs     []*pkgInfo
	ids      map[string]int
	incs     [][]*incompat // by package, oldest first
	added    map[runKey]*incompat
	// byVersion caches dependencyIncompats per package and version index.
	byVersion map[[2]int][]*incompat
	ranges    map[string]*semver.Constraints
	// The partial solution.
	assigns []assignment
	byPkg   [][]int // assignment indices per package, ascending
	acc     []term  // the intersection of each package's assignments
	hasAcc  []bool
	decided []int // chosen version index, or -1
	level   int
	stats   Stats
	// partial counts resolution steps whose satisfier did not satisfy its term alone.
	partial int
	// candidates holds the packages decision making may choose, ordered by allowed
	// versions then name; entries go stale as the partial solution moves and are dropped
	// when popped.
	candidates candidateHeap
}

type candidate struct {
	count int
	name  string
	pkg   int
}

type candidateHeap []candidate

// Len, Less, Swap, Push and Pop make candidateHeap a container/heap: fewest allowed
// versions first, then name.
func (h candidateHeap) Len() int { return len(h) }

// Less orders by allowed versions, then name.
func (h candidateHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count < h[j].count
	}
	return h[i].name < h[j].name
}

// Swap is heap.Interface's.
func (h candidateHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

// Push is heap.Interface's.
func (h *candidateHeap) Push(x any) { *h = append(*h, x.(candidate)) }

// Pop is heap.Interface's.
func (h *candidateHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// offer makes p a decision candidate when the partial solution requires it and it has no
// version yet.
func (s *solver) offer(p int) {
	if s.hasAcc[p] && s.acc[p].pos && s.decided[p] < 0 {
		heap.Push(&s.candidates, candidate{count: s.acc[p].set.count(), name: s.pkgs[p].name, pkg: p})
	}
}

// Solve selects versions for everything requires needs, transitively. root names the
// requirer in explanations (an environment, say "prod"). It returns a *NoSolutionError,
// explained, when no selection exists, and other errors when the source fails, a range
// does not parse, or ctx ends.
func Solve(ctx context.Context, src Source, root string, requires []Dependency, opts Options) (*Solution, error) {
	s := newSolver(ctx, src, root, requires, opts)
	if err := s.run(); err != nil {
		return nil, err
	}
	sol := &Solution{Versions: map[string]*semver.Version{}, Stats: s.stats}
	for id, vi := range s.decided {
		if id != rootID && vi >= 0 {
			sol.Versions[s.pkgs[id].name] = s.pkgs[id].versions[vi]
		}
	}
	return sol, nil
}

func newSolver(ctx context.Context, src Source, root string, requires []Dependency, opts Options) *solver {
	s := &solver{
		ctx: ctx, src: src, opts: opts, rootName: root,
		ids: map[string]int{}, added: map[runKey]*incompat{}, byVersion: map[[2]int][]*incompat{}, ranges: map[string]*semver.Constraints{},
	}
	reqs := append([]Dependency(nil), requires...)
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].Name < reqs[j].Name })
	rootVersion := semver.New(0, 0, 0, "", "")
	s.addPkg(&pkgInfo{name: root, versions: []*semver.Version{rootVersion}, deps: [][]Dependency{reqs}, fetched: []bool{true}})
	s.addIncompat(&incompat{kind: kindRoot, terms: []term{{pkg: rootID, set: s.pkgs[rootID].full}}})
	return s
}

// run is the main loop: propagate from the last package decided, then decide the next.
func (s *solver) run() error {
	next, first := rootID, []*incompat(nil)
	for steps := 0; ; steps++ {
		if steps%64 == 0 {
			if err := s.ctx.Err(); err != nil {
				return err
			}
		}
		if err := s.propagate(next, first); err != nil {
			return err
		}
		p, f, done, err := s.decide()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		next, first = p, f
	}
}

func (s *solver) addPkg(p *pkgInfo) int {
	id := len(s.pkgs)
	p.full = fullBitset(len(p.versions))
	if p.deps == nil {
		p.deps = make([][]Dependency, len(p.versions))
		p.fetched = make([]bool, len(p.versions))
	}
	p.sets = map[string]bitset{}
	s.pkgs = append(s.pkgs, p)
	if id != rootID {
		s.ids[p.name] = id
	}
	s.incs = append(s.incs, nil)
	s.byPkg = append(s.byPkg, nil)
	s.acc = append(s.acc, term{})
	s.hasAcc = append(s.hasAcc, false)
	s.decided = append(s.decided, -1)
	return id
}

// pkg returns the id of name, asking the source for its versions the first time.
func (s *solver) pkg(name string) (int, error) {
	if id, ok := s.ids[name]; ok {
		return id, nil
	}
	vs, err := s.src.Versions(name)
	if err != nil {
		return 0, fmt.Errorf("versions of %s: %w", name, err)
	}
	vs = append([]*semver.Version(nil), vs...)
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].LessThan(vs[j]) })
	return s.addPkg(&pkgInfo{name: name, versions: vs}), nil
}

// rangeSet is the set of p's versions that text allows.
func (s *solver) rangeSet(p int, text string) (bitset, error) {
	info := s.pkgs[p]
	if set, ok := info.sets[text]; ok {
		return set, nil
	}
	c, ok := s.ranges[text]
	if !ok {
		var err error
		if c, err = semver.NewConstraint(text); err != nil {
			return nil, fmt.Errorf("range %q of %s: %w", text, info.name, err)
		}
		s.ranges[text] = c
	}
	set := newBitset(len(info.versions))
	for i, v := range info.versions {
		if c.Check(v) {
			set.set(i)
		}
	}
	info.sets[text] = set
	return set, nil
}

// deps returns the dependencies of p's version vi, fetched once.
func (s *solver) deps(p, vi int) ([]Dependency, error) {
	info := s.pkgs[p]
	if !info.fetched[vi] {
		ds, err := s.src.Dependencies(info.name, info.versions[vi])
		if err != nil {
			return nil, fmt.Errorf("dependencies of %s %s: %w", info.name, info.versions[vi].Original(), err)
		}
		ds = append([]Dependency(nil), ds...)
		sort.SliceStable(ds, func(i, j int) bool { return ds[i].Name < ds[j].Name })
		info.deps[vi], info.fetched[vi] = ds, true
	}
	return info.deps[vi], nil
}

func (s *solver) hasDep(p, vi int, d Dependency) (bool, error) {
	ds, err := s.deps(p, vi)
	if err != nil {
		return false, err
	}
	for _, x := range ds {
		if x == d {
			return true, nil
		}
	}
	return false, nil
}

func (s *solver) addIncompat(inc *incompat) {
	s.stats.Incompatibilities++
	for _, t := range inc.terms {
		s.incs[t.pkg] = append(s.incs[t.pkg], inc)
	}
}

// dependencyIncompats returns the incompatibilities of the dependencies of p's version vi,
// making them the first time: they are added once, and asked for again when vi is chosen
// again after a backjump.
//
// Each dependency becomes an incompatibility
// each widened to the run of adjacent versions that depend on the same range, so
// "foo 1.0.0 and 1.1.0 depend on bar ^1" is one incompatibility {foo <1.2.0, not bar ^1}.
func (s *solver) dependencyIncompats(p, vi int) ([]*incompat, error) {
	if incs, ok := s.byVersion[[2]int{p, vi}]; ok {
		return incs, nil
	}
	ds, err := s.deps(p, vi)
	if err != nil {
		return nil, err
	}
	info := s.pkgs[p]
	var out []*incompat
	for _, d := range ds {
		lo, hi := vi, vi
		for lo > 0 {
			ok, err := s.hasDep(p, lo-1, d)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			lo--
		}
		for hi+1 < len(info.versions) {
			ok, err := s.hasDep(p, hi+1, d)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			hi++
		}
		key := runKey{p, lo, hi, d}
		if inc, ok := s.added[key]; ok {
			out = append(out, inc)
			continue
		}
		run := newBitset(len(info.versions))
		for i := lo; i <= hi; i++ {
			run.set(i)
		}
		depender := term{pkg: p, pos: true, set: run, label: info.runLabel(lo, hi)}
		target, err := s.pkg(d.Name)
		if err != nil {
			return nil, err
		}
		set, err := s.rangeSet(target, d.Range)
		if err != nil {
			return nil, err
		}
		var inc *incompat
		if set.empty() {
			inc = &incompat{kind: kindUnavailable, terms: []term{depender}, dep: d, reason: s.unavailable(target, d)}
		} else {
			inc = &incompat{kind: kindDependency, terms: []term{depender, {pkg: target, set: set, label: d.Range}}, dep: d}
		}
		s.addIncompat(inc)
		s.added[key] = inc
		out = append(out, inc)
	}
	s.byVersion[[2]int{p, vi}] = out
	return out, nil
}

// unavailable says why no version of target matches d: the source's words when it has
// some, otherwise whether the package has versions at all.
func (s *solver) unavailable(target int, d Dependency) string {
	if e, ok := s.src.(Explainer); ok {
		if why := e.Unavailable(d.Name, d.Range); why != "" {
			return why
		}
	}
	if len(s.pkgs[target].versions) == 0 {
		return "there is no package " + d.Name
	}
	return "no version of " + d.Name + " matches"
}

// relation of the partial solution to t.
func (s *solver) relation(t term) relation {
	if !s.hasAcc[t.pkg] {
		switch {
		case t.pos && t.set.empty():
			return disjoint
		case !t.pos && t.set.empty():
			return subset
		}
		return overlapping
	}
	return relate(s.acc[t.pkg], t)
}

type incRelation int

const (
	satisfied incRelation = iota
	almostSatisfied
	contradicted
	inconclusive
)

// relationInc says whether the partial solution satisfies inc, almost satisfies it (all
// terms but the one at index unsat), contradicts it, or neither.
func (s *solver) relationInc(inc *incompat) (rel incRelation, unsat int) {
	unsat = -1
	for i, t := range inc.terms {
		switch s.relation(t) {
		case disjoint:
			return contradicted, -1
		case overlapping:
			if unsat >= 0 {
				return inconclusive, -1
			}
			unsat = i
		}
	}
	if unsat < 0 {
		return satisfied, -1
	}
	return almostSatisfied, unsat
}

func (s *solver) assign(a assignment) {
	p := a.term.pkg
	if s.hasAcc[p] {
		s.acc[p] = intersect(s.acc[p], a.term)
	} else {
		s.acc[p], s.hasAcc[p] = a.term, true
	}
	a.after = s.acc[p]
	s.byPkg[p] = append(s.byPkg[p], len(s.assigns))
	s.assigns = append(s.assigns, a)
	if !a.decision {
		s.offer(p)
	}
}

// propagate is unit propagation from package p: every incompatibility that mentions a
// changed package, newest first, either derives the negation of its one undecided term
// or, when satisfied, goes to conflict resolution.
//
// When first is given, the first look at p examines only those incompatibilities (the
// others are known not to have changed status); every later look takes them all.
func (s *solver) propagate(p int, first []*incompat) error {
	queue := []int{p}
	queued := map[int]bool{p: true}
next:
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		delete(queued, pkg)
		incs := s.incs[pkg]
		if pkg == p && first != nil {
			incs, first = first, nil
		}
		for i := len(incs) - 1; i >= 0; i-- {
			inc := incs[i]
			rel, unsat := s.relationInc(inc)
			switch rel {
			case satisfied:
				learnt, err := s.resolve(inc)
				if err != nil {
					return err
				}
				rel, unsat = s.relationInc(learnt)
				if rel != almostSatisfied {
					return fmt.Errorf("solver: internal error: learnt incompatibility %q is not almost satisfied", s.incString(learnt))
				}
				t := learnt.terms[unsat]
				s.assign(assignment{term: t.negate(), level: s.level, cause: learnt})
				// Start over from the learnt term's package.
				queue, queued = []int{t.pkg}, map[int]bool{t.pkg: true}
				continue next
			case almostSatisfied:
				t := inc.terms[unsat]
				s.assign(assignment{term: t.negate(), level: s.level, cause: inc})
				if !queued[t.pkg] {
					queue = append(queue, t.pkg)
					queued[t.pkg] = true
				}
			}
		}
	}
	return nil
}

// satisfier is the earliest assignment after which the partial solution satisfies t.
func (s *solver) satisfier(t term) int {
	for _, ai := range s.byPkg[t.pkg] {
		if relate(s.assigns[ai].after, t) == subset {
			return ai
		}
	}
	panic(fmt.Sprintf("solver: %s is not satisfied by the partial solution", s.terse(t, false)))
}

// resolve is conflict resolution: from an incompatibility the partial solution satisfies,
// derive its root cause by resolution with the causes of its satisfiers, learn it,
// backjump to where it is almost satisfied, and return it. When the root cause says the
// root cannot be selected, it returns the explained failure.
func (s *solver) resolve(conflict *incompat) (*incompat, error) {
	s.stats.Conflicts++
	inc := conflict
	for !inc.failure() {
		satIdx, prevLevel := -1, 1
		var satTerm term
		var diff *term
		for _, t := range inc.terms {
			idx := s.satisfier(t)
			latest := false
			switch {
			case satIdx < 0:
				satIdx, satTerm, latest = idx, t, true
			case satIdx < idx:
				prevLevel = max(prevLevel, s.assigns[satIdx].level)
				satIdx, satTerm, latest = idx, t, true
			default:
				prevLevel = max(prevLevel, s.assigns[idx].level)
			}
			if latest {
				// When the satisfier does not satisfy its term alone, the assignment
				// that satisfies the rest counts as a previous satisfier too.
				diff = nil
				if d := difference(s.assigns[satIdx].term, satTerm); !d.pos || !d.set.empty() {
					diff = &d
					s.partial++
					prevLevel = max(prevLevel, s.assigns[s.satisfier(d.negate())].level)
				}
			}
		}
		sat := s.assigns[satIdx]
		if sat.decision || prevLevel != sat.level {
			if inc != conflict {
				s.addIncompat(inc)
			}
			s.backtrack(prevLevel)
			return inc, nil
		}
		var terms []term
		for _, t := range inc.terms {
			if t.pkg != sat.term.pkg {
				terms = append(terms, t)
			}
		}
		for _, t := range sat.cause.terms {
			if t.pkg != sat.term.pkg {
				terms = append(terms, t)
			}
		}
		if diff != nil {
			terms = append(terms, diff.negate())
		}
		inc = derived(terms, inc, sat.cause)
	}
	return nil, &NoSolutionError{Explanation: s.explain(inc), Stats: s.stats}
}

// backtrack removes every assignment above level.
func (s *solver) backtrack(level int) {
	var touched []int
	seen := map[int]bool{}
	for len(s.assigns) > 0 && s.assigns[len(s.assigns)-1].level > level {
		a := s.assigns[len(s.assigns)-1]
		s.assigns = s.assigns[:len(s.assigns)-1]
		p := a.term.pkg
		s.byPkg[p] = s.byPkg[p][:len(s.byPkg[p])-1]
		if a.decision {
			s.decided[p] = -1
		}
		if !seen[p] {
			seen[p] = true
			touched = append(touched, p)
		}
	}
	for _, p := range touched {
		if n := len(s.byPkg[p]); n > 0 {
			s.acc[p], s.hasAcc[p] = s.assigns[s.byPkg[p][n-1]].after, true
		} else {
			s.acc[p], s.hasAcc[p] = term{}, false
		}
		s.offer(p)
	}
	s.level = level
}

// decide is decision making: among packages the partial solution requires but has not
// chosen, take the one with the fewest allowed versions (it runs out first, so conflicts
// surface early; ties by name), and its preferred or newest allowed version, unless that
// version's dependencies conflict at once. It returns the package to propagate from, or
// done when every required package has a version.
func (s *solver) decide() (int, []*incompat, bool, error) {
	best := -1
	for s.candidates.Len() > 0 {
		c := heap.Pop(&s.candidates).(candidate)
		p := c.pkg
		if s.hasAcc[p] && s.acc[p].pos && s.decided[p] < 0 && s.acc[p].set.count() == c.count {
			best = p
			break
		}
	}
	if best < 0 {
		return 0, nil, true, nil
	}
	p, info, allowed := best, s.pkgs[best], s.acc[best].set
	vi := allowed.highest()
	if pref, ok := s.opts.Prefer[info.name]; ok && p != rootID {
		for i, v := range info.versions {
			if v.Equal(pref) && allowed.has(i) {
				vi = i
			}
		}
	}
	incs, err := s.dependencyIncompats(p, vi)
	if err != nil {
		return 0, nil, false, err
	}
	// When the partial solution already allows only vi, the decision changes nothing
	// propagation reads but vi's dependencies: they may have been added, or had their
	// conclusions undone by a backjump, while vi's premise stayed. Only they need looking
	// at; otherwise every incompatibility of p does.
	var first []*incompat
	if allowed.count() == 1 {
		first = append([]*incompat{}, incs...) // non-nil, even when empty
	}
	chosen := term{pkg: p, pos: true, set: newBitset(len(info.versions)), label: info.versions[vi].Original()}
	chosen.set.set(vi)
	for _, inc := range incs {
		conflict := true
		for _, t := range inc.terms {
			var rel relation
			if t.pkg == p {
				rel = relate(chosen, t)
			} else {
				rel = s.relation(t)
			}
			if rel != subset {
				conflict = false
				break
			}
		}
		if conflict {
			// Choosing vi would satisfy inc at once: let propagation derive around it.
			return p, first, false, nil
		}
	}
	s.level++
	s.stats.Decisions++
	s.assign(assignment{term: chosen, decision: true, level: s.level})
	s.decided[p] = vi
	return p, first, false, nil
}
