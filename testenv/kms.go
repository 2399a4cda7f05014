package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMS is local-kms, an emulator of the AWS KMS API that does real AES-GCM under keys it
// keeps in its own database: Encrypt, Decrypt, and key states (disabled, pending deletion)
// that refuse both, as AWS does.
//
// local-kms listens on every interface (it binds ":PORT" and has no flag for an address);
// clients here only ever talk to it over 127.0.0.1, and its keys are throw-away test keys
// in a temporary database removed by Stop.
type KMS struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccountID string
}

// StartKMS returns the package's local-kms, starting it on first use. It exports
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY only when they are unset (local-kms checks no
// signature, but the SDK signs every request and needs something to sign with; versitygw's
// credentials, if StartS3 set them, do as well).
func StartKMS(t testing.TB) *KMS {
	t.Helper()
	return start(t, "kms", startKMS)
}

func startKMS() (*KMS, func(), error) {
	bin, err := Tool(ToolLocalKMS)
	if err != nil {
		return nil, nil, err
	}
	dir, rm, err := tempDir("kms")
	if err != nil {
		return nil, nil, err
	}
	port, err := FreePort()
	if err != nil {
		rm()
		return nil, nil, err
	}
	k := &KMS{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), Region: "eu-west-2", AccountID: "111122223333"}
	// Its database and seed file in the temporary folder: the defaults (/tmp/local-kms,
	// /init/seed.yaml) would be shared with every other user of the machine.
	p, err := startProcess("local-kms", dir, []string{
		"PORT=" + strconv.Itoa(port),
		"KMS_REGION=" + k.Region,
		"KMS_ACCOUNT_ID=" + k.AccountID,
		"KMS_DATA_PATH=" + filepath.Join(dir, "data"),
		"KMS_SEED_PATH=" + filepath.Join(dir, "no-seed.yaml"),
	}, bin)
	if err != nil {
		rm()
		return nil, nil, err
	}
	if err := p.waitReady(30*time.Second, httpReady(k.Endpoint+"/")); err != nil {
		rm()
		return nil, nil, err
	}
	for key, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":         "circle-test-access",
		"AWS_SECRET_ACCESS_KEY":     "circle-test-secret-key",
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		if os.Getenv(key) == "" {
			os.Setenv(key, v)
		}
	}
	return k, func() { p.stop(); rm() }, nil
}

// Client is an AWS SDK KMS client for the emulator, for tests to create, disable and
// delete keys the way an operator would.
func (k *KMS) Client() *kms.Client {
	return kms.NewFromConfig(aws.Config{
		Region:      k.Region,
		Credentials: credentials.NewStaticCredentialsProvider("circle-test-access", "circle-test-secret-key", ""),
	}, func(o *kms.Options) { o.BaseEndpoint = aws.String(k.Endpoint) })
}

// NewKey creates a symmetric encryption key and returns its id.
func (k *KMS) NewKey(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := k.Client().CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:     kmstypes.KeySpecSymmetricDefault,
		KeyUsage:    kmstypes.KeyUsageTypeEncryptDecrypt,
		Description: aws.String("circle test key " + t.Name()),
	})
	if err != nil {
		t.Fatalf("testenv: create KMS key: %v", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// URL is the gocloud.dev awskms URL of keyID on this emulator.
func (k *KMS) URL(keyID string) string {
	return fmt.Sprintf("awskms://%s?region=%s&endpoint=%s", keyID, k.Region, url.QueryEscape(k.Endpoint))
}

// ARN is the ARN of keyID on this emulator, the form sops records.
func (k *KMS) ARN(keyID string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", k.Region, k.AccountID, keyID)
}
