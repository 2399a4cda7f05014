package reconciler_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/publish"
	"github.com/circlecore/circle/testenv"
)

// Each accepted environment's configuration is published to the target, on the real S3
// server, encrypted: the canary secret is in the build a reader opens with the keyring, and
// in no object's raw bytes. An invalid revision publishes nothing.
func TestReconcile_PublishesEachEnvironment(t *testing.T) {
	ctx := context.Background()
	root := copyExamples(t)
	encrypt(t, root, "secrets/prod.sops.yaml", "db:\n  password: "+canary+"\n")
	target, backend := newTarget(t, testenv.StartS3(t).NewBucket(t))
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t), Target: target})

	good := snapshot(t, root)
	st, err := d.Reconcile(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || !strings.Contains(strings.Join(st.Stages, ","), "packages,build,check,publish,record") {
		t.Fatalf("status = %+v", st)
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		e := envByName(st, env)
		if e.Published == nil || e.Published.Revision != good.Revision || e.Published.Seq != 1 {
			t.Errorf("%s: published = %+v", env, e.Published)
		}
	}
	m, err := target.Current(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := target.ReadFile(ctx, m, "config.json")
	if err != nil || !bytes.Contains(cfg, []byte(`"password": "`+canary+`"`)) || !bytes.Contains(cfg, []byte(`"host": "db.prod.internal"`)) {
		t.Errorf("published prod config: %v\n%s", err, cfg)
	}
	manifests, err := target.ReadFile(ctx, m, "manifests.yaml")
	if err != nil || !bytes.Contains(manifests, []byte("kind: Deployment")) || !bytes.Contains(manifests, []byte("name: circle-secrets-")) {
		t.Errorf("published prod manifests: %v\n%s", err, manifests)
	}
	for a, err := range backend.Walk(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		rc, _, err := backend.Get(ctx, a.Key)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(raw, []byte(canary)) {
			t.Errorf("%s holds the secret in the clear", a.Key)
		}
	}

	// A broken revision: nothing new is published anywhere.
	os.WriteFile(filepath.Join(root, "config/dev/app.yaml"), []byte("app:\n  colour: blue\n"), 0o644)
	st, err = d.Reconcile(ctx, snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready || strings.Contains(strings.Join(st.Stages, ","), "publish") {
		t.Errorf("an invalid revision reached publish: %+v", st.Stages)
	}
	if m, _ := target.Current(ctx, "prod"); m.Revision != good.Revision || m.Seq != 1 {
		t.Errorf("prod's build changed: %s %d", m.Revision, m.Seq)
	}
	if e := envByName(st, "prod"); e.Published == nil || e.Published.Revision != good.Revision {
		t.Errorf("the status forgot the published build: %+v", e)
	}
	d.noSecret(t)
}

// A target that fails keeps the environment's last published build, with the reason.
func TestReconcile_PublishFailure(t *testing.T) {
	ctx := context.Background()
	target, backend := newTarget(t, "mem://")
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t), Target: target})
	backend.Close() // every publish now fails
	st, err := d.Reconcile(ctx, snapshot(t, copyExamples(t)))
	if err != nil {
		t.Fatal(err)
	}
	prod := envByName(st, "prod")
	if st.Ready || st.Reason != reconciler.ReasonPublishFailed || prod.Reason != reconciler.ReasonPublishFailed || prod.Published != nil || prod.LastGood == nil {
		t.Errorf("status = %+v; prod = %+v", st, prod)
	}
	if !strings.Contains(d.logs.String(), "publish failed") {
		t.Error("the failure was not logged")
	}
}

// After publishing, builds beyond the target's Keep are collected, and the current build
// still reads.
func TestReconcile_CollectsOldBuilds(t *testing.T) {
	ctx := context.Background()
	target, backend := newTarget(t, "mem://")
	target.Keep, target.GracePeriod = 1, time.Nanosecond
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t), Target: target})
	root := copyExamples(t)
	for _, replicas := range []string{"2", "3"} {
		write(t, root, "config/dev/extra.yaml", "replicas: "+replicas+"\n")
		time.Sleep(2 * time.Millisecond) // older than the grace period
		if st, err := d.Reconcile(ctx, snapshot(t, root)); err != nil || !st.Ready {
			t.Fatalf("reconcile: %+v %v", st, err)
		}
	}
	builds := 0
	for a, err := range backend.Walk(ctx, "envs/dev/builds/") {
		if err != nil {
			t.Fatal(err)
		}
		builds++
		_ = a
	}
	if builds != 1 || !strings.Contains(d.logs.String(), "old builds collected") {
		t.Errorf("%d dev builds kept, want 1; log:\n%s", builds, d.logs.String())
	}
	m, err := target.Current(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := target.ReadFile(ctx, m, "config.json"); err != nil || !bytes.Contains(cfg, []byte(`"replicas": 3`)) {
		t.Errorf("current dev build: %v\n%s", err, cfg)
	}
}

// An environment whose manifests do not build stays on its last good revision; the others
// are accepted and published.
func TestReconcile_BuildFailure(t *testing.T) {
	ctx := context.Background()
	target, _ := newTarget(t, "mem://")
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t), Target: target})
	root := copyExamples(t)
	write(t, root, "deploy/dev/kustomization.yaml", "resources:\n  - ../base\n  - https://example.com/remote.yaml\n")
	st, err := d.Reconcile(ctx, snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	dev, prod := envByName(st, "dev"), envByName(st, "prod")
	if st.Ready || dev.Reason != reconciler.ReasonBuildFailed || !strings.Contains(dev.Message, "deploy/dev/kustomization.yaml:3: resources[1]") || !strings.Contains(dev.Message, "never fetched") || dev.LastGood != nil || dev.Published != nil {
		t.Errorf("dev = %+v", dev)
	}
	if !prod.Ready || prod.Published == nil || prod.Published.Files != 6 {
		t.Errorf("prod = %+v", prod)
	}
}

// Packages fail closed: a prod license policy that its resolved packages break keeps prod
// on its last good revision with the reason; the others publish their index. (A
// requirement no version satisfies is caught earlier, as a problem of the repository.)
func TestReconcile_PackagesFailClosed(t *testing.T) {
	ctx := context.Background()
	target, _ := newTarget(t, "mem://")
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t), Target: target})
	root := copyExamples(t)
	cfg := readFile(t, root, "packages/environments.yaml")
	write(t, root, "packages/environments.yaml", strings.Replace(cfg, "      api: ~1.2.0\n", "      api: ~1.2.0\n    licenses:\n      allow: [MIT]\n", 1))
	st, err := d.Reconcile(ctx, snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	prod := envByName(st, "prod")
	if prod.Ready || prod.Reason != reconciler.ReasonBuildFailed || !strings.Contains(prod.Message, "packages fail the prod policy") || !strings.Contains(prod.Message, "api@1.2.0: license Apache-2.0") {
		t.Errorf("prod = %+v", prod)
	}
	m, err := target.Current(ctx, "staging")
	if err != nil {
		t.Fatal(err)
	}
	ix, err := target.ReadFile(ctx, m, "packages/index.json")
	if err != nil || !bytes.Contains(ix, []byte(`"resolved":true`)) && !bytes.Contains(ix, []byte(`"resolved": true`)) {
		t.Errorf("staging's package index: %v\n%s", err, ix)
	}
}

// The S3 target goes away: the revision's publish fails and is retried with backoff; once
// the server is back, the same revision lands without a new commit.
func TestRun_RetriesAFailedTarget(t *testing.T) {
	srv := testenv.NewS3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	target, _ := newTarget(t, srv.NewBucket(t))
	status := memStore(t)
	snap := snapshot(t, copyExamples(t))
	d := newDaemon(t, staticSource{snap: snap}, status, reconciler.Options{Keyring: exampleKeys(t), Target: target, RetryBase: 100 * time.Millisecond})

	srv.Kill()
	go func() { _ = d.Run(ctx) }()
	waitStatus(t, ctx, status, func(st *reconciler.Status) bool {
		return envByName(st, "prod").Reason == reconciler.ReasonPublishFailed
	})
	srv.Restart(t)
	st := waitStatus(t, ctx, status, func(st *reconciler.Status) bool { return st.Ready })
	if p := envByName(st, "prod").Published; p == nil || p.Revision != snap.Revision {
		t.Errorf("prod after the server came back: %+v", envByName(st, "prod"))
	}
	if !strings.Contains(d.logs.String(), "trying the revision again") {
		t.Error("no retry was logged")
	}
}

// newTarget is an encrypting publish target on the store at url, closed with the test.
func newTarget(t *testing.T, url string) (*publish.Target, *storage.Store) {
	t.Helper()
	backend, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	keys, err := envelope.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return publish.New(envelope.New(backend, keys, "test"), ""), backend
}

// The check stage holds the built manifests to the Kubernetes schemas and each
// environment's policy: a latest tag in prod is the repository's problem, at its line in
// the rendered stream, and nothing is published anywhere.
func TestReconcile_ManifestProblemBlocksEverything(t *testing.T) {
	ctx := context.Background()
	target, _ := newTarget(t, "mem://")
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t), Target: target})
	root := copyExamples(t)
	write(t, root, "deploy/prod/kustomization.yaml", readFile(t, root, "deploy/prod/kustomization.yaml")+"images:\n  - name: registry.example.com/shop/api\n    newTag: latest\n")
	st, err := d.Reconcile(ctx, snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready || st.Reason != reconciler.ReasonInvalid || len(st.Problems) != 1 || !strings.HasSuffix(strings.Join(st.Stages, ","), "build,check,record") {
		t.Fatalf("status = %+v", st)
	}
	p := st.Problems[0]
	if p.File != "deploy/prod (rendered)" || p.Line == 0 || !strings.Contains(p.Message, "[no-latest-tag]") || strings.Join(p.Envs, ",") != "prod" {
		t.Errorf("problem = %+v", p)
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		if e := envByName(st, env); e.Ready || e.Published != nil {
			t.Errorf("%s = %+v", env, e)
		}
	}
}
