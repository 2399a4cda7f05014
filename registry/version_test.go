package registry

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
)

// The precedence examples of semver 2.0.0 §11, each lower than the next.
func TestVersion_SpecPrecedence(t *testing.T) {
	chains := [][]string{
		{"1.0.0", "2.0.0", "2.1.0", "2.1.1"},
		{"1.0.0-alpha", "1.0.0"},
		{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"},
	}
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			a, b := mustVersion(t, chain[i]), mustVersion(t, chain[i+1])
			if a.Compare(b) >= 0 || b.Compare(a) <= 0 {
				t.Errorf("%s < %s does not hold", a, b)
			}
		}
	}
	// §10: build metadata does not take part in precedence.
	if a, b := mustVersion(t, "1.0.0+20130313144700"), mustVersion(t, "1.0.0+exp.sha.5114f85"); a.Compare(b) != 0 {
		t.Errorf("%s and %s differ in precedence", a, b)
	}
	shuffled := []*semver.Version{mustVersion(t, "1.0.0"), mustVersion(t, "1.0.0-rc.1"), mustVersion(t, "1.0.0-alpha"), mustVersion(t, "1.0.0-beta.11"), mustVersion(t, "1.0.0-beta.2")}
	SortVersions(shuffled)
	var got []string
	for _, v := range shuffled {
		got = append(got, v.Original())
	}
	if want := "1.0.0-alpha 1.0.0-beta.2 1.0.0-beta.11 1.0.0-rc.1 1.0.0"; strings.Join(got, " ") != want {
		t.Errorf("sorted = %v, want %s", got, want)
	}
}

func TestParseVersion_Strict(t *testing.T) {
	for _, ok := range []string{"0.0.0", "1.2.3", "1.0.0-alpha.1", "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0+21AF26D3----117B344092BD", "1.0.0-alpha+001"} {
		if _, err := ParseVersion(ok); err != nil {
			t.Errorf("ParseVersion(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1", "1.2", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3.4", "latest"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted a non-semver version", bad)
		} else if !strings.Contains(err.Error(), "semver 2.0") {
			t.Errorf("ParseVersion(%q) error does not say what is wanted: %v", bad, err)
		}
	}
}

// Ranges in the forms users write, with the edge cases that surprise them.
func TestRange_Allows(t *testing.T) {
	cases := []struct {
		rng     string
		in, out []string
	}{
		{"^1.2.3", []string{"1.2.3", "1.9.0"}, []string{"1.2.2", "2.0.0", "1.3.0-beta"}},
		{"^1.2", []string{"1.2.0", "1.99.0"}, []string{"1.1.9", "2.0.0"}},
		// ^ below 1.0: the leftmost non-zero part may not change.
		{"^0.2.3", []string{"0.2.3", "0.2.9"}, []string{"0.3.0", "0.2.2", "1.0.0"}},
		{"^0.0.3", []string{"0.0.3"}, []string{"0.0.4", "0.1.0"}},
		{"^0.x", []string{"0.0.1", "0.9.9"}, []string{"1.0.0"}},
		{"~1.2.3", []string{"1.2.3", "1.2.99"}, []string{"1.3.0", "1.2.2"}},
		{"~1.2", []string{"1.2.0", "1.2.5"}, []string{"1.3.0"}},
		{">=1.0 <2.0", []string{"1.0.0", "1.99.99"}, []string{"2.0.0", "0.9.0", "2.0.0-rc.1", "1.5.0-beta"}},
		{">=1.0, <2.0", []string{"1.5.0"}, []string{"2.0.0"}},
		{"1.x", []string{"1.0.0", "1.7.3"}, []string{"2.0.0", "0.9.0"}},
		{"1.2.x", []string{"1.2.0", "1.2.8"}, []string{"1.3.0"}},
		{"*", []string{"0.0.1", "1.0.0", "99.0.0"}, []string{"1.0.0-beta", "2.0.0-rc.1"}},
		{"^1 || ^3", []string{"1.0.0", "3.4.0"}, []string{"2.0.0", "4.0.0"}},
		{"1.2.3", []string{"1.2.3", "1.2.3+build.5"}, []string{"1.2.4"}},
		// Pre-releases only when the range asks for one.
		{">=1.3.0-0", []string{"1.3.0-beta.1", "1.3.0", "2.0.0"}, []string{"1.2.9"}},
		{"^2.0.0-rc.1", []string{"2.0.0-rc.1", "2.0.0-rc.2", "2.0.0", "2.1.0"}, []string{"2.0.0-beta", "3.0.0"}},
		{"^1 || >=2.0.0-0 <3", []string{"1.4.0", "2.0.0-alpha"}, []string{"1.5.0-beta"}},
	}
	for _, c := range cases {
		r, err := ParseRange(c.rng)
		if err != nil {
			t.Fatalf("ParseRange(%q): %v", c.rng, err)
		}
		if r.String() != c.rng {
			t.Errorf("String() = %q, want the text as written %q", r.String(), c.rng)
		}
		for _, v := range c.in {
			if !r.Allows(mustVersion(t, v)) {
				t.Errorf("%q does not allow %s", c.rng, v)
			}
		}
		for _, v := range c.out {
			if r.Allows(mustVersion(t, v)) {
				t.Errorf("%q allows %s", c.rng, v)
			}
		}
	}
	for _, bad := range []string{"", "^", ">>1", "1.2.3 ||", "latest", "=> <"} {
		if _, err := ParseRange(bad); err == nil {
			t.Errorf("ParseRange(%q) accepted a non-range", bad)
		}
	}
}

func TestRange_Newest(t *testing.T) {
	vs := []*semver.Version{mustVersion(t, "1.0.0"), mustVersion(t, "1.4.0"), mustVersion(t, "2.0.0-beta"), mustVersion(t, "1.2.0")}
	r, _ := ParseRange("^1.0")
	if got := r.Newest(vs); got == nil || got.Original() != "1.4.0" {
		t.Errorf("Newest = %v, want 1.4.0", got)
	}
	r, _ = ParseRange("^3")
	if got := r.Newest(vs); got != nil {
		t.Errorf("Newest = %v, want none", got)
	}
}

// The ordering vectors OSV tooling uses (osv-scalibr's semver-versions.txt). That file is
// lenient on purpose; only the pairs that are strict semver 2.0 are checked here.
func TestVersion_RealWorldOrdering(t *testing.T) {
	f, err := os.Open(filepath.Join(realworld, "semver", "google-osv-scalibr", "semantic", "testdata", "semver-versions.txt"))
	if os.IsNotExist(err) {
		t.Skip("../shared/realworld/semver is not on this machine: the real-world ordering vectors are not checked")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checked := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		parts := strings.Fields(line)
		if len(parts) != 3 {
			continue
		}
		a, errA := semver.StrictNewVersion(parts[0])
		b, errB := semver.StrictNewVersion(parts[2])
		if errA != nil || errB != nil {
			continue
		}
		want := map[string]int{"<": -1, "=": 0, ">": 1}[parts[1]]
		if got := a.Compare(b); got != want {
			t.Errorf("%s: Compare = %d, want %d", line, got, want)
		}
		checked++
	}
	if checked < 40 {
		t.Errorf("only %d strict pairs checked; the file changed shape?", checked)
	}
}

const realworld = "../../shared/realworld"

func mustVersion(t testing.TB, s string) *semver.Version {
	t.Helper()
	v, err := semver.StrictNewVersion(s)
	if err != nil {
		t.Fatalf("version %q: %v", s, err)
	}
	return v
}
