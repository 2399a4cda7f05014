package envelope_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/testenv"
)

// The envelope on the real servers: round trip across segment boundaries, no plaintext in
// the raw object, and rotation with a metadata-only rewrap.
func TestBackends(t *testing.T) {
	for name, url := range map[string]func(t *testing.T) string{
		"s3": func(t *testing.T) string {
			return testenv.StartS3(t).NewBucket(t)
		},
		"azblob": func(t *testing.T) string {
			return testenv.StartAzurite(t).NewContainer(t)
		},
		"gcs": func(t *testing.T) string {
			return testenv.StartGCS(t).NewBucket(t)
		},
		"file": func(t *testing.T) string { return "file://" + t.TempDir() },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			backend := open(t, url(t))
			keys := newKeyring(t)
			s := envelope.New(backend, keys, "test")
			data := append(random(t, firstPlain+10), []byte(canary)...)
			put(t, s, "env/prod/config.json", data, &envelope.PutOptions{ContentType: "application/json", Revision: "r1", Env: "prod"})
			if got, err := read(t, s, "env/prod/config.json"); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("round trip: %d bytes, %v", len(got), err)
			}
			rc, _, err := backend.Get(ctx, "env/prod/config.json")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(rc)
			rc.Close()
			if bytes.Contains(raw, []byte(canary)) {
				t.Fatal("the raw object holds the plaintext")
			}

			if _, err := keys.Rotate(); err != nil {
				t.Fatal(err)
			}
			changed, rewritten, err := s.Rewrap(ctx, "env/prod/config.json")
			if err != nil || !changed {
				t.Fatalf("rewrap: %v %v", changed, err)
			}
			if rewritten {
				t.Errorf("%s rewrote the content to change metadata", name)
			}
			st, err := s.Stat(ctx, "env/prod/config.json")
			if err != nil || st.KeyID != itoa(keys.Primary()) || st.Revision != "r1" || st.ContentType != "application/json" {
				t.Fatalf("after rewrap: %+v %v", st, err)
			}
			for _, k := range keys.Keys() {
				if !k.Primary {
					if err := keys.Retire(k.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got, err := read(t, s, "env/prod/config.json"); err != nil || !bytes.Equal(got, data) {
				t.Errorf("after retiring the old key: %v", err)
			}
		})
	}
}
