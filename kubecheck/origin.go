package kubecheck

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// originAnnotation is kustomize's record of where an object came from (buildMetadata:
// [originAnnotations], or render.Input.Origins).
const originAnnotation = "config.kubernetes.io/origin"

// origin is the annotation's value: path for an object read from a file, configuredIn for
// one a generator made; repo for a remote base.
type origin struct {
	Path         string `yaml:"path"`
	Repo         string `yaml:"repo"`
	ConfiguredIn string `yaml:"configuredIn"`
}

func parseOrigin(s string) origin {
	var o origin
	if s != "" {
		_ = yaml.Unmarshal([]byte(s), &o) // an unreadable origin is no origin
	}
	return o
}

// file is the file a problem about the object names.
func (o origin) file() string {
	f := o.Path
	if f == "" {
		f = o.ConfiguredIn
	}
	if f == "" {
		return ""
	}
	if o.Repo != "" {
		return o.Repo + "//" + f
	}
	return path.Clean(f)
}

// documents parses a source file once per check; nil when it cannot be read or parsed.
func (c *checker) documents(name string) []*yaml.Node {
	if docs, ok := c.sources[name]; ok {
		return docs
	}
	c.sources[name] = nil
	if c.opts.FS == nil || !fs.ValidPath(name) {
		return nil
	}
	b, err := fs.ReadFile(c.opts.FS, name)
	if err != nil {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if !errors.Is(err, io.EOF) {
				return nil
			}
			break
		}
		if len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
			docs = append(docs, doc.Content[0])
		}
	}
	c.sources[name] = docs
	return docs
}

// locate finds a finding's field in the file the object came from. The object is the
// document of the same kind with the same name, or whose name the rendered one contains
// (kustomize adds prefixes, suffixes and hashes), or the only one of that kind. List
// elements are matched by name where they have one, as strategic merge patches do. A field
// the file does not have, or has with another value, was put there by an overlay: the
// nearest enclosing field that the file has is reported instead.
func (c *checker) locate(o *object, f finding) (line, col int) {
	var doc *yaml.Node
	var candidates []*yaml.Node
	best := -1
	for _, d := range c.documents(o.origin.Path) {
		if scalar(d, "kind") != o.kind.kind {
			continue
		}
		candidates = append(candidates, d)
		name := scalar(field(d, "metadata"), "name")
		if name == o.name {
			doc = d
			break
		}
		if name != "" && strings.Contains(o.name, name) && len(name) > best {
			doc, best = d, len(name)
		}
	}
	if doc == nil && len(candidates) == 1 {
		doc = candidates[0]
	}
	if doc == nil {
		return 0, 0
	}
	cur, at := doc, doc
	for i, s := range f.path {
		var next, nextAt *yaml.Node
		if s.index < 0 {
			next, nextAt = field(cur, s.key), keyOf(cur, s.key)
		} else if cur.Kind == yaml.SequenceNode {
			next = element(cur, s)
			nextAt = next
		}
		if next == nil {
			break
		}
		if i == len(f.path)-1 && f.val != nil && (next.Kind != yaml.ScalarNode || next.Value != f.val.Value) {
			break // patched: report the enclosing field
		}
		cur, at = next, nextAt
	}
	return at.Line, at.Column
}

// element finds a list element by its name, else by its index.
func element(list *yaml.Node, s seg) *yaml.Node {
	if s.name != "" {
		for _, e := range list.Content {
			if scalar(e, "name") == s.name {
				return resolve(e)
			}
		}
		return nil
	}
	if s.index < len(list.Content) {
		return resolve(list.Content[s.index])
	}
	return nil
}
