package repo_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/secrets"
)

func TestCheckSecrets(t *testing.T) {
	m := examples(t)
	settings, problems := repo.LoadSettings(m)
	if problems != nil {
		t.Fatal(problems)
	}
	good := m["secrets/prod.sops.yaml"].Data
	tampered := strings.Replace(string(good), "ENC[AES256_GCM,data:", "ENC[AES256_GCM,data:AA", 1)
	m["secrets/README.md"] = &fstest.MapFile{Data: []byte("# how to edit\n")}
	m["secrets/plain.yaml"] = &fstest.MapFile{Data: []byte("password: hunter2\n")}
	m["secrets/tampered.sops.yaml"] = &fstest.MapFile{Data: []byte(tampered)}
	m["config/base/extra.sops.json"] = &fstest.MapFile{Data: []byte(`{"a": 1}`)}

	checks, err := repo.CheckSecrets(context.Background(), m, settings, exampleKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]repo.SecretCheck{}
	for _, c := range checks {
		got[c.File] = c
	}
	if _, ok := got[".sops.yaml"]; ok {
		t.Error("sops' creation-rules file was checked as a secret")
	}
	if _, ok := got["secrets/README.md"]; ok {
		t.Error("a README beside the secrets was checked")
	}
	for file, want := range map[string]string{
		"secrets/dev.sops.yaml":       "",
		"secrets/prod.sops.yaml":      "",
		"secrets/plain.yaml":          "not encrypted with SOPS",
		"config/base/extra.sops.json": "not encrypted with SOPS",
		"secrets/tampered.sops.yaml":  "",
	} {
		c, ok := got[file]
		switch {
		case !ok:
			t.Errorf("%s not checked", file)
		case want == "" && file != "secrets/tampered.sops.yaml" && (!c.OK() || len(c.Recipients) != 1 || !strings.HasPrefix(c.Recipients[0], "age age1")):
			t.Errorf("%s: %+v", file, c)
		case want != "" && c.Error != want:
			t.Errorf("%s: error %q, want %q", file, c.Error, want)
		}
	}
	if c := got["secrets/tampered.sops.yaml"]; c.OK() || strings.HasPrefix(c.Error, "decrypt ") {
		t.Errorf("tampered: %+v", c)
	}

	// Without keys nothing opens, and each failure names the recipients.
	checks, err = repo.CheckSecrets(context.Background(), m, settings, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.OK() {
			t.Errorf("%s opened without keys", c.File)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := repo.CheckSecrets(ctx, m, settings, &secrets.Keyring{}); err == nil {
		t.Error("a cancelled check succeeded")
	}
}
