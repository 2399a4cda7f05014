package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// Marker is the hidden first line of the Markdown output: a bot finds its earlier comment
// on a pull request by it and edits that comment instead of adding another.
const Marker = "<!-- circle-plan -->"

// MaxCommentSize is what GitHub accepts in a pull-request comment (65,536 characters);
// GitLab accepts more. The Markdown output is measured in bytes, which are never fewer
// than characters.
const MaxCommentSize = 65536

// MarkdownOptions bound the Markdown output.
type MarkdownOptions struct {
	// MaxSize is the most bytes written (default 60,000: under MaxCommentSize with room
	// for what a CI job adds around it).
	MaxSize int
	// MaxFields is how many field changes are shown per object (default 25), MaxDiffLines
	// how many lines of one field's line diff (default 30), MaxValue how many characters
	// of one value (default 120). What is cut says so.
	MaxFields, MaxDiffLines, MaxValue int
}

// DefaultMarkdownOptions returns the bounds `circle plan -o markdown` uses.
func DefaultMarkdownOptions() MarkdownOptions {
	return MarkdownOptions{MaxSize: 60000, MaxFields: 25, MaxDiffLines: 30, MaxValue: 120}
}

// WriteMarkdown writes the plan as a pull-request comment: the Marker, a summary table
// (one row per environment), prunes and head's problems, then a collapsible section per
// environment that has anything to show. The same plan always writes the same bytes, and
// never more than MaxSize: when the sections do not fit, each environment gets a fair
// share of the room (what a small one does not use goes to the others), and each says how
// many of its changes it left out.
func (p *Plan) WriteMarkdown(w io.Writer, opts MarkdownOptions) error {
	d := DefaultMarkdownOptions()
	if opts.MaxSize <= 0 {
		opts.MaxSize = d.MaxSize
	}
	if opts.MaxFields <= 0 {
		opts.MaxFields = d.MaxFields
	}
	if opts.MaxDiffLines <= 0 {
		opts.MaxDiffLines = d.MaxDiffLines
	}
	if opts.MaxValue <= 0 {
		opts.MaxValue = d.MaxValue
	}
	m := &md{opts: opts}
	header := m.header(p)
	const footer = "<sub>`circle plan -o json` lists every change; exit code 0 none, 1 invalid head, 2 changes.</sub>\n"
	var sections []*section
	for _, e := range p.Environments {
		if s := m.section(e); s != nil {
			sections = append(sections, s)
		}
	}
	budget := opts.MaxSize - len(header) - len(footer)
	allocate(sections, budget)
	var b strings.Builder
	b.WriteString(header)
	for _, s := range sections {
		b.WriteString(s.render())
	}
	b.WriteString(footer)
	out := b.String()
	if len(out) > opts.MaxSize {
		// Only a header too big for the bound gets here (thousands of environments or
		// problems); cut it at a line and close nothing, since the header opens nothing.
		out = cutLines(out, opts.MaxSize-len(footer)-64) + "\n\n_… cut to fit a comment._\n" + footer
	}
	_, err := io.WriteString(w, out)
	return err
}

type md struct{ opts MarkdownOptions }

// header is the marker, the title, the summary table, the prunes and head's problems.
func (m *md) header(p *Plan) string {
	var b strings.Builder
	b.WriteString(Marker + "\n")
	s := p.Summary
	title := "✅ no changes"
	switch {
	case s.Invalid:
		title = "❌ the head revision does not build"
	case s.HasChanges:
		title = fmt.Sprintf("🔄 %d of %d environment(s) change", s.Changed, s.Environments)
	}
	fmt.Fprintf(&b, "## Circle plan: %s\n\n", title)
	if p.NotDecrypted {
		b.WriteString("_Built without keys: the secrets' values, and what the schema computes from them, were not compared._\n\n")
	}
	fmt.Fprintf(&b, "**base** %s → **head** %s", code(short(p.Base)), code(short(p.Head)))
	if s.Prunes > 0 {
		fmt.Fprintf(&b, " · ⚠️ **%d prune(s)**", s.Prunes)
	}
	b.WriteString("\n\n")
	if len(p.Environments) > 0 {
		b.WriteString("| Environment | Status | Config | Packages | Licenses | Objects | Storage | Errors |\n")
		b.WriteString("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |\n")
		for _, e := range p.Environments {
			c := e.Counts
			pk := num(c.Packages)
			if c.Advisories > 0 {
				pk += fmt.Sprintf(" (%d new advisory)", c.Advisories)
			}
			lic := num(c.Licenses)
			if c.Warnings > 0 {
				lic += fmt.Sprintf(" (%d expiring)", c.Warnings)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", cell(e.Name), statusCell(e.Status), num(c.Config), pk, lic,
				objectsCell(c), num(c.Storage), num(c.Errors))
		}
		b.WriteString("\n")
	}
	var prunes []string
	for _, e := range p.Environments {
		for _, o := range e.Objects {
			if o.Prune {
				prunes = append(prunes, fmt.Sprintf("> - %s in %s\n", code(o.ID), cell(e.Name)))
			}
		}
	}
	if len(prunes) > 0 {
		fmt.Fprintf(&b, "> ⚠️ **%d object(s) would be pruned**: deleted from their cluster when this merges.\n>\n", len(prunes))
		b.WriteString(strings.Join(capList(prunes, 20, func(n int) string { return fmt.Sprintf("> - … and %d more\n", n) }), ""))
		b.WriteString("\n")
	}
	if len(p.Problems) > 0 {
		fmt.Fprintf(&b, "### ❌ The head revision is invalid: %d problem(s)\n\n", len(p.Problems))
		var lines []string
		for _, pr := range p.Problems {
			l := "- "
			if pr.Location != "" {
				l += code(pr.Location) + ": "
			}
			if pr.Path != "" {
				l += code(pr.Path) + ": "
			}
			l += text(m.clip(pr.Message, 400))
			if len(pr.Environments) > 0 {
				l += " _(" + text(strings.Join(pr.Environments, ", ")) + ")_"
			}
			lines = append(lines, l+"\n")
		}
		b.WriteString(strings.Join(capList(lines, 50, func(n int) string { return fmt.Sprintf("- … and %d more\n", n) }), ""))
		b.WriteString("\n")
	}
	if p.BaseProblems > 0 {
		fmt.Fprintf(&b, "_The base revision has %d problem(s) and is compared as if it held nothing._\n\n", p.BaseProblems)
	}
	return b.String()
}

func capList(lines []string, n int, more func(int) string) []string {
	if len(lines) <= n {
		return lines
	}
	return append(lines[:n:n], more(len(lines)-n))
}

func statusCell(status string) string {
	switch status {
	case StatusUnchanged:
		return "✅ no changes"
	case StatusChanged:
		return "🔄 changes"
	case StatusFailed:
		return "❌ fails"
	case StatusRemoved:
		return "🗑️ removed"
	}
	return status
}

func num(n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprint(n)
}

func objectsCell(c Counts) string {
	var parts []string
	for _, x := range []struct {
		n    int
		sign string
	}{{c.Created, "+"}, {c.Changed, "~"}, {c.Replaced, "±"}, {c.Deleted, "−"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%s%d", x.sign, x.n))
		}
	}
	if len(parts) == 0 {
		return "–"
	}
	s := strings.Join(parts, " ")
	if c.Deleted > 0 {
		s += " ⚠️"
	}
	return s
}

// section is one environment's <details>: blocks shown in order while they fit.
type section struct {
	open, close string
	blocks      []block
	// alloc is the bytes the section may take, open and close included.
	alloc int
}

// block is one item as Markdown (a change, an error, a warning); heading is the section
// title written before the first block of its kind that is shown.
type block struct {
	heading, text string
}

func (s *section) need() int {
	n := len(s.open) + len(s.close)
	last := ""
	for _, b := range s.blocks {
		if b.heading != last {
			n += len(b.heading)
			last = b.heading
		}
		n += len(b.text)
	}
	return n
}

// truncationNote is reserved in every cut section; its number has at most 7 digits.
const truncationNote = "\n_… %d more item(s) not shown, to keep this comment under 65,536 characters: `circle plan -o json` has them all._\n"

func (s *section) render() string {
	var b strings.Builder
	b.WriteString(s.open)
	room := s.alloc - len(s.open) - len(s.close)
	if s.need() > s.alloc {
		room -= len(truncationNote) + 7
	}
	last, left := "", 0
	for i, bl := range s.blocks {
		cost := len(bl.text)
		if bl.heading != last {
			cost += len(bl.heading)
		}
		if cost > room {
			left = len(s.blocks) - i
			break
		}
		if bl.heading != last {
			b.WriteString(bl.heading)
			last = bl.heading
		}
		b.WriteString(bl.text)
		room -= cost
	}
	if left > 0 {
		fmt.Fprintf(&b, truncationNote, left)
	}
	b.WriteString(s.close)
	return b.String()
}

// allocate shares budget among the sections: each gets what it needs up to an equal share
// of what is left, smallest first, so what a small section does not use goes to the larger.
func allocate(sections []*section, budget int) {
	order := make([]int, len(sections))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return sections[order[a]].need() < sections[order[b]].need() })
	for k, i := range order {
		share := budget / (len(order) - k)
		s := sections[i]
		s.alloc = min(s.need(), share)
		// A section always has room for its frame and its note, even over budget: the
		// final check in WriteMarkdown is the hard bound.
		s.alloc = max(s.alloc, len(s.open)+len(s.close)+len(truncationNote)+7)
		budget -= s.alloc
	}
}

// section builds an environment's <details>, or nil for an environment with nothing to
// show (the summary table says "no changes").
func (m *md) section(e *Env) *section {
	if e.Status == StatusUnchanged && e.Counts.Warnings == 0 || e.Status == StatusRemoved {
		return nil
	}
	summary := strings.Join(countParts(e.Counts), ", ")
	if summary == "" {
		summary = "no changes"
	}
	open := "<details>"
	if e.Status == StatusFailed {
		open = "<details open>"
		summary = "❌ fails · " + summary
	}
	s := &section{
		open:  fmt.Sprintf("%s<summary><b>%s</b>: %s</summary>\n", open, html(e.Name), html(summary)),
		close: "\n</details>\n\n",
	}
	add := func(heading, text string) {
		s.blocks = append(s.blocks, block{heading: heading, text: text})
	}
	if e.Error != "" {
		add("", "\n❌ **Does not build:** "+text(m.clip(e.Error, 2000))+"\n")
	}
	if e.BaseError != "" {
		add("", "\n_Base did not build:_ "+text(m.clip(e.BaseError, 500))+"\n")
	}
	for _, f := range e.Secrets {
		add("\n#### Secrets files changed\n\nWhat changed in them is never shown.\n\n", "- 🔒 "+cell(f)+"\n")
	}
	if len(e.NotDecrypted) > 0 {
		add("", "\n_Not compared without keys:_ "+cell(strings.Join(e.NotDecrypted, ", "))+"\n")
	}
	const cfgHead = "\n#### Configuration\n\n| Key | Change | Value | Set at |\n| --- | --- | --- | --- |\n"
	for _, c := range e.Config {
		key := cell(c.Path)
		if c.Sensitive {
			key += " 🔒"
		}
		add(cfgHead, fmt.Sprintf("| %s | %s | %s | %s |\n", key, c.Action, m.valueCell(c.From, c.To), cell(c.Origin)))
	}
	const pkgHead = "\n#### Packages\n\n| Package | Change | Version | Why | License | Advisories |\n| --- | --- | --- | --- | --- | --- |\n"
	for _, pc := range e.Packages {
		lic := "–"
		if pc.To != "" {
			lic = cell(pc.License) + " ✅"
			if !pc.LicenseOK {
				lic = cell(pc.License) + " ❌ " + text(pc.LicenseReason)
			}
		}
		whyText := "–"
		if len(pc.Why) > 0 {
			whyText = text(m.clip(strings.Join(pc.Why, "; "), 300))
		}
		adv := "–"
		if len(pc.Advisories) > 0 {
			adv = text(strings.Join(pc.Advisories, ", "))
		}
		add(pkgHead, fmt.Sprintf("| %s | %s | %s | %s | %s | %s |\n", cell(pc.Name), pc.Action, text(versionChange(pc)), whyText, lic, adv))
	}
	const advHead = "\n#### New advisories\n\n"
	for _, a := range e.Advisories {
		verdict := "reported"
		if a.Fails {
			verdict = "❌ **fails the policy**"
		}
		fix := ""
		if a.Fixed != "" {
			fix = ", fixed in " + code(a.Fixed)
		}
		add(advHead, fmt.Sprintf("- %s %s in %s (%s%s): %s: %s\n", verdict, code(a.ID), code(a.Package+"@"+a.Version),
			text(severity(a)), fix, text(m.clip(a.Summary, 200)), text(m.clip(a.Reason, 200))))
	}
	const licHead = "\n#### Licenses\n\n"
	for _, l := range e.Licenses {
		icon := ""
		switch l.Action {
		case Revoked, Refused, Removed:
			icon = "❌ "
		case Expiring:
			icon = "⚠️ "
		}
		line := fmt.Sprintf("- %s**%s** %s (%s)", icon, l.Action, code(l.ID), code(l.File))
		if len(l.Details) > 0 {
			line += ": " + text(m.clip(strings.Join(l.Details, "; "), 500))
		}
		add(licHead, line+"\n")
	}
	const objHead = "\n#### Kubernetes objects\n\n"
	for _, g := range groupObjects(orderObjects(e.Objects)) {
		add(objHead, m.objects(g))
	}
	const storHead = "\n#### Storage\n\nFiles a publish would write to the environment's storage targets:\n\n"
	for _, f := range e.Storage {
		add(storHead, fmt.Sprintf("- %s %s (%s)\n", code(f.Path), f.Action, sizeChange(f)))
	}
	return s
}

// orderObjects puts prunes first, where a reviewer must not miss them, then changed,
// replaced and created objects, each in ID order.
func orderObjects(objs []ObjectChange) []ObjectChange {
	rank := map[string]int{Deleted: 0, Changed: 1, Replaced: 2, Created: 3}
	out := append([]ObjectChange(nil), objs...)
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Action] < rank[out[j].Action] })
	return out
}

// groupMin is how many objects changed the same way are shown as one item: a label or an
// image bumped across a kustomize base changes hundreds of objects alike, and one diff
// with their names says it in a fraction of the room.
const groupMin = 3

// groupObjects gathers the changed objects whose field changes are all the same, each
// group where its first member stood; other objects stay alone.
func groupObjects(objs []ObjectChange) [][]ObjectChange {
	key := func(o ObjectChange) string {
		if o.Action != Changed {
			return ""
		}
		b, _ := json.Marshal(o.Fields)
		return o.Kind + "\x00" + string(b)
	}
	count := map[string]int{}
	for _, o := range objs {
		if k := key(o); k != "" {
			count[k]++
		}
	}
	var out [][]ObjectChange
	at := map[string]int{}
	for _, o := range objs {
		k := key(o)
		if k == "" || count[k] < groupMin {
			out = append(out, []ObjectChange{o})
			continue
		}
		if i, ok := at[k]; ok {
			out[i] = append(out[i], o)
			continue
		}
		at[k] = len(out)
		out = append(out, []ObjectChange{o})
	}
	return out
}

// objects is one object, or a group changed alike: their ids (the first few), then the
// diff once.
func (m *md) objects(g []ObjectChange) string {
	if len(g) == 1 {
		return m.object(g[0])
	}
	ids := make([]string, 0, 5)
	for _, o := range g[:min(len(g), 5)] {
		ids = append(ids, code(o.ID))
	}
	more := ""
	if len(g) > 5 {
		more = fmt.Sprintf(" and %d more", len(g)-5)
	}
	one := m.object(g[0])
	return fmt.Sprintf("- **changed** %d %s objects alike: %s%s\n%s", len(g), g[0].Kind, strings.Join(ids, ", "), more, one[strings.IndexByte(one, '\n')+1:])
}

func (m *md) object(o ObjectChange) string {
	switch {
	case o.Prune:
		return fmt.Sprintf("- ⚠️ **PRUNE** %s: deleted from the cluster\n", code(o.ID))
	case o.Action == Created:
		return fmt.Sprintf("- **created** %s\n", code(o.ID))
	}
	title := fmt.Sprintf("- **%s** %s", o.Action, code(o.ID))
	if o.Target != "" {
		title += " on " + code(o.Target)
	}
	if o.Drifted {
		title += " ⚠️ **drifted** (changed outside Circle)"
	}
	if o.PreviousName != "" {
		title += " (replaces " + code(o.PreviousName) + ": its name carries a hash of its content)"
	}
	var lines []string
	for i, f := range o.Fields {
		if i == m.opts.MaxFields {
			lines = append(lines, fmt.Sprintf("# … %d more field(s)", len(o.Fields)-i))
			break
		}
		lines = append(lines, m.fieldLines(f)...)
	}
	if len(lines) == 0 {
		return title + "\n"
	}
	return title + "\n" + fence(lines, "  ")
}

// fieldLines are a field change as lines of a ```diff block: "- path: old", "+ path: new".
func (m *md) fieldLines(f FieldChange) []string {
	if f.Diff != "" {
		out := []string{"~ " + f.Path + ":"}
		dl := strings.Split(f.Diff, "\n")
		for i, l := range dl {
			if i == m.opts.MaxDiffLines {
				out = append(out, fmt.Sprintf("# … %d more line(s)", len(dl)-i))
				break
			}
			if l == "" || strings.HasPrefix(l, "@@") {
				out = append(out, l)
				continue
			}
			out = append(out, l[:1]+"     "+l[1:])
		}
		return out
	}
	var out []string
	if f.Drifted {
		out = append(out, "# drifted: set outside Circle")
	}
	if f.From != "" {
		out = append(out, "- "+f.Path+": "+m.clip(f.From, m.opts.MaxValue))
	}
	if f.To != "" {
		out = append(out, "+ "+f.Path+": "+m.clip(f.To, m.opts.MaxValue))
	}
	return out
}

// fence wraps lines in a ```diff block indented by indent, with a fence longer than any
// run of backticks inside.
func fence(lines []string, indent string) string {
	ticks := "```"
	for _, l := range lines {
		for strings.Contains(l, ticks) {
			ticks += "`"
		}
	}
	var b strings.Builder
	b.WriteString(indent + ticks + "diff\n")
	for _, l := range lines {
		b.WriteString(indent + l + "\n")
	}
	b.WriteString(indent + ticks + "\n")
	return b.String()
}

func (m *md) valueCell(from, to string) string {
	switch {
	case from == "":
		return cell(m.clip(to, m.opts.MaxValue))
	case to == "":
		return "~~" + cell(m.clip(from, m.opts.MaxValue)) + "~~"
	}
	return cell(m.clip(from, m.opts.MaxValue)) + " → " + cell(m.clip(to, m.opts.MaxValue))
}

// clip cuts s to n characters, marking the cut.
func (m *md) clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// code is s as an inline code span, on one line, with a delimiter longer than any run of
// backticks in it.
func code(s string) string {
	s = strings.ReplaceAll(s, "\n", "⏎")
	ticks := "`"
	for strings.Contains(s, ticks) {
		ticks += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return ticks + s + ticks
}

// cell is a code span fit for a table cell: GFM splits cells at every unescaped pipe, even
// inside code.
func cell(s string) string { return strings.ReplaceAll(code(s), "|", `\|`) }

// text escapes s as Markdown prose: every ASCII punctuation that could start markup is
// backslash-escaped (CommonMark allows it before any punctuation), newlines become spaces.
func text(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '|', '#', '~', '!', '&':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n', '\r':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// html escapes s for the <summary> element, whose content is HTML.
func html(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// cutLines cuts s to at most n bytes, at a line end.
func cutLines(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:max(n, 0)]
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
