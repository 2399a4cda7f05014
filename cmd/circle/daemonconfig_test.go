package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// serveFlags parses args into a serve command and applies the daemon configuration from
// file and environ, as serve's RunE does.
func serveFlags(t *testing.T, file string, environ []string, args ...string) (*serveFlagsResult, error) {
	t.Helper()
	cmd := newServeCmd()
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	err := loadDaemonConfig(cmd, file, environ)
	get := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }
	return &serveFlagsResult{get: get}, err
}

type serveFlagsResult struct{ get func(string) string }

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "circle.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Precedence: defaults < file < CIRCLE_* < flags, key by key.
func TestDaemonConfig_Precedence(t *testing.T) {
	file := writeConfig(t, `source:
  url: https://git.example.com/org/config.git
  interval: 2m
  branch: release
  max_file_size: 4Mi
  max_tree_size: 1073741824
state_dir: /from/file
listen: ":7000"
keys:
  sops: [/keys/a.agekey, /keys/b.agekey]
clusters:
  prod: {kubeconfig: /kc/prod, context: prod-ctx}
  dev: {kubeconfig: /kc/dev}
apply: {prune: false, wait: 30s, rollback_on_failure: true}
leader_election: {enabled: true, namespace: ops}
read_token_file: /etc/circle/read-token
allowed_hosts: [circle.example.com, circle.internal]
`)
	env := []string{"CIRCLE_STATE_DIR=/from/env", "CIRCLE_SOURCE__INTERVAL=3m", "CIRCLE_TESTENV_KUBE=ignored", "CIRCLE_GIT_PASSWORD=ignored", "PATH=/bin"}
	got, err := serveFlags(t, file, env, "--listen", "127.0.0.1:9999")
	if err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{
		"source":                    "https://git.example.com/org/config.git", // file
		"branch":                    "release",                                // file
		"interval":                  "3m0s",                                   // env over file
		"state-dir":                 "/from/env",                              // env over file
		"listen":                    "127.0.0.1:9999",                         // flag over file
		"key-file":                  "[/keys/a.agekey,/keys/b.agekey]",
		"cluster":                   "[dev=/kc/dev,prod=/kc/prod@prod-ctx]",
		"prune":                     "false",
		"wait":                      "30s",
		"rollback-on-failure":       "true",
		"leader-elect":              "true",
		"leader-election-namespace": "ops",
		"leader-election-id":        "circle", // default
		"read-token-file":           "/etc/circle/read-token",
		"max-file-size":             "4MiB",
		"max-tree-size":             "1GiB",
		"allowed-host":              "[circle.example.com,circle.internal]",
		"drift-interval":            "5m0s", // default
	} {
		if v := got.get(flag); v != want {
			t.Errorf("--%s = %q, want %q", flag, v, want)
		}
	}

	// Without a file, the environment alone.
	got, err = serveFlags(t, "", []string{"CIRCLE_PUBLISH=s3://bucket?region=x", "CIRCLE_CLUSTERS__KIND__KUBECONFIG=/kc"})
	if err != nil {
		t.Fatal(err)
	}
	if got.get("publish") != "s3://bucket?region=x" || got.get("cluster") != "[kind=/kc]" {
		t.Errorf("from the environment: publish %q, cluster %q", got.get("publish"), got.get("cluster"))
	}
}

// A bad file is refused before anything starts, each problem at its file:line and key; a
// bad variable is named.
func TestDaemonConfig_Invalid(t *testing.T) {
	file := writeConfig(t, `source:
  url: https://git.example.com/org/config.git
  interval: soon
publish: ftp://nope
colour: blue
`)
	_, err := serveFlags(t, file, []string{"CIRCLE_LOG_FORMAT=xml"})
	if err == nil {
		t.Fatal("an invalid configuration was accepted")
	}
	for _, want := range []string{
		file + ":3: source.interval:",
		file + ":4: publish:",
		file + ":5: colour: field not allowed",
		"CIRCLE_LOG_FORMAT: log_format:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	if _, err := serveFlags(t, filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := serveFlags(t, writeConfig(t, "source: [unclosed\n"), nil); err == nil {
		t.Error("a file that does not parse was accepted")
	}
}

// serve --config runs the daemon from the file: a bad one exits 2 with the problem.
func TestServe_Config(t *testing.T) {
	file := writeConfig(t, "drift_interval: often\n")
	code, _, errOut := run(t, "serve", "--config", file)
	if code != exitUsage || !strings.Contains(errOut, file+":1: drift_interval:") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// The configuration file deploy/ ships in its ConfigMap passes the daemon's schema.
func TestDaemonConfig_DeployFile(t *testing.T) {
	b, err := os.ReadFile("../../deploy/base/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(strings.Split(string(b), "\n---\n")[0]), &cm); err != nil || cm.Data["config.yaml"] == "" {
		t.Fatalf("deploy/base/config.yaml: %v", err)
	}
	got, err := serveFlags(t, writeConfig(t, cm.Data["config.yaml"]), []string{"CIRCLE_SOURCE__URL=https://git.example.com/org/other.git"})
	if err != nil {
		t.Fatal(err)
	}
	if got.get("source") != "https://git.example.com/org/other.git" || got.get("leader-elect") != "true" || got.get("state-dir") != "/var/lib/circle/state" {
		t.Errorf("source %q, leader-elect %q, state-dir %q", got.get("source"), got.get("leader-elect"), got.get("state-dir"))
	}
}

// keys.kms_allow in the file is --kms-allow, one entry per element; an entry that is not
// TYPE:IDENTIFIER of a remote key type is refused at its line.
func TestDaemonConfig_KMSAllow(t *testing.T) {
	file := writeConfig(t, `keys:
  kms_allow:
    - hc_vault:https://vault.example.com:8200/v1/sops/keys/circle
    - kms:arn:aws:kms:eu-west-1:111122223333:key/abcd
`)
	got, err := serveFlags(t, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := got.get("kms-allow"); v != "[hc_vault:https://vault.example.com:8200/v1/sops/keys/circle,kms:arn:aws:kms:eu-west-1:111122223333:key/abcd]" {
		t.Errorf("--kms-allow = %q", v)
	}
	// A flag replaces the file's list, as for every setting.
	if got, err := serveFlags(t, file, nil, "--kms-allow", "gcp_kms:projects/p/locations/l/keyRings/r/cryptoKeys/k"); err != nil || got.get("kms-allow") != "[gcp_kms:projects/p/locations/l/keyRings/r/cryptoKeys/k]" {
		t.Errorf("flag over file: %q, %v", got.get("kms-allow"), err)
	}
	_, err = serveFlags(t, writeConfig(t, "keys:\n  kms_allow: [\"age:age1xyz\"]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), ":2: keys.kms_allow") {
		t.Errorf("an age key in kms_allow: %v", err)
	}
}

// The artifact sources are the operator's, in the daemon's file as on the command line; a
// source the schema refuses (http) is refused at its line before the daemon starts.
func TestDaemonConfig_Artifacts(t *testing.T) {
	file := writeConfig(t, `artifacts:
  sources:
    - https://artifacts.example.com/packages/
    - s3://artifacts/packages/
  cache: /var/cache/circle
  max_size: 64Mi
  timeout: 30s
`)
	got, err := serveFlags(t, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := got.get("artifact-source"); v != "[https://artifacts.example.com/packages/,s3://artifacts/packages/]" {
		t.Errorf("--artifact-source = %q", v)
	}
	if got.get("artifact-cache") != "/var/cache/circle" || got.get("artifact-timeout") != "30s" || got.get("artifact-max-size") != "64MiB" {
		t.Errorf("cache %q, timeout %q, max size %q", got.get("artifact-cache"), got.get("artifact-timeout"), got.get("artifact-max-size"))
	}
	_, err = serveFlags(t, writeConfig(t, "artifacts:\n  sources: [\"http://artifacts.example.com/\"]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), ":2: artifacts.sources") {
		t.Errorf("an http source: %v", err)
	}
}

// The prune guard is the operator's to set, in the file or with the flag, and checked.
func TestDaemonConfig_MaxDeleteFraction(t *testing.T) {
	got, err := serveFlags(t, writeConfig(t, "apply:\n  max_delete_fraction: 0.9\n"), nil)
	if err != nil || got.get("max-delete-fraction") != "0.9" {
		t.Errorf("from the file: %q %v", got.get("max-delete-fraction"), err)
	}
	if _, err := serveFlags(t, writeConfig(t, "apply:\n  max_delete_fraction: 2\n"), nil); err == nil || !strings.Contains(err.Error(), ":2: apply.max_delete_fraction") {
		t.Errorf("2: %v", err)
	}
}
