package secrets_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/testenv"
)

// local-kms is started on demand by TestSopsCLIAWSKMS; Main stops it.
func TestMain(m *testing.M) { testenv.Main(m) }

// A file the sops CLI encrypted for an AWS KMS key (local-kms, reached through the AWS
// SDK's AWS_ENDPOINT_URL_KMS, which sops and Circle both honour: sops has no endpoint
// setting of its own) decrypts once that key is allowed, and is refused before any
// request while it is not.
func TestSopsCLIAWSKMS(t *testing.T) {
	k := testenv.StartKMS(t)
	keyID := k.NewKey(t)
	arn := k.ARN(keyID)
	env := []string{
		"AWS_ENDPOINT_URL_KMS=" + k.Endpoint,
		"AWS_REGION=" + k.Region,
		"AWS_ACCESS_KEY_ID=circle-test-access",
		"AWS_SECRET_ACCESS_KEY=circle-test-secret-key",
		"AWS_EC2_METADATA_DISABLED=true",
	}
	for _, e := range env {
		name, value, _ := strings.Cut(e, "=")
		t.Setenv(name, value)
	}
	src := plainFile(t, "prod.sops.yaml", "db:\n    password: "+canary+"\n")
	enc := sopsCLI(t, env, "encrypt", "--kms", arn, src)
	if strings.Contains(string(enc), canary) || !strings.Contains(string(enc), arn) {
		t.Fatalf("sops output:\n%s", enc)
	}

	var ring secrets.Keyring
	if _, err := ring.Decrypt(context.Background(), "prod.sops.yaml", enc); err == nil || !strings.Contains(err.Error(), "kms:"+arn) {
		t.Errorf("decrypt with the KMS key not allowed: %v", err)
	}
	// Another key allowed is not this one.
	if err := ring.AllowRemote("kms:" + k.ARN("00000000-0000-4000-8000-000000000000")); err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Decrypt(context.Background(), "prod.sops.yaml", enc); err == nil {
		t.Error("decrypted with another KMS key allowed")
	}
	if err := ring.AllowRemote("kms:" + arn); err != nil {
		t.Fatal(err)
	}
	out, err := ring.Decrypt(context.Background(), "prod.sops.yaml", enc)
	if err != nil || !strings.Contains(string(out), "password: "+canary) {
		t.Fatalf("decrypt with the KMS key allowed: %v\n%s", err, out)
	}

	// The key disabled in the KMS: the failure says so, and carries no value.
	disableKey(t, k, keyID)
	_, err = ring.Decrypt(context.Background(), "prod.sops.yaml", enc)
	t.Logf("disabled: %v", err)
	if !errors.Is(err, secrets.ErrNoKey) || !strings.Contains(err.Error(), "disabled") || strings.Contains(err.Error(), canary) {
		t.Errorf("decrypt with the KMS key disabled: %v", err)
	}
}

func disableKey(t *testing.T, k *testenv.KMS, keyID string) {
	t.Helper()
	if _, err := k.Client().DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatal(err)
	}
}
