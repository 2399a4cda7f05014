package secrets

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// The process environment variables Providers reads, beside what a caller names: each adds
// to the matching explicit list, as sops' own SOPS_AGE_KEY_FILE does.
const (
	EnvKeyFiles = "CIRCLE_KEY_FILES" // key files, separated by the OS path list separator
	EnvAgeKey   = "CIRCLE_AGE_KEY"   // age identities, inline
	EnvKMSAllow = "CIRCLE_KMS_ALLOW" // allowed remote keys, separated by commas or whitespace
)

// Providers say where a process's SOPS keys come from: files, the environment, a
// Kubernetes Secret (Flux's layout), and which remote key services may be asked. The
// environment is read, never written: sops' own CLI takes keys from SOPS_AGE_KEY_FILE and
// friends by setting globals, which a daemon serving several repositories cannot afford.
type Providers struct {
	// Files hold age identities, or an OpenPGP secret key (.asc).
	Files []string
	// AllowRemote are the remote keys (RemoteKeySyntax) data keys may be requested from.
	AllowRemote []string
	// Secret, when set, reads the data of a Kubernetes Secret holding keys as Flux's
	// kustomize-controller does (*.agekey, *.asc); its errors are returned as they are.
	Secret func(context.Context) (map[string][]byte, error)
	// Getenv reads the environment; nil is os.Getenv.
	Getenv func(string) string
}

// Keyring gathers every configured key into one keyring; several keys may be tried for
// each file. An error names the source that failed.
func (p Providers) Keyring(ctx context.Context) (*Keyring, error) {
	getenv := p.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var ring Keyring
	files := append([]string(nil), p.Files...)
	if env := getenv(EnvKeyFiles); env != "" {
		files = append(files, filepath.SplitList(env)...)
	}
	for _, f := range files {
		if err := ring.AddFile(f); err != nil {
			return nil, err
		}
	}
	if inline := getenv(EnvAgeKey); inline != "" {
		if err := ring.AddAge([]byte(inline)); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvAgeKey, err)
		}
	}
	if err := ring.AllowRemote(p.AllowRemote...); err != nil {
		return nil, err
	}
	if env := getenv(EnvKMSAllow); env != "" {
		list := strings.FieldsFunc(env, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		if err := ring.AllowRemote(list...); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKMSAllow, err)
		}
	}
	if p.Secret != nil {
		data, err := p.Secret(ctx)
		if err != nil {
			return nil, err
		}
		if err := ring.AddSecretData(data); err != nil {
			return nil, fmt.Errorf("keys Secret: %w", err)
		}
	}
	return &ring, nil
}
