package publish_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/publish"
	"github.com/circlecore/circle/testenv"
)

// openEnvelope opens url and wraps it in an envelope with a fresh keyring.
func openEnvelope(t *testing.T, url string) *envelope.Store {
	t.Helper()
	b, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	keys, err := envelope.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return envelope.New(b, keys, "test")
}

// keys lists every key in the backend.
func keys(t *testing.T, s *envelope.Store) []string {
	t.Helper()
	var out []string
	for a, err := range s.Backend().Walk(context.Background(), "") {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a.Key)
	}
	return out
}

// putRaw writes data at key through the envelope, as a well-formed object whose content is
// whatever the test needs.
func putRaw(t *testing.T, s *envelope.Store, key, data string) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, strings.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
}

// A target's layout is the documented one, under its prefix: an empty prefix puts it at the
// root of the store, and slashes around a nested prefix do not matter. Two targets of one
// store under different prefixes are independent: each has its own salt (so one content
// gets two object names) and its own builds.
func TestPrefixLayout(t *testing.T) {
	ctx := context.Background()
	s := openEnvelope(t, "mem://")
	files := []publish.File{{Path: "config.json", Data: []byte(`{"a": 1}`)}}

	root := publish.New(s, "")
	rm, _, err := root.Publish(ctx, "prod", "rev1", files)
	if err != nil {
		t.Fatal(err)
	}
	nested := publish.New(s, "/teams/payments/")
	nm, _, err := nested.Publish(ctx, "prod", "rev2", files)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"envs/prod/builds/00000000000000000001.json",
		"envs/prod/current.json",
		"objects/" + rm.Files[0].Object,
		"target.json",
		"teams/payments/envs/prod/builds/00000000000000000001.json",
		"teams/payments/envs/prod/current.json",
		"teams/payments/objects/" + nm.Files[0].Object,
		"teams/payments/target.json",
	}
	if got := keys(t, s); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("keys:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rm.Files[0].Object == nm.Files[0].Object {
		t.Error("two targets share a salt: one content has one name in both")
	}
	if m, err := root.Current(ctx, "prod"); err != nil || m.Revision != "rev1" {
		t.Errorf("root current: %+v %v", m, err)
	}
	// The same prefix spelt without slashes is the same target.
	again := publish.New(s, "teams/payments")
	m, err := again.Current(ctx, "prod")
	if err != nil || m.Revision != "rev2" {
		t.Fatalf("nested current: %+v %v", m, err)
	}
	if b, err := again.ReadFile(ctx, m, "config.json"); err != nil || string(b) != `{"a": 1}` {
		t.Errorf("nested read: %q %v", b, err)
	}
	// And publishing the same content there uploads nothing: it has the same salt.
	if _, st, err := again.Publish(ctx, "staging", "rev2", files); err != nil || st.Uploaded != 0 || st.Skipped != 1 {
		t.Errorf("same content under the same prefix: %+v %v", st, err)
	}
}

// A current.json that is not a manifest makes Current fail, saying which object and why,
// and Publish refuses to go on over it (and leaves it for a human to look at).
func TestCorruptCurrent(t *testing.T) {
	ctx := context.Background()
	const current = "targets/local/envs/prod/current.json"
	for _, c := range []struct {
		name  string
		write func(t *testing.T, s *envelope.Store)
		check func(err error) bool
		want  string
	}{
		{"written around the envelope", func(t *testing.T, s *envelope.Store) {
			if err := s.Backend().Put(ctx, current, strings.NewReader(`{"format": 1}`), nil); err != nil {
				t.Fatal(err)
			}
		}, func(err error) bool { return errors.Is(err, envelope.ErrCorrupt) }, "not written by circle storage"},
		{"not JSON", func(t *testing.T, s *envelope.Store) { putRaw(t, s, current, "<html>oops</html>") },
			func(err error) bool { return err != nil }, "manifest " + current + ": invalid character"},
		{"format 2", func(t *testing.T, s *envelope.Store) {
			putRaw(t, s, current, `{"format": 2, "env": "prod", "revision": "future", "seq": 9, "files": []}`)
		}, func(err error) bool { return err != nil }, "manifest " + current + ": format 2"},
		{"no format", func(t *testing.T, s *envelope.Store) { putRaw(t, s, current, `{"env": "prod"}`) },
			func(err error) bool { return err != nil }, "manifest " + current + ": format 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg, s := newTarget(t, "mem://")
			if _, _, err := tg.Publish(ctx, "prod", "rev1", build(2, "v1")); err != nil {
				t.Fatal(err)
			}
			c.write(t, s)
			before, _ := s.Backend().Stat(ctx, current)

			_, err := tg.Current(ctx, "prod")
			if !c.check(err) || errors.Is(err, publish.ErrNoBuild) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("current: %v, want an error saying %q", err, c.want)
			}
			_, _, err = tg.Publish(ctx, "prod", "rev2", build(2, "v2"))
			if !c.check(err) || !strings.HasPrefix(err.Error(), "publish prod: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("publish over it: %v, want an error saying %q", err, c.want)
			}
			if after, _ := s.Backend().Stat(ctx, current); after.ETag != before.ETag {
				t.Error("publish replaced the corrupt current.json")
			}
			// Other environments are not affected.
			if _, _, err := tg.Publish(ctx, "staging", "rev2", build(2, "v2")); err != nil {
				t.Errorf("publish of another env: %v", err)
			}
		})
	}
}

// A current.json whose bytes were changed in the backend after it was written fails the
// digest check: Current reads the manifest to the end and returns ErrCorrupt, even when the
// edit leaves valid JSON (a plain target, where the bytes are readable and editable).
func TestEditedPlainCurrent(t *testing.T) {
	ctx := context.Background()
	b, err := storage.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	tg := publish.New(envelope.New(b, nil, "test"), "")
	if _, _, err := tg.Publish(ctx, "prod", "rev1", build(1, "v1")); err != nil {
		t.Fatal(err)
	}
	rc, attrs, err := b.Get(ctx, "envs/prod/current.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	raw.ReadFrom(rc)
	rc.Close()
	edited := bytes.Replace(raw.Bytes(), []byte(`"rev1"`), []byte(`"rev9"`), 1)
	if bytes.Equal(edited, raw.Bytes()) {
		t.Fatalf("no revision in %s", raw.Bytes())
	}
	if err := b.Put(ctx, "envs/prod/current.json", bytes.NewReader(edited), &storage.PutOptions{Metadata: attrs.Metadata}); err != nil {
		t.Fatal(err)
	}
	if m, err := tg.Current(ctx, "prod"); !errors.Is(err, envelope.ErrCorrupt) {
		t.Errorf("edited current.json: %+v, %v; want ErrCorrupt", m, err)
	}
}

// A target.json that is not the target's salt file makes Publish fail, naming target.json,
// rather than make a new salt (which would rename every object) or publish with a bad one.
func TestCorruptTargetFile(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		write func(t *testing.T, s *envelope.Store)
		want  string
		is    error
	}{
		{"written around the envelope", func(t *testing.T, s *envelope.Store) {
			if err := s.Backend().Put(ctx, "targets/local/target.json", strings.NewReader(`{"format": 1}`), nil); err != nil {
				t.Fatal(err)
			}
		}, "not written by circle storage", envelope.ErrCorrupt},
		{"not JSON", func(t *testing.T, s *envelope.Store) { putRaw(t, s, "targets/local/target.json", "salt") },
			"targets/local/target.json: invalid character", nil},
		{"salt not hex", func(t *testing.T, s *envelope.Store) {
			putRaw(t, s, "targets/local/target.json", `{"format": 1, "salt": "pepper"}`)
		}, "targets/local/target.json: bad salt", nil},
		{"salt too short", func(t *testing.T, s *envelope.Store) {
			putRaw(t, s, "targets/local/target.json", `{"format": 1, "salt": "abcdef"}`)
		}, "targets/local/target.json: bad salt", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg, s := newTarget(t, "mem://")
			c.write(t, s)
			_, _, err := tg.Publish(ctx, "prod", "rev1", build(2, "v1"))
			if err == nil || !strings.HasPrefix(err.Error(), "publish prod: ") || !strings.Contains(err.Error(), c.want) ||
				(c.is != nil && !errors.Is(err, c.is)) {
				t.Errorf("publish: %v, want an error saying %q", err, c.want)
			}
			if got := keys(t, s); len(got) != 1 {
				t.Errorf("a refused publish wrote %v", got)
			}
		})
	}
}

// The first publishes of a new target race to create its salt. Whoever loses reads the
// winner's, so every publisher names one content alike and exactly one target.json exists;
// all of them succeed. On a real S3 server, whose conditional create is what settles it.
func TestConcurrentFirstPublish(t *testing.T) {
	ctx := context.Background()
	s := openEnvelope(t, testenv.StartS3(t).NewBucket(t))
	const n = 8
	var (
		wg        sync.WaitGroup
		start     = make(chan struct{})
		manifests [n]*publish.Manifest
		errs      [n]error
	)
	for i := range n {
		tg := publish.New(s, "shared") // a Target per publisher, as separate processes have
		wg.Go(func() {
			<-start
			manifests[i], _, errs[i] = tg.Publish(ctx, fmt.Sprint("env", i), "rev1", build(3, "v1"))
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("publisher %d: %v", i, errs[i])
		}
		for j, e := range manifests[i].Files {
			if e.Object != manifests[0].Files[j].Object {
				t.Errorf("publisher %d names %s %s, publisher 0 %s: different salts", i, e.Path, e.Object, manifests[0].Files[j].Object)
			}
		}
	}
	objects := 0
	for _, k := range keys(t, s) {
		if strings.HasPrefix(k, "shared/objects/") {
			objects++
		}
	}
	if objects != 4 {
		t.Errorf("%d objects, want 4: one per content", objects)
	}
	// A later publisher, new to the target, reads the same salt.
	m, st, err := publish.New(s, "shared").Publish(ctx, "late", "rev1", build(3, "v1"))
	if err != nil || st.Uploaded != 0 || m.Files[0].Object != manifests[0].Files[0].Object {
		t.Errorf("late publisher: %+v %v", st, err)
	}
}

// The same files under a new revision make a new build (a new seq, the revision recorded)
// without uploading anything; a build with a file fewer is a new build too.
func TestPublishNewRevisionSameFiles(t *testing.T) {
	ctx := context.Background()
	tg, _ := newTarget(t, "mem://")
	if _, _, err := tg.Publish(ctx, "prod", "rev1", build(3, "v1")); err != nil {
		t.Fatal(err)
	}
	m, st, err := tg.Publish(ctx, "prod", "rev2", build(3, "v1"))
	if err != nil || st.Unchanged || st.Uploaded != 0 || st.Skipped != 4 || m.Seq != 2 || m.Revision != "rev2" {
		t.Errorf("same files, new revision: %+v %+v %v", m, st, err)
	}
	if cur, err := tg.Current(ctx, "prod"); err != nil || cur.Revision != "rev2" || cur.Seq != 2 {
		t.Errorf("current after a new revision: %+v %v", cur, err)
	}
	m, st, err = tg.Publish(ctx, "prod", "rev2", build(3, "v1")[1:])
	if err != nil || st.Unchanged || m.Seq != 3 || len(m.Files) != 3 {
		t.Errorf("a file fewer: %+v %+v %v", m, st, err)
	}
	if _, err := tg.ReadFile(ctx, m, build(3, "v1")[0].Path); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the dropped file in the new build: %v", err)
	}
}

// Opening a file of a build whose object has gone from the store fails with
// storage.ErrNotFound.
func TestOpenDeletedObject(t *testing.T) {
	ctx := context.Background()
	tg, s := newTarget(t, "mem://")
	m, _, err := tg.Publish(ctx, "prod", "rev1", build(2, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Backend().Delete(ctx, "targets/local/objects/"+m.Files[0].Object); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Open(ctx, m, m.Files[0].Path); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), m.Files[0].Object) {
		t.Errorf("deleted object: %v, want ErrNotFound naming the object", err)
	}
	if b, err := tg.ReadFile(ctx, m, m.Files[1].Path); err != nil || !bytes.Contains(b, []byte("version: v1")) {
		t.Errorf("the other file: %q %v", b, err)
	}
}

// GC of a target nobody has published to deletes nothing and does not fail.
func TestGCEmptyTarget(t *testing.T) {
	tg, s := newTarget(t, "mem://")
	st, err := tg.GC(context.Background())
	if err != nil || st != (publish.GCStats{}) {
		t.Errorf("gc of an empty target: %+v %v", st, err)
	}
	if got := keys(t, s); len(got) != 0 {
		t.Errorf("gc wrote %v", got)
	}
}

// With Keep and GracePeriod left at zero, GC keeps five builds per environment and objects
// younger than an hour, even when no kept build names them.
func TestGCDefaults(t *testing.T) {
	ctx := context.Background()
	tg, s := newTarget(t, "mem://")
	for i := range 7 {
		if _, _, err := tg.Publish(ctx, "dev", fmt.Sprint("rev", i), build(1, fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	st, err := tg.GC(ctx)
	if err != nil || st.Builds != 2 || st.Objects != 0 {
		t.Errorf("gc with defaults: %+v %v; want 2 builds and no (young) objects deleted", st, err)
	}
	var builds []string
	for _, k := range keys(t, s) {
		if strings.Contains(k, "/builds/") {
			builds = append(builds, k[strings.LastIndex(k, "/")+1:])
		}
	}
	if strings.Join(builds, ",") != "00000000000000000003.json,00000000000000000004.json,00000000000000000005.json,00000000000000000006.json,00000000000000000007.json" {
		t.Errorf("builds kept: %v", builds)
	}
	if _, v := checkBuild(t, tg, "dev"); v != "v6" {
		t.Errorf("dev = %s", v)
	}
	// Nothing more to do the second time.
	if st, err := tg.GC(ctx); err != nil || st != (publish.GCStats{}) {
		t.Errorf("second gc: %+v %v", st, err)
	}
}

// GC stops, saying so, at a kept build manifest it cannot read, before deleting any object:
// it cannot know which objects that build needs.
func TestGCCorruptManifest(t *testing.T) {
	ctx := context.Background()
	tg, s := newTarget(t, "mem://")
	tg.GracePeriod = time.Nanosecond
	for i := range 2 {
		if _, _, err := tg.Publish(ctx, "dev", fmt.Sprint("rev", i), build(1, fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	const first = "targets/local/envs/dev/builds/00000000000000000001.json"
	putRaw(t, s, first, "not a manifest")
	before := len(keys(t, s))
	time.Sleep(time.Millisecond)
	_, err := tg.GC(ctx)
	if err == nil || !strings.HasPrefix(err.Error(), "gc: manifest "+first) {
		t.Errorf("gc over a corrupt manifest: %v", err)
	}
	if after := len(keys(t, s)); after != before {
		t.Errorf("gc deleted %d objects before failing", before-after)
	}
}

// A publish whose objects cannot be written (here: a revision too long for the backend's
// metadata) fails with the backend's error and leaves current.json as it was; so does one
// whose build manifest cannot be written.
func TestPublishWriteFails(t *testing.T) {
	ctx := context.Background()
	tg, _ := newTarget(t, "mem://")
	if _, _, err := tg.Publish(ctx, "prod", "rev1", build(2, "v1")); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("r", storage.MaxMetadataSize)
	_, _, err := tg.Publish(ctx, "prod", long, build(2, "v2"))
	if !errors.Is(err, storage.ErrInvalid) || !strings.HasPrefix(err.Error(), "publish prod: ") {
		t.Errorf("objects refused: %v", err)
	}
	if _, v := checkBuild(t, tg, "prod"); v != "v1" {
		t.Errorf("current after a failed publish: %s", v)
	}
	// No files: no objects to write, the manifest is the first write and is refused.
	_, _, err = tg.Publish(ctx, "prod", long, nil)
	if !errors.Is(err, storage.ErrInvalid) || !strings.HasPrefix(err.Error(), "publish prod: manifest: ") {
		t.Errorf("manifest refused: %v", err)
	}
	if m, v := checkBuild(t, tg, "prod"); v != "v1" || m.Seq != 1 {
		t.Errorf("current after a failed publish: %s seq %d", v, m.Seq)
	}
}

// A publish whose context is already done fails with the context's error and writes
// nothing, whether or not the target has its salt yet.
func TestPublishCancelledBeforeStart(t *testing.T) {
	tg, s := newTarget(t, "mem://")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := tg.Publish(ctx, "prod", "rev1", build(2, "v1")); !errors.Is(err, context.Canceled) {
		t.Errorf("fresh target: %v", err)
	}
	if got := keys(t, s); len(got) != 0 {
		t.Errorf("a cancelled publish wrote %v", got)
	}
	if _, _, err := tg.Publish(context.Background(), "prod", "rev1", build(2, "v1")); err != nil {
		t.Fatal(err)
	}
	before := keys(t, s)
	if _, _, err := tg.Publish(ctx, "prod", "rev2", build(2, "v2")); !errors.Is(err, context.Canceled) {
		t.Errorf("known target: %v", err)
	}
	if after := keys(t, s); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("a cancelled publish wrote %v", after)
	}
}

// A publish cancelled half-way through its uploads, on a real S3 server, returns the
// context's error and leaves current.json on the old build; publishing again completes the
// new one.
func TestPublishCancelledMidway(t *testing.T) {
	tg, s := newTarget(t, testenv.StartS3(t).NewBucket(t))
	tg.Concurrency = 2
	if _, _, err := tg.Publish(context.Background(), "prod", "rev1", build(2, "v1")); err != nil {
		t.Fatal(err)
	}
	before, err := s.Backend().Stat(context.Background(), "targets/local/envs/prod/current.json")
	if err != nil {
		t.Fatal(err)
	}
	files := build(60, "v2")
	for i := range files {
		files[i].Data = append(files[i].Data, bytes.Repeat([]byte("#"), 256<<10)...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := tg.Publish(ctx, "prod", "rev2", files)
		done <- err
	}()
	// Cancel once a first new object is up (the target had three).
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		n := 0
		for _, err := range s.Backend().Walk(context.Background(), "targets/local/objects/") {
			if err == nil {
				n++
			}
		}
		if n > 3 {
			break
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "publish prod: ") {
		t.Fatalf("cancelled publish: %v", err)
	}
	after, err := s.Backend().Stat(context.Background(), "targets/local/envs/prod/current.json")
	if err != nil || after.ETag != before.ETag {
		t.Errorf("current.json changed: %v", err)
	}
	if m, v := checkBuild(t, tg, "prod"); m.Revision != "rev1" || v != "v1" {
		t.Errorf("current after cancel: %s %s", m.Revision, v)
	}
	m, st, err := tg.Publish(context.Background(), "prod", "rev2", files)
	if err != nil || st.Uploaded+st.Skipped != len(files) || st.Skipped < 1 || m.Seq != 2 {
		t.Fatalf("publish again: %+v %v", st, err)
	}
	if got, err := tg.ReadFile(context.Background(), m, files[59].Path); err != nil || !bytes.Equal(got, files[59].Data) {
		t.Errorf("a file of the completed build: %d bytes, %v", len(got), err)
	}
}
