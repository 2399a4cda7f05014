package repo_test

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/schema"
)

// Without keys, the examples load: each secret stands in as its type and is listed as not
// decrypted, the plain values are the real ones, and Split still puts the secrets' paths in
// the Secret.
func TestLoad_NoDecrypt(t *testing.T) {
	fsys := examples(t)
	fsys["secrets/prod.sops.yaml"] = &fstest.MapFile{Data: encryptCanary(t, "db:\n  password: "+Canary+"\n  port: 6543\n")}
	r, inv := load(t, fsys, repo.Options{NoDecrypt: true})
	if inv != nil {
		t.Fatalf("problems: %v", inv.Problems)
	}
	prod := r.Env("prod")
	db := prod.Config["db"].(map[string]any)
	if db["password"] != schema.NotDecrypted || db["host"] != "db.prod.internal" {
		t.Errorf("prod's db: %v", db)
	}
	if db["port"] != schema.NotDecrypted {
		t.Errorf("an int secret: %v, want it unknown", db["port"])
	}
	if !slices.Contains(prod.NotDecrypted, "db.password") || !slices.Contains(prod.NotDecrypted, "db.port") {
		t.Errorf("NotDecrypted %v", prod.NotDecrypted)
	}
	plain, sensitive := prod.Split()
	if _, ok := plain["db"].(map[string]any)["password"]; ok {
		t.Error("the secret's path is in the ConfigMap's half")
	}
	if sensitive["db"].(map[string]any)["password"] != schema.NotDecrypted {
		t.Errorf("the Secret's half: %v", sensitive)
	}
	for _, e := range r.Envs {
		if strings.Contains(strings.Join(e.NotDecrypted, ","), Canary) {
			t.Error("a path holds the secret")
		}
	}
	if strings.Contains(prod.Config["db"].(map[string]any)["password"].(string), Canary) {
		t.Error("the secret was decrypted")
	}
}

// What can be checked without keys is: a plain value against the schema, a missing
// required field, a field not allowed, and a secret whose type tag the schema refuses.
func TestLoad_NoDecryptProblems(t *testing.T) {
	for _, c := range []struct {
		name, file, content, want string
	}{
		{"plain value", "config/prod/db.yaml", "db:\n  host: db.prod.internal\n  name: shop_prod\n  port: \"x\"\n", "config/prod/db.yaml:4:9: db.port"},
		{"missing", "config/base/db.yaml", "db:\n  port: 5432\n", "db.host"},
		{"not allowed", "config/prod/db.yaml", "db:\n  host: db.prod.internal\n  name: shop_prod\n  hots: x\n", "db.hots: field not allowed"},
		{"secret's type", "secrets/prod.sops.yaml", "", "secrets/prod.sops.yaml:2:15: db.password: conflicting values string and int"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := examples(t)
			data := []byte(c.content)
			if c.file == "secrets/prod.sops.yaml" {
				data = encryptCanary(t, "db:\n  password: 12345\n") // an int where the schema wants a string
			}
			fsys[c.file] = &fstest.MapFile{Data: data}
			_, inv := load(t, fsys, repo.Options{NoDecrypt: true})
			if inv == nil {
				t.Fatal("no problem")
			}
			var all []string
			for _, p := range inv.Problems {
				all = append(all, p.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), c.want) {
				t.Errorf("problems:\n%s\nwant %q", strings.Join(all, "\n"), c.want)
			}
		})
	}
}
