package kubecheck

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

var crdKind = gvk{"apiextensions.k8s.io", "v1", "CustomResourceDefinition"}

// crdSet is the custom kinds the CustomResourceDefinitions of a stream define.
type crdSet struct {
	// schemas has each version's compiled schema; nil for a version without one.
	schemas map[gvk]*node
	// versions lists the versions defined, by group and kind ("example.com/Widget").
	versions map[string][]string
}

// crds compiles the schemas of the CustomResourceDefinitions in a stream. A schema that
// does not compile is left out: the CRD's own check against the built-in schema says why.
func (c *checker) crds(objs []*object) crdSet {
	out := crdSet{schemas: map[gvk]*node{}, versions: map[string][]string{}}
	for _, o := range objs {
		if o.kind != crdKind {
			continue
		}
		spec := field(o.root, "spec")
		group, kind := scalar(spec, "group"), scalar(field(spec, "names"), "kind")
		versions := field(spec, "versions")
		if versions == nil || versions.Kind != yaml.SequenceNode || kind == "" {
			continue
		}
		for _, v := range versions.Content {
			k := gvk{group, scalar(v, "name"), kind}
			out.versions[group+"/"+kind] = append(out.versions[group+"/"+kind], k.version)
			s := field(field(v, "schema"), "openAPIV3Schema")
			if s == nil {
				out.schemas[k] = nil
				continue
			}
			if n, err := crdSchema(s); err == nil {
				out.schemas[k] = n
			}
		}
	}
	return out
}

// crdSchema compiles an openAPIV3Schema, which has the JSON shape of a spec.Schema.
func crdSchema(s *yaml.Node) (*node, error) {
	var v any
	if err := s.Decode(&v); err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var sch spec.Schema
	if err := json.Unmarshal(b, &sch); err != nil {
		return nil, err
	}
	return compileCRD(&sch)
}

// builtinGroup reports whether a group is Kubernetes' own, so a kind the schemas lack in
// it is an error (a removed version, a typo) rather than a custom resource. A CRD's group
// must contain a dot; the core group and the old built-in groups (apps, extensions, batch,
// policy) do not.
func (s *schemaSet) builtinGroup(g string) bool {
	return !strings.Contains(g, ".") || s.groups[g]
}

// schema runs CheckSchema on one object.
func (c *checker) schema(o *object, crds crdSet) {
	if !c.enabled(o, CheckSchema) {
		return
	}
	for _, f := range []struct{ key, val string }{{"apiVersion", o.kind.version}, {"kind", o.kind.kind}} {
		if f.val == "" {
			c.add(o, CheckSchema, finding{at: o.root, msg: fmt.Sprintf("missing required field %q", f.key)})
			return
		}
	}
	apiVersion := o.kind.apiVersion()
	n, ok := c.set.kinds[o.kind]
	if !ok {
		crd, defined := crds.schemas[o.kind]
		versions := crds.versions[o.kind.group+"/"+o.kind.kind]
		switch {
		case defined && crd != nil:
			n = crd
		case defined:
			c.note(o, fmt.Sprintf("the CustomResourceDefinition of kind %s in apiVersion %s has no schema: not checked", o.kind.kind, apiVersion))
			return
		case c.set.builtinGroup(o.kind.group):
			msg := fmt.Sprintf("no schema for kind %s in apiVersion %s", o.kind.kind, apiVersion)
			if served := c.set.served[o.kind.kind]; len(served) > 0 {
				msg += fmt.Sprintf(" (Kubernetes %s serves it as %s)", c.set.version, strings.Join(served, ", "))
			}
			c.add(o, CheckSchema, finding{path: with(nil, "apiVersion"), at: keyOf(o.root, "apiVersion"), msg: msg})
			return
		case len(versions) > 0:
			c.add(o, CheckSchema, finding{path: with(nil, "apiVersion"), at: keyOf(o.root, "apiVersion"),
				msg: fmt.Sprintf("the CustomResourceDefinition of kind %s defines no version %s (it defines %s)", o.kind.kind, o.kind.version, strings.Join(versions, ", "))})
			return
		default:
			c.note(o, fmt.Sprintf("no CustomResourceDefinition for kind %s in apiVersion %s in the manifests: not checked against a schema", o.kind.kind, apiVersion))
			return
		}
	}
	v := validator{meta: c.set.meta, hide: o.kind.group == "" && o.kind.kind == "Secret"}
	v.value(n, o.root, o.root)
	for _, f := range v.findings {
		c.add(o, CheckSchema, f)
	}
}

func (c *checker) note(o *object, msg string) {
	c.report.Notes = append(c.report.Notes, c.problem(o, CheckSchema, finding{at: o.root, msg: msg}))
}
