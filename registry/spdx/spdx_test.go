package spdx

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, ok := range []string{
		"MIT", "Apache-2.0", "mit", "MIT OR Apache-2.0", "(MIT OR Apache-2.0) AND BSD-3-Clause",
		"GPL-2.0-only WITH Classpath-exception-2.0", "GPL-2.0+", "Apache-1.0+", "LicenseRef-acme-eula",
		"GPL-2.0", // deprecated, still an identifier
	} {
		if err := Validate(ok); err != nil {
			t.Errorf("Validate(%q): %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":                    "empty license expression",
		"Apache-3.0":          "unknown license 'Apache-3.0'",
		"MIT OR Foo-1.0":      "unknown license 'Foo-1.0'",
		"MIT OR":              "expected expression following OR",
		"MIT AND (Apache-2.0": "",
		"GPLv2+":              "",
		"MIT, Apache-2.0":     "",
	} {
		err := Validate(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%q) = %v, want an error with %q", bad, err, want)
		}
	}
}

func TestValidID(t *testing.T) {
	for _, ok := range []string{"MIT", "GPL-2.0-only WITH Classpath-exception-2.0", "LicenseRef-acme"} {
		if err := ValidID(ok); err != nil {
			t.Errorf("ValidID(%q): %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"MIT OR Apache-2.0":                "not a single license identifier",
		"GPL-2.0+":                         "not a single license identifier",
		"Nope-1.0":                         "unknown license",
		"GPL-2.0-only WITH Nope-exception": "not an SPDX license exception",
	} {
		if err := ValidID(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidID(%q) = %v, want %q", bad, err, want)
		}
	}
	if err := (Policy{Allow: []string{"MIT"}, Deny: []string{"GPL 3"}}).Validate(); err == nil {
		t.Error("a policy with an unknown identifier validates")
	}
	if err := (Policy{Allow: []string{"MIT"}, Deny: []string{"GPL-3.0-only"}}).Validate(); err != nil {
		t.Error(err)
	}
}

// What allow and deny lists mean for expressions with choices, exceptions and "or later".
func TestPolicy_Check(t *testing.T) {
	cases := []struct {
		policy Policy
		expr   string
		ok     bool
		reason string
	}{
		{Policy{}, "GPL-3.0-only", true, ""},
		{Policy{}, "Foo-1.0", false, "unknown license 'Foo-1.0'"},
		{Policy{Allow: []string{"MIT"}}, "MIT", true, ""},
		{Policy{Allow: []string{"MIT"}}, "MIT OR GPL-3.0-only", true, ""},
		{Policy{Allow: []string{"MIT"}}, "MIT AND Apache-2.0", false, "MIT AND Apache-2.0 cannot be satisfied: Apache-2.0 not in the allow list"},
		{Policy{Allow: []string{"MIT", "Apache-2.0"}}, "(MIT OR GPL-2.0-only) AND Apache-2.0", true, ""},
		// An exception only adds permissions: allowing the license allows it with one.
		{Policy{Allow: []string{"GPL-2.0-only"}}, "GPL-2.0-only WITH Classpath-exception-2.0", true, ""},
		{Policy{Allow: []string{"GPL-2.0-only WITH Classpath-exception-2.0"}}, "GPL-2.0-only", false, "GPL-2.0-only not in the allow list"},
		// "+" is this version or later: a later allowed version satisfies it.
		{Policy{Allow: []string{"Apache-2.0"}}, "Apache-1.0+", true, ""},
		{Policy{Allow: []string{"Apache-1.0"}}, "Apache-2.0", false, "Apache-2.0 not in the allow list"},
		// A deny list removes choices; what remains must still satisfy the expression.
		{Policy{Deny: []string{"GPL-3.0-only"}}, "MIT OR GPL-3.0-only", true, ""},
		{Policy{Deny: []string{"GPL-3.0-only"}}, "GPL-3.0-only", false, "GPL-3.0-only cannot be satisfied: GPL-3.0-only denied"},
		{Policy{Deny: []string{"GPL-3.0-only"}}, "MIT AND GPL-3.0-only", false, "GPL-3.0-only denied"},
		{Policy{Deny: []string{"GPL-3.0-only"}}, "GPL-3.0", false, "GPL-3.0 denied"}, // a deprecated spelling is the same license
		{Policy{Deny: []string{"GPL-3.0-only"}}, "GPL-3.0-or-later", false, "denied"},
		{Policy{Deny: []string{"GPL-3.0-only"}}, "GPL-2.0+", true, ""}, // GPL-2.0 remains a choice
		{Policy{Deny: []string{"GPL-2.0-only"}}, "GPL-2.0-only WITH Classpath-exception-2.0", false, "GPL-2.0-only WITH Classpath-exception-2.0 denied"},
		{Policy{Deny: []string{"GPL-2.0-only WITH Classpath-exception-2.0"}}, "GPL-2.0-only", true, ""},
		{Policy{Allow: []string{"MIT", "Apache-2.0"}, Deny: []string{"Apache-2.0"}}, "Apache-2.0", false, "Apache-2.0 denied"},
		{Policy{Allow: []string{"MIT"}, Deny: []string{"MIT"}}, "MIT", false, "MIT denied"},
		// References to licenses outside the list: allowed unless an allow list omits them.
		{Policy{Deny: []string{"GPL-3.0-only"}}, "LicenseRef-acme", true, ""},
		{Policy{Allow: []string{"MIT"}}, "LicenseRef-acme", false, "LicenseRef-acme not in the allow list"},
		{Policy{Allow: []string{"LicenseRef-acme"}}, "LicenseRef-acme OR GPL-3.0-only", true, ""},
	}
	for _, c := range cases {
		got := c.policy.Check(c.expr)
		if got.OK != c.ok || !strings.Contains(got.Reason, c.reason) || got.Expression != c.expr {
			t.Errorf("%+v.Check(%q) = %+v, want ok=%v reason %q", c.policy, c.expr, got, c.ok, c.reason)
		}
	}
}

const realSPDX = "../../../shared/realworld/spdx"

func realFile(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(realSPDX, rel))
	if os.IsNotExist(err) {
		t.Skip("../shared/realworld/spdx is not on this machine: the SPDX License List is not checked")
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Every identifier of the official SPDX License List 3.28.0 is known, and every exception
// but the deprecated ones.
func TestRealWorld_LicenseList(t *testing.T) {
	var licenses struct {
		Version  string `json:"licenseListVersion"`
		Licenses []struct {
			ID string `json:"licenseId"`
		} `json:"licenses"`
	}
	if err := json.Unmarshal(realFile(t, "spdx-Spdx-Java-Library/resources/stdlicenses/licenses.json"), &licenses); err != nil {
		t.Fatal(err)
	}
	if len(licenses.Licenses) < 700 {
		t.Fatalf("%d licenses in list %s", len(licenses.Licenses), licenses.Version)
	}
	for _, l := range licenses.Licenses {
		if err := Validate(l.ID); err != nil {
			t.Errorf("list %s has %s: %v (go-spdx carries list %s)", licenses.Version, l.ID, err, ListVersion())
		}
	}
	var exceptions struct {
		Exceptions []struct {
			ID         string `json:"licenseExceptionId"`
			Deprecated bool   `json:"isDeprecatedLicenseId"`
		} `json:"exceptions"`
	}
	if err := json.Unmarshal(realFile(t, "spdx-Spdx-Java-Library/resources/stdlicenses/exceptions.json"), &exceptions); err != nil {
		t.Fatal(err)
	}
	for _, e := range exceptions.Exceptions {
		if err := ValidID("GPL-2.0-only WITH " + e.ID); err != nil && !e.Deprecated {
			t.Errorf("exception %s: %v", e.ID, err)
		}
	}
}

// License fields of real SBOMs: the SPDX example document's expressions are valid (its
// NOASSERTION is not an expression), and the messy strings a scanner wrote — lists with
// commas, "Apache License (2.0)", "GPL-3+ with Bison exception" — are refused.
func TestRealWorld_SBOMFields(t *testing.T) {
	sc := bufio.NewScanner(strings.NewReader(string(realFile(t, "derived/license-fields-from-sboms.tsv"))))
	valid, refused := 0, 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 4 {
			continue
		}
		src, value := cols[0], cols[3]
		err := Validate(value)
		switch {
		case strings.HasPrefix(src, "SPDXJSONExample") && value != "NOASSERTION":
			if err != nil {
				t.Errorf("SPDX example %q: %v", value, err)
			}
			valid++
		case strings.ContainsAny(value, ",(") || strings.Contains(value, " with ") || strings.Contains(value, "/"):
			if err == nil {
				t.Errorf("scanner output %q accepted as an SPDX expression", value)
			}
			refused++
		}
	}
	if valid < 5 || refused < 50 {
		t.Errorf("%d valid, %d refused: the file changed shape?", valid, refused)
	}
}
