package osv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

// Vectors whose base scores are published: NVD's and the CVSS v3.1 specification's
// examples.
func TestBaseScore_KnownVectors(t *testing.T) {
	for _, c := range []struct {
		vector string
		score  float64
		rating string
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CRITICAL"},  // e.g. CVE-2014-6271 (Shellshock)
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "CRITICAL"}, // CVE-2021-44228 (Log4Shell)
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N", 9.1, "CRITICAL"},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "HIGH"},
		{"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, "HIGH"}, // CVE-2014-0160 (Heartbleed)
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "HIGH"},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "MEDIUM"}, // CVE-2013-1937 in the spec's examples
		{"CVSS:3.0/AV:L/AC:H/PR:L/UI:N/S:C/C:H/I:N/A:N", 5.6, "MEDIUM"}, // CVE-2017-5753 (Spectre)
		{"CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N", 5.1, "MEDIUM"},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "NONE"},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C", 9.8, "CRITICAL"}, // temporal metrics do not change the base
	} {
		got, err := BaseScore(c.vector)
		if err != nil {
			t.Fatalf("%s: %v", c.vector, err)
		}
		if got != c.score || Rating(got) != c.rating {
			t.Errorf("%s = %.1f %s, want %.1f %s", c.vector, got, Rating(got), c.score, c.rating)
		}
	}
	for _, bad := range []string{
		"AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
		"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:H",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:X/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:1",
		"CVSS:3.1/AV:N/AC",
	} {
		if _, err := BaseScore(bad); err == nil {
			t.Errorf("BaseScore(%q) accepted", bad)
		}
	}
	if roundup31(4.000000001) != 4.0 || roundup31(4.02) != 4.1 || roundup30(4.02) != 4.1 {
		t.Error("roundup")
	}
}

func TestRecord_Match(t *testing.T) {
	rec, err := Parse([]byte(`{
	  "id": "CIRCLE-2026-1", "aliases": ["CVE-2026-0001"],
	  "affected": [
	    {"package": {"ecosystem": "Circle", "name": "api"},
	     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.1"}, {"introduced": "1.3.0"}, {"fixed": "1.3.2"}, {"introduced": "2.0.0-rc.1"}, {"last_affected": "2.0.0"}]}],
	     "versions": ["0.9.0-custom"]},
	    {"package": {"ecosystem": "Circle", "name": "worker"},
	     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0.3.0"}, {"limit": "0.4.0"}]}, {"type": "GIT", "repo": "x", "events": [{"introduced": "abc"}]}]}
	  ]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, version string
		affected      bool
		fixed         string
	}{
		{"api", "0.1.0", true, "1.2.1 1.3.2"},
		{"api", "1.2.0", true, "1.2.1 1.3.2"},
		{"api", "1.2.1", false, ""},
		{"api", "1.3.0-beta", false, ""},
		{"api", "1.3.1", true, "1.3.2"},
		{"api", "1.3.2", false, ""},
		{"api", "2.0.0-rc.2", true, ""},
		{"api", "2.0.0", true, ""},
		{"api", "2.0.1", false, ""},
		{"api", "0.9.0-custom", true, "1.2.1 1.3.2"},
		{"worker", "0.3.5", true, ""},
		{"worker", "0.4.0", false, ""},
		{"other", "1.0.0", false, ""},
	} {
		m := rec.Match("Circle", c.name, c.version, now)
		if m.Affected != c.affected || strings.Join(m.Fixed, " ") != c.fixed {
			t.Errorf("%s %s: affected %v fixed %v, want %v %q", c.name, c.version, m.Affected, m.Fixed, c.affected, c.fixed)
		}
	}
	if m := rec.Match("Circle", "worker", "0.3.5", now); len(m.Skipped) != 1 || !strings.Contains(m.Skipped[0], "GIT range") {
		t.Errorf("skipped = %v", m.Skipped)
	}
	if m := rec.Match("Circle", "api", "not-a-version", now); m.Affected || len(m.Skipped) != 1 {
		t.Errorf("unparseable version: %+v", m)
	}
	if got := strings.Join(rec.Names(), " "); got != "CIRCLE-2026-1 CVE-2026-0001" {
		t.Errorf("Names = %s", got)
	}
}

func TestParse_Invalid(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{`{`, "unexpected end"},
		{`{"summary": "x"}`, "without an id"},
		{`{"id": "X", "affected": [{"package": {"name": "a"}}]}`, "needs an ecosystem and a name"},
		{`{"id": "X", "affected": [{"package": {"ecosystem": "Go", "name": "a"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0", "fixed": "1"}]}]}]}`, "exactly one of"},
	} {
		if _, err := Parse([]byte(c.json)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%s) = %v, want %q", c.json, err, c.want)
		}
	}
	rec, _ := Parse([]byte(`{"id": "X", "affected": [{"package": {"ecosystem": "Circle", "name": "a"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "zero"}]}]}]}`))
	if m := rec.Match("Circle", "a", "1.0.0", now); m.Affected || len(m.Skipped) != 1 || !strings.Contains(m.Skipped[0], `"zero" is not semver`) {
		t.Errorf("bad event version: %+v", m)
	}
}

const realOSV = "../../../shared/realworld/osv"

func readReal(t *testing.T, rel string) *Record {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(realOSV, rel))
	if os.IsNotExist(err) {
		t.Skip("../shared/realworld/osv is not on this machine: the real OSV records are not checked")
	}
	if err != nil {
		t.Fatal(err)
	}
	rec, err := Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return rec
}

// Every real record parses.
func TestParse_RealRecords(t *testing.T) {
	if _, err := os.Stat(realOSV); os.IsNotExist(err) {
		t.Skip("../shared/realworld/osv is not on this machine: the real OSV records are not checked")
	}
	n := 0
	err := filepath.WalkDir(realOSV, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".json" {
			return err
		}
		rel, _ := filepath.Rel(realOSV, p)
		readReal(t, rel)
		n++
		return nil
	})
	if err != nil || n < 20 {
		t.Fatalf("%d records, %v", n, err)
	}
}

// Real records from osv.dev's sources: introduced/fixed pairs, last_affected, pre-release
// bounds, ECOSYSTEM ranges of unknown order, versions lists, and withdrawn records.
func TestMatch_RealRecords(t *testing.T) {
	for _, c := range []struct {
		file, ecosystem, name, version string
		affected                       bool
		fixed                          string
	}{
		// go-git: v5 from 5.0.0, fixed in 5.11.0; GHSA's v4 range ends with last_affected 4.13.1.
		{"golang-vulndb/GO-2024-2456.json", "Go", "github.com/go-git/go-git/v5", "5.10.1", true, "5.11.0"},
		{"golang-vulndb/GO-2024-2456.json", "Go", "github.com/go-git/go-git/v5", "5.11.0", false, ""},
		{"golang-vulndb/GO-2024-2456.json", "Go", "github.com/go-git/go-git/v5", "4.9.0", false, ""},
		{"golang-vulndb/GO-2024-2456.json", "Go", "gopkg.in/src-d/go-git.v4", "4.13.1", true, ""},
		{"golang-vulndb/GO-2024-2456.json", "Go", "gopkg.in/src-d/go-git.v4", "4.7.0", false, ""},
		{"github-advisory-database/GHSA-449p-3h89-pw88.json", "Go", "github.com/go-git/go-git/v4", "4.13.1", true, ""},
		{"github-advisory-database/GHSA-449p-3h89-pw88.json", "Go", "github.com/go-git/go-git/v4", "4.13.2", false, ""},
		{"github-advisory-database/GHSA-449p-3h89-pw88.json", "Go", "github.com/go-git/go-git/v5", "5.4.2", true, "5.11.0"},
		// Argo CD: three introduced/fixed pairs with pre-release bounds in one range.
		{"golang-vulndb/GO-2025-3993.json", "Go", "github.com/argoproj/argo-cd/v3", "3.0.0-rc1", true, "3.0.19 3.1.8 3.2.0-rc2"},
		{"golang-vulndb/GO-2025-3993.json", "Go", "github.com/argoproj/argo-cd/v3", "3.0.19", false, ""},
		{"golang-vulndb/GO-2025-3993.json", "Go", "github.com/argoproj/argo-cd/v3", "3.1.7", true, "3.1.8 3.2.0-rc2"},
		{"golang-vulndb/GO-2025-3993.json", "Go", "github.com/argoproj/argo-cd/v3", "3.2.0-rc1", true, "3.2.0-rc2"},
		{"golang-vulndb/GO-2025-3993.json", "Go", "github.com/argoproj/argo-cd/v3", "3.2.0", false, ""},
		// The Go standard library: "1.22.0-0" introduces the 1.22 line.
		{"golang-vulndb/GO-2024-2687.json", "Go", "stdlib", "1.21.8", true, "1.21.9 1.22.2"},
		{"golang-vulndb/GO-2024-2687.json", "Go", "stdlib", "1.21.9", false, ""},
		{"golang-vulndb/GO-2024-2687.json", "Go", "stdlib", "1.22.0", true, "1.22.2"},
		{"golang-vulndb/GO-2024-2687.json", "Go", "stdlib", "1.22.2", false, ""},
		// crates.io: a non-semver bound ("0.1") read leniently, and last_affected.
		{"google-osv-scanner/GHSA-wcg3-cvx6-7396.json", "crates.io", "time", "0.1.45", true, ""},
		{"google-osv-scanner/GHSA-wcg3-cvx6-7396.json", "crates.io", "time", "0.2.7", true, "0.2.23"},
		{"google-osv-scanner/GHSA-wcg3-cvx6-7396.json", "crates.io", "time", "0.2.23", false, ""},
		{"google-osv-scanner/RUSTSEC-2022-0013.json", "crates.io", "regex", "1.5.4", true, "1.5.5"},
		// PyPI: ECOSYSTEM ranges are not semver-ordered here; the versions list still counts.
		{"google-osv.dev/gcp/functions/pypi/testdata/test_vuln.json", "PyPI", "cryptography", "3.1.1", true, ""},
		{"google-osv.dev/gcp/functions/pypi/testdata/test_vuln.json", "PyPI", "cryptography", "3.1.9", false, ""},
		// Withdrawn records match nothing.
		{"google-osv.dev/gcp/functions/pypi/testdata/test_vuln_withdrawn.json", "PyPI", "cryptography", "3.1.1", false, ""},
		{"golang-vulndb/GO-2022-0617.json", "Go", "k8s.io/kubernetes", "1.20.0", false, ""},
		{"golang-vulndb/GO-2024-2442.json", "Go", "github.com/gravitational/teleport", "1.0.0", false, ""},
	} {
		rec := readReal(t, c.file)
		m := rec.Match(c.ecosystem, c.name, c.version, now)
		if m.Affected != c.affected || strings.Join(m.Fixed, " ") != c.fixed {
			t.Errorf("%s: %s %s: affected %v fixed %v, want %v %q (skipped %v)", c.file, c.name, c.version, m.Affected, m.Fixed, c.affected, c.fixed, m.Skipped)
		}
	}
	pypi := readReal(t, "google-osv.dev/gcp/functions/pypi/testdata/test_vuln.json")
	if m := pypi.Match("PyPI", "cryptography", "3.1.9", now); len(m.Skipped) == 0 || !strings.Contains(m.Skipped[0], "ECOSYSTEM range of PyPI not evaluated") {
		t.Errorf("PyPI ranges are not reported as skipped: %v", m.Skipped)
	}
	withdrawn := readReal(t, "golang-vulndb/GO-2022-0617.json")
	if !withdrawn.IsWithdrawn(now) || withdrawn.IsWithdrawn(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("a record applies until its withdrawal time")
	}
}

// Severities of real records: CVSS vectors scored, database ratings as a floor, unknown
// when a record says nothing.
func TestScore_RealRecords(t *testing.T) {
	for _, c := range []struct {
		file   string
		score  float64
		rating string
	}{
		{"github-advisory-database/GHSA-449p-3h89-pw88.json", 9.8, "CRITICAL"},
		{"github-advisory-database/GHSA-v554-xwgw-hc3w.json", 5.1, "MEDIUM"},
		{"google-osv-scanner/RUSTSEC-2022-0013.json", 7.5, "HIGH"},
		{"google-osv.dev/gcp/workers/oss_fuzz_worker/testdata/GHSA-838r-hvwh-24h8.json", 9.1, "CRITICAL"},
		{"google-osv-scanner/GHSA-wcg3-cvx6-7396.json", 4, "MEDIUM"},                                    // database_specific "MODERATE"
		{"google-osv.dev/gcp/workers/oss_fuzz_worker/testdata/UBUNTU-CVE-2025-38094.json", 4, "MEDIUM"}, // severity type Ubuntu, "medium"
		{"golang-vulndb/GO-2024-2456.json", -1, "UNKNOWN"},
	} {
		got := readReal(t, c.file).Score()
		if got.Value != c.score || got.Rating != c.rating {
			t.Errorf("%s: %+v, want %.1f %s", c.file, got, c.score, c.rating)
		}
	}
}
