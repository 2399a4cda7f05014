package apply_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/circlecore/circle/apply"
)

// A named kubeconfig is read at the context asked for, or its current one; a missing file
// and an unknown context are errors that name them.
func TestRESTConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kubeconfig")
	const kubeconfig = `apiVersion: v1
kind: Config
current-context: dev
clusters:
  - name: dev
    cluster: {server: "https://127.0.0.1:6443"}
  - name: prod
    cluster: {server: "https://127.0.0.2:6443"}
contexts:
  - name: dev
    context: {cluster: dev, user: me}
  - name: prod
    context: {cluster: prod, user: me}
users:
  - name: me
    user: {token: abc}
`
	if err := os.WriteFile(file, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "elsewhere")) // a named file wins over it
	for kctx, host := range map[string]string{"": "https://127.0.0.1:6443", "prod": "https://127.0.0.2:6443"} {
		cfg, err := apply.RESTConfig(file, kctx)
		if err != nil || cfg.Host != host || cfg.BearerToken != "abc" {
			t.Errorf("context %q: %v %+v", kctx, err, cfg)
		}
	}
	if _, err := apply.RESTConfig(file, "staging"); err == nil || !strings.Contains(err.Error(), "staging") {
		t.Errorf("an unknown context: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := apply.RESTConfig(missing, ""); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing file: %v", err)
	}
	// Without a file, KUBECONFIG is read.
	t.Setenv("KUBECONFIG", file)
	if cfg, err := apply.RESTConfig("", "prod"); err != nil || cfg.Host != "https://127.0.0.2:6443" {
		t.Errorf("from KUBECONFIG: %v %+v", err, cfg)
	}
}
