package dashboard

import (
	"strings"
	"testing"
	"time"
)

func TestAge(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"},
		{-3 * time.Second, "just now"},
		{42 * time.Second, "42 s ago"},
		{59*time.Minute + 59*time.Second, "59 min ago"},
		{47 * time.Hour, "47 h ago"},
		{49 * time.Hour, "2 days ago"},
		{-10 * 24 * time.Hour, "in 10 days"},
		{729 * 24 * time.Hour, "729 days ago"},
		{-3685 * 24 * time.Hour, "in 10 years"},
		{-90 * time.Second, "in 1 min"},
	} {
		if got := age(tc.d); got != tc.want {
			t.Errorf("age(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "—"},
		{340 * time.Millisecond, "340 ms"},
		{1500 * time.Millisecond, "1.5 s"},
		{95*time.Second + 400*time.Millisecond, "1m35s"},
	} {
		if got := duration(tc.d); got != tc.want {
			t.Errorf("duration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	long := strings.Repeat("é", maxLine+10)
	for _, tc := range []struct{ in, want string }{
		{"  one line  ", "one line"},
		{"first\nsecond", "first · second"},
		{"2 problem(s):\n  a.yaml:1:2: bad\n\n  b.yaml:3:4: worse\n", "2 problem(s): a.yaml:1:2: bad · b.yaml:3:4: worse"},
		{long, strings.Repeat("é", maxLine-1) + "…"},
		{"", ""},
	} {
		if got := oneLine(tc.in); got != tc.want {
			t.Errorf("oneLine(%.20q) = %.20q, want %.20q", tc.in, got, tc.want)
		}
	}
}

func TestShortRev(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sha256:" + strings.Repeat("ab", 32), "abababababab"},
		{"0123456789abcdef0123", "0123456789ab"},
		{"v1.2", "v1.2"},
	} {
		if got := shortRev(tc.in); got != tc.want {
			t.Errorf("shortRev(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A page whose template fails is a clean 500, not half a page.
func TestRender_TemplateError(t *testing.T) {
	h := New(nil, Options{}).(*handler)
	rec := &recorder{header: make(map[string][]string)}
	h.render(rec, 200, "overview", struct{}{}) // the overview's fields are missing
	if rec.code != 500 || !strings.Contains(rec.body.String(), "render overview") {
		t.Errorf("got %d %q", rec.code, rec.body.String())
	}
}
