package solver

// term is a statement about one package: a version in set is selected (positive), or
// none is (negative: another version, or the package not at all).
type term struct {
	pkg int
	pos bool
	set bitset
	// label is how the set was written ("^1.2.0", "1.0.0", ">=1.1.0"); empty when the set
	// was computed and is printed from its bounds.
	label string
}

func (t term) negate() term {
	t.pos = !t.pos
	return t
}

// relation of a term a (what the partial solution says of a package) to a term t of the
// same package.
type relation int

const (
	// subset: a satisfies t (whenever a holds, t holds).
	subset relation = iota
	// disjoint: a contradicts t.
	disjoint
	// overlapping: a is inconclusive for t.
	overlapping
)

// relate compares a with t. A negative term also allows "not selected at all", which no
// positive term allows: that is why "not foo S" never satisfies "foo T".
func relate(a, t term) relation {
	switch {
	case a.pos && t.pos:
		if a.set.subsetOf(t.set) {
			return subset
		}
		if a.set.disjoint(t.set) {
			return disjoint
		}
	case a.pos && !t.pos:
		if a.set.disjoint(t.set) {
			return subset
		}
		if a.set.subsetOf(t.set) {
			return disjoint
		}
	case !a.pos && t.pos:
		if t.set.subsetOf(a.set) {
			return disjoint
		}
	default:
		if t.set.subsetOf(a.set) {
			return subset
		}
	}
	return overlapping
}

// intersect is a ∩ b for two terms of one package: what holds when both do.
func intersect(a, b term) term {
	out := term{pkg: a.pkg}
	switch {
	case a.pos && b.pos:
		out.pos, out.set = true, a.set.and(b.set)
	case a.pos:
		out.pos, out.set = true, a.set.andNot(b.set)
	case b.pos:
		out.pos, out.set = true, b.set.andNot(a.set)
	default:
		out.pos, out.set = false, a.set.or(b.set)
	}
	// Keep the written form when the set did not change.
	switch {
	case out.set.equal(a.set):
		out.label = a.label
	case out.set.equal(b.set):
		out.label = b.label
	}
	return out
}

// difference is a \ b.
func difference(a, b term) term { return intersect(a, b.negate()) }
