package secrets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/circlecore/circle/secrets"
)

// Every provider adds its keys to one keyring: files named and from CIRCLE_KEY_FILES, an
// inline CIRCLE_AGE_KEY, a Kubernetes Secret's data; the allow lists from both places; a
// bad source is an error that names it.
func TestProviders(t *testing.T) {
	ids := make([]*age.X25519Identity, 4)
	for i := range ids {
		var err error
		if ids[i], err = age.GenerateX25519Identity(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	for i, name := range []string{"flag.agekey", "env.agekey"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(ids[i].String()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		secrets.EnvKeyFiles: filepath.Join(dir, "env.agekey"),
		secrets.EnvAgeKey:   ids[2].String(),
		secrets.EnvKMSAllow: "hc_vault:https://vault.example:8200/v1/sops/keys/b, hc_vault:https://vault.example:8200/v1/sops/keys/c",
	}
	p := secrets.Providers{
		Files:       []string{filepath.Join(dir, "flag.agekey")},
		AllowRemote: []string{"hc_vault:https://vault.example:8200/v1/sops/keys/a"},
		Secret: func(context.Context) (map[string][]byte, error) {
			return map[string][]byte{"identity.agekey": []byte(ids[3].String())}, nil
		},
		Getenv: func(k string) string { return env[k] },
	}
	ring, err := p.Keyring(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ring.Len() != 4 {
		t.Errorf("keys = %d, want one from each of the four providers", ring.Len())
	}
	if got := ring.RemoteAllowed(); len(got) != 3 {
		t.Errorf("remote keys allowed = %v, want the flag's and the environment's", got)
	}

	for name, tc := range map[string]struct {
		p    secrets.Providers
		env  map[string]string
		want string
	}{
		"a missing file":      {p: secrets.Providers{Files: []string{filepath.Join(dir, "nope")}}, want: "nope"},
		"a bad inline key":    {env: map[string]string{secrets.EnvAgeKey: "AGE-SECRET-KEY-1NOTAKEY"}, want: secrets.EnvAgeKey},
		"a bad allow entry":   {env: map[string]string{secrets.EnvKMSAllow: "vault:https://x"}, want: secrets.EnvKMSAllow},
		"a Secret unreadable": {p: secrets.Providers{Secret: func(context.Context) (map[string][]byte, error) { return nil, errors.New("forbidden") }}, want: "forbidden"},
		"a Secret with a bad key": {p: secrets.Providers{Secret: func(context.Context) (map[string][]byte, error) {
			return map[string][]byte{"x.agekey": []byte("AGE-SECRET-KEY-1NOTAKEY")}, nil
		}}, want: "keys Secret"},
	} {
		tc.p.Getenv = func(k string) string { return tc.env[k] }
		if _, err := tc.p.Keyring(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %q", name, err, tc.want)
		}
	}
}
