// Package termsafe escapes text from untrusted sources (a license file, a repository's
// configuration, an advisory, a bucket's keys) before it is printed for people, so that it
// cannot drive the terminal showing it: an ESC sequence can retitle the window (OSC 0),
// clear the screen, move the cursor to overwrite what was printed, or on some terminals
// write to the clipboard or answer back; a carriage return or a bidirectional override can
// make a line read as something it is not.
//
// Escaped are the C0 controls, DEL, the C1 controls (U+0080–U+009F: 8-bit CSI and OSC
// among them), the Unicode bidirectional controls, and bytes that are not UTF-8. Each
// becomes a Go-style escape (\x1b, \a, \u009b, \u202e, \xff); every other rune,
// ordinary Unicode included, is kept. Machine output (JSON, YAML) does not need this: its
// encoders escape control characters already.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line escapes s for a place in one line of output, a field's value: line breaks and
// tabs are escaped too, so a value cannot start a line that looks like another field.
func Line(s string) string { return escape(s, false) }

// Text escapes s for multi-line output, a message or a report: line breaks and tabs stay,
// every other control is escaped (a carriage return too: it would let text overwrite its
// own line).
func Text(s string) string { return escape(s, true) }

func escape(s string, keepLines bool) string {
	if clean(s, keepLines) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !needsEscape(r, keepLines):
			b.WriteString(s[i : i+size])
		case r < 0x80:
			b.WriteString(shortEscape(byte(r)))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}

// clean reports whether s has nothing to escape, the common case, without allocating.
func clean(s string, keepLines bool) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || needsEscape(r, keepLines) {
			return false
		}
		i += size
	}
	return true
}

// needsEscape reports whether r is escaped.
func needsEscape(r rune, keepLines bool) bool {
	switch {
	case r == '\n' || r == '\t':
		return !keepLines
	case r < 0x20 || r == 0x7f:
		return true
	case r >= 0x80 && r <= 0x9f:
		return true
	}
	return isBidiControl(r)
}

// isBidiControl reports the Unicode bidirectional formatting characters: they reorder
// what follows on the line (the "Trojan Source" trick).
func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// shortEscape is an ASCII control's escape, as strconv.Quote writes it.
func shortEscape(c byte) string {
	switch c {
	case '\a':
		return `\a`
	case '\b':
		return `\b`
	case '\f':
		return `\f`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	case '\v':
		return `\v`
	}
	return fmt.Sprintf(`\x%02x`, c)
}
