package kubecheck

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"

	"k8s.io/kube-openapi/pkg/validation/spec"
)

// kubernetesSchemas is written by internal/gen from the test kube-apiserver: see doc.go.
//
//go:embed schemas/kubernetes.json.gz
var kubernetesSchemas []byte

// schemaFile is the shape internal/gen writes.
type schemaFile struct {
	KubernetesVersion string                  `json:"kubernetesVersion"`
	Schemas           map[string]*spec.Schema `json:"schemas"`
}

// gvk is a group, version and kind; the core group is "".
type gvk struct{ group, version, kind string }

func (k gvk) apiVersion() string {
	if k.group == "" {
		return k.version
	}
	return k.group + "/" + k.version
}

// schemaSet is the compiled built-in schemas: immutable once loaded, so shared by every
// check without locks.
type schemaSet struct {
	version string
	kinds   map[gvk]*node
	groups  map[string]bool     // API groups Kubernetes itself serves
	served  map[string][]string // kind -> the apiVersions serving it, for hints
	meta    *node               // ObjectMeta, for custom resources
}

var (
	builtinOnce sync.Once
	builtin     *schemaSet
	builtinErr  error
)

// builtins loads the embedded schemas on first use (tens of milliseconds), so a program
// that imports the package but never checks pays nothing.
func builtins() (*schemaSet, error) {
	builtinOnce.Do(func() { builtin, builtinErr = loadSchemas(kubernetesSchemas) })
	return builtin, builtinErr
}

// KubernetesVersion is the version of the API server whose schemas the package carries,
// such as "v1.37.2".
func KubernetesVersion() string {
	s, err := builtins()
	if err != nil {
		return ""
	}
	return s.version
}

const refPrefix = "#/components/schemas/"

func loadSchemas(gz []byte) (*schemaSet, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("read embedded schemas: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("read embedded schemas: %w", err)
	}
	var f schemaFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("read embedded schemas: %w", err)
	}
	c := &compiler{named: f.Schemas, done: map[string]*node{}}
	set := &schemaSet{version: f.KubernetesVersion, kinds: map[gvk]*node{}, groups: map[string]bool{}, served: map[string][]string{}}
	names := make([]string, 0, len(f.Schemas))
	for name := range f.Schemas {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n := c.ref(name)
		for _, k := range gvksOf(f.Schemas[name]) {
			// Meta types (DeleteOptions, WatchEvent) carry the GVKs of every group; they
			// are not objects anyone writes in a manifest.
			if strings.HasPrefix(name, "io.k8s.apimachinery.") {
				continue
			}
			set.kinds[k] = n
			set.groups[k.group] = true
			set.served[k.kind] = append(set.served[k.kind], k.apiVersion())
		}
	}
	if c.err != nil {
		return nil, fmt.Errorf("compile embedded schemas: %w", c.err)
	}
	set.meta = c.ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
	for _, v := range set.served {
		sort.Strings(v)
	}
	return set, nil
}

// gvksOf reads x-kubernetes-group-version-kind: the kinds a schema is the root of.
func gvksOf(s *spec.Schema) []gvk {
	list, _ := s.Extensions["x-kubernetes-group-version-kind"].([]any)
	var out []gvk
	for _, e := range list {
		m, _ := e.(map[string]any)
		g, _ := m["group"].(string)
		v, _ := m["version"].(string)
		k, _ := m["kind"].(string)
		if v != "" && k != "" {
			out = append(out, gvk{g, v, k})
		}
	}
	return out
}

// typeSet is the JSON types a schema allows; zero allows any.
type typeSet uint8

const (
	tObject typeSet = 1 << iota
	tArray
	tString
	tInteger
	tNumber
	tBoolean
)

var typeNames = []struct {
	t    typeSet
	name string
}{{tObject, "object"}, {tArray, "array"}, {tString, "string"}, {tInteger, "integer"}, {tNumber, "number"}, {tBoolean, "boolean"}}

func (t typeSet) String() string {
	var names []string
	for _, tn := range typeNames {
		if t&tn.t != 0 {
			names = append(names, tn.name)
		}
	}
	return strings.Join(names, " or ")
}

func typeOf(name string) typeSet {
	for _, tn := range typeNames {
		if tn.name == name {
			return tn.t
		}
	}
	return 0
}

// node is a compiled schema: references resolved to pointers (recursive types, such as a
// CRD's JSONSchemaProps, become cycles), and only what validation reads.
type node struct {
	types    typeSet
	props    map[string]*node
	required []string
	// additional is the schema of values whose keys props does not name (a map's values).
	additional *node
	// closed makes a key that props does not name an error. Built-in schemas are closed
	// when they list properties (Kubernetes does not write additionalProperties: false,
	// but its decoder rejects unknown fields); a CRD's structural schema is closed unless
	// it preserves unknown fields, as the API server prunes what it does not name.
	closed     bool
	items      *node
	allOf      []*node
	anyOf      []*node
	oneOf      []*node
	enum       []any
	listType   string
	listKeys   []string
	pattern    *regexp.Regexp
	minimum    *float64
	maximum    *float64
	exclMin    bool
	exclMax    bool
	minLength  *int64
	maxLength  *int64
	minItems   *int64
	maxItems   *int64
	defaultVal any
	// format is the schema's integer format, int32 or int64 (other formats are not checked
	// offline): the Go field behind it holds no more, and the API server refuses a value
	// that does not fit.
	format string
	// onlyTypes is set when the schema says nothing but its type: an alternative of
	// oneOf/anyOf that is only a type is reported as "expected integer or string".
	onlyTypes bool
}

// compiler turns spec.Schemas into nodes. Named schemas are compiled once; the node is
// registered before its fields are filled, so a reference cycle ends at it.
type compiler struct {
	named map[string]*spec.Schema
	done  map[string]*node
	// crd is set while compiling a CustomResourceDefinition's schema: structural rules.
	crd bool
	err error
}

func (c *compiler) ref(name string) *node {
	if n, ok := c.done[name]; ok {
		return n
	}
	s, ok := c.named[name]
	if !ok {
		if c.err == nil {
			c.err = fmt.Errorf("reference to unknown schema %s", name)
		}
		return &node{}
	}
	n := &node{}
	c.done[name] = n
	if r := s.Ref.String(); r != "" { // a name for another schema
		*n = *c.ref(strings.TrimPrefix(r, refPrefix))
		return n
	}
	c.fill(n, s, false)
	return n
}

// compile compiles an unnamed schema. Inside allOf/anyOf/oneOf (junctor) a schema only
// adds value validations, so it never closes an object.
func (c *compiler) compile(s *spec.Schema, junctor bool) *node {
	if s == nil {
		return nil
	}
	if r := s.Ref.String(); r != "" {
		return c.ref(strings.TrimPrefix(r, refPrefix))
	}
	// Kubernetes writes a field of a named type as {allOf: [{$ref}], default: …}.
	if len(s.AllOf) == 1 && isOnlyWrapper(s) {
		return c.compile(&s.AllOf[0], junctor)
	}
	n := &node{}
	c.fill(n, s, junctor)
	return n
}

// isOnlyWrapper reports whether s adds nothing validation reads to its allOf.
func isOnlyWrapper(s *spec.Schema) bool {
	return len(s.Type) == 0 && len(s.Properties) == 0 && s.Items == nil && s.AdditionalProperties == nil &&
		len(s.Enum) == 0 && len(s.Required) == 0 && len(s.AnyOf) == 0 && len(s.OneOf) == 0 &&
		s.Pattern == "" && s.Minimum == nil && s.Maximum == nil && s.MinLength == nil && s.MaxLength == nil &&
		s.MinItems == nil && s.MaxItems == nil && len(s.Extensions) == 0
}

func (c *compiler) fill(n *node, s *spec.Schema, junctor bool) {
	for _, t := range s.Type {
		n.types |= typeOf(t)
	}
	intOrString := extBool(s, "x-kubernetes-int-or-string")
	if intOrString {
		n.types = tInteger | tString
	}
	preserve := extBool(s, "x-kubernetes-preserve-unknown-fields")
	if len(s.Properties) > 0 {
		n.props = make(map[string]*node, len(s.Properties))
		for k := range s.Properties {
			p := s.Properties[k]
			n.props[k] = c.compile(&p, junctor)
		}
		if n.types == 0 && !junctor {
			n.types = tObject
		}
	}
	if s.AdditionalProperties != nil {
		if s.AdditionalProperties.Schema != nil {
			n.additional = c.compile(s.AdditionalProperties.Schema, junctor)
		} else if s.AdditionalProperties.Allows {
			preserve = true
		}
	}
	if !junctor && n.additional == nil && !preserve {
		if c.crd {
			n.closed = n.types&tObject != 0
		} else {
			n.closed = len(n.props) > 0
		}
	}
	if extBool(s, "x-kubernetes-embedded-resource") {
		n.embedded()
	}
	n.required = s.Required
	if s.Items != nil {
		if s.Items.Schema != nil {
			n.items = c.compile(s.Items.Schema, junctor)
		} else if len(s.Items.Schemas) > 0 {
			n.items = c.compile(&s.Items.Schemas[0], junctor)
		}
	}
	for i := range s.AllOf {
		n.allOf = append(n.allOf, c.compile(&s.AllOf[i], true))
	}
	if !intOrString { // its anyOf only restates the two types
		for i := range s.AnyOf {
			n.anyOf = append(n.anyOf, c.compile(&s.AnyOf[i], true))
		}
		for i := range s.OneOf {
			n.oneOf = append(n.oneOf, c.compile(&s.OneOf[i], true))
		}
	}
	n.enum = s.Enum
	if lt, ok := s.Extensions.GetString("x-kubernetes-list-type"); ok {
		n.listType = lt
	}
	if keys, ok := s.Extensions["x-kubernetes-list-map-keys"].([]any); ok {
		for _, k := range keys {
			if ks, ok := k.(string); ok {
				n.listKeys = append(n.listKeys, ks)
			}
		}
	}
	if s.Pattern != "" {
		if re, err := regexp.Compile(s.Pattern); err == nil {
			n.pattern = re
		}
	}
	n.minimum, n.maximum, n.exclMin, n.exclMax = s.Minimum, s.Maximum, s.ExclusiveMinimum, s.ExclusiveMaximum
	n.minLength, n.maxLength, n.minItems, n.maxItems = s.MinLength, s.MaxLength, s.MinItems, s.MaxItems
	n.defaultVal = s.Default
	if s.Format == "int32" || s.Format == "int64" {
		n.format = s.Format
	}
	n.onlyTypes = n.types != 0 && n.props == nil && n.additional == nil && n.items == nil && n.enum == nil &&
		n.allOf == nil && n.anyOf == nil && n.oneOf == nil && n.pattern == nil && n.minimum == nil &&
		n.maximum == nil && n.minLength == nil && n.maxLength == nil && n.required == nil && n.format == ""
}

// embedded lets an object carry apiVersion, kind and metadata whatever its schema says, as
// the API server does for x-kubernetes-embedded-resource and a custom resource's root.
// metadata is filled in by withMeta, once ObjectMeta is compiled.
func (n *node) embedded() {
	props := make(map[string]*node, len(n.props)+3)
	for k, v := range n.props {
		props[k] = v
	}
	props["apiVersion"] = &node{types: tString}
	props["kind"] = &node{types: tString}
	props["metadata"] = embeddedMeta
	n.props = props
	n.types |= tObject
}

// embeddedMeta stands for ObjectMeta in compiled CRD schemas; the validator swaps in the
// built-in ObjectMeta when it meets it.
var embeddedMeta = &node{types: tObject}

func extBool(s *spec.Schema, name string) bool {
	b, _ := s.Extensions[name].(bool)
	return b
}

// compileCRD compiles a CustomResourceDefinition version's openAPIV3Schema (already
// decoded as a spec.Schema) with the structural rules the API server applies.
func compileCRD(s *spec.Schema) (*node, error) {
	c := &compiler{done: map[string]*node{}, crd: true}
	n := c.compile(s, false)
	if c.err != nil {
		return nil, c.err
	}
	root := *n
	root.embedded()
	root.closed = true
	if extBool(s, "x-kubernetes-preserve-unknown-fields") {
		root.closed = false
	}
	return &root, nil
}
