package solver

import (
	"fmt"
	"strings"
)

// reporter writes the proof that version solving failed, following "Error Reporting" in
// pub's solver.md: a depth-first walk of the derivation graph from the failure, one
// sentence per derived incompatibility, with line numbers only on conclusions that are
// referred to again.
type reporter struct {
	s           *solver
	root        *incompat
	derivations map[*incompat]int
	lines       []reportLine
	numbers     map[*incompat]int
}

type reportLine struct {
	text   string
	number int
}

func (s *solver) explain(failure *incompat) string {
	r := &reporter{s: s, root: failure, derivations: map[*incompat]int{}, numbers: map[*incompat]int{}}
	if failure.kind != kindDerived {
		// The root's own requirement cannot be met: one external fact explains it.
		return "Because " + s.incString(failure) + ", version solving failed."
	}
	r.count(failure)
	r.visit(failure, false)
	width := 0
	if len(r.numbers) > 0 {
		width = len(fmt.Sprintf("(%d) ", len(r.numbers)))
	}
	var b strings.Builder
	for _, l := range r.lines {
		switch {
		case l.text == "":
		case l.number > 0:
			b.WriteString(fmt.Sprintf("%-*s", width, fmt.Sprintf("(%d)", l.number)))
			b.WriteString(l.text)
		default:
			b.WriteString(strings.Repeat(" ", width))
			b.WriteString(l.text)
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}

// count records how many derived incompatibilities each incompatibility causes.
func (r *reporter) count(inc *incompat) {
	for _, c := range inc.causes {
		if c == nil {
			continue
		}
		r.derivations[c]++
		if r.derivations[c] == 1 && c.kind == kindDerived {
			r.count(c)
		}
	}
}

func (r *reporter) write(inc *incompat, text string, numbered bool) {
	if numbered {
		n := len(r.numbers) + 1
		r.numbers[inc] = n
		r.lines = append(r.lines, reportLine{text, n})
		return
	}
	r.lines = append(r.lines, reportLine{text: text})
}

func derivedInc(inc *incompat) bool { return inc.kind == kindDerived }

// visit writes the lines explaining inc (the numbered steps are those of solver.md).
func (r *reporter) visit(inc *incompat, conclusion bool) {
	s := r.s
	numbered := conclusion || r.derivations[inc] > 1
	conjunction := "And"
	if conclusion || inc == r.root {
		conjunction = "So,"
	}
	str := s.incString(inc)
	c1, c2 := inc.causes[0], inc.causes[1]
	switch {
	case derivedInc(c1) && derivedInc(c2):
		n1, ok1 := r.numbers[c1]
		n2, ok2 := r.numbers[c2]
		switch {
		case ok1 && ok2: // 1.i
			r.write(inc, fmt.Sprintf("Because %s, %s.", r.and(c1, c2, n1, n2), str), numbered)
		case ok1 || ok2: // 1.ii
			with, without, n := c1, c2, n1
			if ok2 {
				with, without, n = c2, c1, n2
			}
			r.visit(without, false)
			r.write(inc, fmt.Sprintf("%s because %s (%d), %s.", conjunction, s.incString(with), n, str), numbered)
		default:
			single1, single2 := r.singleLine(c1), r.singleLine(c2)
			if single1 || single2 { // 1.iii.a
				first, second := c2, c1
				if single2 {
					first, second = c1, c2
				}
				r.visit(first, false)
				r.visit(second, false)
				r.write(inc, fmt.Sprintf("Thus, %s.", str), numbered)
			} else { // 1.iii.b
				r.visit(c1, true)
				r.lines = append(r.lines, reportLine{})
				r.visit(c2, false)
				r.write(inc, fmt.Sprintf("And because %s (%d), %s.", s.incString(c1), r.numbers[c1], str), numbered)
			}
		}
	case derivedInc(c1) || derivedInc(c2):
		d, e := c1, c2
		if derivedInc(c2) {
			d, e = c2, c1
		}
		if n, ok := r.numbers[d]; ok { // 2.i
			r.write(inc, fmt.Sprintf("Because %s, %s.", r.and(e, d, 0, n), str), numbered)
		} else if r.collapsible(d) { // 2.ii
			dd, de := d.causes[0], d.causes[1]
			if derivedInc(de) {
				dd, de = de, dd
			}
			r.visit(dd, false)
			r.write(inc, fmt.Sprintf("%s because %s, %s.", conjunction, r.and(de, e, 0, 0), str), numbered)
		} else { // 2.iii
			r.visit(d, false)
			r.write(inc, fmt.Sprintf("%s because %s, %s.", conjunction, s.incString(e), str), numbered)
		}
	default: // 3
		r.write(inc, fmt.Sprintf("Because %s, %s.", r.and(c1, c2, 0, 0), str), numbered)
	}
}

// singleLine reports an incompatibility both of whose causes are external: one sentence
// explains it.
func (r *reporter) singleLine(inc *incompat) bool {
	return !derivedInc(inc.causes[0]) && !derivedInc(inc.causes[1])
}

// collapsible reports a derivation that can be folded into the next sentence: it causes
// nothing else, it has exactly one derived cause, and that cause has no line number.
func (r *reporter) collapsible(inc *incompat) bool {
	if r.derivations[inc] > 1 {
		return false
	}
	c1, c2 := inc.causes[0], inc.causes[1]
	if derivedInc(c1) == derivedInc(c2) {
		return false
	}
	d := c1
	if derivedInc(c2) {
		d = c2
	}
	_, numbered := r.numbers[d]
	return !numbered
}

// and joins two incompatibilities as pub does, with the shortcuts that read naturally:
// "x depends on both a and b", "x depends on a which depends on b", "x depends on a which
// is forbidden"; otherwise "A and B".
func (r *reporter) and(a, b *incompat, na, nb int) string {
	if s, ok := r.requiresBoth(a, b, na, nb); ok {
		return s
	}
	if s, ok := r.requiresThrough(a, b, na, nb); ok {
		return s
	}
	if s, ok := r.requiresForbidden(a, b, na, nb); ok {
		return s
	}
	return r.s.incString(a) + lineRef(na) + " and " + r.s.incString(b) + lineRef(nb)
}

func lineRef(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d)", n)
}

// single returns inc's only term of the given polarity.
func single(inc *incompat, pos bool) (term, bool) {
	var found term
	n := 0
	for _, t := range inc.terms {
		if t.pos == pos {
			found = t
			n++
		}
	}
	return found, n == 1
}

func (r *reporter) negatives(inc *incompat) string {
	var parts []string
	for _, t := range inc.terms {
		if !t.pos {
			parts = append(parts, r.s.terse(t.negate(), false))
		}
	}
	return strings.Join(parts, " or ")
}

func (r *reporter) requiresBoth(a, b *incompat, na, nb int) (string, bool) {
	if len(a.terms) == 1 || len(b.terms) == 1 {
		return "", false
	}
	pa, okA := single(a, true)
	pb, okB := single(b, true)
	if !okA || !okB || pa.pkg != pb.pkg || !pa.set.equal(pb.set) {
		return "", false
	}
	verb := "requires"
	if a.kind == kindDependency && b.kind == kindDependency {
		verb = r.s.verb(a)
	}
	return fmt.Sprintf("%s %s both %s%s and %s%s", r.s.terse(pa, true), verb, r.negatives(a), lineRef(na), r.negatives(b), lineRef(nb)), true
}

func (r *reporter) requiresThrough(a, b *incompat, na, nb int) (string, bool) {
	if len(a.terms) == 1 || len(b.terms) == 1 {
		return "", false
	}
	prior, latter, np, nl := a, b, na, nb
	link := func(p, l *incompat) (term, bool) {
		neg, ok := single(p, false)
		if !ok {
			return term{}, false
		}
		pos, ok := single(l, true)
		if !ok || pos.pkg != neg.pkg || relate(neg.negate(), pos) != subset {
			return term{}, false
		}
		return neg, true
	}
	neg, ok := link(a, b)
	if !ok {
		if neg, ok = link(b, a); !ok {
			return "", false
		}
		prior, latter, np, nl = b, a, nb, na
	}
	var b2 strings.Builder
	var positives []term
	for _, t := range prior.terms {
		if t.pos {
			positives = append(positives, t)
		}
	}
	if len(positives) > 1 {
		fmt.Fprintf(&b2, "if %s then ", r.s.terses(positives, " or "))
	} else {
		fmt.Fprintf(&b2, "%s %s ", r.s.terse(positives[0], true), r.s.verb(prior))
	}
	fmt.Fprintf(&b2, "%s%s which %s %s%s", r.s.terse(neg.negate(), false), lineRef(np), r.s.verb(latter), r.negatives(latter), lineRef(nl))
	return b2.String(), true
}

func (r *reporter) requiresForbidden(a, b *incompat, na, nb int) (string, bool) {
	if len(a.terms) != 1 && len(b.terms) != 1 {
		return "", false
	}
	prior, latter, np := a, b, na
	if len(a.terms) == 1 {
		prior, latter, np = b, a, nb
	}
	if latter.kind != kindDerived || len(prior.terms) == 1 {
		return "", false
	}
	neg, ok := single(prior, false)
	if !ok || latter.terms[0].pkg != neg.pkg || !latter.terms[0].pos || relate(neg.negate(), latter.terms[0]) != subset {
		return "", false
	}
	var positives []term
	for _, t := range prior.terms {
		if t.pos {
			positives = append(positives, t)
		}
	}
	var b2 strings.Builder
	if len(positives) > 1 {
		fmt.Fprintf(&b2, "if %s then ", r.s.terses(positives, " or "))
	} else {
		fmt.Fprintf(&b2, "%s %s ", r.s.terse(positives[0], true), r.s.verb(prior))
	}
	fmt.Fprintf(&b2, "%s%s which is forbidden", r.s.terse(neg.negate(), false), lineRef(np))
	return b2.String(), true
}
