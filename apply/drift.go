package apply

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
)

// Drifted is one object whose cluster copy no longer is what Circle applied.
type Drifted struct {
	// Subject is "Kind/namespace/name", as in Result.
	Subject string `json:"subject"`
	// Missing is true when the object is gone from the cluster (the apply re-creates it).
	Missing bool `json:"missing,omitempty"`
	// Fields are the paths of the fields that differ ("spec.replicas",
	// "data.config\.json"), never their values: a Secret's keys may be named, its values
	// not.
	Fields []string `json:"fields,omitempty"`
}

// Drift reports the objects of env's manifests that someone changed since the last apply,
// and which fields, without changing anything: what an Apply of the same manifests now
// would put back. Only objects whose resourceVersion moved since the last apply of this
// process (see unchanged) are dry-run, one server-side dry run each, so a check that finds
// no drift costs the same metadata LISTs as a no-op apply. Fields named in the object's
// IgnoreDriftAnnotation are not drift.
func (a *Applier) Drift(ctx context.Context, env string, manifests []byte) ([]Drifted, error) {
	objects, err := utils.ReadObjects(bytes.NewReader(manifests))
	if err != nil {
		return nil, fmt.Errorf("drift %s: read manifests: %w", env, err)
	}
	a.rm.SetOwnerLabels(objects, env, "circle")
	if err := a.ignoreDrift(ctx, objects); err != nil {
		return nil, fmt.Errorf("drift %s: %w", env, err)
	}
	candidates, _, _, err := a.unchanged(ctx, env, objects)
	if err != nil {
		return nil, fmt.Errorf("drift %s: %w", env, err)
	}
	var out []Drifted
	for _, o := range candidates {
		entry, live, merged, err := a.rm.Diff(ctx, o, ssa.DiffOptions{})
		if err != nil {
			return nil, fmt.Errorf("drift %s: %w", env, err)
		}
		switch entry.Action {
		case ssa.CreatedAction:
			out = append(out, Drifted{Subject: entry.Subject, Missing: true})
		case ssa.ConfiguredAction:
			out = append(out, Drifted{Subject: entry.Subject, Fields: fieldPaths(live.Object, merged.Object)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	return out, nil
}

// Bookkeeping the API server changes on every write, and the status the object's
// controller writes: neither is drift a reader could act on.
var notDrift = map[string]bool{
	"metadata.resourceVersion": true, "metadata.generation": true, "metadata.managedFields": true,
	"metadata.uid": true, "metadata.creationTimestamp": true, "status": true,
}

// fieldPaths lists the dotted paths at which live and want differ, leaves or the deepest
// map or list that still differs in shape. Dots inside a key are escaped ("data.a\.json"),
// list items are [i].
func fieldPaths(live, want map[string]any) []string {
	var out []string
	var walk func(path string, x, y any)
	walk = func(path string, x, y any) {
		if notDrift[path] || reflect.DeepEqual(x, y) {
			return
		}
		xm, xok := x.(map[string]any)
		ym, yok := y.(map[string]any)
		if xok && yok {
			keys := map[string]bool{}
			for k := range xm {
				keys[k] = true
			}
			for k := range ym {
				keys[k] = true
			}
			for k := range keys {
				p := strings.ReplaceAll(k, ".", `\.`)
				if path != "" {
					p = path + "." + p
				}
				walk(p, xm[k], ym[k])
			}
			return
		}
		xl, xok := x.([]any)
		yl, yok := y.([]any)
		if xok && yok && len(xl) == len(yl) {
			for i := range xl {
				walk(path+"["+strconv.Itoa(i)+"]", xl[i], yl[i])
			}
			return
		}
		out = append(out, path)
	}
	walk("", live, want)
	sort.Strings(out)
	return out
}
