package layers_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/layers"
)

// fuzzBudget bounds one input's parse and merge. Fuzz inputs are at most a few hundred
// KiB, which a linear parser reads in milliseconds; a quadratic one (CUE's merge keys took
// 5 s for 128 KiB) or an unbounded alias expansion goes past it. It is wide because the
// fuzzer shares the machine.
const fuzzBudget = 10 * time.Second

// watchdog crashes the fuzzing worker if one input runs for twice fuzzBudget: the fuzzer
// has no per-input timeout, so a hang would only stall it, and a crash keeps the input.
func watchdog(name string, data []byte) *time.Timer {
	return time.AfterFunc(2*fuzzBudget, func() {
		panic(fmt.Sprintf("%s: %d bytes still parsing after %v: %q", name, len(data), 2*fuzzBudget, data))
	})
}

// FuzzParseYAML feeds Parse and FromSOPS any bytes as a YAML config layer. Neither may
// panic or take more than fuzzBudget; an error names the file; a layer that parses merges,
// alone and over itself (which must change no value), with every value's origin in the file.
// Small inputs without merge keys must also mean what CUE's own YAML decoder makes of them
// (the decoder Circle used before ExtractYAML): the same errors, values and positions.
//
// The seed corpus (testdata/fuzz/FuzzParseYAML) holds the examples' config and SOPS files;
// flux-* are files of fluxcd/kustomize-controller's SOPS tests (Apache-2.0, by way of the
// project's shared/realworld); the rest are the merge-key crash and quadratic, an alias
// bomb's start, tags and number spellings, and a property the fuzzer found too strict.
func FuzzParseYAML(f *testing.F) {
	for _, s := range yamlCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "config/base/fuzz.yaml"
		defer watchdog(name, data).Stop()
		start := time.Now()
		l, err := layers.Parse(name, data)
		checkLayer(t, name, l, err)
		if sl, err := layers.FromSOPS(name, data, data); err == nil {
			for _, o := range layers.Merge(sl).Origins() {
				if !o.Sensitive {
					t.Errorf("%s from a SOPS layer is not sensitive", o.Path)
				}
			}
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("FromSOPS error %q does not name the file", err)
		}
		if d := time.Since(start); d > fuzzBudget {
			t.Fatalf("%d bytes took %v", len(data), d)
		}
		// CUE's decoder overflows the stack on some merge keys and is quadratic on others.
		if len(data) <= 4096 && !strings.Contains(string(data), "<<") {
			sameAsCUEUnlessItPanics(t, data)
		}
	})
}

// FuzzParseJSON feeds Parse any bytes as a JSON config layer: no panic, no time past
// fuzzBudget, an error naming the file, and only valid JSON accepted. Seeds: the examples'
// lock and advisory, getsops/sops's example.json (MPL-2.0, by way of shared/realworld).
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": 1, "b": [true, null, 1.5e3], "c": {"d": "e\u00e9\n"}}`, `[]`, `1`, `{"a": 1,}`, `{"a": {"a": {"a": null}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "config/prod/fuzz.json"
		defer watchdog(name, data).Stop()
		start := time.Now()
		l, err := layers.Parse(name, data)
		checkLayer(t, name, l, err)
		if err == nil && !json.Valid(data) {
			t.Errorf("invalid JSON accepted")
		}
		if d := time.Since(start); d > fuzzBudget {
			t.Fatalf("%d bytes took %v", len(data), d)
		}
	})
}

// FuzzParseCUE feeds Parse any bytes as a CUE config layer: no panic, no time past
// fuzzBudget, and an error naming the file (an import among them). Seeds: the examples'
// schema, a config layer, an import, a reference and a top-level list.
func FuzzParseCUE(f *testing.F) {
	for _, s := range []string{"a: 1\nb: {c: \"d\"}\n", "package config\n\nport: 8080\n", "import \"strings\"\na: strings.ToUpper(\"x\")\n", "a: b\nb: 1\n", "[1, 2]", "{a: 1}\n", "a: \"\"\"\n\tmulti\n\t\"\"\"\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "config/dev/fuzz.cue"
		defer watchdog(name, data).Stop()
		start := time.Now()
		l, err := layers.Parse(name, data)
		checkLayer(t, name, l, err)
		if d := time.Since(start); d > fuzzBudget {
			t.Fatalf("%d bytes took %v", len(data), d)
		}
	})
}

// checkLayer holds what every format promises of Parse's result.
func checkLayer(t *testing.T, name string, l *layers.Layer, err error) {
	t.Helper()
	if err != nil {
		if l != nil {
			t.Errorf("a layer and an error")
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name the file", err)
		}
		return
	}
	once := layers.Merge(l)
	twice := layers.Merge(l, l)
	if a, b := originList(once), originList(twice); a != b {
		t.Errorf("merging a layer over itself changed it:\nonce:  %s\ntwice: %s", a, b)
	}
	seen := map[string]bool{}
	for _, o := range once.Origins() {
		if o.File != name {
			t.Errorf("%s comes from %q", o.Path, o.File)
		}
		if seen[o.Path] {
			t.Errorf("%s is listed twice", o.Path)
		}
		seen[o.Path] = true
		if got, ok := once.Origin(o.Path); !ok || got != o {
			t.Errorf("Origin(%q) = %v, %v; Origins says %v", o.Path, got, ok, o)
		}
	}
	if once.Expr() == nil {
		t.Errorf("no expression")
	}
	_ = once.ScalarsWhere(func(layers.Origin) bool { return true })
}

// originList lists where each value comes from, sorted: the order may differ, since a key
// deleted by a null and set again moves to the end.
func originList(m *layers.Merged) string {
	var out []string
	for _, o := range m.Origins() {
		out = append(out, o.String()+"="+o.Path)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// sameAsCUEUnlessItPanics compares with CUE's decoder, unless CUE's decoder panics: that
// is CUE's bug, on a path Circle no longer takes.
func sameAsCUEUnlessItPanics(t *testing.T, data []byte) {
	t.Helper()
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		_, _ = cueExtract(data)
		return false
	}()
	if !panicked {
		sameAsCUE(t, data)
	}
}
