package storage_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/storagetest"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// open opens url for one test and fails it if that does not work.
func open(t *testing.T, url string) *storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open %s: %v", storage.Redacted(url), err)
	}
	return s
}

// needTool skips a test whose server is not installed yet: `make testenv` builds them.
func needTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := testenv.Tool(tool); err != nil {
		t.Fatal(err) // make testenv installs every server; a missing one fails, never skips
	}
}

func TestConformance_Mem(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) *storage.Store { return open(t, "mem://") })
}

func TestConformance_File(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) *storage.Store {
		return open(t, "file://"+filepath.ToSlash(t.TempDir()))
	})
}

func TestConformance_S3(t *testing.T) {
	needTool(t, testenv.ToolVersityGW)
	srv := testenv.StartS3(t)
	storagetest.Run(t, func(t *testing.T) *storage.Store { return open(t, srv.NewBucket(t)) },
		// Seen about one run in five: versitygw's posix backend keeps user metadata in
		// extended attributes written apart from the file, so one GET (not only a HEAD)
		// can answer with one version's body and another's metadata. Real S3 replaces an
		// object atomically; Azure and GCS run the case.
		storagetest.Skip("ConsistentGet", "versitygw can pair one version's body with another's metadata in a single GET"))
}

func TestConformance_Azure(t *testing.T) {
	needTool(t, testenv.ToolAzurite)
	srv := testenv.StartAzurite(t)
	storagetest.Run(t, func(t *testing.T) *storage.Store { return open(t, srv.NewContainer(t)) })
}

func TestConformance_GCS(t *testing.T) {
	needTool(t, testenv.ToolFakeGCS)
	srv := testenv.StartGCS(t)
	storagetest.Run(t, func(t *testing.T) *storage.Store { return open(t, srv.NewBucket(t)) })
}
