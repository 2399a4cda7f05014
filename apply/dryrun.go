package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Verdict is what a server-side dry run says of one object.
type Verdict struct {
	// Refused is the API server's refusal; nil when it accepted the object or it was
	// not tried.
	Refused error
	// NotTried says why the object was not dry-run, when it was not: it depends on
	// something the same manifests create, which the cluster cannot have yet.
	NotTried string
}

// DryRun sends each object to the cluster in a server-side dry run, one at a time so each
// refusal belongs to its object, and returns a verdict per object, in order. The cluster is
// only read (Diff changes nothing). Objects in a namespace the same objects create, or of a
// kind a CustomResourceDefinition among them defines, are not tried. The error is for
// anything but a refusal (the cluster unreachable, say); mask hides Secret values in it.
func (a *Applier) DryRun(ctx context.Context, env string, objects []*unstructured.Unstructured, mask Masker) ([]Verdict, error) {
	created, defined := map[string]bool{}, map[string]bool{}
	for _, obj := range objects {
		switch obj.GroupVersionKind().GroupKind().String() {
		case "Namespace":
			created[obj.GetName()] = true
		case "CustomResourceDefinition.apiextensions.k8s.io":
			group, _, _ := unstructured.NestedString(obj.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(obj.Object, "spec", "names", "kind")
			defined[kind+"."+group] = true
		}
	}
	out := make([]Verdict, len(objects))
	for i, obj := range objects {
		doc, err := yaml.Marshal(obj.Object)
		if err != nil {
			return nil, err
		}
		_, err = a.Diff(ctx, env, doc, Options{}, mask)
		var refused *ssaerrors.DryRunErr
		switch {
		case err == nil:
		case errors.As(err, &refused) && apierrors.IsNotFound(refused.Unwrap()) && created[obj.GetNamespace()]:
			out[i].NotTried = fmt.Sprintf("its namespace %s does not exist yet (these manifests create it)", obj.GetNamespace())
		case errors.As(err, &refused) && defined[obj.GroupVersionKind().GroupKind().String()] &&
			(meta.IsNoMatchError(refused.Unwrap()) || strings.Contains(refused.Unwrap().Error(), "no matches for kind")):
			out[i].NotTried = "its kind is not in the cluster yet (a CustomResourceDefinition of these manifests defines it)"
		case errors.As(err, &refused):
			out[i].Refused = refused.Unwrap()
		default:
			return nil, fmt.Errorf("dry run %s: %w", env, err)
		}
	}
	return out, nil
}
