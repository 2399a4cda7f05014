package termsafe_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/circlecore/circle/termsafe"
)

func TestLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"ACME Inc", "ACME Inc"},
		{"Zürich 東京 👨‍👩‍👧 café", "Zürich 東京 👨‍👩‍👧 café"}, // ordinary Unicode, a ZWJ sequence included
		{`C:\path`, `C:\path`},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\a`},                 // OSC: set the window title
		{"\x1b[2J\x1b[H", `\x1b[2J\x1b[H`},                     // CSI: clear the screen, cursor home
		{"ok\rrevoked", `ok\rrevoked`},                         // carriage return overwrites
		{"a\nexpires: 2099", `a\nexpires: 2099`},               // a forged row
		{"tab\there", `tab\there`},                             // tab
		{"\x00\x7f", `\x00\x7f`},                               // NUL, DEL
		{"\u009b2J\u009d0;x\u009c", `\u009b2J\u009d0;x\u009c`}, // C1 CSI, OSC, ST
		{"user\u202egnp.exe", `user\u202egnp.exe`},             // bidi override
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},             // not UTF-8
		{"\a\b\f\v", `\a\b\f\v`},
	} {
		if got := termsafe.Line(c.in); got != c.want {
			t.Errorf("Line(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestText(t *testing.T) {
	in := "problem 1\n\tat a.yaml:3\x1b[31m red\r\n"
	if got, want := termsafe.Text(in), "problem 1\n\tat a.yaml:3\\x1b[31m red\\r\n"; got != want {
		t.Errorf("Text(%q) = %q, want %q", in, got, want)
	}
}

// Whatever goes in, what comes out is valid UTF-8 with no control but line breaks and
// tabs (Text) or none at all (Line); text with nothing to escape comes out as it went in,
// and escaping is idempotent.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b]0;pwned\x07", "\u009b\u202e", "\xff", "a\nb\tc\r", "Zürich 東京"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, fn := range map[string]func(string) string{"Line": termsafe.Line, "Text": termsafe.Text} {
			allowed := func(r rune) bool {
				if name == "Text" && (r == '\n' || r == '\t') {
					return true
				}
				return !(r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x061c || r == 0x200e || r == 0x200f ||
					(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069))
			}
			out := fn(s)
			if !utf8.ValidString(out) {
				t.Fatalf("%s(%q) = %q: not UTF-8", name, s, out)
			}
			if i := strings.IndexFunc(out, func(r rune) bool { return !allowed(r) }); i >= 0 {
				t.Fatalf("%s(%q) = %q keeps a control at %d", name, s, out, i)
			}
			if fn(out) != out {
				t.Fatalf("%s is not idempotent on %q", name, s)
			}
			if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !allowed(r) }) < 0 && out != s {
				t.Fatalf("%s changed clean text %q to %q", name, s, out)
			}
		}
	})
}
