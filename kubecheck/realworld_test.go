package kubecheck_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/circlecore/circle/kubecheck"
)

// realWorld holds real kustomize trees with the output of `kustomize build` beside each
// (EXPECTED.yaml), kept outside the repository.
const realWorld = "../../shared/realworld/kustomize"

// Real trees from the kustomize and Flux projects pass the schema check: no problems,
// and only their Flux and cert-manager custom resources (whose CRDs they do not carry) are
// left unchecked, as notes.
func TestCheck_RealWorld(t *testing.T) {
	if _, err := os.Stat(realWorld); err != nil {
		t.Skipf("the real-world kustomize trees are not here (%v): they live in ../shared/realworld/kustomize beside the repository", err)
	}
	var files []string
	err := filepath.WalkDir(realWorld, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "EXPECTED.yaml" {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Errorf("found %d EXPECTED.yaml files, want the 20 the issue names", len(files))
	}
	schemaOnly := kubecheck.Policy{Disabled: []string{kubecheck.CheckRequiredLabels, kubecheck.CheckResourceRequests,
		kubecheck.CheckNoPrivileged, kubecheck.CheckNoHostNamespaces, kubecheck.CheckNoLatestTag, kubecheck.CheckUniqueIngressHosts}}
	objects, notes := 0, 0
	for _, f := range files {
		rel, _ := filepath.Rel(realWorld, f)
		t.Run(filepath.Dir(rel), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r := check(t, kubecheck.Options{}, kubecheck.Environment{Name: "x", Manifests: b, Source: rel, Policy: schemaOnly})
			equal(t, "problems", lines(r.Problems), nil)
			if r.Objects["x"] == 0 {
				t.Error("no objects")
			}
			for _, n := range r.Notes {
				if n.Check != kubecheck.CheckSchema || strings.HasPrefix(rel, "kubernetes-sigs") { // kustomize's examples use built-in kinds only
					t.Errorf("unexpected note: %s", n)
				}
			}
			objects += r.Objects["x"]
			notes += len(r.Notes)
		})
	}
	t.Logf("%d files, %d objects, %d custom resources not checked", len(files), objects, notes)
}
