// Command gen writes manifests/schemas/kubernetes.json.gz: the OpenAPI v3 schemas of every
// built-in API group that the test kube-apiserver serves, merged into one map, descriptions
// stripped, gzipped. The manifests package embeds the file, so `circle validate` checks
// manifests offline against the same Kubernetes version the tests run.
//
// It starts the cached test kube-apiserver (make testenv builds it) rather than reading
// k8s.io/api's generated definitions, because the server's documents are what a cluster
// of that version actually accepts: the API groups it serves by default, with the
// extensions (list types, int-or-string, enums) the server itself publishes.
//
// Run it with `go generate ./manifests/` from the repository root.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/circlecore/circle/testenv"
)

// file is the generated document; the manifests package reads the same shape.
type file struct {
	KubernetesVersion string                  `json:"kubernetesVersion"`
	Schemas           map[string]*spec.Schema `json:"schemas"`
}

func main() {
	out := flag.String("o", "schemas/kubernetes.json.gz", "file to write")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	assets, err := testenv.Tool(testenv.ToolKubebuilder)
	if err != nil {
		return err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		DownloadBinaryAssets:     false,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start kube-apiserver: %w", err)
	}
	defer func() { _ = env.Stop() }()

	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	version, err := dc.ServerVersion()
	if err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	paths, err := dc.OpenAPIV3().Paths()
	if err != nil {
		return fmt.Errorf("openapi v3 discovery: %w", err)
	}
	names := make([]string, 0, len(paths))
	for p := range paths {
		// api/v1 and apis/<group>/<version>; not the discovery roots or the OIDC documents.
		if p == "api/v1" || strings.HasPrefix(p, "apis/") && strings.Count(p, "/") == 2 {
			names = append(names, p)
		}
	}
	sort.Strings(names)
	merged := map[string]*spec.Schema{}
	for _, p := range names {
		b, err := paths[p].Schema("application/json")
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		var doc spec3.OpenAPI
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if doc.Components == nil {
			continue
		}
		for name, s := range doc.Components.Schemas {
			strip(s)
			if old, ok := merged[name]; ok {
				// Meta types (WatchEvent, DeleteOptions) list the GVKs of the group whose
				// document carries them; the copies are otherwise the same.
				if err := mergeGVKs(old, s); err != nil {
					return fmt.Errorf("%s: schema %s: %w", p, name, err)
				}
				continue
			}
			merged[name] = s
		}
		fmt.Fprintf(os.Stderr, "gen: %s: %d schemas\n", p, len(doc.Components.Schemas))
	}
	b, err := json.Marshal(file{KubernetesVersion: version.GitVersion, Schemas: merged})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	// No name or time in the gzip header: the same server gives the same bytes.
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gen: %s: Kubernetes %s, %d schemas, %d bytes (%d uncompressed)\n",
		out, version.GitVersion, len(merged), buf.Len(), len(b))
	return nil
}

const gvkExt = "x-kubernetes-group-version-kind"

// mergeGVKs adds the group-version-kinds of b to a, after checking that the two schemas are
// otherwise the same.
func mergeGVKs(a, b *spec.Schema) error {
	ga, gb := a.Extensions[gvkExt], b.Extensions[gvkExt]
	delete(a.Extensions, gvkExt)
	delete(b.Extensions, gvkExt)
	same := reflect.DeepEqual(a, b)
	la, _ := ga.([]any)
	lb, _ := gb.([]any)
	seen := map[string]bool{}
	var all []any
	for _, g := range append(la, lb...) {
		k := fmt.Sprint(g)
		if !seen[k] {
			seen[k] = true
			all = append(all, g)
		}
	}
	sort.Slice(all, func(i, j int) bool { return fmt.Sprint(all[i]) < fmt.Sprint(all[j]) })
	if all != nil {
		if a.Extensions == nil {
			a.Extensions = spec.Extensions{}
		}
		a.Extensions[gvkExt] = all
	}
	if !same {
		x, _ := json.Marshal(a)
		y, _ := json.Marshal(b)
		return fmt.Errorf("differs from another group's copy:\n%s\n%s", x, y)
	}
	return nil
}

// strip drops what validation never reads (prose), which is most of the documents' size.
func strip(s *spec.Schema) {
	if s == nil {
		return
	}
	s.Description = ""
	s.ExternalDocs = nil
	s.Example = nil
	for k, p := range s.Properties {
		strip(&p)
		s.Properties[k] = p
	}
	if s.AdditionalProperties != nil {
		strip(s.AdditionalProperties.Schema)
	}
	if s.Items != nil {
		strip(s.Items.Schema)
		for i := range s.Items.Schemas {
			strip(&s.Items.Schemas[i])
		}
	}
	for _, list := range [][]spec.Schema{s.AllOf, s.OneOf, s.AnyOf} {
		for i := range list {
			strip(&list[i])
		}
	}
	strip(s.Not)
}
