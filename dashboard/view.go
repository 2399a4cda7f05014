package dashboard

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/state"
)

// The views below are what the templates read. Every string in them that came from the
// status or the history has passed through red: the templates escape, the views redact.

// page is what every page shares: the layout's title, assets and live-update stamp, and
// the daemon's last reconcile.
type page struct {
	Title  string
	Base   string
	CSS    string
	JS     string
	Stamp  string
	Crumbs []crumb
	Daemon *daemonView
}

type crumb struct{ Name, URL string }

// daemonView is the daemon's last reconcile, shown on top of every page.
type daemonView struct {
	Revision revView
	At       timeView
	State    stateView
	Reason   string
	Message  string
	Problems int
	Files    int
	Stages   string
	// Reconciling is the revision being reconciled now, and since when.
	Reconciling      revView
	ReconcilingSince timeView
}

// revView is a revision: a short form to read, the full one to copy, and its page.
type revView struct{ Short, Full, URL string }

// timeView is a moment: machine-readable, as an age, and in full.
type timeView struct{ ISO, Age, Full string }

// stateView is a state word and the class that colours it; the word alone carries the
// meaning, so the colour is never the only signal.
type stateView struct{ Class, Label, Note string }

// Target states.
var (
	stateInSync  = stateView{Class: "sync", Label: "In sync"}
	stateFailed  = stateView{Class: "failed", Label: "Failed"}
	stateWaiting = stateView{Class: "unknown", Label: "Waiting"}
	// stateProgressing: a reconcile of another revision is running now.
	stateProgressing = stateView{Class: "warn", Label: "Progressing"}
)

// stamp identifies a recorded status: the event stream sends it, and a page whose stamp
// differs is out of date.
func stamp(st *reconciler.Status) string {
	if st == nil {
		return ""
	}
	s := st.ReconciledAt.UTC().Format(time.RFC3339Nano) + " " + st.Revision
	if !st.UpdatedAt.IsZero() { // the drift check amended it: health or drift changed
		s += " updated " + st.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	if st.Reconciling != nil { // a reconcile starting or ending is news to an open page too
		s += " reconciling " + st.Reconciling.Revision
	}
	return s
}

// progressing reports whether a reconcile is running now of a revision other than rev.
func progressing(st *reconciler.Status, rev string) bool {
	return st != nil && st.Reconciling != nil && st.Reconciling.Revision != rev
}

func (h *handler) red(s string) string { return h.opts.Redactor.String(s) }

func (h *handler) page(title string, st *reconciler.Status, crumbs ...crumb) page {
	p := page{Title: title, Base: Prefix, CSS: h.css, JS: h.js, Stamp: h.red(stamp(st)), Crumbs: crumbs}
	if st != nil {
		p.Daemon = &daemonView{Revision: h.rev(st.Revision), At: h.when(st.ReconciledAt), State: envState(st.Ready),
			Reason: h.red(st.Reason), Message: h.red(oneLine(st.Message)), Problems: len(st.Problems),
			Files: st.Files, Stages: h.red(strings.Join(st.Stages, " → "))}
		if st.Reconciling != nil {
			p.Daemon.Reconciling, p.Daemon.ReconcilingSince = h.rev(st.Reconciling.Revision), h.when(st.Reconciling.Since)
		}
	}
	return p
}

func envState(ready bool) stateView {
	if ready {
		return stateInSync
	}
	return stateFailed
}

func (h *handler) rev(r string) revView {
	if r == "" {
		return revView{}
	}
	r = h.red(r)
	return revView{Short: shortRev(r), Full: r, URL: Prefix + "revisions/" + url.PathEscape(r)}
}

// shortRev shortens a commit hash, or a folder's "sha256:<hex>", to 12 hex digits: as
// many as `git log --abbrev` needs for repositories far larger than configuration ones.
func shortRev(r string) string {
	r = strings.TrimPrefix(r, "sha256:")
	if len(r) > 12 {
		return r[:12]
	}
	return r
}

func (h *handler) when(t time.Time) timeView {
	if t.IsZero() {
		return timeView{}
	}
	return timeView{ISO: t.UTC().Format(time.RFC3339), Age: age(h.opts.Now().Sub(t)), Full: t.UTC().Format("2006-01-02 15:04:05 UTC")}
}

// age says how long ago (or, negative, how far ahead) in the largest unit that fits. The
// page script computes the same words as time passes, from the ISO form.
func age(d time.Duration) string {
	past := d >= 0
	if !past {
		d = -d
	}
	var s string
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d.Hours()))
	case d < 730*24*time.Hour:
		s = fmt.Sprintf("%d days", int(d.Hours()/24))
	default:
		s = fmt.Sprintf("%d years", int(d.Hours()/24/365))
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}

// duration is a reconcile's length, to the precision a reader cares about.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

// oneLine is a message on one line of at most maxLine characters, so the overview's cells
// stay one line high; the whole message is on the environment page. Lines are joined
// with " · ", or a space after a line that ends in a colon (a heading such as
// "1 problem(s):", whose first line alone would say nothing).
func oneLine(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString(" · ")
			}
		}
		b.WriteString(l)
	}
	s = b.String()
	if utf8.RuneCountInString(s) > maxLine {
		r := []rune(s)
		s = string(r[:maxLine-1]) + "…"
	}
	return s
}

const maxLine = 160

// target is one place an environment's builds go: the storage target the publish stage
// writes, or a cluster target the apply stage applies to.
type target struct {
	name, kind, revision string
	at                   time.Time
}

// targets lists an environment's targets as the status knows them: the storage target
// once something was published, each cluster target once something was applied. (The
// status does not name the storage target, so it is "publish".)
func targets(e reconciler.EnvStatus) []target {
	var ts []target
	if e.Published != nil {
		t := target{name: "publish", kind: "storage", revision: e.Published.Revision}
		if e.LastGood != nil && e.LastGood.Revision == e.Published.Revision {
			t.at = e.LastGood.At
		}
		ts = append(ts, t)
	}
	names := make([]string, 0, len(e.Applied))
	for n := range e.Applied {
		names = append(names, n)
	}
	for n := range e.Clusters { // a target that failed before it ever applied has only this
		if e.Applied[n] == nil && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		t := target{name: n, kind: "cluster"}
		if a := e.Applied[n]; a != nil {
			t.revision, t.at = a.Revision, a.At
		}
		ts = append(ts, t)
	}
	return ts
}

// targetState is where one target stands. An environment that accepted the last revision
// is in sync everywhere. One that did not is failed on each target, except a target that
// took the revision anyway: with several cluster targets, the apply to one can fail while
// another succeeds, and a failed publish does not stop the apply.
func targetState(st *reconciler.Status, e reconciler.EnvStatus, t target) stateView {
	if progressing(st, t.revision) {
		return stateProgressing
	}
	if e.Ready {
		return stateInSync
	}
	if t.revision != "" && t.revision == st.Revision {
		return stateInSync
	}
	s := stateFailed
	switch e.Reason {
	case reconciler.ReasonPublishFailed, reconciler.ReasonApplyFailed:
		s.Note = "retrying" // the daemon tries a failed target again, with backoff
	case reconciler.ReasonRolledBack:
		s.Note = "rolled back"
	}
	return s
}

// envView is one environment: a row group of the overview, and the environment page.
type envView struct {
	Name     string
	URL      string
	State    stateView
	Reason   string
	Error    string
	Message  string
	LastGood revView
	Since    timeView
	Targets  []targetView
	Recent   []entryView
	Warnings []badge
}

// badge is a short note on an environment: a license of its that needs attention.
type badge struct{ Class, Text string }

type targetView struct {
	Name     string
	Kind     string
	State    stateView
	Revision revView
	Since    timeView
	// Error is the target's own last error, on one line; Message in full.
	Error   string
	Message string
	// Health sums its objects' health up ("5 objects, 1 Failed"); Drift is its last
	// drift's state, when it has one.
	Health string
	Drift  stateView
}

// entryView is one reconcile from the history.
type entryView struct {
	Revision revView
	At       timeView
	Duration string
	State    stateView
	Reason   string
	Error    string
	Message  string
}

// env builds an environment's view; hist, its recent reconciles newest first, tells since
// when a target whose status has no time (a storage target) holds its revision.
func (h *handler) env(st *reconciler.Status, e reconciler.EnvStatus, hist []state.Entry) envView {
	v := envView{Name: h.red(e.Name), URL: envURL(h.red(e.Name)), State: envState(e.Ready), Reason: h.red(e.Reason)}
	if !e.Ready {
		v.Error = h.red(oneLine(e.Message))
		v.Message = h.red(e.Message)
		switch e.Reason {
		case reconciler.ReasonPublishFailed, reconciler.ReasonApplyFailed:
			v.State.Note = "retrying"
		case reconciler.ReasonRolledBack:
			v.State.Note = "rolled back"
		}
	}
	if e.LastGood != nil {
		v.LastGood, v.Since = h.rev(e.LastGood.Revision), h.when(e.LastGood.At)
	}
	if e.LastGood == nil && progressing(st, "") || e.LastGood != nil && progressing(st, e.LastGood.Revision) {
		v.State = stateProgressing
	}
	for _, t := range targets(e) {
		if t.at.IsZero() {
			t.at = acceptedAt(hist, t.revision)
		}
		tv := targetView{Name: h.red(t.name), Kind: t.kind, State: targetState(st, e, t), Revision: h.rev(t.revision), Since: h.when(t.at)}
		if c := e.Clusters[t.name]; t.kind == "cluster" && c != nil {
			tv.Error, tv.Message = h.red(oneLine(c.Error)), h.red(c.Error)
			if c.Error != "" && tv.State == stateInSync { // the environment moved on, this target did not
				tv.State = stateFailed
			}
			tv.Health = healthSummary(c.Objects)
			if c.Drift != nil {
				tv.Drift = driftState(c.Drift.State)
			}
		}
		v.Targets = append(v.Targets, tv)
	}
	if p := e.Packages; p != nil {
		if n := advisoryCount(p); n > 0 {
			v.Warnings = append(v.Warnings, badge{Class: "warn", Text: fmt.Sprintf("%d package advisor%s", n, plural(n, "y", "ies"))})
		}
		if !p.Resolved {
			v.Warnings = append(v.Warnings, badge{Class: "failed", Text: "packages unresolved"})
		}
	}
	for _, l := range st.Licenses {
		if slices.Contains(l.Environments, e.Name) {
			if w := h.licenseWarning(l); w.Text != "" {
				v.Warnings = append(v.Warnings, w)
			}
		}
	}
	return v
}

// acceptedAt is when the environment first accepted rev, as far as hist (newest first)
// goes back; zero when it does not say.
func acceptedAt(hist []state.Entry, rev string) time.Time {
	var at time.Time
	for _, x := range hist {
		if x.Ready && x.Revision == rev {
			at = x.At
		}
	}
	return at
}

func envURL(name string) string { return Prefix + "environments/" + url.PathEscape(name) }

func (h *handler) entry(e state.Entry) entryView {
	v := entryView{Revision: h.rev(e.Revision), At: h.when(e.At), Duration: duration(e.Duration), State: envState(e.Ready),
		Reason: h.red(e.Reason)}
	if !e.Ready {
		v.Error, v.Message = h.red(oneLine(e.Message)), h.red(e.Message)
	}
	return v
}

// licenseView is one license file, shown when it needs attention.
type licenseView struct {
	File     string
	ID       string
	Licensee string
	Product  string
	Expires  timeView
	State    stateView
	Reason   string
	Envs     string
}

// attention reports whether a license belongs on the overview: refused, or expiring.
func attention(l pipeline.LicenseStatus) bool { return l.Expiring || l.Reason != "" || l.Error != "" }

func (h *handler) license(l pipeline.LicenseStatus) licenseView {
	v := licenseView{File: h.red(l.File), ID: h.red(l.ID), Licensee: h.red(l.Licensee), Product: h.red(l.Product),
		Expires: h.when(l.ExpiresAt), Envs: h.red(strings.Join(l.Environments, ", "))}
	switch {
	case l.Reason != "" || l.Error != "":
		v.State = stateView{Class: "failed", Label: "Refused"}
		v.Reason = h.red(oneLine(strings.TrimSpace(l.Reason + " " + l.Error)))
	case l.Expiring:
		v.State = stateView{Class: "warn", Label: "Expiring"}
	default:
		v.State = stateView{Class: "sync", Label: cmp.Or(h.red(l.State), "valid")}
	}
	return v
}

// licenseWarning is the badge an environment carries for a license of its that needs
// attention; an empty one when it needs none.
func (h *handler) licenseWarning(l pipeline.LicenseStatus) badge {
	switch {
	case l.Reason != "" || l.Error != "":
		return badge{Class: "failed", Text: h.red("license " + l.File + " refused")}
	case l.Expiring:
		return badge{Class: "warn", Text: h.red("license " + l.File + " expires " + age(h.opts.Now().Sub(l.ExpiresAt)))}
	}
	return badge{}
}

// problemView is one of the repository's problems at the last revision.
type problemView struct{ Where, Path, Message, Envs string }

func (h *handler) problem(p repo.Problem) problemView {
	where := p.File
	if p.Line > 0 {
		where = fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
	return problemView{Where: h.red(where), Path: h.red(p.Path), Message: h.red(p.Message), Envs: h.red(strings.Join(p.Envs, ", "))}
}

// overviewView is the overview page.
type overviewView struct {
	page
	Envs     []envView
	InSync   int
	Failed   int
	Licenses []licenseView
	// HistoryNote says why the recent results are missing, when they are.
	HistoryNote string
}

func (h *handler) overview(w http.ResponseWriter, r *http.Request) {
	st, ok := h.status(w, r)
	if !ok {
		return
	}
	v := overviewView{page: h.page("Overview", st)}
	if st != nil {
		for _, e := range st.Environments {
			hist, err := h.src.History(r.Context(), e.Name, recentResults)
			if err != nil {
				v.HistoryNote = h.historyNote(err)
			}
			ev := h.env(st, e, hist)
			// Oldest first, so the newest result is on the right, as on a time axis.
			for i := len(hist) - 1; i >= 0; i-- {
				ev.Recent = append(ev.Recent, h.entry(hist[i]))
			}
			if e.Ready {
				v.InSync++
			} else {
				v.Failed++
			}
			v.Envs = append(v.Envs, ev)
		}
		for _, l := range st.Licenses {
			if attention(l) {
				v.Licenses = append(v.Licenses, h.license(l))
			}
		}
	}
	h.render(w, http.StatusOK, "overview", v)
}

func (h *handler) historyNote(err error) string {
	if errors.Is(err, ErrNoHistory) {
		return "The daemon keeps no history: run circle serve with --state-dir."
	}
	return h.red("History unreadable: " + err.Error())
}

// status reads the source's status, answering with an error page when it cannot.
func (h *handler) status(w http.ResponseWriter, r *http.Request) (*reconciler.Status, bool) {
	st, err := h.src.Status(r.Context())
	if err != nil {
		h.fail(w, r, http.StatusBadGateway, "Status unreadable", err.Error())
		return nil, false
	}
	return st, true
}

// environmentView is the environment page.
type environmentView struct {
	page
	Env         envView
	Good        *goodView
	Published   *publishedView
	Applied     []appliedView
	Clusters    []clusterView
	Packages    *packagesView
	LastChange  *lastChangeView
	Problems    []problemView
	Licenses    []licenseView
	History     []entryView
	HistoryNote string
	Limit       int
}

// goodView is an environment's last good revision. Good carries counts and a digest,
// never values.
type goodView struct {
	Revision revView
	At       timeView
	Values   int
	Secrets  int
}

type publishedView struct {
	Revision revView
	Seq      int64
	Files    int
	Uploaded int
}

type appliedView struct {
	Target   string
	Revision revView
	At       timeView
	Changes  int
	Objects  int
}

// clusterView is what the environment page shows of one cluster target beyond its last
// apply: its own error, its last drift, and each object's health.
type clusterView struct {
	Target   string
	Error    string
	ErrorAt  timeView
	Revision revView
	HealthAt timeView
	Health   string
	Objects  []objectView
	Drift    *driftView
}

type objectView struct {
	Subject string
	Health  stateView
	Message string
}

// driftView is a target's last drift: when, at which revision, and what changed.
type driftView struct {
	State       stateView
	At          timeView
	Revision    revView
	Objects     []reconciler.DriftedObject
	FieldsKnown bool
	Error       string
}

// lastChangeView is what the environment's last accepted build changed: revisions,
// objects with the paths of their changed fields, storage files. The status holds no
// values, so neither does this.
type lastChangeView struct {
	From, To        revView
	At              timeView
	FirstSinceStart bool
	Objects         []changedObjectView
	Files           []reconciler.ChangedFile
	Error           string
}

type changedObjectView struct {
	ID, PreviousName string
	Action           stateView
	Fields           []reconciler.ChangedField
}

// changeState colours a plan action as the plan does: created green, deleted red, the
// rest (changed, replaced) amber.
func changeState(action string) stateView {
	switch action {
	case "created", "added":
		return stateView{Class: "sync", Label: action}
	case "deleted", "removed":
		return stateView{Class: "failed", Label: action}
	}
	return stateView{Class: "warn", Label: action}
}

func (h *handler) lastChange(c *reconciler.LastChange) *lastChangeView {
	if c == nil {
		return nil
	}
	v := &lastChangeView{From: h.rev(c.From), To: h.rev(c.To), At: h.when(c.At), FirstSinceStart: c.FirstSinceStart, Error: h.red(c.Error)}
	for _, o := range c.Objects {
		x := changedObjectView{ID: h.red(o.ID), PreviousName: h.red(o.PreviousName), Action: changeState(o.Action)}
		for _, f := range o.Fields {
			x.Fields = append(x.Fields, reconciler.ChangedField{Path: h.red(f.Path), Action: f.Action})
		}
		v.Objects = append(v.Objects, x)
	}
	for _, f := range c.Files {
		v.Files = append(v.Files, reconciler.ChangedFile{Path: h.red(f.Path), Action: f.Action})
	}
	return v
}

// packageView is one package of the environment's last accepted build.
type packageView struct {
	Name, Version, License string
	Advisories             []advisoryView
}

type advisoryView struct {
	ID, Summary, Fixed string
	Severity           stateView
}

// packagesView is the environment's package set.
type packagesView struct {
	Resolved    bool
	Explanation string
	Failed      bool
	Packages    []packageView
	Advisories  int
}

// healthState is the state word of an object's kstatus: the colour follows, the word
// stays kstatus' own.
func healthState(h string) stateView {
	switch h {
	case reconciler.HealthCurrent:
		return stateView{Class: "sync", Label: h}
	case reconciler.HealthFailed:
		return stateView{Class: "failed", Label: h}
	case reconciler.HealthInProgress, "Terminating":
		return stateView{Class: "progressing", Label: h}
	case "NotFound":
		return stateView{Class: "failed", Label: "Not found"}
	}
	return stateView{Class: "unknown", Label: cmp.Or(h, reconciler.HealthUnknown)}
}

// driftState is a drift's state word: drifted (found, not put back) or corrected.
func driftState(s string) stateView {
	if s == reconciler.DriftCorrected {
		return stateView{Class: "warn", Label: "Corrected"}
	}
	return stateView{Class: "failed", Label: "Drifted"}
}

// healthSummary sums objects up: how many, and how many are not Current.
func healthSummary(objs []reconciler.ObjectState) string {
	if len(objs) == 0 {
		return ""
	}
	counts := map[string]int{}
	for _, o := range objs {
		counts[o.Health]++
	}
	s := fmt.Sprintf("%d object%s", len(objs), plural(len(objs), "", "s"))
	for _, h := range []string{reconciler.HealthFailed, reconciler.HealthInProgress, "Terminating", "NotFound", reconciler.HealthUnknown} {
		if n := counts[h]; n > 0 {
			s += fmt.Sprintf(", %d %s", n, healthState(h).Label)
		}
	}
	if counts[reconciler.HealthCurrent] == len(objs) {
		s += ", all Current"
	}
	return s
}

func advisoryCount(p *reconciler.PackageSet) int {
	n := 0
	for _, pv := range p.Packages {
		n += len(pv.Advisories)
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// severityState colours an advisory by its CVSS rating.
func severityState(rating string) stateView {
	switch rating {
	case "CRITICAL", "HIGH":
		return stateView{Class: "failed", Label: rating}
	case "MEDIUM", "LOW":
		return stateView{Class: "warn", Label: rating}
	}
	return stateView{Class: "unknown", Label: cmp.Or(rating, "UNKNOWN")}
}

func (h *handler) packages(p *reconciler.PackageSet) *packagesView {
	if p == nil {
		return nil
	}
	v := &packagesView{Resolved: p.Resolved, Explanation: h.red(p.Explanation), Failed: p.Failed, Advisories: advisoryCount(p)}
	for _, pv := range p.Packages {
		x := packageView{Name: h.red(pv.Name), Version: h.red(pv.Version), License: h.red(pv.License)}
		for _, a := range pv.Advisories {
			x.Advisories = append(x.Advisories, advisoryView{ID: h.red(a.ID), Summary: h.red(a.Summary), Fixed: h.red(a.Fixed), Severity: severityState(a.Severity)})
		}
		v.Packages = append(v.Packages, x)
	}
	return v
}

func (h *handler) cluster(name string, c *reconciler.ClusterState) clusterView {
	v := clusterView{Target: h.red(name), Error: h.red(c.Error), ErrorAt: h.when(c.ErrorAt), Revision: h.rev(c.Revision),
		HealthAt: h.when(c.HealthAt), Health: healthSummary(c.Objects)}
	for _, o := range c.Objects {
		v.Objects = append(v.Objects, objectView{Subject: h.red(o.Subject), Health: healthState(o.Health), Message: h.red(o.Message)})
	}
	if d := c.Drift; d != nil {
		dv := &driftView{State: driftState(d.State), At: h.when(d.At), Revision: h.rev(d.Revision), FieldsKnown: d.FieldsKnown, Error: h.red(d.Error)}
		for _, o := range d.Objects {
			x := reconciler.DriftedObject{Subject: h.red(o.Subject), Missing: o.Missing}
			for _, f := range o.Fields {
				x.Fields = append(x.Fields, h.red(f))
			}
			dv.Objects = append(dv.Objects, x)
		}
		v.Drift = dv
	}
	return v
}

func (h *handler) environment(w http.ResponseWriter, r *http.Request) {
	st, ok := h.status(w, r)
	if !ok {
		return
	}
	name := r.PathValue("env")
	i := -1
	if st != nil {
		i = slices.IndexFunc(st.Environments, func(e reconciler.EnvStatus) bool { return e.Name == name })
	}
	if i < 0 {
		h.fail(w, r, http.StatusNotFound, "No such environment", "The daemon's status has no environment "+name+".")
		return
	}
	e := st.Environments[i]
	hist, err := h.src.History(r.Context(), e.Name, h.opts.HistoryLimit)
	ev := h.env(st, e, hist)
	v := environmentView{page: h.page(ev.Name, st, crumb{Name: ev.Name, URL: ev.URL}), Env: ev, Limit: h.opts.HistoryLimit}
	if g := e.LastGood; g != nil {
		v.Good = &goodView{Revision: h.rev(g.Revision), At: h.when(g.At), Values: g.Values, Secrets: g.Secrets}
	}
	if p := e.Published; p != nil {
		v.Published = &publishedView{Revision: h.rev(p.Revision), Seq: p.Seq, Files: p.Files, Uploaded: p.Uploaded}
	}
	for _, t := range targets(e) {
		if t.kind != "cluster" {
			continue
		}
		if a := e.Applied[t.name]; a != nil {
			v.Applied = append(v.Applied, appliedView{Target: h.red(t.name), Revision: h.rev(a.Revision), At: h.when(a.At),
				Changes: a.Changes, Objects: a.Objects})
		}
		if c := e.Clusters[t.name]; c != nil {
			v.Clusters = append(v.Clusters, h.cluster(t.name, c))
		}
	}
	v.Packages = h.packages(e.Packages)
	v.LastChange = h.lastChange(e.LastChange)
	for _, p := range st.Problems {
		if len(p.Envs) == 0 || slices.Contains(p.Envs, e.Name) {
			v.Problems = append(v.Problems, h.problem(p))
		}
	}
	for _, l := range st.Licenses {
		if slices.Contains(l.Environments, e.Name) {
			v.Licenses = append(v.Licenses, h.license(l))
		}
	}
	if err != nil {
		v.HistoryNote = h.historyNote(err)
	}
	for _, x := range hist {
		v.History = append(v.History, h.entry(x))
	}
	h.render(w, http.StatusOK, "environment", v)
}

// revisionView is the revision page: what the status and the histories say of one
// revision.
type revisionView struct {
	page
	Revision revView
	// Last is true when it is the revision the daemon last reconciled.
	Last     bool
	Problems []problemView
	Envs     []revisionEnvView
	// Commit is the Git commit, known for the revision the daemon reconciled last.
	Commit *commitView
}

// commitView is a commit as its author wrote it; the message is redacted like the rest.
type commitView struct {
	Author  string
	Date    timeView
	Subject string
	Body    string
	Signed  bool
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

type revisionEnvView struct {
	Name      string
	URL       string
	LastGood  bool
	Published bool
	Applied   []string
	Attempts  []entryView
}

func (h *handler) revision(w http.ResponseWriter, r *http.Request) {
	st, ok := h.status(w, r)
	if !ok {
		return
	}
	want := r.PathValue("rev")
	rv := h.rev(want)
	v := revisionView{page: h.page("Revision "+rv.Short, st, crumb{Name: "revision " + rv.Short, URL: rv.URL}), Revision: rv}
	known := false
	if st != nil {
		v.Last = st.Revision == want
		known = v.Last
		if v.Last && st.Commit != nil {
			v.Commit = &commitView{Author: h.red(st.Commit.Author), Date: h.when(st.Commit.Date),
				Subject: h.red(firstLine(st.Commit.Message)), Body: h.red(strings.TrimSpace(strings.TrimPrefix(st.Commit.Message, firstLine(st.Commit.Message)))),
				Signed: st.Commit.Signed}
		}
		if v.Last {
			for _, p := range st.Problems {
				v.Problems = append(v.Problems, h.problem(p))
			}
		}
		for _, e := range st.Environments {
			re := revisionEnvView{Name: h.red(e.Name), URL: envURL(h.red(e.Name)),
				LastGood:  e.LastGood != nil && e.LastGood.Revision == want,
				Published: e.Published != nil && e.Published.Revision == want}
			for _, t := range targets(e) {
				if t.kind == "cluster" && t.revision == want {
					re.Applied = append(re.Applied, h.red(t.name))
				}
			}
			hist, _ := h.src.History(r.Context(), e.Name, h.opts.HistoryLimit) // the page says what it found
			for _, x := range hist {
				if x.Revision == want {
					re.Attempts = append(re.Attempts, h.entry(x))
				}
			}
			if re.LastGood || re.Published || len(re.Applied) > 0 || len(re.Attempts) > 0 {
				known = true
			}
			v.Envs = append(v.Envs, re)
		}
	}
	if !known {
		h.fail(w, r, http.StatusNotFound, "Unknown revision",
			fmt.Sprintf("Neither the daemon's status nor the last %d reconciles of any environment mention revision %s.", h.opts.HistoryLimit, want))
		return
	}
	h.render(w, http.StatusOK, "revision", v)
}
