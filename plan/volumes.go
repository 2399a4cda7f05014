package plan

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/circlecore/circle/repo"
)

// claimSize is the field of a PersistentVolumeClaim that may grow but never shrink.
const claimSize = "spec.resources.requests.storage"

// shrinks are the claims of e whose requested storage head makes smaller than base:
// the API server refuses that at apply time, after every other environment moved on, so
// the plan says it first. A claim generated from the configuration's kubernetes key is
// placed at the size's line.
func shrinks(e *Env, head *repo.Env) []Problem {
	var out []Problem
	for _, o := range e.Objects {
		if o.Kind != "PersistentVolumeClaim" || o.Action != Changed {
			continue
		}
		for _, f := range o.Fields {
			if f.Path != claimSize || f.Action != Changed {
				continue
			}
			from, errFrom := quantity(f.From)
			to, errTo := quantity(f.To)
			if errFrom != nil || errTo != nil || to.Cmp(from) >= 0 {
				continue // an unreadable size is the schema check's to report
			}
			p := Problem{Path: o.ID + " " + claimSize, Environments: []string{e.Name},
				Message: fmt.Sprintf("the claim shrinks from %s to %s, which Kubernetes refuses: a claim can only grow (to shrink it, copy its data to a new claim)",
					from.String(), to.String())}
			if head != nil {
				if at, ok := head.KubernetesOrigin("volumes." + o.Name + ".size"); ok {
					p.Location = fmt.Sprintf("%s:%d:%d", at.File, at.Line, at.Column)
					p.Path = repo.KubernetesKey + ".volumes." + o.Name + ".size"
				}
			}
			out = append(out, p)
		}
	}
	return out
}

// quantity reads a field change's value: compact JSON of a Kubernetes quantity.
func quantity(j string) (resource.Quantity, error) {
	var s string
	if err := json.Unmarshal([]byte(j), &s); err != nil {
		return resource.Quantity{}, err
	}
	return resource.ParseQuantity(s)
}
