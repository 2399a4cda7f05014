package osv

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
)

// FuzzParse feeds an advisory file's bytes to Parse, then what Parse accepts to Score,
// BaseScore and Match. None may panic. An accepted record has an id; its score is -1 or
// within 0..10 with a rating; BaseScore's scores are within 0..10; Match, for every
// package the record names and for versions around its events, lists only fixed versions
// that parse, come after the version asked about, in ascending order, and matches nothing
// once the record is withdrawn.
//
// The seed corpus (testdata/fuzz/FuzzParse) holds the examples' advisory and OSV records
// of golang/vulndb (CC-BY-4.0) and the GitHub advisory database (CC-BY-4.0), by way of the
// project's shared/realworld.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"id":"CIRCLE-1","affected":[{"package":{"ecosystem":"Circle","name":"api"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.1"}]}]}],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}`))
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			if r != nil {
				t.Fatal("a record and an error")
			}
			return
		}
		if r.ID == "" {
			t.Error("a record without an id")
		}
		s := r.Score()
		if s.Value != -1 && (s.Value < 0 || s.Value > 10 || math.IsNaN(s.Value)) || s.Rating == "" {
			t.Errorf("score %+v", s)
		}
		for _, sev := range allSeverities(r) {
			if v, err := BaseScore(sev.Score); err == nil && (v < 0 || v > 10 || math.IsNaN(v)) {
				t.Errorf("BaseScore(%q) = %v", sev.Score, v)
			}
		}
		_ = r.Names()
		for _, a := range r.Affected {
			for _, version := range candidateVersions(a) {
				m := r.Match(a.Package.Ecosystem, a.Package.Name, version, now)
				checkMatch(t, m, version)
				if r.Withdrawn != nil {
					if m := r.Match(a.Package.Ecosystem, a.Package.Name, version, r.Withdrawn.Add(time.Second)); m.Affected {
						t.Errorf("withdrawn record matches %s", version)
					}
				}
			}
		}
	})
}

func allSeverities(r *Record) []Severity {
	out := slices.Clone(r.Severity)
	for _, a := range r.Affected {
		out = append(out, a.Severity...)
	}
	return out
}

// candidateVersions are the versions a record's events and list name, and a few around.
func candidateVersions(a Affected) []string {
	out := []string{"0.0.1", "1.0.0", "99.0.0"}
	out = append(out, a.Versions...)
	for _, rg := range a.Ranges {
		for _, e := range rg.Events {
			for _, v := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
				if v != "" && len(out) < 32 {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

func checkMatch(t *testing.T, m Match, version string) {
	t.Helper()
	if !m.Affected && len(m.Fixed) > 0 {
		t.Errorf("%s: fixed versions %v without a hit", version, m.Fixed)
	}
	v, verr := semver.NewVersion(version)
	var prev *semver.Version
	for _, f := range m.Fixed {
		fv, err := semver.NewVersion(f)
		if err != nil {
			t.Errorf("%s: fixed version %q does not parse", version, f)
			continue
		}
		if verr == nil && !fv.GreaterThan(v) {
			t.Errorf("%s: fixed version %s is not above it", version, f)
		}
		if prev != nil && fv.LessThan(prev) {
			t.Errorf("%s: fixed versions %v out of order", version, m.Fixed)
		}
		prev = fv
	}
}
