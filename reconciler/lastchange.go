package reconciler

import (
	"time"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/plan"
)

// LastChange is what an environment's last accepted build changed against the build it
// accepted before: the plan of that change, as `circle plan` would have shown it, without
// any value. The status is readable by anyone with the read token, so objects carry the
// paths of their changed fields only (a Secret's are its key names), and files their paths.
type LastChange struct {
	// From is the revision of the build before, empty when the daemon has none in memory
	// (FirstSinceStart); To is the revision accepted, At when.
	From string    `json:"from,omitempty"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
	// FirstSinceStart marks the first build the daemon accepted since it started: the
	// build before is not kept across restarts (it holds secrets), so there is nothing to
	// compare with.
	FirstSinceStart bool `json:"firstSinceStart,omitempty"`
	// Objects are the objects created, changed, deleted or replaced, in the plan's order.
	Objects []ChangedObject `json:"objects,omitempty"`
	// Files are the storage files added, changed or removed, by path.
	Files []ChangedFile `json:"files,omitempty"`
	// Error is why the objects could not be compared (a manifest stream unreadable).
	Error string `json:"error,omitempty"`
}

// ChangedObject is one object of a LastChange.
type ChangedObject struct {
	// ID is "Kind/namespace/name" ("Kind/name" when cluster-scoped); a Secret's hash
	// suffix is masked, as in a plan.
	ID string `json:"id"`
	// Action is created, changed, deleted or replaced (PreviousName the name before).
	Action       string `json:"action"`
	PreviousName string `json:"previousName,omitempty"`
	// Fields are the paths of the fields that differ, with how (added, changed, removed).
	Fields []ChangedField `json:"fields,omitempty"`
}

// ChangedField is one field path of a ChangedObject, never its value.
type ChangedField struct {
	Path   string `json:"path"`
	Action string `json:"action"`
}

// ChangedFile is one storage file of a LastChange.
type ChangedFile struct {
	Path   string `json:"path"`
	Action string `json:"action"`
}

// lastChange sums up what next, the build of env accepted at revision, changed against
// the build env accepted before in this process, and remembers next for the change after.
// carried is the environment's last change so far: a build of the revision it already
// ends at (a retry, a forced reconcile, the first build after a restart) changes nothing
// new, and keeps it rather than replacing the change with an empty one.
//
// It runs in accept, which reconciles run one at a time (run), so prevBuilds needs no
// lock of its own.
func (r *Reconciler) lastChange(env, revision string, at time.Time, next *pipeline.Output, carried *LastChange) *LastChange {
	if r.prevBuilds == nil {
		r.prevBuilds = map[string]prevBuild{}
	}
	prev, ok := r.prevBuilds[env]
	r.prevBuilds[env] = prevBuild{revision: revision, out: next}
	if carried != nil && carried.To == revision {
		return carried
	}
	lc := &LastChange{To: revision, At: at}
	if !ok {
		lc.FirstSinceStart = true
		return lc
	}
	lc.From = prev.revision
	objects, files, err := plan.CompareBuilds(prev.out, next, r.opts.Redactor)
	if err != nil {
		lc.Error = r.opts.Redactor.String(err.Error())
	}
	// Only names and paths are kept: From, To and Diff hold values (a ConfigMap's, or a
	// Secret's masks), and the status is no place for either.
	for _, o := range objects {
		co := ChangedObject{ID: o.ID, Action: o.Action, PreviousName: o.PreviousName}
		for _, f := range o.Fields {
			co.Fields = append(co.Fields, ChangedField{Path: f.Path, Action: f.Action})
		}
		lc.Objects = append(lc.Objects, co)
	}
	for _, f := range files {
		lc.Files = append(lc.Files, ChangedFile{Path: f.Path, Action: f.Action})
	}
	return lc
}

// prevBuild is the build an environment last accepted in this process.
type prevBuild struct {
	revision string
	out      *pipeline.Output
}
