package pipeline_test

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/testenv"
)

// BenchmarkRun_1000Objects is the pipeline's part of a push in the daemon and Flux
// benchmarks: the example repository with 334 more objects in its kustomize base, three
// environments (1,002 objects), every stage from settings to check.
func BenchmarkRun_1000Objects(b *testing.B) {
	fsys := benchRepo(b)
	ring := keyring(&testing.T{})
	for b.Loop() {
		res, err := pipeline.Run(context.Background(), fsys, pipeline.Options{Load: repo.Options{Keyring: ring}, Now: now})
		if err != nil || len(res.Outputs) != 3 {
			b.Fatalf("run: %v, %d outputs", err, len(res.Outputs))
		}
	}
}

// BenchmarkRun_1000ObjectsCached is the daemon's forced reconcile of a revision it has
// built: the same work as BenchmarkRun_1000Objects, with the renders from the cache.
func BenchmarkRun_1000ObjectsCached(b *testing.B) {
	fsys := benchRepo(b)
	ring := keyring(&testing.T{})
	cache := pipeline.NewRenderCache()
	if _, err := pipeline.Run(context.Background(), fsys, pipeline.Options{Load: repo.Options{Keyring: ring}, Now: now, Cache: cache}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := pipeline.Run(context.Background(), fsys, pipeline.Options{Load: repo.Options{Keyring: ring}, Now: now, Cache: cache})
		if err != nil || len(res.Outputs) != 3 {
			b.Fatalf("run: %v, %d outputs", err, len(res.Outputs))
		}
	}
	if cache.Hits() != b.N*3 {
		b.Fatalf("%d cache hits in %d runs", cache.Hits(), b.N)
	}
}

// benchRepo is the example repository with 334 more objects in its kustomize base.
func benchRepo(b *testing.B) fs.FS {
	dir := testenv.CopyTree(b, "../examples")
	testenv.WriteFile(b, dir, "deploy/base/bench.yaml", testenv.BenchObjects(334))
	k, err := os.ReadFile(dir + "/deploy/base/kustomization.yaml")
	if err != nil {
		b.Fatal(err)
	}
	testenv.WriteFile(b, dir, "deploy/base/kustomization.yaml", strings.Replace(string(k), "resources:\n", "resources:\n  - bench.yaml\n", 1))
	return os.DirFS(dir)
}
