package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/circlecore/circle/testenv"
)

const (
	examplesDir = "../../examples"
	exampleKey  = "../../examples/keys/age.example.key"
	canary      = "CANARY-77f2-never-in-plaintext"
)

// copyExamples copies the example repository into a temporary folder a test may break.
func copyExamples(t *testing.T) string { return testenv.CopyTree(t, examplesDir) }

func write(t *testing.T, dir, name, content string) { testenv.WriteFile(t, dir, name, content) }

// encryptWithSOPS encrypts plain for the example key with the real sops CLI, as a user would.
func encryptWithSOPS(t *testing.T, dir, name, plain string) { testenv.SOPSEncrypt(t, dir, name, plain) }

func TestValidate_Examples(t *testing.T) {
	code, out, errOut := run(t, "validate", examplesDir, "--key-file", exampleKey)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		if !strings.Contains(out, env+": valid") {
			t.Errorf("output does not say %s is valid:\n%s", env, out)
		}
	}

	code, out, _ = run(t, "validate", examplesDir, "--key-file", exampleKey, "--env", "prod", "-o", "json")
	var res validateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitOK {
		t.Fatalf("exit %d, -o json: %v\n%s", code, err, out)
	}
	if !res.Valid || len(res.Environments) != 1 || res.Environments[0].Name != "prod" || res.Environments[0].Secrets == 0 {
		t.Errorf("-o json = %+v", res)
	}
}

// --origins says where each value came from and masks what SOPS decrypted.
func TestValidate_Origins(t *testing.T) {
	dir := copyExamples(t)
	encryptWithSOPS(t, dir, "secrets/prod.sops.yaml", "db:\n  password: "+canary+"\n")
	code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey, "--env", "prod", "--origins")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, canary) {
		t.Fatalf("the secret is in the output:\n%s", out)
	}
	if !strings.Contains(out, "db.password = \"**redacted:") || !strings.Contains(out, "(secrets/prod.sops.yaml:2:") {
		t.Errorf("db.password not shown masked with its origin:\n%s", out)
	}
	if !strings.Contains(out, "(config/prod/db.yaml:") {
		t.Errorf("plain values lack their origin:\n%s", out)
	}
}

func TestValidate_Invalid(t *testing.T) {
	dir := copyExamples(t)
	write(t, dir, "config/prod/db.yaml", "db:\n  host: db.prod.internal\n  port: \"5432\"\n")
	// A secret of the wrong type: the message must not quote it.
	encryptWithSOPS(t, dir, "secrets/staging.sops.yaml", "db:\n  password: x\n  port: "+canary+"\n")

	code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitFailed, out, errOut)
	}
	if strings.Contains(out+errOut, canary) {
		t.Fatalf("the secret is in the output:\n%s%s", out, errOut)
	}
	for _, want := range []string{
		"config/prod/db.yaml:3:9: db.port: conflicting values \"5432\" and int",
		"secrets/staging.sops.yaml:3:11: db.port:",
		"[prod]", "[staging]",
		"2 problem(s) in prod, staging",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "is invalid: 2 problem(s)") {
		t.Errorf("stderr = %q", errOut)
	}

	code, out, _ = run(t, "validate", dir, "--key-file", exampleKey, "-o", "json")
	var res validateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitFailed {
		t.Fatalf("exit %d, -o json: %v\n%s", code, err, out)
	}
	if res.Valid || len(res.Problems) != 2 || res.Problems[0].File == "" || res.Problems[0].Line == 0 {
		t.Errorf("-o json = %+v", res)
	}
}

func TestValidate_UsageErrors(t *testing.T) {
	if code, _, errOut := run(t, "validate", filepath.Join(t.TempDir(), "nope")); code != exitUsage || !strings.Contains(errOut, "nope") {
		t.Errorf("missing folder: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, "validate", examplesDir, "--key-file", "/nonexistent.key"); code != exitUsage || !strings.Contains(errOut, "/nonexistent.key") {
		t.Errorf("missing key file: exit %d, %q", code, errOut)
	}
	// Without a key the secrets cannot be read: the repository cannot be judged valid.
	code, out, _ := run(t, "validate", examplesDir)
	if code != exitFailed || !strings.Contains(out, "secrets/prod.sops.yaml") || !strings.Contains(out, "age1") {
		t.Errorf("no key: exit %d\n%s", code, out)
	}
}

func TestValidate_KeyFromEnvironment(t *testing.T) {
	key, err := os.ReadFile(exampleKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CIRCLE_AGE_KEY", string(key))
	if code, out, errOut := run(t, "validate", examplesDir); code != exitOK {
		t.Errorf("CIRCLE_AGE_KEY: exit %d\n%s%s", code, out, errOut)
	}
	t.Setenv("CIRCLE_AGE_KEY", "")
	abs, _ := filepath.Abs(exampleKey)
	t.Setenv("CIRCLE_KEY_FILES", abs)
	if code, out, errOut := run(t, "validate", examplesDir); code != exitOK {
		t.Errorf("CIRCLE_KEY_FILES: exit %d\n%s%s", code, out, errOut)
	}
	t.Setenv("CIRCLE_KEY_FILES", "")
	t.Setenv("CIRCLE_AGE_KEY", "not a key")
	if code, _, errOut := run(t, "validate", examplesDir); code != exitUsage || !strings.Contains(errOut, "CIRCLE_AGE_KEY") {
		t.Errorf("bad CIRCLE_AGE_KEY: exit %d, %q", code, errOut)
	}
}

func TestSecretsCheck(t *testing.T) {
	code, out, errOut := run(t, "secrets", "check", examplesDir, "--key-file", exampleKey)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, ".sops.yaml:") || !strings.Contains(out, "ok    secrets/prod.sops.yaml  (age age1") || !strings.Contains(out, "3 file(s), 0 failed") {
		t.Errorf("output:\n%s", out)
	}

	dir := copyExamples(t)
	write(t, dir, "secrets/oops.yaml", "password: hunter2\n")
	code, out, _ = run(t, "secrets", "check", dir, "--key-file", exampleKey, "-o", "json")
	if code != exitFailed {
		t.Fatalf("a plaintext file in secrets/: exit %d", code)
	}
	var checks []struct{ File, Error string }
	if err := json.Unmarshal([]byte(out), &checks); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if len(checks) != 4 || checks[0].File != "secrets/dev.sops.yaml" {
		t.Fatalf("checks = %+v", checks)
	}
	for _, c := range checks {
		if (c.File == "secrets/oops.yaml") != (c.Error == "not encrypted with SOPS") {
			t.Errorf("%s: %q", c.File, c.Error)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Error("the plaintext file's content is in the output")
	}

	code, out, _ = run(t, "secrets", "check", examplesDir)
	if code != exitFailed || !strings.Contains(out, "FAIL  secrets/dev.sops.yaml") || !strings.Contains(out, "3 failed") {
		t.Errorf("no keys: exit %d\n%s", code, out)
	}

	write(t, dir, "circle.yaml", "apiVersion: circle/v1\nenviroments: []\n")
	if code, _, errOut := run(t, "secrets", "check", dir); code != exitFailed || !strings.Contains(errOut, "circle.yaml:2:1") {
		t.Errorf("bad circle.yaml: exit %d, %q", code, errOut)
	}
}

// Flux keeps SOPS keys in a Secret (sops.agekey); the CLI reads the same Secret from a real
// API server.
func TestValidate_KeysFromKubernetesSecret(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	key, err := os.ReadFile(exampleKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = kube.Clientset(t).CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "sops-age"},
		Data:       map[string][]byte{"identity.agekey": key},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := writeKubeconfig(t, kube)

	if code, out, errOut := run(t, "validate", examplesDir, "--keys-secret", ns+"/sops-age", "--kubeconfig", kubeconfig); code != exitOK {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := run(t, "validate", examplesDir, "--keys-secret", ns+"/missing", "--kubeconfig", kubeconfig); code != exitUsage || !strings.Contains(errOut, "not found") {
		t.Errorf("missing Secret: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, "validate", examplesDir, "--keys-secret", "nameonly"); code != exitUsage || !strings.Contains(errOut, "want namespace/name") {
		t.Errorf("malformed --keys-secret: exit %d, %q", code, errOut)
	}
}

func writeKubeconfig(t testing.TB, k *testenv.Kube) string {
	t.Helper()
	c := k.Config
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	cfg.CurrentContext = "test"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}
