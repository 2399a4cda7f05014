package publish_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/publish"
)

// A target.json with a bad salt fails the first Publish ("bad salt"), but loadSalt has
// already assigned the decoded bytes to t.salt (`if t.salt, err = hex.DecodeString(...)`),
// and the next call returns early on `t.salt != nil`. So the same Target's second Publish
// succeeds with the bad salt (here 3 bytes; for a salt that is not hex, whatever prefix
// decoded, possibly an empty non-nil slice), naming objects with it. A long-running
// process (circle serve reuses one Target) thus publishes under a salt it has refused once.
//
// Fix: decode into a local and assign t.salt only when it is good.
func TestRegressionBadSaltAcceptedOnSecondPublish(t *testing.T) {

	ctx := context.Background()
	tg, s := newTarget(t, "mem://")
	putRaw(t, s, "targets/local/target.json", `{"format": 1, "salt": "abcdef"}`)
	if _, _, err := tg.Publish(ctx, "prod", "rev1", build(1, "v1")); err == nil || !strings.Contains(err.Error(), "bad salt") {
		t.Fatalf("first publish: %v", err)
	}
	m, _, err := tg.Publish(ctx, "prod", "rev1", build(1, "v1"))
	if err == nil {
		t.Errorf("second publish over the same bad target.json succeeded, objects named with the bad salt: %s", m.Files[0].Object)
	}
}

// Reads of the envelope verify the digest when they reach the end of the object, so a
// reader must read to the end. readManifest does (it copies the rest after decoding);
// loadSalt does not: json.Decoder stops at the closing brace, the EOF that would trigger
// the check is never read, and a target.json whose bytes were changed in the backend is
// used as it is. On an encrypted target Tink's authentication still catches it; on a plain
// one (envelope.New with a nil keyring) a changed salt silently renames every object of the
// next publish, which then re-uploads all its content under new names.
//
// Fix: after decoding, io.Copy(io.Discard, rc) and fail on its error, as readManifest does.
func TestRegressionEditedPlainTargetFileNotVerified(t *testing.T) {

	ctx := context.Background()
	b, err := storage.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	s := envelope.New(b, nil, "test")
	first, _, err := publish.New(s, "").Publish(ctx, "prod", "rev1", build(1, "v1"))
	if err != nil {
		t.Fatal(err)
	}

	// Change one hex digit of the salt, keeping the metadata (and so the recorded digest).
	rc, attrs, err := b.Get(ctx, "target.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	raw.ReadFrom(rc)
	rc.Close()
	i := bytes.Index(raw.Bytes(), []byte(`"salt":"`)) + len(`"salt":"`)
	edited := bytes.Clone(raw.Bytes())
	if edited[i] == '0' {
		edited[i] = '1'
	} else {
		edited[i] = '0'
	}
	if err := b.Put(ctx, "target.json", bytes.NewReader(edited), &storage.PutOptions{Metadata: attrs.Metadata}); err != nil {
		t.Fatal(err)
	}
	// The envelope itself sees the edit when the object is read to the end.
	if _, err := s.Verify(ctx, "target.json"); !errors.Is(err, envelope.ErrCorrupt) {
		t.Fatalf("verify of the edited target.json: %v", err)
	}

	m, st, err := publish.New(s, "").Publish(ctx, "prod", "rev2", build(1, "v1"))
	if !errors.Is(err, envelope.ErrCorrupt) {
		t.Errorf("publish over an edited target.json: err %v, uploaded %d, object %s (was %s); want ErrCorrupt",
			err, st.Uploaded, m.Files[0].Object, first.Files[0].Object)
	}
}

// Publish takes any env name and writes under envs/<env>/, so "eu/prod" is stored under
// envs/eu/prod/. GC, though, groups build manifests by path.Base of the directory above
// builds/, so "eu/prod" and "us/prod" (and "prod") are counted as one environment "prod":
// with Keep 2 and two builds each, it deletes both builds of eu/prod, then the objects
// only they named, and eu/prod's current build no longer reads. circle.yaml's schema
// (#Name, no "/") keeps the reconciler from publishing such names, but the package API
// neither refuses them nor handles them.
//
// Fix: refuse env names with "/" (or that path.Join would clean) in Publish, or group
// builds in GC by the key between envs/ and /builds/.
func TestRegressionGCMergesNestedEnvNames(t *testing.T) {
	ctx := context.Background()
	tg, _ := newTarget(t, "mem://")
	for _, env := range []string{"eu/prod", "..", "Prod", ""} {
		if _, _, err := tg.Publish(ctx, env, "v1", build(1, "v1")); err == nil || !strings.Contains(err.Error(), "environment name") {
			t.Errorf("publish to env %q: %v", env, err)
		}
	}
}
