package kubecheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a rendered object. It has the fields of the repository's
// schema.Issue (File, Line, Column, Path, Message) and prints the same way, so `circle
// validate` lists manifest problems with configuration problems:
//
//	deploy/base/deployment.yaml:11:11: Deployment/shop-api spec.template.spec.containers[0].image: image tag "latest" is not allowed in prod [no-latest-tag]
type Problem struct {
	// Env is the environment whose rendering has the problem.
	Env string `json:"env,omitempty"`
	// File is where the object was written: its origin annotation's path (relative to the
	// repository) when the renderer recorded one, else Environment.Source. Empty for
	// objects the renderer generated itself.
	File string `json:"file,omitempty"`
	// Line and Column locate Path (or, when Path was changed by an overlay's patch, the
	// nearest enclosing field) in File; zero when unknown.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Object is "Kind/name"; Namespace is the object's namespace, if any.
	Object    string `json:"object,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Path is the field path in the object, as Kubernetes spells it
	// (spec.template.spec.containers[0].image); empty for the object as a whole.
	Path string `json:"path,omitempty"`
	// Check is the ID of the check that failed (CheckSchema, a policy's ID), which
	// SkipAnnotation and Policy.Disabled name.
	Check string `json:"check"`
	// Message says what is wrong; it never holds a Secret's values.
	Message string `json:"message"`
}

// Where is the Path of a schema.Issue for p: the object and the field path.
func (p Problem) Where() string {
	switch {
	case p.Object == "":
		return p.Path
	case p.Path == "":
		return p.Object
	}
	return p.Object + " " + p.Path
}

// String formats a problem as schema.Issue does, with the check's ID last:
// file:line:col: Kind/name path: message [check].
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
		}
		b.WriteString(": ")
	}
	if w := p.Where(); w != "" {
		b.WriteString(w)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	b.WriteString(" [" + p.Check + "]")
	return b.String()
}

// Environment is one environment's rendered manifests and the policy they are held to.
type Environment struct {
	// Name is the environment's name, as circle.yaml gives it.
	Name string
	// Manifests is the rendered multi-document YAML stream (render.Render's output,
	// ideally with render.Input.Origins so problems name the files objects came from).
	Manifests []byte
	// Source names the stream in problems about objects that have no origin annotation,
	// which then carry their line in the stream; "" leaves such problems without a file.
	Source string
	// Policy says which policies apply and how.
	Policy Policy
}

// Options are what every environment's check shares.
type Options struct {
	// FS holds the files that origin annotations name (the repository's snapshot). With
	// it, a problem carries the line of its field in the file the object was written in;
	// without it, problems about objects with an origin have a file but no line.
	FS fs.FS
	// GeneratedDir is the origin folder of objects the renderer generated itself
	// (render.GeneratedDir). They are held to the schema but not to RequiredLabels:
	// their author is Circle, and no user could add the labels.
	GeneratedDir string
	// Generated, when set, also tells the renderer's own objects by kind and name, for
	// streams rendered without origin annotations (the daemon's, which are applied as they
	// are).
	Generated func(kind, name string) bool
}

// Report is the result of a check.
type Report struct {
	// Problems are what makes the manifests invalid, environment by environment in
	// stream order, then the checks across environments.
	Problems []Problem
	// Notes are objects that were not checked against a schema: custom resources whose
	// CustomResourceDefinition is not in the same stream.
	Notes []Problem
	// Objects counts the objects checked, by environment.
	Objects map[string]int
}

// object is one document of a stream.
type object struct {
	env       *Environment
	root      *yaml.Node // the mapping
	kind      gvk
	name      string
	namespace string
	origin    origin
	generated bool
	skip      map[string]bool
}

func (o *object) ref() string { return o.kind.kind + "/" + o.name }

// checker holds one Check's state.
type checker struct {
	set     *schemaSet
	opts    Options
	report  Report
	sources map[string][]*yaml.Node // parsed origin files, by path; nil entry: unreadable
}

// Check checks every environment's manifests against the Kubernetes schemas the package
// carries (KubernetesVersion) and against each environment's Policy, then the checks that
// span environments (CheckUniqueIngressHosts). An object is skipped by the checks its
// SkipAnnotation names. A stream that does not parse is a problem, not an error; the
// error is for the package's own embedded schemas failing to load.
func Check(envs []Environment, opts Options) (*Report, error) {
	set, err := builtins()
	if err != nil {
		return nil, err
	}
	c := &checker{set: set, opts: opts, sources: map[string][]*yaml.Node{}, report: Report{Objects: map[string]int{}}}
	all := make([][]*object, len(envs))
	for i := range envs {
		all[i] = c.environment(&envs[i])
	}
	c.ingressHosts(all)
	return &c.report, nil
}

func (c *checker) environment(env *Environment) []*object {
	objs := c.parse(env)
	crds := c.crds(objs)
	for _, o := range objs {
		c.report.Objects[env.Name]++
		c.schema(o, crds)
		c.policies(o)
	}
	return objs
}

// parse splits a stream into objects. The stream is cut at its document markers first
// (a "---" line ends any document, even a block scalar, so the cut is exact), so a
// document that does not parse is reported at its first line and the rest still checked.
func (c *checker) parse(env *Environment) []*object {
	var objs []*object
	for _, chunk := range documents(env.Manifests) {
		dec := yaml.NewDecoder(bytes.NewReader(chunk.text))
		for {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				c.report.Problems = append(c.report.Problems, Problem{Env: env.Name, File: env.Source, Line: chunk.line, Column: 1,
					Check: CheckSchema, Message: "the document is not valid YAML: " + yamlLine.ReplaceAllString(err.Error(), "")})
				break
			}
			if o := c.object(env, &doc, chunk.line-1); o != nil {
				objs = append(objs, o)
			}
		}
	}
	return objs
}

// yamlLine is the position a YAML error starts with; it counts from the document's
// chunk, and is off by one for some errors, so the document's own line is reported.
var yamlLine = regexp.MustCompile(`^yaml: (line \d+: )?`)

// chunk is a stream's text from one document marker to the next.
type chunk struct {
	text []byte
	line int // of its first line in the stream
}

func documents(b []byte) []chunk {
	var out []chunk
	start, startLine, line := 0, 1, 1
	for i := 0; i < len(b); {
		end := bytes.IndexByte(b[i:], '\n')
		if end < 0 {
			end = len(b)
		} else {
			end += i + 1
		}
		l := b[i:end]
		if i > start && bytes.HasPrefix(l, []byte("---")) && (len(l) == 3 || l[3] == '\n' || l[3] == ' ' || l[3] == '\t' || l[3] == '\r') {
			out = append(out, chunk{text: b[start:i], line: startLine})
			start, startLine = i, line
		}
		i = end
		line++
	}
	if start < len(b) {
		out = append(out, chunk{text: b[start:], line: startLine})
	}
	return out
}

// object reads one parsed document; offset is added to its lines, which count from its
// chunk. Empty documents are nil.
func (c *checker) object(env *Environment, doc *yaml.Node, offset int) *object {
	if len(doc.Content) == 0 {
		return nil
	}
	if offset != 0 {
		shift(doc, offset)
	}
	root := resolve(doc.Content[0])
	if root.ShortTag() == "!!null" {
		return nil // an empty document
	}
	if root.Kind != yaml.MappingNode {
		c.report.Problems = append(c.report.Problems, Problem{Env: env.Name, File: env.Source, Line: root.Line, Column: root.Column,
			Check: CheckSchema, Message: "the document is not an object"})
		return nil
	}
	o := &object{env: env, root: root}
	apiVersion := scalar(root, "apiVersion")
	o.kind.kind = scalar(root, "kind")
	if g, v, ok := strings.Cut(apiVersion, "/"); ok {
		o.kind.group, o.kind.version = g, v
	} else {
		o.kind.version = apiVersion
	}
	meta := field(root, "metadata")
	o.name, o.namespace = scalar(meta, "name"), scalar(meta, "namespace")
	annotations := field(meta, "annotations")
	o.origin = parseOrigin(scalar(annotations, originAnnotation))
	if c.opts.GeneratedDir != "" {
		o.generated = strings.HasPrefix(o.origin.file(), strings.TrimSuffix(c.opts.GeneratedDir, "/")+"/")
	}
	if c.opts.Generated != nil && c.opts.Generated(o.kind.kind, o.name) {
		o.generated = true
	}
	c.skips(o, annotations)
	return o
}

// shift moves a parsed document's lines by offset. Content is a tree (an alias is a node
// of its own that points at its anchor), so each node is met once.
func shift(n *yaml.Node, offset int) {
	n.Line += offset
	for _, c := range n.Content {
		shift(c, offset)
	}
}

// scalar is the string value of a scalar field of a mapping, or "".
func scalar(m *yaml.Node, key string) string {
	if f := field(m, key); f != nil && f.Kind == yaml.ScalarNode && f.ShortTag() != "!!null" {
		return f.Value
	}
	return ""
}

// skips reads SkipAnnotation; an ID it names that no check has is a problem, as a typo
// would otherwise leave a check running that the author meant to skip, silently.
func (c *checker) skips(o *object, annotations *yaml.Node) {
	v := field(annotations, SkipAnnotation)
	if v == nil {
		return
	}
	o.skip = map[string]bool{}
	for _, id := range strings.Split(v.Value, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if !knownCheck(id) {
			c.add(o, CheckSkip, finding{path: []seg{{key: "metadata", index: -1}, {key: "annotations", index: -1}, {key: SkipAnnotation, index: -1}},
				at: keyOf(annotations, SkipAnnotation), val: v, msg: fmt.Sprintf("unknown check %q (known: %s)", id, strings.Join(CheckIDs(), ", "))})
			continue
		}
		o.skip[id] = true
	}
}

// enabled reports whether check applies to o.
func (c *checker) enabled(o *object, check string) bool {
	if o.skip[check] {
		return false
	}
	for _, d := range o.env.Policy.Disabled {
		if d == check {
			return false
		}
	}
	return true
}

// add records a finding about o as a Problem, locating it in the object's file.
func (c *checker) add(o *object, check string, f finding) {
	c.report.Problems = append(c.report.Problems, c.problem(o, check, f))
}

func (c *checker) problem(o *object, check string, f finding) Problem {
	p := Problem{Env: o.env.Name, Object: o.ref(), Namespace: o.namespace, Path: formatPath(f.path), Check: check, Message: f.msg}
	switch file := o.origin.file(); {
	case o.generated:
	case file != "":
		p.File = file
		if o.origin.Path != "" && o.origin.Repo == "" {
			p.Line, p.Column = c.locate(o, f)
		}
	default:
		p.File = o.env.Source
		if at := f.at; at != nil && p.File != "" {
			p.Line, p.Column = at.Line, at.Column
		}
	}
	return p
}
