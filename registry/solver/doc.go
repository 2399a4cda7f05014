// Package solver picks one version of each package so that every dependency holds, with
// PubGrub, the conflict-driven algorithm Natalie Weizenbaum designed for Dart's pub and
// described in https://github.com/dart-lang/pub/blob/master/doc/solver.md ("PubGrub:
// Next-Generation Version Solving"). This implementation follows that description; its
// terms, in brief:
//
//   - A term is a statement about one package: "foo ^1.0.0" (a version in that set is
//     selected) or "not foo ^1.0.0" (none is: another version, or no foo at all).
//   - An incompatibility is a set of terms that cannot all be true: "foo 1.x depends on
//     bar ^2" is {foo 1.x, not bar ^2}. External ones come from the packages (a
//     dependency, a dependency no version satisfies); derived ones are learnt from two
//     others by resolution when a conflict is found, and remember both causes.
//   - The partial solution is the ordered list of assignments: decisions (a version
//     chosen) and derivations (terms implied by the incompatibilities), each at a decision
//     level.
//   - Unit propagation derives "not t" whenever an incompatibility has every term but t
//     satisfied; conflict resolution, when one is fully satisfied, walks back through the
//     causes to the root cause, learns it as a new incompatibility and backjumps; decision
//     making picks the package with the fewest versions left and its newest allowed
//     version, adding that version's dependencies lazily.
//   - When the root cause is "the root cannot be selected", the derivation graph of that
//     incompatibility is the proof, and Explain turns it into sentences ("Because a 2.x
//     depends on b ^3 and prod requires b ^2, a 2.x is forbidden.").
//
// Version sets are exact: each package's versions are known (Source.Versions), so a term's
// set is a bit set over them, and a range such as "^1.2" is evaluated once per package into
// the versions it allows (Masterminds/semver). Set algebra is then a few word operations,
// and a set prints back as the range it came from, or as bounds between known versions.
//
// As pub does, dependencies of adjacent versions that are written the same are collapsed
// into one incompatibility ("foo >=1.1.0 depends on bar ^2"), which keeps the number of
// incompatibilities small and the explanations close to what users wrote.
//
// Everything is deterministic: packages are considered in a fixed order and ties are
// broken by name, so one input always gives one solution and one explanation.
package solver
