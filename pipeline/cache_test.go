package pipeline_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/testenv"
)

// A forced reconcile of an unchanged revision takes each environment's manifests from the
// cache, byte for byte what it rendered; any change to what a render reads, a file of the
// overlay, a configuration or secret value, or the masking, renders again.
func TestRun_RenderCache(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	cache := pipeline.NewRenderCache()
	first, err := run(t, dir, pipeline.Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if cache.Hits() != 0 || len(first.Inputs) != 3 {
		t.Fatalf("first run: %d hits, inputs %v; want none and three digests", cache.Hits(), first.Inputs)
	}
	again, err := run(t, dir, pipeline.Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if cache.Hits() != 3 {
		t.Errorf("the same revision again: %d hits, want 3", cache.Hits())
	}
	for _, o := range first.Outputs {
		if !bytes.Equal(o.Manifests, again.Output(o.Env).Manifests) {
			t.Errorf("%s: the cached manifests differ from the rendered ones", o.Env)
		}
	}
	// A caller editing its manifests does not edit the cache's.
	again.Output("dev").Manifests[0] = '#'

	// A value of prod's alone changes prod's digest: prod renders again, the others not.
	testenv.WriteFile(t, dir, "config/prod/db.yaml", "db:\n  host: db.prod.internal\n  name: probe-one\n")
	res, err := run(t, dir, pipeline.Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if cache.Hits() != 5 || !strings.Contains(string(res.Output("prod").Manifests), "probe-one") {
		t.Errorf("after prod's value changed: %d hits (want 5: dev and staging), prod renders the new value: %v",
			cache.Hits(), strings.Contains(string(res.Output("prod").Manifests), "probe-one"))
	}
	if !bytes.Equal(res.Output("dev").Manifests, first.Output("dev").Manifests) {
		t.Error("dev's cached manifests were changed by a caller's edit")
	}

	// The overlay's files count through the input digest: an edited one renders again.
	testenv.WriteFile(t, dir, "deploy/prod/kustomization.yaml",
		readFile(t, dir+"/deploy/prod/kustomization.yaml")+"namePrefix: probe-\n")
	hits := cache.Hits()
	res, err = run(t, dir, pipeline.Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if cache.Hits() != hits || !strings.Contains(string(res.Output("prod").Manifests), "name: probe-shop-api") {
		t.Errorf("after an overlay edit: %d more hits (want 0: every digest reads deploy/), prod has the prefix: %v",
			cache.Hits()-hits, strings.Contains(string(res.Output("prod").Manifests), "probe-shop-api"))
	}

	// The values are part of the key, not only the digest: with the digests of the run
	// before handed in, a changed value still renders again.
	testenv.WriteFile(t, dir, "config/prod/db.yaml", "db:\n  host: db.prod.internal\n  name: probe-two\n")
	hits = cache.Hits()
	res, err = run(t, dir, pipeline.Options{Cache: cache, Inputs: res.Inputs})
	if err != nil {
		t.Fatal(err)
	}
	if cache.Hits() != hits+2 || !strings.Contains(string(res.Output("prod").Manifests), "probe-two") {
		t.Errorf("a value changed under the same digest: %d more hits (want 2), prod renders it: %v",
			cache.Hits()-hits, strings.Contains(string(res.Output("prod").Manifests), "probe-two"))
	}

	// Masked output is never served from a real render, nor the other way round.
	hits = cache.Hits()
	masked, err := run(t, dir, pipeline.Options{Cache: cache, Masked: true})
	if err != nil {
		t.Fatal(err)
	}
	if cache.Hits() != hits {
		t.Errorf("a masked run hit the cache %d times", cache.Hits()-hits)
	}
	if bytes.Equal(masked.Output("prod").Manifests, res.Output("prod").Manifests) {
		t.Error("masked and real manifests are the same")
	}

}
