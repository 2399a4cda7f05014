package reconciler_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/dir"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// canary is the secret the tests hunt for in every log line and status the daemon writes.
const canary = "CANARY-9e1b-never-in-plaintext"

// copyExamples copies the example repository into a folder the test may change.
func copyExamples(t *testing.T) string { return testenv.CopyTree(t, "../examples") }

func write(t *testing.T, root, name, content string) { testenv.WriteFile(t, root, name, content) }

// encrypt replaces a secrets file with plain encrypted by the real sops CLI for the example key.
func encrypt(t *testing.T, root, name, plain string) { testenv.SOPSEncrypt(t, root, name, plain) }

func exampleKeys(t *testing.T) *secrets.Keyring {
	t.Helper()
	var k secrets.Keyring
	if err := k.AddFile("../examples/keys/age.example.key"); err != nil {
		t.Fatal(err)
	}
	return &k
}

// daemon is a reconciler with its log and publish bucket captured.
type daemon struct {
	*reconciler.Reconciler
	bucket *storage.Store
	logs   *syncWriter
}

// memStore is an in-process store for the status: the storage package's mem:// backend.
func memStore(t testing.TB) *storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newDaemon(t *testing.T, src sources.Source, bucket *storage.Store, opts reconciler.Options) *daemon {
	t.Helper()
	if opts.Redactor == nil {
		opts.Redactor = redact.New()
	}
	w := &syncWriter{b: &strings.Builder{}}
	return &daemon{
		Reconciler: reconciler.New(src, bucket, zerolog.New(opts.Redactor.Writer(w)), opts),
		bucket:     bucket,
		logs:       w,
	}
}

func snapshot(t *testing.T, root string) *sources.Snapshot {
	t.Helper()
	src, err := dir.New(root, dir.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	s, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// noSecret fails the test if the canary is in the daemon's log or its recorded status.
func (d *daemon) noSecret(t *testing.T) {
	t.Helper()
	rc, _, err := d.bucket.Get(context.Background(), reconciler.StatusKey)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), canary) {
		t.Errorf("the secret is in status.json:\n%s", raw)
	}
	if logs := d.logs.String(); strings.Contains(logs, canary) {
		t.Errorf("the secret is in the log:\n%s", logs)
	}
}

func envByName(st *reconciler.Status, name string) reconciler.EnvStatus {
	for _, e := range st.Environments {
		if e.Name == name {
			return e
		}
	}
	return reconciler.EnvStatus{}
}

// An invalid revision is accepted nowhere: every environment keeps its last good revision,
// the problems are in the status at their file:line, and no secret is anywhere.
func TestReconcile_InvalidRevisionKeepsLastGood(t *testing.T) {
	root := copyExamples(t)
	encrypt(t, root, "secrets/prod.sops.yaml", "db:\n  password: "+canary+"\n")
	bucket := memStore(t)
	d := newDaemon(t, nil, bucket, reconciler.Options{Keyring: exampleKeys(t)})
	ctx := context.Background()

	good := snapshot(t, root)
	st, err := d.Reconcile(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.Reason != reconciler.ReasonSucceeded || len(st.Environments) != 3 {
		t.Fatalf("good revision: %+v", st)
	}
	prod := envByName(st, "prod")
	if prod.LastGood == nil || prod.LastGood.Revision != good.Revision || prod.LastGood.Secrets == 0 {
		t.Errorf("prod = %+v", prod)
	}
	if strings.Join(st.Stages, ",") != "snapshot,settings,verify,load,licenses,packages,build,check,record" {
		t.Errorf("stages = %v", st.Stages)
	}

	// The secret now breaks the schema, and a plain file too.
	encrypt(t, root, "secrets/prod.sops.yaml", "db:\n  password: ok\n  port: "+canary+"\n")
	write(t, root, "config/staging/db.yaml", "db:\n  port: 99999\n")
	bad := snapshot(t, root)
	st, err = d.Reconcile(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready || st.Reason != reconciler.ReasonInvalid || st.Revision != bad.Revision || len(st.Problems) != 2 {
		t.Fatalf("bad revision: %+v", st)
	}
	for _, e := range st.Environments {
		if e.Ready || e.Reason != reconciler.ReasonInvalid || e.LastGood == nil || e.LastGood.Revision != good.Revision {
			t.Errorf("%s after a bad revision: %+v", e.Name, e)
		}
	}
	if p := st.Problems[0]; p.File != "config/staging/db.yaml" || p.Line != 2 || !strings.Contains(st.Message, "config/staging/db.yaml:2:9") {
		t.Errorf("problem = %+v; message %q", p, st.Message)
	}
	d.noSecret(t)

	// A restarted daemon reads the last good revisions back from the bucket.
	d2 := newDaemon(t, staticSource{snap: bad}, bucket, reconciler.Options{Keyring: exampleKeys(t)})
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d2.Run(ctx2); err != nil {
		t.Fatal(err)
	}
	st, err = reconciler.ReadStatus(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	if envByName(st, "dev").LastGood == nil || envByName(st, "dev").LastGood.Revision != good.Revision {
		t.Errorf("after a restart: %+v", st.Environments)
	}
	if !strings.Contains(d2.logs.String(), `"revision":"`+bad.Revision) || !strings.Contains(d2.logs.String(), "last good state kept") {
		t.Errorf("log:\n%s", d2.logs.String())
	}
	d2.noSecret(t)
}

// Without the key the secrets cannot be opened: nothing is accepted and the status says
// whom the file was encrypted for.
func TestReconcile_MissingKey(t *testing.T) {
	d := newDaemon(t, nil, memStore(t), reconciler.Options{})
	st, err := d.Reconcile(context.Background(), snapshot(t, copyExamples(t)))
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready || st.Reason != reconciler.ReasonInvalid || !strings.Contains(st.Message, "age1") || !strings.Contains(st.Message, "secrets/dev.sops.yaml") {
		t.Errorf("status = %+v", st)
	}
	if envByName(st, "dev").LastGood != nil {
		t.Error("an environment has a last good revision it never had")
	}
}

func TestReconcile_BadSettings(t *testing.T) {
	root := copyExamples(t)
	write(t, root, "circle.yaml", "apiVersion: circle/v1\nenvironments:\n  - name: Dev\n")
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t)})
	st, err := d.Reconcile(context.Background(), snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready || st.Reason != reconciler.ReasonInvalid || len(st.Problems) == 0 || st.Problems[0].File != "circle.yaml" || st.Problems[0].Line != 3 {
		t.Errorf("status = %+v", st)
	}
}

// The daemon's loop records every revision the folder source produces.
func TestRun_FollowsTheSource(t *testing.T) {
	root := copyExamples(t)
	src, err := dir.New(root, dir.Options{Debounce: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bucket := memStore(t)
	d := newDaemon(t, src, bucket, reconciler.Options{Keyring: exampleKeys(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	first := waitStatus(t, ctx, bucket, func(st *reconciler.Status) bool { return st.Ready })
	write(t, root, "config/dev/extra.yaml", "replicas: 2\n")
	second := waitStatus(t, ctx, bucket, func(st *reconciler.Status) bool { return st.Revision != first.Revision })
	if !second.Ready || second.Files != first.Files+1 {
		t.Errorf("second revision: %+v", second)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.logs.String(), `"env":"prod"`) {
		t.Errorf("log lacks the environment field:\n%s", d.logs.String())
	}
}

func waitStatus(t *testing.T, ctx context.Context, b *storage.Store, ok func(*reconciler.Status) bool) *reconciler.Status {
	t.Helper()
	for {
		if st, err := reconciler.ReadStatus(ctx, b); err == nil && ok(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatal("status never reached the expected state")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A revision whose outcome cannot be recorded is logged, and the loop goes on.
func TestRun_FailedRecordKeepsRunning(t *testing.T) {
	bucket := memStore(t)
	src := staticSource{snap: snapshot(t, copyExamples(t)), before: func() { bucket.Close() }}
	d := newDaemon(t, src, bucket, reconciler.Options{Keyring: exampleKeys(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := d.Run(ctx); err != nil {
		t.Fatalf("Run stopped on a failed revision: %v", err)
	}
	if logs := d.logs.String(); !strings.Contains(logs, "reconcile failed") || !strings.Contains(logs, `"revision":"sha256:`) {
		t.Errorf("log = %s", logs)
	}
}

// A daemon that cannot read its last status does not start: it would forget every last
// good revision.
func TestRun_UnreadableStatusStops(t *testing.T) {
	bucket := memStore(t)
	bucket.Close()
	d := newDaemon(t, staticSource{}, bucket, reconciler.Options{})
	if err := d.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "read status") {
		t.Fatalf("Run on a broken bucket: %v", err)
	}
}

// staticSource gives one snapshot and waits; before runs first, if set.
type staticSource struct {
	snap   *sources.Snapshot
	before func()
}

func (s staticSource) Snapshot(context.Context) (*sources.Snapshot, error) { return s.snap, nil }

func (s staticSource) Watch(ctx context.Context, fn func(*sources.Snapshot) error) error {
	if s.before != nil {
		s.before()
	}
	if err := fn(s.snap); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
