package dir

import (
	"fmt"
	"strconv"
	"strings"
)

// Size is a byte count given on a command line or in a configuration file, for the
// sources' caps: "16777216", "16Mi", "16MiB", "512KiB", "1Gi". Only binary units are
// taken: "16M" could mean either, and a cap should not be a guess.
type Size int64

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"GiB", 30}, {"Gi", 30}, {"MiB", 20}, {"Mi", 20}, {"KiB", 10}, {"Ki", 10}, {"B", 0}}

// Set parses v; it implements pflag.Value.
func (s *Size) Set(v string) error {
	num, shift := strings.TrimSpace(v), uint(0)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, shift = strings.TrimSpace(n), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("size %q: want a number of bytes, or one with Ki, Mi or Gi (16Mi)", v)
	}
	if n > (1<<63-1)>>shift {
		return fmt.Errorf("size %q: too large", v)
	}
	*s = Size(n << shift)
	return nil
}

// String is the size in the largest binary unit that divides it: "16MiB", "1000B".
func (s Size) String() string {
	for _, u := range []struct {
		name  string
		shift uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if s != 0 && s%(1<<u.shift) == 0 {
			return strconv.FormatInt(int64(s)>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// Type names the flag's kind in help text; it implements pflag.Value.
func (s *Size) Type() string { return "size" }
