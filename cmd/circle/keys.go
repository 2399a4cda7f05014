package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/secrets"
)

// keyFlags say where SOPS keys come from (secrets.Providers).
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

// keyring gathers every configured key (secrets.Providers.Keyring).
func (k *keyFlags) keyring(ctx context.Context) (*secrets.Keyring, error) {
	// The flag's entries are checked here so an error names the flag.
	if err := (&secrets.Keyring{}).AllowRemote(k.kmsAllow...); err != nil {
		return nil, fmt.Errorf("--kms-allow: %w", err)
	}
	p := secrets.Providers{Files: k.files, AllowRemote: k.kmsAllow}
	if k.secret != "" {
		p.Secret = k.secretData
	}
	return p.Keyring(ctx)
}

// secretData reads --keys-secret from the cluster of --kubeconfig.
func (k *keyFlags) secretData(ctx context.Context) (map[string][]byte, error) {
	ns, name, ok := strings.Cut(k.secret, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("--keys-secret %q: want namespace/name", k.secret)
	}
	cfg, err := k.restConfig()
	if err != nil {
		return nil, fmt.Errorf("--keys-secret: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("--keys-secret: %w", err)
	}
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("--keys-secret %s: %w", k.secret, err)
	}
	return s.Data, nil
}

// restConfig is --kubeconfig's cluster, or KUBECONFIG, ~/.kube/config, or in-cluster.
func (k *keyFlags) restConfig() (*rest.Config, error) {
	cfg, err := apply.RESTConfig(k.kubeconfig, "")
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}
