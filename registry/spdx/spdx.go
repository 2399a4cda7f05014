// Package spdx checks SPDX license expressions against a policy: an allow list and a deny
// list, as an environment states them.
//
// Terms, as the SPDX specification (annex D, "SPDX License Expressions") defines them:
//
//   - a license identifier is a short name from the SPDX License List ("MIT",
//     "Apache-2.0"), or a "LicenseRef-" reference to a license outside the list;
//   - "+" after an identifier means "this version or any later one" ("GPL-2.0+");
//   - "WITH" adds an exception that grants extra permissions
//     ("GPL-2.0-only WITH Classpath-exception-2.0");
//   - "OR" lets the user choose either side; "AND" requires both.
//
// Parsing, the license list and satisfaction ("can these licenses satisfy that
// expression?") are github.com/github/go-spdx's; this package adds the policy: which
// identifiers are unknown (an error: a typo must not pass as a license nobody checked),
// and what a deny list means for an expression with choices.
package spdx

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/github/go-spdx/v2/spdxexp/spdxlicenses"
)

// Validate reports whether expr is a well-formed SPDX expression whose identifiers are all
// on the SPDX License List (current or deprecated) or LicenseRef- references. The error
// names the first unknown identifier or the syntax problem.
func Validate(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return fmt.Errorf("empty license expression")
	}
	if _, err := spdxexp.ExtractLicenses(expr); err != nil {
		return fmt.Errorf("license expression %q: %v", expr, err)
	}
	return nil
}

// ValidID reports whether id alone, or "id WITH exception", is a known license identifier:
// what a policy list may hold.
func ValidID(id string) error {
	lic, exc, hasExc := strings.Cut(id, " WITH ")
	lic = strings.TrimSpace(lic)
	if strings.ContainsAny(lic, " ()") || strings.HasSuffix(lic, "+") {
		return fmt.Errorf("%q is not a single license identifier (policy lists name licenses, not expressions)", id)
	}
	if err := Validate(lic); err != nil {
		return err
	}
	if hasExc {
		if ok, _ := spdxlicenses.IsException(strings.TrimSpace(exc)); !ok {
			return fmt.Errorf("%q is not an SPDX license exception", strings.TrimSpace(exc))
		}
	}
	return nil
}

// Policy is what an environment accepts. An empty policy accepts every valid expression.
type Policy struct {
	// Allow, when not empty, lists the licenses acceptable: an expression passes if the
	// user can satisfy it with these alone (one side of each OR, both sides of each AND).
	// "X" allows "X WITH <any exception>" too, since an exception only adds permissions.
	Allow []string `json:"allow,omitempty"`
	// Deny lists licenses never acceptable, even when Allow would take them: "X" denies X
	// with or without exceptions; "X WITH E" denies only that combination. An expression
	// passes if it can still be satisfied without them ("MIT OR GPL-3.0-only" with
	// GPL-3.0-only denied passes, through MIT).
	Deny []string `json:"deny,omitempty"`
}

// Validate checks that every entry of the policy is a known identifier.
func (p Policy) Validate() error {
	for _, id := range append(append([]string(nil), p.Allow...), p.Deny...) {
		if err := ValidID(id); err != nil {
			return err
		}
	}
	return nil
}

// Result is the verdict on one expression.
type Result struct {
	Expression string `json:"expression"`
	OK         bool   `json:"ok"`
	// Reason says why the expression fails, naming the licenses at fault.
	Reason string `json:"reason,omitempty"`
}

// Check judges expr under the policy. An unknown identifier or a syntax error fails with
// that as the reason.
func (p Policy) Check(expr string) Result {
	res := Result{Expression: expr}
	if err := Validate(expr); err != nil {
		res.Reason = err.Error()
		return res
	}
	ids, _ := spdxexp.ExtractLicenses(expr)
	if len(p.Allow) == 0 && len(p.Deny) == 0 {
		res.OK = true
		return res
	}
	allowed := p.allowed(ids)
	if len(allowed) > 0 {
		ok, err := spdxexp.Satisfies(expr, allowed)
		if err != nil {
			res.Reason = err.Error()
			return res
		}
		if ok {
			res.OK = true
			return res
		}
	}
	res.Reason = p.blame(expr, ids)
	return res
}

// allowed is the list handed to go-spdx's Satisfies: the allow list or, without one, the
// licenses on the list that could satisfy one of the expression's licenses (so Satisfies
// compares a handful, not the whole list), each also with the expression's exceptions,
// minus what the deny list removes.
func (p Policy) allowed(ids []string) []string {
	base := p.Allow
	if len(base) == 0 {
		seen := map[string]bool{}
		for _, id := range ids {
			lic, _, _ := strings.Cut(id, " WITH ")
			for _, c := range candidates(lic) {
				if !seen[c] {
					seen[c] = true
					base = append(base, c)
				}
			}
		}
	}
	var exceptions []string
	for _, id := range ids {
		if _, exc, ok := strings.Cut(id, " WITH "); ok {
			exceptions = append(exceptions, exc)
		}
	}
	var out []string
	add := func(id string) {
		if !p.denied(id) {
			out = append(out, id)
		}
	}
	for _, id := range base {
		add(id)
		if !strings.Contains(id, " WITH ") {
			for _, e := range exceptions {
				add(id + " WITH " + e)
			}
		}
	}
	return out
}

var (
	candidatesMu    sync.Mutex
	candidatesCache = map[string][]string{}
)

// candidates are the identifiers that satisfy lic: itself, its deprecated spellings, and
// for "X+" the later versions; a LicenseRef is its own only candidate. Cached: the first
// question about a license walks the whole list.
func candidates(lic string) []string {
	candidatesMu.Lock()
	c, ok := candidatesCache[lic]
	candidatesMu.Unlock()
	if ok {
		return c
	}
	if strings.Contains(lic, "LicenseRef-") {
		c = []string{lic}
	} else {
		for _, id := range append(spdxlicenses.GetLicenses(), spdxlicenses.GetDeprecated()...) {
			if covers(lic, id) {
				c = append(c, id)
			}
		}
	}
	candidatesMu.Lock()
	candidatesCache[lic] = c
	candidatesMu.Unlock()
	return c
}

// denied reports whether the deny list takes id ("X" or "X WITH E") away. A denied "D"
// takes away every X that would satisfy D under go-spdx's rules — D itself, its deprecated
// spellings, and "or later" ranges that include it ("GPL-2.0-or-later" when GPL-3.0-only
// is denied) — with or without an exception; a denied "D WITH E" takes away only those
// combinations.
func (p Policy) denied(id string) bool {
	lic, exc, hasExc := strings.Cut(id, " WITH ")
	for _, d := range p.Deny {
		if strings.EqualFold(d, id) {
			return true
		}
		dl, de, dHasExc := strings.Cut(d, " WITH ")
		if dHasExc && (!hasExc || !strings.EqualFold(de, exc)) {
			continue
		}
		if covers(dl, lic) {
			return true
		}
	}
	return false
}

var (
	coversMu    sync.Mutex
	coversCache = map[[2]string]bool{}
)

// covers reports whether allowing lic would satisfy the license denied, cached: a deny
// list is checked against the whole license list for every expression.
func covers(denied, lic string) bool {
	key := [2]string{denied, lic}
	coversMu.Lock()
	ok, found := coversCache[key]
	coversMu.Unlock()
	if found {
		return ok
	}
	ok, err := spdxexp.Satisfies(denied, []string{lic})
	ok = ok && err == nil
	coversMu.Lock()
	coversCache[key] = ok
	coversMu.Unlock()
	return ok
}

// blame names what stands in the way: the denied licenses, and those outside the allow
// list.
func (p Policy) blame(expr string, ids []string) string {
	var denied, notAllowed []string
	for _, id := range ids {
		switch {
		case p.denied(id):
			denied = append(denied, id)
		case len(p.Allow) > 0:
			if ok, _ := spdxexp.Satisfies(id, p.allowed([]string{id})); !ok {
				notAllowed = append(notAllowed, id)
			}
		}
	}
	sort.Strings(denied)
	sort.Strings(notAllowed)
	var parts []string
	if len(denied) > 0 {
		parts = append(parts, strings.Join(denied, ", ")+" denied")
	}
	if len(notAllowed) > 0 {
		parts = append(parts, strings.Join(notAllowed, ", ")+" not in the allow list")
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%s cannot be satisfied by the allowed licenses", expr)
	}
	return fmt.Sprintf("%s cannot be satisfied: %s", expr, strings.Join(parts, "; "))
}

// ListVersion is the SPDX License List version go-spdx carries.
func ListVersion() string { return spdxlicenses.LicenseListVersion() }
