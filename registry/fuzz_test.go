package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/circlecore/circle/schema"
)

// The files each registry fuzz target replaces in tree(), a small valid registry.
const (
	fuzzManifest     = "packages/web/1.0.0.yaml"
	fuzzEnvironments = "packages/environments.yaml"
	fuzzAdvisory     = "advisories/fuzz.json"
)

// FuzzManifest feeds any bytes as a package manifest (web 1.0.0, which the environment
// requires and which depends on lib) to Load and, when it loads, to Index (which resolves
// and scans). See checkRegistry for what must hold.
//
// The seed corpus (testdata/fuzz/FuzzManifest) holds the examples' manifests, tree()'s,
// and broken ones: the wrong name, a bad range, a path leaving the repository, a merge key
// into its own anchor (which crashed CUE's YAML decoder, used here before).
func FuzzManifest(f *testing.F) {
	f.Add(tree()[fuzzManifest].Data)
	f.Fuzz(func(t *testing.T, data []byte) { checkRegistry(t, fuzzManifest, data) })
}

// FuzzEnvironments feeds any bytes as packages/environments.yaml; see FuzzManifest. Seeds:
// the examples' file, tree()'s, and broken ones.
func FuzzEnvironments(f *testing.F) {
	f.Add(tree()[fuzzEnvironments].Data)
	f.Fuzz(func(t *testing.T, data []byte) { checkRegistry(t, fuzzEnvironments, data) })
}

// FuzzAdvisory feeds any bytes as an OSV advisory of the registry (whose packages are web
// and lib in ecosystem Circle); see FuzzManifest. Seeds: the examples' advisory, one
// aimed at lib, and real OSV records (golang/vulndb, GitHub advisories; CC-BY-4.0, by way
// of shared/realworld).
func FuzzAdvisory(f *testing.F) {
	f.Add([]byte(`{"id":"CIRCLE-2026-9","modified":"2026-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Circle","name":"lib"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]}],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkRegistry(t, fuzzAdvisory, data) })
}

// checkRegistry loads tree() with file replaced by data. Nothing may panic or take more
// than 10 s. Load returns a registry or schema.Issues; every issue is at a file or folder
// of the tree and says something, and when the only change is the fuzzed file, an issue
// names that file. A registry that loads indexes every environment it configures (an
// unsatisfiable one is reported in the index, not as an error).
func checkRegistry(t *testing.T, file string, data []byte) {
	fsys := tree()
	fsys[file] = &fstest.MapFile{Data: data}
	ctx := context.Background()
	// An input that never finishes would only stall the fuzzer: crash the worker instead,
	// so that the input is kept as a failure.
	watchdog := time.AfterFunc(20*time.Second, func() {
		panic(fmt.Sprintf("%s: %d bytes still loading after 20 s: %q", file, len(data), data))
	})
	defer watchdog.Stop()
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%d bytes took %v", len(data), d)
		}
	}()
	r, err := Load(ctx, fsys, Options{Environments: envs})
	if err != nil {
		var issues schema.Issues
		if !errors.As(err, &issues) {
			t.Fatalf("Load: %v, want schema.Issues", err)
		}
		if r != nil {
			t.Fatal("a registry and an error")
		}
		named := false
		for _, is := range issues {
			if _, err := fs.Stat(fsys, is.File); err != nil || strings.TrimSpace(is.Message) == "" {
				t.Errorf("issue %q is not at a file of the tree with a message", is.String())
			}
			named = named || is.File == file
		}
		if !named {
			t.Errorf("no issue names %s: %v", file, issues)
		}
		return
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, env := range r.Config.EnvNames() {
		ix, err := r.Index(ctx, env, now) // resolves, scans and lists every package
		if err != nil {
			t.Errorf("index of %s: %v", env, err)
			continue
		}
		_ = ix.JSON()
	}
}
