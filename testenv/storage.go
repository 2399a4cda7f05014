package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
)

// Azurite's published development account: https://learn.microsoft.com/azure/storage/common/storage-use-azurite
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

var bucketSeq atomic.Int64

// bucketName returns a fresh name that every backend accepts (3-63 lowercase letters,
// digits and hyphens), unique within this test binary and across parallel binaries.
func bucketName() string {
	return fmt.Sprintf("circle-%d-%d", os.Getpid(), bucketSeq.Add(1))
}

// S3 is a versitygw server: a real S3 implementation that checks SigV4 signatures.
type S3 struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccessKey string
	SecretKey string
	root      string
	dir       string
	port      int
	proc      *process
}

// StartS3 returns the package's S3 server, starting it on first use. It exports the
// AWS_* variables the AWS SDK reads, so gocloud.dev's s3:// URLs work unchanged.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	return start(t, "s3", startS3)
}

// NewS3 starts a private S3 server for one test, which the test may Kill and Restart;
// it is stopped when the test ends. Its credentials are the shared server's, so the AWS_*
// variables fit both.
func NewS3(t testing.TB) *S3 {
	t.Helper()
	s, stop, err := startS3()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(stop)
	return s
}

func startS3() (*S3, func(), error) {
	dir, rm, err := tempDir("s3")
	if err != nil {
		return nil, nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, nil, err
	}
	s := &S3{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
		Region:    "us-east-1",
		AccessKey: "circle-test-access",
		SecretKey: "circle-test-secret-key",
		root:      filepath.Join(dir, "data"),
		dir:       dir,
		port:      port,
	}
	if err := os.Mkdir(s.root, 0o755); err != nil {
		return nil, nil, err
	}
	if err := s.launch(); err != nil {
		rm()
		return nil, nil, err
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":         s.AccessKey,
		"AWS_SECRET_ACCESS_KEY":     s.SecretKey,
		"AWS_REGION":                s.Region,
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		os.Setenv(k, v)
	}
	return s, func() {
		if s.proc != nil {
			s.proc.stop()
		}
		rm()
	}, nil
}

func (s *S3) launch() error {
	bin, err := Tool(ToolVersityGW)
	if err != nil {
		return err
	}
	p, err := startProcess("versitygw", s.dir, nil, bin,
		"--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region,
		"--port", "127.0.0.1:"+strconv.Itoa(s.port), "posix", s.root)
	if err != nil {
		return err
	}
	if err := p.waitReady(30*time.Second, httpReady(s.Endpoint)); err != nil {
		return err
	}
	s.proc = p
	return nil
}

// Kill stops the server with SIGKILL, as a crash would: requests in flight fail.
func (s *S3) Kill() {
	if s.proc != nil {
		_ = syscall.Kill(-s.proc.cmd.Process.Pid, syscall.SIGKILL)
		<-s.proc.done
		s.proc.log.Close()
		s.proc = nil
	}
}

// Restart starts a killed server again on the same port and data.
func (s *S3) Restart(t testing.TB) {
	t.Helper()
	if err := s.launch(); err != nil {
		t.Fatalf("testenv: restart S3: %v", err)
	}
}

// NewBucket creates an empty bucket and returns its gocloud.dev URL.
func (s *S3) NewBucket(t testing.TB) string {
	t.Helper()
	name := bucketName()
	// versitygw's posix backend keeps a bucket as a folder of its root.
	if err := os.Mkdir(filepath.Join(s.root, name), 0o755); err != nil {
		t.Fatalf("testenv: create S3 bucket: %v", err)
	}
	return s.URL(name)
}

// URL is the gocloud.dev URL of bucket on this server.
func (s *S3) URL(bucket string) string {
	return fmt.Sprintf("s3://%s?endpoint=%s&use_path_style=true&region=%s", bucket, s.Endpoint, s.Region)
}

// Azurite is Microsoft's Azure Blob Storage emulator.
type Azurite struct {
	Host string // 127.0.0.1:PORT
}

// StartAzurite returns the package's Azurite, starting it on first use, and exports the
// AZURE_STORAGE_* variables gocloud.dev's azblob driver reads.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	return start(t, "azurite", startAzurite)
}

func startAzurite() (*Azurite, func(), error) {
	mainJS, err := Tool(ToolAzurite)
	if err != nil {
		return nil, nil, err
	}
	dir, rm, err := tempDir("azurite")
	if err != nil {
		return nil, nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, nil, err
	}
	a := &Azurite{Host: "127.0.0.1:" + strconv.Itoa(port)}
	// --skipApiVersionCheck: the Azure SDK speaks a newer API version than Azurite knows.
	p, err := startProcess("azurite", dir, nil, "node", mainJS,
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--location", filepath.Join(dir, "data"), "--skipApiVersionCheck",
		"--disableTelemetry", "--silent")
	if err != nil {
		return nil, nil, err
	}
	if err := p.waitReady(60*time.Second, httpReady("http://"+a.Host+"/"+AzuriteAccount+"?comp=list")); err != nil {
		rm()
		return nil, nil, err
	}
	os.Setenv("AZURE_STORAGE_ACCOUNT", AzuriteAccount)
	os.Setenv("AZURE_STORAGE_KEY", AzuriteKey)
	return a, func() { p.stop(); rm() }, nil
}

// NewContainer creates an empty container and returns its gocloud.dev URL.
func (a *Azurite) NewContainer(t testing.TB) string {
	t.Helper()
	name := bucketName()
	cred, err := azblob.NewSharedKeyCredential(AzuriteAccount, AzuriteKey)
	if err != nil {
		t.Fatalf("testenv: azurite credential: %v", err)
	}
	c, err := azblob.NewClientWithSharedKeyCredential("http://"+a.Host+"/"+AzuriteAccount, cred, nil)
	if err != nil {
		t.Fatalf("testenv: azurite client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CreateContainer(ctx, name, nil); err != nil {
		t.Fatalf("testenv: create azure container: %v", err)
	}
	return a.URL(name)
}

// URL is the gocloud.dev URL of container on this server.
func (a *Azurite) URL(container string) string {
	return fmt.Sprintf("azblob://%s?protocol=http&domain=%s&localemu=true", container, a.Host)
}

// GCS is fake-gcs-server, an emulator of the Google Cloud Storage JSON API.
type GCS struct {
	Host string // 127.0.0.1:PORT
}

// StartGCS returns the package's fake-gcs-server, starting it on first use, and exports
// STORAGE_EMULATOR_HOST, which the Google client and gocloud.dev's gcsblob honour.
func StartGCS(t testing.TB) *GCS {
	t.Helper()
	return start(t, "gcs", startGCS)
}

func startGCS() (*GCS, func(), error) {
	bin, err := Tool(ToolFakeGCS)
	if err != nil {
		return nil, nil, err
	}
	dir, rm, err := tempDir("gcs")
	if err != nil {
		return nil, nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, nil, err
	}
	g := &GCS{Host: "127.0.0.1:" + strconv.Itoa(port)}
	// -public-host must equal the emulator host, or reads of objects answer 404.
	p, err := startProcess("fake-gcs-server", dir, nil, bin,
		"-scheme", "http", "-host", "127.0.0.1", "-port", strconv.Itoa(port),
		"-public-host", g.Host, "-external-url", "http://"+g.Host,
		"-backend", "filesystem", "-filesystem-root", filepath.Join(dir, "data"), "-log-level", "warn")
	if err != nil {
		return nil, nil, err
	}
	if err := p.waitReady(30*time.Second, httpReady("http://"+g.Host+"/storage/v1/b")); err != nil {
		rm()
		return nil, nil, err
	}
	os.Setenv("STORAGE_EMULATOR_HOST", g.Host)
	return g, func() { p.stop(); rm() }, nil
}

// NewBucket creates an empty bucket through the JSON API and returns its gocloud.dev URL.
func (g *GCS) NewBucket(t testing.TB) string {
	t.Helper()
	name := bucketName()
	body, _ := json.Marshal(map[string]string{"name": name})
	resp, err := http.Post("http://"+g.Host+"/storage/v1/b?project=circle-test", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("testenv: create GCS bucket: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: create GCS bucket: %s", resp.Status)
	}
	return "gs://" + name
}
