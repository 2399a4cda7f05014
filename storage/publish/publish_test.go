package publish_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/publish"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newTarget(t *testing.T, url string) (*publish.Target, *envelope.Store) {
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
	s := envelope.New(b, keys, "test")
	return publish.New(s, "targets/local"), s
}

func build(n int, version string) []publish.File {
	var out []publish.File
	for i := range n {
		out = append(out, publish.File{Path: fmt.Sprintf("manifests/obj-%03d.yaml", i),
			Data: []byte(fmt.Sprintf("kind: ConfigMap\nname: obj-%03d\nversion: %s\n", i, version)), ContentType: "application/yaml"})
	}
	return append(out, publish.File{Path: "config.json", Data: []byte(`{"version": "` + version + `"}`)})
}

// checkBuild reads every file of env's current build and checks it is whole: every file of
// one version, verified.
func checkBuild(t *testing.T, tg *publish.Target, env string) (*publish.Manifest, string) {
	t.Helper()
	m, err := tg.Current(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	version := ""
	for _, e := range m.Files {
		b, err := tg.ReadFile(context.Background(), m, e.Path)
		if err != nil {
			t.Fatalf("%s: %v", e.Path, err)
		}
		v := string(b[bytes.LastIndex(b, []byte("version"))+len(`version: `):])
		v = strings.Trim(v, "\"}\n :")
		if version == "" {
			version = v
		} else if v != version {
			t.Fatalf("a mix: %s is %s, others %s", e.Path, v, version)
		}
	}
	return m, version
}

func TestPublish(t *testing.T) {
	ctx := context.Background()
	tg, s := newTarget(t, "mem://")
	if _, err := tg.Current(ctx, "prod"); !errors.Is(err, publish.ErrNoBuild) {
		t.Errorf("Current before any publish: %v", err)
	}
	m, st, err := tg.Publish(ctx, "prod", "rev1", build(10, "v1"))
	if err != nil || st.Uploaded != 11 || m.Seq != 1 {
		t.Fatalf("first publish: %+v %+v %v", m, st, err)
	}
	if got, v := checkBuild(t, tg, "prod"); got.Revision != "rev1" || v != "v1" {
		t.Errorf("current = %s %s", got.Revision, v)
	}

	// Object names do not give away the content's digest.
	sum := sha256.Sum256([]byte(`{"version": "v1"}`))
	if _, err := s.Backend().Stat(ctx, "targets/local/objects/"+hex.EncodeToString(sum[:])); !errors.Is(err, storage.ErrNotFound) {
		t.Error("an object is named by its content's sha256")
	}

	if _, st, _ := tg.Publish(ctx, "prod", "rev1", build(10, "v1")); !st.Unchanged {
		t.Errorf("the same build again: %+v", st)
	}
	files := build(10, "v1")
	files[3].Data = []byte("kind: ConfigMap\nname: changed\nversion: v1\n")
	m, st, err = tg.Publish(ctx, "prod", "rev2", files)
	if err != nil || st.Uploaded != 1 || st.Skipped != 10 || m.Seq != 2 {
		t.Errorf("one file changed: %+v %v", st, err)
	}
	// Another environment with the same content uploads nothing.
	if _, st, _ := tg.Publish(ctx, "staging", "rev2", files); st.Uploaded != 0 {
		t.Errorf("same content, another env: %+v", st)
	}
	if _, err := tg.ReadFile(ctx, m, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := tg.Publish(ctx, "prod", "rev3", append(build(1, "x"), build(1, "y")[0])); err == nil {
		t.Error("a path given twice was published")
	}
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	tg, s := newTarget(t, "mem://")
	tg.Keep, tg.GracePeriod = 2, time.Nanosecond
	for i := range 5 {
		if _, _, err := tg.Publish(ctx, "dev", fmt.Sprint("rev", i), build(3, fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := tg.Publish(ctx, "prod", "rev0", build(3, "v0")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	st, err := tg.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// dev keeps v3 and v4; prod keeps v0: v1 and v2's four objects each go.
	if st.Builds != 3 || st.Objects != 8 {
		t.Errorf("gc = %+v", st)
	}
	if _, v := checkBuild(t, tg, "dev"); v != "v4" {
		t.Errorf("dev = %s", v)
	}
	if _, v := checkBuild(t, tg, "prod"); v != "v0" {
		t.Errorf("prod = %s", v)
	}
	n := 0
	for _, err := range s.Backend().Walk(ctx, "targets/local/objects/") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 12 {
		t.Errorf("%d objects left, want 12 (v0, v3, v4)", n)
	}
	// Young objects stay whatever names them.
	tg.GracePeriod = time.Hour
	if _, _, err := tg.Publish(ctx, "dev", "rev9", build(3, "v9")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tg.Publish(ctx, "dev", "rev10", build(3, "v10")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tg.Publish(ctx, "dev", "rev11", build(3, "v11")); err != nil {
		t.Fatal(err)
	}
	if st, _ := tg.GC(ctx); st.Objects != 0 {
		t.Errorf("young objects deleted: %+v", st)
	}
}

// An object swapped for another valid one of the same target is caught by the manifest.
func TestSwappedObject(t *testing.T) {
	ctx := context.Background()
	tg, s := newTarget(t, "mem://")
	m, _, err := tg.Publish(ctx, "prod", "rev1", build(2, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := "targets/local/objects/"+m.Files[0].Object, "targets/local/objects/"+m.Files[1].Object
	if err := s.Backend().Copy(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.ReadFile(ctx, m, m.Files[0].Path); !errors.Is(err, envelope.ErrCorrupt) {
		t.Errorf("swapped object: %v", err)
	}
}

// Kill the S3 server in the middle of a publish's uploads, restart it, publish again: the
// reader sees the old build (the new one's manifest was never written), what made it up
// is not uploaded again, and the retry completes the new build. The test fails unless the
// kill landed mid-upload: the publish failed with some, not all, of its objects up.
func TestPublishSurvivesServerKill(t *testing.T) {
	ctx := context.Background()
	srv := testenv.NewS3(t)
	tg, s := newTarget(t, srv.NewBucket(t))
	const files = 201 // build(200, v) and its config.json; no content is shared between v1 and v2
	objects := func() int {
		n := 0
		for _, err := range s.Backend().Walk(ctx, "targets/local/objects/") {
			if err != nil {
				t.Fatalf("list the objects: %v", err)
			}
			n++
		}
		return n
	}
	if _, _, err := tg.Publish(ctx, "prod", "rev1", build(200, "v1")); err != nil {
		t.Fatal(err)
	}
	if n := objects(); n != files {
		t.Fatalf("%d objects after the first publish, want %d", n, files)
	}

	// Two uploads at a time: the upload phase lasts long enough (hundreds of milliseconds)
	// for the listing below to see it under way, and a kill to land in it.
	tg.Concurrency = 2
	done := make(chan error, 1)
	go func() {
		_, _, err := tg.Publish(ctx, "prod", "rev2", build(200, "v2"))
		done <- err
	}()
	seen := 0
	for deadline := time.Now().Add(20 * time.Second); seen < 20 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		seen = objects() - files
	}
	srv.Kill()
	err := <-done
	srv.Restart(t)
	up := objects() - files
	t.Logf("killed once %d of %d new objects were seen; %d were up after the restart; the publish returned: %v", seen, files, up, err)
	if err == nil {
		t.Fatal("the publish finished before the kill: the kill did not land mid-upload")
	}
	if up <= 0 || up >= files {
		t.Fatalf("%d of %d new objects were up: the kill did not land mid-upload", up, files)
	}

	if m, v := checkBuild(t, tg, "prod"); v != "v1" || m.Revision != "rev1" {
		t.Fatalf("after the kill: %s %s, want the old build (rev1, v1)", m.Revision, v)
	}
	_, st, err := tg.Publish(ctx, "prod", "rev2", build(200, "v2"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != up || st.Uploaded != files-up {
		t.Errorf("the retry uploaded %d and skipped %d, want %d and %d: what was up before the kill is not uploaded again", st.Uploaded, st.Skipped, files-up, up)
	}
	m, v := checkBuild(t, tg, "prod")
	if v != "v2" || m.Revision != "rev2" || len(m.Files) != files {
		t.Errorf("after the retry: %s %s %d files", m.Revision, v, len(m.Files))
	}
}
