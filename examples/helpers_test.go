package examples_test

import (
	"os"
	"path/filepath"
	"testing"

	"cuelang.org/go/cue"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"
)

func resID(group, version, kind, name, ns string) resid.ResId {
	return resid.NewResIdWithNamespace(resid.NewGvk(group, version, kind), name, ns)
}

func cuePath(p string) cue.Path { return cue.ParsePath(p) }

// configReplicas reads app.replicas for env the simple way (the environment's file wins over
// base); the configuration issue replaces this with the real merge.
func configReplicas(t *testing.T, env string) any {
	t.Helper()
	for _, dir := range []string{env, "base"} {
		b, err := os.ReadFile(filepath.Join("config", dir, "app.yaml"))
		if err != nil {
			continue
		}
		var v struct {
			App struct {
				Replicas *int64 `json:"replicas"`
			} `json:"app"`
		}
		if err := yaml.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if v.App.Replicas != nil {
			return int(*v.App.Replicas)
		}
	}
	t.Fatalf("config for %s sets no app.replicas", env)
	return nil
}
