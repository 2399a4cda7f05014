package registry

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

func TestIndex(t *testing.T) {
	fsys := scanTree()
	fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte("environments:\n  prod:\n    requires: {web: ^1.0.0}\n    vulnerabilities: {failOn: critical}\n  dev:\n    requires: {web: ^1.0.0, lib: 1.0.0}\n")}
	r, issues := load(t, fsys)
	if issues != nil {
		t.Fatal(issues)
	}
	ix, err := r.Index(context.Background(), "prod", now)
	if err != nil {
		t.Fatal(err)
	}
	b := ix.JSON()
	again, _ := r.Index(context.Background(), "prod", now)
	if string(again.JSON()) != string(b) {
		t.Error("the same registry gives different index bytes")
	}
	var back Index
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("the index is not JSON: %v", err)
	}
	if !back.Resolved || back.Lock == nil || back.Lock.Get("lib").Version != "1.1.1" || back.Report == nil || !back.Report.Failed {
		t.Errorf("resolution part = %+v", back)
	}
	lib := back.Packages[0]
	if lib.Name != "lib" || len(lib.Versions) != 4 {
		t.Fatalf("lib = %+v", lib)
	}
	v110, v111, beta := lib.Versions[1], lib.Versions[2], lib.Versions[3]
	if v110.Version != "1.1.0" || v110.Selected || !v110.Enabled || len(v110.Advisories) != 2 || v110.Advisories[0].ID != "CIRCLE-1" || v110.Advisories[0].Fixed != "1.1.1" || v110.Advisories[0].Severity.Value != 9.8 {
		t.Errorf("lib 1.1.0 = %+v", v110)
	}
	if !v111.Selected || v111.Digest != r.Package("lib").Version("1.1.1").Digest() || v111.License != "Apache-2.0" {
		t.Errorf("lib 1.1.1 = %+v", v111)
	}
	if beta.Enabled || beta.Selected || len(beta.Advisories) != 0 {
		t.Errorf("the beta is enabled in dev only and fixed: %+v", beta)
	}
	web := back.Packages[1].Versions[0]
	if len(web.Artifacts) != 1 || web.Artifacts[0].Status != ArtifactVerified || web.Dependencies["lib"] != "^1.1.0" || web.Description != "The web front end." {
		t.Errorf("web = %+v", web)
	}
	// The withdrawn CIRCLE-4 is listed nowhere.
	if strings.Contains(string(b), "CIRCLE-4") {
		t.Error("a withdrawn advisory is in the index")
	}

	// An environment that does not resolve is published with its explanation.
	dev, err := r.Index(context.Background(), "dev", now)
	if err != nil {
		t.Fatal(err)
	}
	if dev.Resolved || dev.Lock != nil || dev.Report != nil || !strings.Contains(dev.Explanation, "every version of web depends on lib ^1.1.0") || !strings.HasSuffix(dev.Explanation, "version solving failed.") || len(dev.Packages) != 2 {
		t.Errorf("dev = %+v", dev)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Index(ctx, "prod", now); err == nil {
		t.Error("a cancelled index succeeded")
	}
}

// The index follows the environment's committed lock where it still fits.
func TestIndex_FollowsLock(t *testing.T) {
	fsys := scanTree()
	fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte("environments:\n  prod:\n    requires: {web: ^1.0.0}\n")}
	r, _ := load(t, fsys)
	res, _ := r.Resolve(context.Background(), "prod", ResolveOptions{Prefer: &Lock{Packages: []LockedPackage{{Name: "lib", Version: "1.1.0"}}}})
	fsys["packages/prod.lock.json"] = &fstest.MapFile{Data: res.Lock().JSON()}
	r, _ = load(t, fsys)
	ix, err := r.Index(context.Background(), "prod", now)
	if err != nil || ix.Lock.Get("lib").Version != "1.1.0" {
		t.Errorf("index lock = %+v, %v", ix.Lock, err)
	}
}

func TestIndex_Examples(t *testing.T) {
	r, err := Load(context.Background(), os.DirFS("../examples"), Options{Environments: envs})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := r.Index(context.Background(), "prod", now)
	if err != nil || !ix.Resolved || ix.Report.Failed || len(ix.Packages) != 2 {
		t.Fatalf("prod index = %+v, %v", ix, err)
	}
}
