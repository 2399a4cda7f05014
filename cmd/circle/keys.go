package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/secrets"
)

// keyFlags says where SOPS keys come from. The process environment is read, never written:
// sops' own CLI takes keys from SOPS_AGE_KEY_FILE and friends by setting globals, which a
// daemon serving several repositories cannot afford.
type keyFlags struct {
	files      []string
	secret     string
	kubeconfig string
	kmsAllow   []string
}

func (k *keyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&k.files, "key-file", nil,
		"file with SOPS decryption keys: age identities, or an OpenPGP secret key (.asc); repeatable.\n"+
			"Also read: CIRCLE_KEY_FILES (paths separated by "+string(os.PathListSeparator)+") and CIRCLE_AGE_KEY (age identities inline)")
	cmd.Flags().StringVar(&k.secret, "keys-secret", "",
		"Kubernetes Secret namespace/name holding keys, Flux-style (*.agekey, *.asc)")
	cmd.Flags().StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig for --keys-secret (default: KUBECONFIG, ~/.kube/config, or in-cluster)")
	cmd.Flags().StringArrayVar(&k.kmsAllow, "kms-allow", nil,
		"a remote key source SOPS data keys may be requested from, with this process's credentials; repeatable.\n"+
			"Default: none, so no request leaves the process; a SOPS file naming any other remote key\n"+
			"is refused at its line, unopened. age and PGP keys (--key-file) make no request.\n"+
			"Also read: CIRCLE_KMS_ALLOW (entries separated by commas or whitespace). Syntax is\n"+
			secrets.RemoteKeySyntax+"\n"+
			"e.g. --kms-allow hc_vault:https://vault.example.com:8200/v1/sops/keys/circle")
}

// keyring gathers every configured key; several keys may be tried for each file.
func (k *keyFlags) keyring(ctx context.Context) (*secrets.Keyring, error) {
	var ring secrets.Keyring
	files := append([]string(nil), k.files...)
	if env := os.Getenv("CIRCLE_KEY_FILES"); env != "" {
		files = append(files, filepath.SplitList(env)...)
	}
	for _, f := range files {
		if err := ring.AddFile(f); err != nil {
			return nil, err
		}
	}
	if inline := os.Getenv("CIRCLE_AGE_KEY"); inline != "" {
		if err := ring.AddAge([]byte(inline)); err != nil {
			return nil, fmt.Errorf("CIRCLE_AGE_KEY: %w", err)
		}
	}
	if err := ring.AllowRemote(k.kmsAllow...); err != nil {
		return nil, fmt.Errorf("--kms-allow: %w", err)
	}
	// The environment adds to the flags, as CIRCLE_KEY_FILES does to --key-file.
	if env := os.Getenv("CIRCLE_KMS_ALLOW"); env != "" {
		list := strings.FieldsFunc(env, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		if err := ring.AllowRemote(list...); err != nil {
			return nil, fmt.Errorf("CIRCLE_KMS_ALLOW: %w", err)
		}
	}
	if k.secret != "" {
		if err := k.addSecret(ctx, &ring); err != nil {
			return nil, err
		}
	}
	return &ring, nil
}

func (k *keyFlags) addSecret(ctx context.Context, ring *secrets.Keyring) error {
	ns, name, ok := strings.Cut(k.secret, "/")
	if !ok || ns == "" || name == "" {
		return fmt.Errorf("--keys-secret %q: want namespace/name", k.secret)
	}
	cfg, err := k.restConfig()
	if err != nil {
		return fmt.Errorf("--keys-secret: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("--keys-secret: %w", err)
	}
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("--keys-secret %s: %w", k.secret, err)
	}
	if err := ring.AddSecretData(s.Data); err != nil {
		return fmt.Errorf("--keys-secret %s: %w", k.secret, err)
	}
	return nil
}

// restConfig is --kubeconfig's cluster, or KUBECONFIG, ~/.kube/config, or in-cluster.
func (k *keyFlags) restConfig() (*rest.Config, error) {
	cfg, err := apply.RESTConfig(k.kubeconfig, "")
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}
