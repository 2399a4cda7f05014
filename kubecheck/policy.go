package kubecheck

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The IDs of the checks: what Problem.Check, SkipAnnotation and Policy.Disabled name.
const (
	// CheckSchema is the OpenAPI schema of the object's kind: no unknown fields, the
	// right types, required fields present, values in their enums, keyed lists without
	// duplicate keys.
	CheckSchema = "schema"
	// CheckRequiredLabels is Policy.RequiredLabels on every object's metadata.labels.
	CheckRequiredLabels = "required-labels"
	// CheckNoLatestTag refuses, where Policy.DenyLatestTag is set, an image tagged
	// "latest" or not tagged at all (which pulls latest), unless pinned by digest: the
	// same manifests would then deploy different code on every pull.
	CheckNoLatestTag = "no-latest-tag"
	// CheckResourceRequests wants a cpu and a memory request on every container (a limit
	// counts: the API server defaults the request to it), so the scheduler can place
	// pods and the node does not evict them first.
	CheckResourceRequests = "resource-requests"
	// CheckNoPrivileged refuses privileged containers: root on the node.
	CheckNoPrivileged = "no-privileged"
	// CheckNoHostNamespaces refuses pods sharing the node's network, PID or IPC
	// namespace (hostNetwork, hostPID, hostIPC).
	CheckNoHostNamespaces = "no-host-namespaces"
	// CheckUniqueIngressHosts refuses an Ingress host that another environment's
	// Ingress also serves: two environments would take each other's traffic.
	CheckUniqueIngressHosts = "unique-ingress-hosts"
	// CheckSkip is a problem with SkipAnnotation itself (an unknown ID); it cannot be
	// skipped.
	CheckSkip = "skip-checks"
)

// SkipAnnotation on an object lists checks (comma-separated IDs) the object is exempt
// from, for the one object that has a reason, without turning a check off for the
// environment:
//
//	circle.circlecore.io/skip-checks: no-privileged,no-host-namespaces
const SkipAnnotation = "circle.circlecore.io/skip-checks"

// CheckIDs lists the IDs an object may skip and an environment may disable.
func CheckIDs() []string {
	return []string{CheckSchema, CheckRequiredLabels, CheckNoLatestTag, CheckResourceRequests,
		CheckNoPrivileged, CheckNoHostNamespaces, CheckUniqueIngressHosts}
}

func knownCheck(id string) bool {
	for _, k := range CheckIDs() {
		if k == id {
			return true
		}
	}
	return false
}

// Policy is what one environment's manifests are held to, beyond the schema.
type Policy struct {
	// RequiredLabels must be on every object, with a value.
	RequiredLabels []string
	// DenyLatestTag turns on CheckNoLatestTag: for environments that must be
	// reproducible (production), not for a developer's.
	DenyLatestTag bool
	// Disabled lists check IDs that do not run for this environment.
	Disabled []string
}

// DefaultLabels are the labels a Policy requires by default: the one label every tool
// (kubectl, dashboards, Circle's own selectors) groups an application's objects by.
var DefaultLabels = []string{"app.kubernetes.io/name"}

// DefaultPolicy is the policy of an environment circle.yaml says nothing about: every
// check on, DefaultLabels required, and latest tags refused when the environment's name
// says production ("prod", "production", or starting with "prod-").
func DefaultPolicy(env string) Policy {
	return Policy{
		RequiredLabels: append([]string(nil), DefaultLabels...),
		DenyLatestTag:  IsProduction(env),
	}
}

// IsProduction reports whether an environment's name says it is production.
func IsProduction(env string) bool {
	e := strings.ToLower(env)
	return e == "prod" || e == "production" || strings.HasPrefix(e, "prod-") || strings.HasPrefix(e, "production-")
}

// policies runs the per-object policies.
func (c *checker) policies(o *object) {
	if c.enabled(o, CheckRequiredLabels) && !o.generated {
		c.requiredLabels(o)
	}
	spec, at := podSpec(o)
	if spec == nil {
		return
	}
	if c.enabled(o, CheckNoHostNamespaces) {
		for _, f := range []struct{ key, what string }{{"hostNetwork", "network"}, {"hostPID", "process (PID)"}, {"hostIPC", "IPC"}} {
			if v := field(spec, f.key); v != nil && v.ShortTag() == "!!bool" && v.Value == "true" {
				c.add(o, CheckNoHostNamespaces, finding{path: with(at, f.key), at: keyOf(spec, f.key), val: v,
					msg: fmt.Sprintf("the pod shares the node's %s namespace (%s: true)", f.what, f.key)})
			}
		}
	}
	for _, list := range []string{"initContainers", "containers", "ephemeralContainers"} {
		cs := field(spec, list)
		if cs == nil || cs.Kind != yaml.SequenceNode {
			continue
		}
		for i, ct := range cs.Content {
			ct = resolve(ct)
			if ct.Kind != yaml.MappingNode {
				continue
			}
			name := scalar(ct, "name")
			p := append(with(at, list), seg{index: i, name: name})
			what := fmt.Sprintf("container %q", name)
			if name == "" {
				what = fmt.Sprintf("%s[%d]", list, i)
			}
			c.container(o, ct, what, p, list == "ephemeralContainers")
		}
	}
}

// with is p and one more key, in a fresh slice.
func with(p []seg, keys ...string) []seg {
	out := make([]seg, len(p), len(p)+len(keys)+2)
	copy(out, p)
	for _, k := range keys {
		out = append(out, seg{key: k, index: -1})
	}
	return out
}

func (c *checker) requiredLabels(o *object) {
	meta := field(o.root, "metadata")
	labels := field(meta, "labels")
	for _, l := range o.env.Policy.RequiredLabels {
		v := field(labels, l)
		switch {
		case v == nil:
			at, p := keyOf(meta, "labels"), with(nil, "metadata", "labels")
			if at == nil {
				at, p = keyOf(o.root, "metadata"), with(nil, "metadata")
			}
			c.add(o, CheckRequiredLabels, finding{path: p, at: at, msg: fmt.Sprintf("missing required label %q", l)})
		case v.Value == "":
			c.add(o, CheckRequiredLabels, finding{path: with(nil, "metadata", "labels", l), at: keyOf(labels, l), msg: fmt.Sprintf("required label %q is empty", l)})
		}
	}
}

// container runs the per-container policies; what names the container in messages.
func (c *checker) container(o *object, ct *yaml.Node, what string, p []seg, ephemeral bool) {
	if c.enabled(o, CheckNoLatestTag) && o.env.Policy.DenyLatestTag {
		if img := field(ct, "image"); img != nil && img.Kind == yaml.ScalarNode {
			if msg := latest(img.Value); msg != "" {
				c.add(o, CheckNoLatestTag, finding{path: with(p, "image"), at: keyOf(ct, "image"), val: img,
					msg: fmt.Sprintf("%s is not allowed in %s", msg, o.env.Name)})
			}
		}
	}
	if c.enabled(o, CheckResourceRequests) && !ephemeral { // ephemeral containers take no resources
		res := field(ct, "resources")
		var missing []string
		for _, r := range []string{"cpu", "memory"} {
			if field(field(res, "requests"), r) == nil && field(field(res, "limits"), r) == nil {
				missing = append(missing, r)
			}
		}
		if len(missing) > 0 {
			at, path := keyOf(field(ct, "resources"), "requests"), with(p, "resources", "requests")
			if at == nil {
				at = keyOf(ct, "resources")
			}
			if at == nil {
				at = ct
			}
			c.add(o, CheckResourceRequests, finding{path: path, at: at,
				msg: fmt.Sprintf("%s has no %s request", what, strings.Join(missing, " or "))})
		}
	}
	if c.enabled(o, CheckNoPrivileged) {
		sc := field(ct, "securityContext")
		if v := field(sc, "privileged"); v != nil && v.ShortTag() == "!!bool" && v.Value == "true" {
			c.add(o, CheckNoPrivileged, finding{path: with(p, "securityContext", "privileged"), at: keyOf(sc, "privileged"), val: v,
				msg: fmt.Sprintf("%s is privileged", what)})
		}
	}
}

// latest names what is wrong with an image reference that pulls whatever "latest" is now,
// or is "" when the reference names a fixed tag or a digest.
func latest(image string) string {
	if strings.Contains(image, "@") {
		return "" // pinned by digest, whatever the tag says
	}
	last := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(last, ":")
	if i < 0 {
		return fmt.Sprintf("image %q without a tag (which pulls \"latest\")", image)
	}
	if last[i+1:] == "latest" {
		return `image tag "latest"`
	}
	return ""
}

// podSpec finds the pod spec of the built-in workload kinds, and its path.
func podSpec(o *object) (*yaml.Node, []seg) {
	var keys []string
	switch o.kind.group + "/" + o.kind.kind {
	case "/Pod":
		keys = []string{"spec"}
	case "/PodTemplate":
		keys = []string{"template", "spec"}
	case "/ReplicationController", "apps/Deployment", "apps/StatefulSet", "apps/DaemonSet", "apps/ReplicaSet", "batch/Job":
		keys = []string{"spec", "template", "spec"}
	case "batch/CronJob":
		keys = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	default:
		return nil, nil
	}
	n := o.root
	for _, k := range keys {
		if n = field(n, k); n == nil {
			return nil, nil
		}
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	return n, with(nil, keys...)
}

// ingressHost is one Ingress rule's host in one environment.
type ingressHost struct {
	o    *object
	path []seg
	at   *yaml.Node
	val  *yaml.Node
}

// ingressHosts runs CheckUniqueIngressHosts across environments: a host served in one
// environment and again in a later one is reported in the later one. Hosts compare
// without case, as DNS does.
func (c *checker) ingressHosts(envs [][]*object) {
	first := map[string]ingressHost{}
	for _, objs := range envs {
		for _, o := range objs {
			if o.kind != (gvk{"networking.k8s.io", "v1", "Ingress"}) || !c.enabled(o, CheckUniqueIngressHosts) {
				continue
			}
			rules := field(field(o.root, "spec"), "rules")
			if rules == nil || rules.Kind != yaml.SequenceNode {
				continue
			}
			for i, r := range rules.Content {
				h := field(r, "host")
				if h == nil || h.Kind != yaml.ScalarNode || h.Value == "" {
					continue
				}
				host := strings.ToLower(h.Value)
				ih := ingressHost{o: o, path: append(with(nil, "spec", "rules"), seg{index: i}, seg{key: "host", index: -1}), at: keyOf(r, "host"), val: h}
				if prev, ok := first[host]; ok && prev.o.env != o.env {
					c.add(o, CheckUniqueIngressHosts, finding{path: ih.path, at: ih.at, val: ih.val,
						msg: fmt.Sprintf("host %q is also served in %s by Ingress/%s", h.Value, prev.o.env.Name, prev.o.name)})
					continue
				}
				if _, ok := first[host]; !ok {
					first[host] = ih
				}
			}
		}
	}
}
