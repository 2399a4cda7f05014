package license

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// canonical encodes a JSON-like value the way doc.go defines, for any value, so the test
// can build payloads the package's own encoder would refuse to write.
func canonical(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return string(appendString(nil, v))
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = canonical(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(v)) {
			parts = append(parts, canonical(k)+":"+canonical(v[k]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	panic(fmt.Sprintf("canonical: %T", v))
}

func validLicense() map[string]any {
	return map[string]any{
		"format": "circle-license/1", "id": "lic_1", "licensee": "Example", "product": "circle-demo",
		"features": []any{"a", "b"}, "limits": map[string]any{"seats": 10},
		"issuedAt": "2026-01-01T00:00:00Z", "notBefore": "2026-01-01T00:00:00Z", "expiresAt": "2027-01-01T00:00:00Z",
		"graceSeconds": 86400, "binding": map[string]any{"cluster": "c1", "domain": "example.com"},
		"metadata": map[string]any{"order": "42"},
	}
}

var absent = struct{}{}

// The Go checks on Verify's hot path and the CUE schema give the same verdict on every
// payload: each field of a valid payload replaced in turn by values on both sides of each
// rule, or removed.
func TestSchema_GoChecksMatchCUE(t *testing.T) {
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	label63, label64 := long("a", 63), long("a", 64)
	times := []any{"2026-06-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T00:00:00+01:00", "2026-06-01T00:00:00.5Z",
		"2026-06-01", "", "2026-13-01T00:00:00Z", "2026-06-01T24:00:00Z", "2026-06-01T23:59:60Z", 0, absent}
	cases := map[string][]any{
		"format":       {"circle-license/2", "", absent},
		"id":           {"a", "A-1.b_c", long("a", 128), long("a", 129), "", "-a", "a b", "a/b", "ä", 5, absent},
		"licensee":     {"x", "", long("é", 256), long("é", 257), "line\nbreak\u0001", "  ", 1, absent},
		"product":      {"p", "P", "p-1.2_x", "", "-p", "1p", long("p", 64), long("p", 65), absent},
		"features":     {[]any{}, []any{"a"}, []any{"b", "a"}, []any{"a", "a"}, []any{"A"}, []any{1}, []any{""}, []any{long("f", 65)}, "a", nil, absent},
		"limits":       {map[string]any{}, map[string]any{"seats": 0}, map[string]any{"seats": -1}, map[string]any{"seats": 9007199254740991}, map[string]any{"seats": 9007199254740992}, map[string]any{"Seats": 1}, map[string]any{"seats": 1.5}, map[string]any{"seats": "1"}, nil, absent},
		"issuedAt":     times,
		"notBefore":    times,
		"expiresAt":    append(slices.Clone(times), "2026-01-01T00:00:00Z", "2025-12-31T23:59:59Z", "2026-01-01T00:00:01Z"),
		"graceSeconds": {1, 0, -1, 31622400, 31622401, 1.5, "1", nil, absent},
		"binding": {map[string]any{}, map[string]any{"cluster": "c"}, map[string]any{"domain": "a.b"}, map[string]any{"domain": "A.b"},
			map[string]any{"domain": "a..b"}, map[string]any{"domain": "-a.b"}, map[string]any{"domain": "a-.b"}, map[string]any{"domain": "a.b."},
			map[string]any{"domain": label63 + ".com"}, map[string]any{"domain": label64 + ".com"}, map[string]any{"domain": "localhost"},
			map[string]any{"domain": strings.Repeat(label63+".", 3) + long("b", 61)}, map[string]any{"domain": strings.Repeat(label63+".", 3) + long("b", 62)},
			map[string]any{"domain": "xn--bcher-kva.example"}, map[string]any{"domain": ""}, map[string]any{"cluster": ""},
			map[string]any{"cluster": "a/b"}, map[string]any{"zone": "x"}, map[string]any{"cluster": 1}, nil, absent},
		"metadata": {map[string]any{}, map[string]any{"k": "v"}, map[string]any{"a/b.c_d-e": ""}, map[string]any{"-k": "v"},
			map[string]any{"k": long("ü", 1024)}, map[string]any{"k": long("ü", 1025)}, map[string]any{"k": 1}, map[string]any{long("k", 129): "v"}, nil, absent},
		"extra": {1},
	}
	n := 0
	check := func(name string, m map[string]any) {
		payload := []byte(canonical(m))
		_, goErr := decodeLicense(payload)
		cueErr := checkSchema(defLicense, payload)
		if (goErr == nil) != (cueErr == nil) {
			t.Errorf("%s: Go says %v; CUE says %v\n%s", name, goErr, cueErr, payload)
		}
		n++
	}
	check("valid", validLicense())
	for field, values := range cases {
		for i, v := range values {
			m := validLicense()
			if v == absent {
				delete(m, field)
			} else {
				m[field] = v
			}
			check(fmt.Sprintf("%s[%d]", field, i), m)
		}
	}
	t.Logf("%d payloads, same verdicts", n)
}

func TestSchema_RevocationsGoChecksMatchCUE(t *testing.T) {
	entry := func(id, reason, at any) map[string]any {
		return map[string]any{"id": id, "reason": reason, "revokedAt": at}
	}
	valid := func() map[string]any {
		return map[string]any{"format": "circle-revocations/1", "serial": 1, "issuedAt": "2026-01-01T00:00:00Z",
			"entries": []any{entry("a", "r", "2026-01-01T00:00:00Z"), entry("b", "r", "2026-01-01T00:00:00Z")}}
	}
	cases := map[string][]any{
		"format":   {"circle-license/1", absent},
		"serial":   {0, -1, 9007199254740991, 9007199254740992, 1.5, absent},
		"issuedAt": {"2026-02-30T00:00:00Z", "x", absent},
		"entries": {[]any{}, []any{entry("b", "r", "2026-01-01T00:00:00Z"), entry("a", "r", "2026-01-01T00:00:00Z")},
			[]any{entry("a", "r", "2026-01-01T00:00:00Z"), entry("a", "s", "2026-01-01T00:00:00Z")},
			[]any{entry("a", "", "2026-01-01T00:00:00Z")}, []any{entry("a", strings.Repeat("r", 257), "2026-01-01T00:00:00Z")},
			[]any{entry("-a", "r", "2026-01-01T00:00:00Z")}, []any{entry("a", "r", "2026-01-01")},
			[]any{map[string]any{"id": "a", "reason": "r"}}, nil, absent},
		"extra": {true},
	}
	check := func(name string, m map[string]any) {
		payload := []byte(canonical(m))
		_, goErr := decodeRevocations(payload)
		cueErr := checkSchema(defRevocations, payload)
		if (goErr == nil) != (cueErr == nil) {
			t.Errorf("%s: Go says %v; CUE says %v\n%s", name, goErr, cueErr, payload)
		}
	}
	check("valid", valid())
	for field, values := range cases {
		for i, v := range values {
			m := valid()
			if v == absent {
				delete(m, field)
			} else {
				m[field] = v
			}
			check(fmt.Sprintf("%s[%d]", field, i), m)
		}
	}
}

// The schema's messages name the field.
func TestSchema_Messages(t *testing.T) {
	m := validLicense()
	m["product"] = "Circle"
	m["limits"] = map[string]any{"seats": -1}
	err := checkSchema(defLicense, []byte(canonical(m)))
	if err == nil || !strings.Contains(err.Error(), "product") || !strings.Contains(err.Error(), "limits.seats") {
		t.Errorf("schema error: %v", err)
	}
	if err := checkSchema(defLicense, []byte("{")); err == nil {
		t.Error("schema of broken JSON")
	}
	// Contexts are replaced after schemaReuse checks; checks keep working across it.
	for range schemaReuse + 1 {
		if err := checkSchema(defLicense, []byte(canonical(validLicense()))); err != nil {
			t.Fatal(err)
		}
	}
}
