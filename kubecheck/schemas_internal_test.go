package kubecheck

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

// A broken embedded file is an error from Check, never a panic or a silent pass.
func TestLoadSchemas_Broken(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not gzip", []byte("plain"), "read embedded schemas"},
		{"truncated", gz(`{"schemas": {}}`)[:12], "read embedded schemas"},
		{"not JSON", gz("nope"), "read embedded schemas"},
		{"dangling reference", gz(`{"schemas": {"a": {"$ref": "#/components/schemas/b"}}}`), "reference to unknown schema b"},
		{"dangling property reference", gz(`{"schemas": {"a": {"properties": {"x": {"$ref": "#/components/schemas/b"}}}}}`), "reference to unknown schema b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadSchemas(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// Type names read back as they are written; an unknown one allows anything.
func TestTypeSet(t *testing.T) {
	for _, name := range []string{"object", "array", "string", "integer", "number", "boolean"} {
		if got := typeOf(name).String(); got != name {
			t.Errorf("typeOf(%q) = %q", name, got)
		}
		if got := typeName(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str"}, typeOf(name)); got != name {
			t.Errorf("typeName(%q) = %q", name, got)
		}
	}
	if typeOf("null") != 0 {
		t.Error("an unknown type restricts")
	}
}

// A CRD's schema with a reference (which structural schemas forbid) does not compile; a
// root that preserves unknown fields stays open.
func TestCompileCRD(t *testing.T) {
	var s spec.Schema
	s.Ref = spec.MustCreateRef("#/components/schemas/x")
	if _, err := compileCRD(&s); err == nil {
		t.Error("a reference compiled")
	}
	open := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}}}
	open.Extensions = spec.Extensions{"x-kubernetes-preserve-unknown-fields": true}
	n, err := compileCRD(&open)
	if err != nil || n.closed {
		t.Errorf("preserving root: %v closed=%v", err, n != nil && n.closed)
	}
	items := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"array"},
		Items: &spec.SchemaOrArray{Schemas: []spec.Schema{{SchemaProps: spec.SchemaProps{Type: []string{"string"}}}}}}}
	if n, _ := compileCRD(&items); n.items == nil || n.items.types != tString {
		t.Error("a tuple's first schema is not the items' schema")
	}
}

// Origins name remote bases by repository; paths are cleaned.
func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"path: ./base/../base/a.yaml\n":                "base/a.yaml",
		"configuredIn: k/kustomization.yaml\n":         "k/kustomization.yaml",
		"path: a.yaml\nrepo: https://github.com/x/y\n": "https://github.com/x/y//a.yaml",
		"":           "",
		"[not a map": "",
	} {
		if got := parseOrigin(in).file(); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestFormatPath(t *testing.T) {
	p := []seg{{key: "metadata", index: -1}, {key: "labels", index: -1}, {key: "app.kubernetes.io/name", index: -1}}
	if got := formatPath(p); got != "metadata.labels[app.kubernetes.io/name]" {
		t.Error(got)
	}
	if got := formatPath([]seg{{key: "", index: -1}, {index: 2}}); got != "[][2]" {
		t.Error(got)
	}
}
