package mirror

import (
	"errors"
	"testing"
)

func TestCheckRel(t *testing.T) {
	for _, c := range []struct {
		rel string
		ok  bool
	}{
		{"a", true},
		{"a/b/c.txt", true},
		{"..a/b..", true},
		{".hidden/.x", true},
		{`a\b`, true}, // an ordinary character in a name here
		{"", false},
		{"..", false},
		{"../escape", false},
		{"a/../../escape", false},
		{"a/..", false},
		{"./a", false},
		{"a/./b", false},
		{"/etc/passwd", false},
		{"a//b", false},
		{"a/", false},
		{"a\x00b", false},
	} {
		err := checkRel(c.rel)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrUnsafeKey)) {
			t.Errorf("checkRel(%q) = %v, want ok %v", c.rel, err, c.ok)
		}
	}
}
