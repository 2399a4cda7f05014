package repo_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/testenv"
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

// tagCanary is the secret of the attacker tests; random-looking, so that none of its
// 4-character pieces occurs in a message by chance.
const tagCanary = "hV4nQ8rT2wL6yB9c"

// leak names the form of tagCanary text holds: itself, upper- or lower-case, base64, or
// any 4 characters of it in a row. Empty if none.
func leak(text string) string {
	for _, f := range []string{tagCanary, strings.ToUpper(tagCanary), base64.StdEncoding.EncodeToString([]byte(tagCanary)), base64.RawStdEncoding.EncodeToString([]byte(tagCanary))} {
		if strings.Contains(text, f) {
			return f
		}
	}
	lower := strings.ToLower(text)
	for i := 0; i+4 <= len(tagCanary); i++ {
		if p := strings.ToLower(tagCanary[i : i+4]); strings.Contains(lower, p) {
			return p
		}
	}
	return ""
}

// Item 5 of issue 17, through the repository: the canary's type tag changed from str to
// int, bool, float or time (no key needed). CheckSecrets and Load report the file, the
// line and the key path, and not the canary in any form, in text or JSON.
func TestSecretTypeTagFlipLeaksNothing(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	testenv.SOPSEncrypt(t, dir, "secrets/prod.sops.yaml", "db:\n    password: "+tagCanary+"\n    port: 5432\n")
	enc, err := os.ReadFile(filepath.Join(dir, "secrets/prod.sops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"int", "bool", "float", "time"} {
		t.Run(tag, func(t *testing.T) {
			lines := strings.Split(string(enc), "\n")
			if !strings.HasPrefix(lines[1], "    password: ENC[") {
				t.Fatalf("line 2 = %q", lines[1])
			}
			lines[1] = strings.Replace(lines[1], "type:str]", "type:"+tag+"]", 1)
			m := examples(t)
			m["secrets/prod.sops.yaml"] = &fstest.MapFile{Data: []byte(strings.Join(lines, "\n"))}
			settings, problems := repo.LoadSettings(m)
			if problems != nil {
				t.Fatal(problems)
			}

			checks, err := repo.CheckSecrets(context.Background(), m, settings, exampleKeys(t))
			if err != nil {
				t.Fatal(err)
			}
			out, _ := json.Marshal(checks)
			if l := leak(string(out)); l != "" {
				t.Fatalf("CheckSecrets carries %q:\n%s", l, out)
			}
			var found bool
			for _, c := range checks {
				if c.File == "secrets/prod.sops.yaml" {
					found = true
					if c.OK() || !strings.HasPrefix(c.Error, "line 2: db.password: ") || len(c.Problems) != 1 || c.Problems[0].Column != 5 {
						t.Errorf("check = %+v", c)
					}
				}
			}
			if !found {
				t.Fatal("prod's secrets not checked")
			}

			_, err = repo.Load(context.Background(), m, repo.Options{Keyring: exampleKeys(t)})
			var inv *repo.Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("Load: %v", err)
			}
			out, _ = json.Marshal(inv.Problems)
			if l := leak(err.Error() + string(out)); l != "" {
				t.Fatalf("Load carries %q:\n%s\n%s", l, err, out)
			}
			if !strings.Contains(err.Error(), "secrets/prod.sops.yaml:2:5: db.password: ") {
				t.Errorf("Load's error does not name the file, line and key: %v", err)
			}
		})
	}
}
