package main

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/circlecore/circle/sdk/config"
)

//go:embed daemon.cue
var daemonSchema []byte

// daemonSettings maps each key of the daemon's configuration file to the serve flag it sets.
// The flag is the one place a setting is parsed and documented; the file and the CIRCLE_*
// environment only fill flags the command line did not set, which gives the precedence
// defaults < file < environment < flags without a second copy of every default.
var daemonSettings = map[string]string{
	"source.url":                "source",
	"source.branch":             "branch",
	"source.tag":                "tag",
	"source.semver":             "semver",
	"source.commit":             "commit",
	"source.interval":           "interval",
	"source.ssh_key":            "ssh-key",
	"source.known_hosts":        "known-hosts",
	"source.verify":             "verify",
	"source.trusted_pgp_keys":   "trusted-pgp-keys",
	"source.trusted_ssh_keys":   "trusted-ssh-keys",
	"source.max_file_size":      "max-file-size",
	"source.max_tree_size":      "max-tree-size",
	"webhook.addr":              "webhook-addr",
	"webhook.provider":          "webhook-provider",
	"webhook.repository":        "webhook-repository",
	"keys.sops":                 "key-file",
	"keys.sops_secret":          "keys-secret",
	"keys.kms_allow":            "kms-allow",
	"keys.storage_keyring":      "storage-keyring",
	"keys.license_keyring":      "license-keyring",
	"artifacts.sources":         "artifact-source",
	"artifacts.cache":           "artifact-cache",
	"artifacts.ca_file":         "artifact-ca-file",
	"artifacts.max_size":        "artifact-max-size",
	"artifacts.timeout":         "artifact-timeout",
	"publish":                   "publish",
	"apply.inventory_namespace": "inventory-namespace",
	"apply.prune":               "prune",
	"apply.wait":                "wait",
	"apply.rollback_on_failure": "rollback-on-failure",
	"apply.max_delete_fraction": "max-delete-fraction",
	"concurrency":               "concurrency",
	"drift_interval":            "drift-interval",
	"listen":                    "listen",
	"state_dir":                 "state-dir",
	"log_format":                "log-format",
	"leader_election.enabled":   "leader-elect",
	"leader_election.namespace": "leader-election-namespace",
	"leader_election.name":      "leader-election-id",
	"leader_election.lease":     "leader-election-lease",
	"kubeconfig":                "kubeconfig",
	"trigger_token_file":        "trigger-token-file",
	"ui":                        "ui",
	"ui_token_file":             "ui-token-file",
	"read_token_file":           "read-token-file",
	"allowed_hosts":             "allowed-host",
	"clusters":                  "cluster", // a map of name → {kubeconfig, context}; see clusterArgs
}

// loadDaemonConfig reads --config (when given) and the CIRCLE_* variables that name a
// setting, validates them against daemon.cue, and sets every flag the command line left
// alone. Problems name the file, the line and the key.
func loadDaemonConfig(cmd *cobra.Command, file string, environ []string) error {
	opts := []config.Option{config.Schema(daemonSchema, "#Daemon"), config.Env("CIRCLE_"), config.Environ(settingVars(environ))}
	if file != "" {
		if _, err := os.Stat(file); err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		opts = append(opts, config.File(file))
	}
	l, err := config.New(opts...)
	var verr *config.ValidationError
	if errors.As(err, &verr) {
		return configProblems(file, verr)
	}
	if err != nil {
		return fmt.Errorf("daemon configuration: %w", err)
	}
	cfg := l.Current()
	keys := make([]string, 0, len(daemonSettings))
	for k := range daemonSettings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		flag := cmd.Flags().Lookup(daemonSettings[key])
		if flag == nil || flag.Changed || !cfg.Exists(key) {
			continue
		}
		values, err := flagValues(key, cfg.Get(key))
		if err != nil {
			return err
		}
		for _, v := range values {
			// The flag checks the value's range (flags.go): the file and the environment
			// are held to the flag's, and the problem is placed where the value came from.
			if err := cmd.Flags().Set(flag.Name, v); err != nil {
				return fmt.Errorf("daemon configuration is invalid:\n  %s: %s: %w", settingOrigin(file, environ, key), key, err)
			}
		}
	}
	return nil
}

// flagValues turns a configuration value into the strings its flag parses: one per
// element for a list flag.
func flagValues(key string, v any) ([]string, error) {
	switch v := v.(type) {
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			out[i] = fmt.Sprint(e)
		}
		return out, nil
	case map[string]any:
		if key != "clusters" {
			return nil, fmt.Errorf("daemon configuration %s: not a value", key)
		}
		return clusterArgs(v), nil
	default:
		return []string{fmt.Sprint(v)}, nil
	}
}

// clusterArgs turns clusters: {name: {kubeconfig, context}} into --cluster values.
func clusterArgs(m map[string]any) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]string, 0, len(m))
	for _, n := range names {
		c, _ := m[n].(map[string]any)
		arg := fmt.Sprintf("%s=%v", n, c["kubeconfig"])
		if ctx, ok := c["context"]; ok && ctx != "" {
			arg += fmt.Sprintf("@%v", ctx)
		}
		out = append(out, arg)
	}
	return out
}

// settingVars keeps the CIRCLE_* variables that name a setting. Others with the prefix
// (CIRCLE_GIT_PASSWORD, CIRCLE_KEY_FILES, the test environment's) are read where they are
// used, and must not fail the schema as unknown keys.
func settingVars(environ []string) []string {
	var out []string
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "CIRCLE_") {
			continue
		}
		key := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "CIRCLE_")), "__", ".")
		if _, ok := daemonSettings[key]; ok || strings.HasPrefix(key, "clusters.") {
			out = append(out, kv)
		}
	}
	return out
}

// settingOrigin is where key's value came from: its CIRCLE_* variable when the environment
// sets one (it wins over the file), else its line in the file.
func settingOrigin(file string, environ []string, key string) string {
	name := "CIRCLE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
	for _, kv := range environ {
		if strings.HasPrefix(kv, name+"=") {
			return name
		}
	}
	var root yaml.Node
	if b, err := os.ReadFile(file); err == nil && yaml.Unmarshal(b, &root) == nil {
		if line := lineOf(&root, strings.Split(key, ".")); line > 0 {
			return fmt.Sprintf("%s:%d", file, line)
		}
	}
	return file
}

// configProblems reports each schema problem at its line in the file, where the key came
// from the file; one from the environment is reported with its variable.
func configProblems(file string, verr *config.ValidationError) error {
	var root yaml.Node
	if file != "" {
		if b, err := os.ReadFile(file); err == nil {
			_ = yaml.Unmarshal(b, &root) // a file that does not parse failed earlier
		}
	}
	lines := make([]string, len(verr.Problems))
	for i, p := range verr.Problems {
		if line := lineOf(&root, strings.Split(p.Path, ".")); line > 0 {
			lines[i] = fmt.Sprintf("%s:%d: %s: %s", file, line, p.Path, p.Message)
		} else {
			lines[i] = fmt.Sprintf("CIRCLE_%s: %s: %s", strings.ToUpper(strings.ReplaceAll(p.Path, ".", "__")), p.Path, p.Message)
		}
	}
	return fmt.Errorf("daemon configuration is invalid:\n  %s", strings.Join(lines, "\n  "))
}

// lineOf is the line of the key at path in a YAML document, or 0.
func lineOf(n *yaml.Node, path []string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for i, key := range path {
		if idx, err := strconv.Atoi(key); err == nil && n.Kind == yaml.SequenceNode {
			// A list element (keys.kms_allow.0): its own line.
			if idx < 0 || idx >= len(n.Content) {
				return 0
			}
			if i == len(path)-1 {
				return n.Content[idx].Line
			}
			n = n.Content[idx]
			continue
		}
		if n.Kind != yaml.MappingNode {
			return 0
		}
		found := false
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == key {
				if i == len(path)-1 {
					return n.Content[j].Line
				}
				n, found = n.Content[j+1], true
				break
			}
		}
		if !found {
			return 0
		}
	}
	return 0
}
