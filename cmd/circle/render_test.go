package main

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	dir := copyExamples(t)
	encryptWithSOPS(t, dir, "secrets/prod.sops.yaml", "db:\n  password: "+canary+"\n")
	code, out, errOut := run(t, "render", dir, "--env", "prod", "--key-file", exampleKey)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"kind: Deployment", "namespace: shop-prod", "kind: ConfigMap", `"host": "db.prod.internal"`, "kind: Secret", "name: circle-licenses"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`name: circle-config-[a-z0-9]{10}`).MatchString(out) {
		t.Errorf("no hashed ConfigMap name:\n%s", out)
	}
	// The Secret's data is base64 of masked values: neither the secret nor its base64.
	if strings.Contains(out, canary) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(canary))[:16]) {
		t.Error("the secret is in the render output")
	}
	m := regexp.MustCompile(`secrets.json: \|\n((?:    \S+\n)+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no secrets.json in\n%s", out)
	}
	if b, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(m[1]), "")); !strings.Contains(string(b), "**redacted:") {
		t.Errorf("secret data = %s", b)
	}

	code, out, _ = run(t, "render", dir, "--env", "prod", "--key-file", exampleKey, "-o", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != exitOK || len(list) != 5 {
		t.Errorf("-o json: exit %d, %d objects, %v", code, len(list), err)
	}
	if code, _, _ := run(t, "render", dir, "--env", "prod", "--key-file", exampleKey, "-o", "xml"); code != exitUsage {
		t.Errorf("-o xml: exit %d", code)
	}
	if code, _, errOut := run(t, "render", dir, "--key-file", exampleKey); code != exitUsage || !strings.Contains(errOut, "env") {
		t.Errorf("without --env: exit %d %q", code, errOut)
	}
	write(t, dir, "config/prod/db.yaml", "db:\n  port: \"x\"\n")
	if code, _, errOut := run(t, "render", dir, "--env", "prod", "--key-file", exampleKey); code != exitFailed || !strings.Contains(errOut, "config/prod/db.yaml:2:9") {
		t.Errorf("invalid repository: exit %d %q", code, errOut)
	}
}
