package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Flags whose values have a range or a fixed set of choices check them as they are parsed,
// so a bad value stops a command before it does anything, with pflag's message naming the
// flag (invalid argument "-1m" for "--interval" flag: must be at least 100ms), and exit code
// 2. A flag set from the daemon's configuration file or a CIRCLE_* variable is parsed by the
// same Set (loadDaemonConfig), so the file and the environment are held to the same ranges.
// Values that feed a ticker, a timeout or arithmetic are bounded on both sides: a negative
// interval panics time.NewTicker, and an unbounded one overflows what it is added to.

// durationValue is a time.Duration flag within [min, max]; with zero set, 0 is allowed too
// and means the flag's "never" or "default".
type durationValue struct {
	p        *time.Duration
	min, max time.Duration
	zero     bool
}

func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, def, minimum, maximum time.Duration, usage string) {
	*p = def
	fs.Var(&durationValue{p: p, min: minimum, max: maximum}, name, usage)
}

// durationOrZeroVar is durationVar where 0 is allowed besides [min, max].
func durationOrZeroVar(fs *pflag.FlagSet, p *time.Duration, name string, def, minimum, maximum time.Duration, usage string) {
	*p = def
	fs.Var(&durationValue{p: p, min: minimum, max: maximum, zero: true}, name, usage)
}

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 90s, 5m or 1h")
	}
	switch {
	case d == 0 && v.zero:
	case d < v.min && v.min == 0:
		return fmt.Errorf("must not be negative")
	case d < v.min && v.zero:
		return fmt.Errorf("must be 0 or at least %s", shortDuration(v.min))
	case d < v.min:
		return fmt.Errorf("must be at least %s", shortDuration(v.min))
	case d > v.max:
		return fmt.Errorf("must be at most %s", shortDuration(v.max))
	}
	*v.p = d
	return nil
}

func (v *durationValue) String() string { return v.p.String() }
func (v *durationValue) Type() string   { return "duration" }

// shortDuration is d without the zero units time.Duration.String adds (24h, not 24h0m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// intValue is an int flag within [min, max].
type intValue struct {
	p        *int
	min, max int
}

func intVar(fs *pflag.FlagSet, p *int, name string, def, minimum, maximum int, usage string) {
	*p = def
	fs.Var(&intValue{p: p, min: minimum, max: maximum}, name, usage)
}

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		return fmt.Errorf("want a whole number from %d to %d", v.min, v.max)
	case n < v.min && v.min == 0:
		return fmt.Errorf("must not be negative")
	case n < v.min:
		return fmt.Errorf("must be at least %d", v.min)
	case n > v.max:
		return fmt.Errorf("must be at most %d", v.max)
	}
	*v.p = n
	return nil
}

func (v *intValue) String() string { return strconv.Itoa(*v.p) }
func (v *intValue) Type() string   { return "int" }

// fractionValue is a float64 flag within [0, 1].
type fractionValue struct{ p *float64 }

func fractionVar(fs *pflag.FlagSet, p *float64, name string, usage string) {
	*p = 0
	fs.Var(&fractionValue{p: p}, name, usage)
}

func (v *fractionValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return fmt.Errorf("want a fraction from 0 to 1 (0.25 is a quarter)")
	}
	*v.p = f
	return nil
}

func (v *fractionValue) String() string { return strconv.FormatFloat(*v.p, 'g', -1, 64) }
func (v *fractionValue) Type() string   { return "float" }

// enumValue is a string flag that takes one of a fixed set of choices.
type enumValue struct {
	p       *string
	what    string
	choices []string
}

func enumVarP(fs *pflag.FlagSet, p *string, name, short, def, what string, choices []string, usage string) {
	*p = def
	fs.VarP(&enumValue{p: p, what: what, choices: choices}, name, short, usage)
}

func (v *enumValue) Set(s string) error {
	if !slices.Contains(v.choices, s) {
		return fmt.Errorf("unknown %s %q: use %s", v.what, s, orList(v.choices))
	}
	*v.p = s
	return nil
}

func (v *enumValue) String() string { return *v.p }
func (v *enumValue) Type() string   { return "string" }

// orList is "a, b or c", leaving out an empty choice (which the flag's default stands for).
func orList(choices []string) string {
	var shown []string
	for _, c := range choices {
		if c != "" {
			shown = append(shown, c)
		}
	}
	if len(shown) < 2 {
		return strings.Join(shown, "")
	}
	return strings.Join(shown[:len(shown)-1], ", ") + " or " + shown[len(shown)-1]
}
