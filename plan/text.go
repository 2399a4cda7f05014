package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/circlecore/circle/termsafe"
)

// WriteJSON writes the plan as indented JSON: the schema the package comment documents.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(p)
}

// ANSI colours for the terminal view.
const (
	reset  = "\x1b[0m"
	bold   = "\x1b[1m"
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	cyan   = "\x1b[36m"
)

// WriteText writes the plan for a terminal, terraform-style: one line per change,
// + added, ~ changed, - removed, ± replaced. color adds ANSI colours; the caller decides
// (a TTY, no NO_COLOR).
func (p *Plan) WriteText(w io.Writer, color bool) error {
	t := &textWriter{color: color}
	t.line(0, t.paint(bold, "Circle plan: "+short(p.Base)+" → "+short(p.Head)))
	if p.NotDecrypted {
		t.line(0, "Built without keys: the secrets' values, and what the schema computes from them, were not compared.")
	}
	if len(p.Problems) > 0 {
		t.line(0, "")
		t.line(0, t.paint(bold+red, fmt.Sprintf("The head revision is invalid: %d problem(s)", len(p.Problems))))
		for _, pr := range p.Problems {
			t.line(1, t.paint(red, pr.String()))
		}
	}
	if p.BaseProblems > 0 {
		t.line(0, "")
		t.line(0, fmt.Sprintf("The base revision has %d problem(s): it is compared as if empty.", p.BaseProblems))
	}
	for _, e := range p.Environments {
		t.line(0, "")
		t.env(e)
	}
	t.line(0, "")
	t.line(0, t.paint(bold, summaryLine(p)))
	_, err := io.WriteString(w, t.b.String())
	return err
}

// summaryLine is the plan in one sentence, for the text view's last line.
func summaryLine(p *Plan) string {
	s := p.Summary
	parts := []string{fmt.Sprintf("%d of %d environment(s) change", s.Changed, s.Environments)}
	if s.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d fail(s) to build", s.Failed))
	}
	if len(p.Problems) > 0 {
		parts = append(parts, fmt.Sprintf("%d problem(s)", len(p.Problems)))
	}
	if s.Prunes > 0 {
		parts = append(parts, fmt.Sprintf("%d object(s) pruned", s.Prunes))
	}
	return "Plan: " + strings.Join(parts, ", ") + "."
}

type textWriter struct {
	b     strings.Builder
	color bool
}

func (t *textWriter) paint(code, s string) string {
	if !t.color || s == "" {
		return s
	}
	return code + s + reset
}

// line writes s, indented. What s holds came from the repository (values, paths, an
// advisory's summary, a ConfigMap's data in a diff): its control characters are escaped
// (termsafe), but for the colours paint added.
func (t *textWriter) line(indent int, s string) {
	t.b.WriteString(strings.Repeat("  ", indent))
	t.b.WriteString(t.safe(s))
	t.b.WriteByte('\n')
}

// colours are the escape sequences paint writes, the only ones line lets through.
var colours = []string{reset, bold, red, green, yellow, cyan}

// safe is termsafe.Text(s) keeping, when colour is on, the sequences of colours. A value
// holding one of those exact sequences shows in that colour: it can do no more.
func (t *textWriter) safe(s string) string {
	if !t.color || !strings.Contains(s, "\x1b") {
		return termsafe.Text(s)
	}
	var b strings.Builder
	for s != "" {
		i := strings.IndexByte(s, 0x1b)
		if i < 0 {
			b.WriteString(termsafe.Text(s))
			break
		}
		b.WriteString(termsafe.Text(s[:i]))
		s = s[i:]
		ours := false
		for _, c := range colours {
			if strings.HasPrefix(s, c) {
				b.WriteString(c)
				s, ours = s[len(c):], true
				break
			}
		}
		if !ours { // an ESC of no colour of ours is escaped alone; what follows it is text
			b.WriteString(termsafe.Text(s[:1]))
			s = s[1:]
		}
	}
	return b.String()
}

// mark is an action's sign and colour.
func mark(action string) (string, string) {
	switch action {
	case Added, Created, Issued, Accepted:
		return "+", green
	case Removed, Deleted, Revoked, Refused:
		return "-", red
	case Replaced:
		return "±", yellow
	case Upgraded:
		return "↑", yellow
	case Downgraded:
		return "↓", yellow
	case Expiring:
		return "!", yellow
	}
	return "~", yellow
}

func (t *textWriter) env(e *Env) {
	head := t.paint(bold+cyan, e.Name) + ": " + envStatus(e)
	t.line(0, head)
	if e.Error != "" {
		t.line(1, t.paint(bold+red, "FAILED: "+e.Error))
	}
	if e.BaseError != "" {
		t.line(1, "base did not build: "+e.BaseError)
	}
	if len(e.Secrets) > 0 {
		t.line(1, "Secrets files changed (what changed in them is never shown):")
		for _, f := range e.Secrets {
			t.line(2, t.paint(yellow, "~ "+f))
		}
	}
	if len(e.NotDecrypted) > 0 {
		t.line(1, "Not compared without keys: "+strings.Join(e.NotDecrypted, ", "))
	}
	if len(e.Config) > 0 {
		t.line(1, "Configuration:")
		for _, c := range e.Config {
			sign, col := mark(c.Action)
			t.line(2, t.paint(col, sign+" "+c.Path+": "+valueChange(c.From, c.To))+"   ("+c.Origin+")")
		}
	}
	if len(e.Packages) > 0 {
		t.line(1, "Packages:")
		for _, pc := range e.Packages {
			sign, col := mark(pc.Action)
			t.line(2, t.paint(col, sign+" "+pc.Name+" "+versionChange(pc)))
			for _, w := range pc.Why {
				t.line(4, "why: "+w)
			}
			if pc.To != "" {
				t.line(4, "license: "+licenseVerdict(pc))
			}
		}
	}
	if len(e.Advisories) > 0 {
		t.line(1, "New advisories:")
		for _, a := range e.Advisories {
			s := fmt.Sprintf("! %s@%s %s (%s): %s", a.Package, a.Version, a.ID, severity(a), a.Summary)
			col := yellow
			if a.Fails {
				col = bold + red
				s += " — FAILS the policy"
			}
			t.line(2, t.paint(col, s))
			t.line(4, a.Reason)
		}
	}
	if len(e.Licenses) > 0 {
		t.line(1, "Licenses:")
		for _, l := range e.Licenses {
			sign, col := mark(l.Action)
			t.line(2, t.paint(col, sign+" "+l.ID+" "+l.Action)+"   ("+l.File+")")
			for _, d := range l.Details {
				t.line(4, d)
			}
		}
	}
	if len(e.Objects) > 0 {
		t.line(1, "Kubernetes objects:")
		for _, o := range e.Objects {
			sign, col := mark(o.Action)
			s := t.paint(col, sign+" "+o.ID)
			if o.Target != "" {
				s += "   (on " + o.Target + ")"
			}
			if o.Drifted {
				s += "   " + t.paint(bold+yellow, "DRIFTED: changed outside Circle")
			}
			switch {
			case o.Prune:
				s += "   " + t.paint(bold+red, "PRUNE: deleted from the cluster")
			case o.PreviousName != "":
				s += "   (replaces " + o.PreviousName + ")"
			}
			t.line(2, s)
			for _, f := range o.Fields {
				t.field(f)
			}
		}
	}
	if len(e.Storage) > 0 {
		t.line(1, "Storage (files a publish writes):")
		for _, f := range e.Storage {
			sign, col := mark(f.Action)
			t.line(2, t.paint(col, sign+" "+f.Path)+"   "+sizeChange(f))
		}
	}
}

func (t *textWriter) field(f FieldChange) {
	sign, col := mark(f.Action)
	drift := ""
	if f.Drifted {
		drift = "   (drifted)"
	}
	if f.Diff == "" {
		t.line(4, t.paint(col, sign+" "+f.Path+": "+valueChange(f.From, f.To))+drift)
		return
	}
	t.line(4, t.paint(col, sign+" "+f.Path+":"))
	for _, l := range strings.Split(f.Diff, "\n") {
		c := ""
		switch {
		case strings.HasPrefix(l, "+"):
			c = green
		case strings.HasPrefix(l, "-"):
			c = red
		case strings.HasPrefix(l, "@@"):
			c = cyan
		}
		t.line(5, t.paint(c, l))
	}
}

func envStatus(e *Env) string {
	switch e.Status {
	case StatusUnchanged:
		return "no changes"
	case StatusRemoved:
		return "removed from circle.yaml"
	}
	parts := countParts(e.Counts)
	s := e.Status
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// countParts names an environment's non-zero counts: "1 config", "2 objects".
func countParts(c Counts) []string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(c.Config, "config")
	add(c.Packages, plural(c.Packages, "package", "packages"))
	add(c.Advisories, plural(c.Advisories, "advisory", "advisories"))
	add(c.Licenses, plural(c.Licenses, "license", "licenses"))
	add(c.Warnings, plural(c.Warnings, "warning", "warnings"))
	add(c.Objects(), plural(c.Objects(), "object", "objects"))
	add(c.Storage, plural(c.Storage, "file", "files"))
	return parts
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// valueChange is "a → b", "b" (added) or "a (removed)".
func valueChange(from, to string) string {
	switch {
	case from == "":
		return to
	case to == "":
		return from + " (removed)"
	}
	return from + " → " + to
}

func versionChange(pc PackageChange) string {
	switch pc.Action {
	case Added:
		return pc.To
	case Removed:
		return pc.From + " (removed)"
	case Changed:
		return pc.To + " (manifest changed)"
	}
	return pc.From + " → " + pc.To
}

func licenseVerdict(pc PackageChange) string {
	if pc.LicenseOK {
		return pc.License + " (allowed)"
	}
	return pc.License + " (refused: " + pc.LicenseReason + ")"
}

func severity(a Advisory) string {
	if a.Score < 0 {
		return a.Severity
	}
	return fmt.Sprintf("%s %.1f", a.Severity, a.Score)
}

func sizeChange(f FileChange) string {
	switch f.Action {
	case Added:
		return fmt.Sprintf("%d bytes", f.Size)
	case Removed:
		return fmt.Sprintf("was %d bytes", f.PreviousSize)
	}
	return fmt.Sprintf("%d → %d bytes", f.PreviousSize, f.Size)
}

// short abbreviates a Git commit hash, or a folder's content digest, to 12 hex digits;
// anything else stays.
func short(rev string) string {
	if len(rev) == 40 && strings.Trim(rev, "0123456789abcdef") == "" {
		return rev[:12]
	}
	if i := strings.Index(rev, "sha256:"); i >= 0 && len(rev) >= i+7+64 {
		return rev[:i+7+12]
	}
	if rev == "" {
		return "(unnamed)"
	}
	return rev
}
