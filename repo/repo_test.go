package repo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/schema"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/testenv"
)

const exampleRecipient = "age1t0ey88ttppf0v0zu30m7g67wmjlmhs52nr6apua6cjr9z32sdg4q6w7k3c"

// examples reads examples/ into a snapshot-like tree a test may edit.
func examples(t testing.TB) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := filepath.WalkDir("../examples", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../examples", p)
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func exampleKeys(t testing.TB) *secrets.Keyring {
	t.Helper()
	var k secrets.Keyring
	if err := k.AddFile("../examples/keys/age.example.key"); err != nil {
		t.Fatal(err)
	}
	return &k
}

func load(t *testing.T, fsys fs.FS, opts repo.Options) (*repo.Repo, *repo.Invalid) {
	t.Helper()
	r, err := repo.Load(context.Background(), fsys, opts)
	var inv *repo.Invalid
	if errors.As(err, &inv) {
		return nil, inv
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, nil
}

func TestLoadExamples(t *testing.T) {
	r, inv := load(t, examples(t), repo.Options{Keyring: exampleKeys(t)})
	if inv != nil {
		t.Fatal(inv)
	}
	if got := strings.Join(r.Settings.EnvNames(), ","); got != "dev,staging,prod" {
		t.Fatalf("environments = %s", got)
	}
	prod := r.Env("prod")
	app := prod.Config["app"].(map[string]any)
	db := prod.Config["db"].(map[string]any)
	if app["replicas"] != json.Number("4") || app["logLevel"] != "warn" || app["name"] != "shop" {
		t.Errorf("prod app = %v", app)
	}
	if db["host"] != "db.prod.internal" || db["port"] != json.Number("5432") || db["password"] != "example-prod-db-password" {
		t.Errorf("prod db = %v", db)
	}
	// Where each value came from.
	for p, want := range map[string]string{
		"app.replicas": "config/prod/app.yaml:2:13",
		"app.name":     "config/base/app.yaml:2:9",
		"db.password":  "secrets/prod.sops.yaml:2:15",
	} {
		if o, ok := prod.Merged.Origin(p); !ok || o.String() != want {
			t.Errorf("prod %s from %v, want %s", p, o, want)
		}
	}
	if !prod.Sensitive("db.password") || !prod.Sensitive("api.token") || prod.Sensitive("db.host") {
		t.Error("sensitivity wrong")
	}
	// The redacted view hides both secrets and nothing else.
	red, _ := json.Marshal(prod.Redacted())
	for _, secret := range []string{"example-prod-db-password", "example-prod-api-token"} {
		if bytes.Contains(red, []byte(secret)) {
			t.Errorf("redacted config shows %s: %s", secret, red)
		}
	}
	if !bytes.Contains(red, []byte(`"host":"db.prod.internal"`)) || !bytes.Contains(red, []byte("**redacted:")) {
		t.Errorf("redacted config: %s", red)
	}
	if got := r.Redactor().String("error: example-dev-db-password"); strings.Contains(got, "example-dev") {
		t.Errorf("redactor does not know the dev secret: %s", got)
	}
	// dev's schema default: logLevel set in dev, replicas from base.
	if r.Env("dev").Config["app"].(map[string]any)["logLevel"] != "debug" {
		t.Error("dev logLevel")
	}
	if r.Env("nope") != nil {
		t.Error("Env(nope) != nil")
	}
}

// The acceptance case: one wrong type, one unknown field, one out-of-range number and one
// missing required key give four problems, each at the line to fix.
func TestLoadReportsEveryProblem(t *testing.T) {
	m := examples(t)
	m["config/prod/app.yaml"] = &fstest.MapFile{Data: []byte("app:\n  replicas: four\n  logLevel: warn\n  colour: blue\n")}
	m["config/prod/db.yaml"] = &fstest.MapFile{Data: []byte("db:\n  host: db.prod.internal\n  name: shop_prod\n  port: 70000\n")}
	m["config/base/db.yaml"] = &fstest.MapFile{Data: []byte("db:\n  port: 5432\n  name: shop\n")} // dev has no host now
	_, inv := load(t, m, repo.Options{Keyring: exampleKeys(t)})
	if inv == nil {
		t.Fatal("invalid repository loaded")
	}
	want := []string{
		"config/prod/app.yaml:2:13: app.replicas: conflicting values \"four\" and int (mismatched types string and int) [prod]",
		"config/prod/app.yaml:4:3: app.colour: field not allowed [prod]",
		"config/prod/db.yaml:4:9: db.port: invalid value 70000 (out of bound <65536) [prod]",
		"schema/app.cue:11:9: db.host: required field is missing (string) [dev]",
	}
	var got []string
	for _, p := range inv.Problems {
		got = append(got, p.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(inv.Error(), "4 problem(s):\n") {
		t.Errorf("Error() = %q", inv.Error())
	}
}

func TestSettingsProblems(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"unknown field": {
			"apiVersion: circle/v1\nenvironmnts:\n  - name: dev\n",
			`circle.yaml:2:1: environmnts: field not allowed; did you mean "environments"?`,
		},
		"bad name": {
			"apiVersion: circle/v1\nenvironments:\n  - name: Prod\n",
			`circle.yaml:3:11: environments.0.name: invalid value "Prod" (out of bound =~"^[a-z][a-z0-9-]{0,62}$")`,
		},
		"duplicate": {
			"apiVersion: circle/v1\nenvironments:\n  - name: dev\n  - name: dev\n",
			`circle.yaml: environments.1.name: environment "dev" is listed twice`,
		},
		"unknown target env": {
			"apiVersion: circle/v1\nenvironments:\n  - name: dev\ntargets:\n  - name: s3\n    kind: storage\n    environments: [prod]\n",
			`circle.yaml: targets.0.environments: target "s3" names environment "prod", which circle.yaml does not define`,
		},
		"path escapes": {
			"apiVersion: circle/v1\nenvironments:\n  - name: dev\npaths:\n  config: ../outside\n",
			`circle.yaml:5:11: paths.config: invalid value "../outside"`,
		},
		"not yaml": {"apiVersion: [\n", "circle.yaml:"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, inv := load(t, fstest.MapFS{"circle.yaml": {Data: []byte(c.yaml)}}, repo.Options{})
			if inv == nil {
				t.Fatal("loaded")
			}
			if !strings.HasPrefix(inv.Problems[0].String(), c.want) {
				t.Errorf("got %q, want prefix %q", inv.Problems[0], c.want)
			}
		})
	}
	_, inv := load(t, fstest.MapFS{}, repo.Options{})
	if inv == nil || !strings.Contains(inv.Error(), "circle.yaml: not found") {
		t.Errorf("missing circle.yaml: %v", inv)
	}
}

func TestSecretsProblems(t *testing.T) {
	m := examples(t)
	// No keys at all: every environment's secrets file is named with its recipient.
	_, inv := load(t, m, repo.Options{})
	if inv == nil || len(inv.Problems) != 3 {
		t.Fatalf("problems = %v", inv)
	}
	for _, p := range inv.Problems {
		if !strings.Contains(p.String(), "no key in the keyring opens it") || !strings.Contains(p.String(), exampleRecipient) || !strings.HasPrefix(p.File, "secrets/") {
			t.Errorf("problem = %s", p)
		}
	}
	// A plaintext file in the secrets folder is refused, not read.
	m["secrets/prod/extra.yaml"] = &fstest.MapFile{Data: []byte("db:\n  password: committed-in-clear\n")}
	_, inv = load(t, m, repo.Options{Keyring: exampleKeys(t), Envs: []string{"prod"}})
	if inv == nil || !strings.Contains(inv.Error(), "secrets/prod/extra.yaml: not encrypted with SOPS") || strings.Contains(inv.Error(), "committed-in-clear") {
		t.Errorf("plaintext secret: %v", inv)
	}
}

func TestEnvFilterAndOverrides(t *testing.T) {
	r, inv := load(t, examples(t), repo.Options{
		Keyring:   exampleKeys(t),
		Envs:      []string{"prod"},
		Overrides: map[string]map[string]any{"prod": {"app": map[string]any{"replicas": 6}}},
	})
	if inv != nil {
		t.Fatal(inv)
	}
	if len(r.Envs) != 1 || r.Envs[0].Name != "prod" {
		t.Fatalf("envs = %v", r.Envs)
	}
	if got := r.Envs[0].Config["app"].(map[string]any)["replicas"]; got != json.Number("6") {
		t.Errorf("override replicas = %v", got)
	}
	if o, _ := r.Envs[0].Merged.Origin("app.replicas"); o.String() != "daemon overrides" {
		t.Errorf("override origin = %v", o)
	}
	if _, err := repo.Load(context.Background(), examples(t), repo.Options{Envs: []string{"qa"}}); err == nil || !strings.Contains(err.Error(), `"qa" is not in circle.yaml`) {
		t.Errorf("unknown env: %v", err)
	}
}

// A repository without a schema folder still loads; its config is only checked as data.
func TestLoadWithoutSchema(t *testing.T) {
	m := fstest.MapFS{
		"circle.yaml":              {Data: []byte("apiVersion: circle/v1\nenvironments:\n  - name: dev\nredact:\n  keyPattern: ^pin$\n")},
		"config/base/a.yaml":       {Data: []byte("a: 1\npin: \"4711-2342\"\n")},
		"config/base/README.md":    {Data: []byte("not config")},
		"config/dev/nested/b.json": {Data: []byte(`{"b": [1, 2]}`)},
	}
	r, inv := load(t, m, repo.Options{})
	if inv != nil {
		t.Fatal(inv)
	}
	b, _ := json.Marshal(r.Env("dev").Config)
	if string(b) != `{"a":1,"b":[1,2],"pin":"4711-2342"}` {
		t.Errorf("config = %s", b)
	}
	if red, _ := json.Marshal(r.Env("dev").Redacted()); strings.Contains(string(red), "4711") {
		t.Errorf("the repository's key pattern was not applied: %s", red)
	}
	m["circle.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: circle/v1\nenvironments:\n  - name: dev\nredact:\n  keyPattern: \"(\"\n")}
	if _, inv := load(t, m, repo.Options{}); inv == nil || !strings.Contains(inv.Error(), "redact.keyPattern") {
		t.Errorf("bad key pattern: %v", inv)
	}
}

// encryptCanary writes secrets/prod.sops.yaml with the canary, made by the real sops CLI.
func encryptCanary(t *testing.T, plain string) []byte {
	t.Helper()
	bin, err := testenv.Tool(testenv.ToolSOPS)
	if err != nil {
		t.Fatal(err) // make testenv installs it; a missing tool fails, never skips
	}
	f := filepath.Join(t.TempDir(), "prod.sops.yaml")
	if err := os.WriteFile(f, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "encrypt", "--age", exampleRecipient, f)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sops: %v", err)
	}
	return out
}

// Canary is the secret the redaction tests hunt for in everything the suite captures.
const Canary = "CANARY-4c1d-never-in-plaintext"

// A secret that breaks the schema is reported at its line, without its value.
func TestSecretNeverInProblems(t *testing.T) {
	m := examples(t)
	// The schema wants a port number; the secret file gives a string: CUE's message quotes it.
	m["secrets/prod.sops.yaml"] = &fstest.MapFile{Data: encryptCanary(t, "db:\n    password: ok-password\n    port: "+Canary+"\n")}
	r := redact.New()
	_, err := repo.Load(context.Background(), m, repo.Options{Keyring: exampleKeys(t), Redactor: r})
	if err == nil {
		t.Fatal("loaded")
	}
	if strings.Contains(err.Error(), Canary) {
		t.Fatalf("the problem shows the secret: %v", err)
	}
	if !strings.Contains(err.Error(), "secrets/prod.sops.yaml:3:11: db.port: conflicting values \""+r.Mask(Canary)+"\" and int") {
		t.Errorf("problem = %v", err)
	}
}

// Split puts SOPS values and values under secret-looking keys apart from the plain ones,
// keeping the nesting.
func TestEnvSplit(t *testing.T) {
	r, inv := load(t, examples(t), repo.Options{Keyring: exampleKeys(t)})
	if inv != nil {
		t.Fatal(inv)
	}
	plain, sensitive := r.Env("prod").Split()
	db, _ := sensitive["db"].(map[string]any)
	if db == nil || db["password"] == nil || db["host"] != nil {
		t.Errorf("sensitive = %v", sensitive)
	}
	pdb, _ := plain["db"].(map[string]any)
	if pdb == nil || pdb["host"] != "db.prod.internal" || pdb["password"] != nil {
		t.Errorf("plain = %v", plain)
	}
}

// An environment's namespace (for Circle's generated objects when its overlay sets none) is
// read from circle.yaml, and must be a Kubernetes name.
func TestSettingsNamespace(t *testing.T) {
	s, problems := repo.LoadSettings(fstest.MapFS{"circle.yaml": {Data: []byte(
		"apiVersion: circle/v1\nenvironments:\n  - name: dev\n    namespace: shop-dev\n  - name: prod\n")}})
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	if s.Namespace("dev") != "shop-dev" || s.Namespace("prod") != "" || s.Namespace("nope") != "" {
		t.Errorf("namespaces: dev %q, prod %q, nope %q", s.Namespace("dev"), s.Namespace("prod"), s.Namespace("nope"))
	}
	_, problems = repo.LoadSettings(fstest.MapFS{"circle.yaml": {Data: []byte(
		"apiVersion: circle/v1\nenvironments:\n  - name: dev\n    namespace: Shop_Dev\n")}})
	if len(problems) != 1 || problems[0].File != "circle.yaml" || problems[0].Line != 4 {
		t.Errorf("a bad namespace: %+v", problems)
	}
}

// Settings read once by the caller are used as given: circle.yaml is not read again (here
// it is made unreadable after the first read, and the load still succeeds).
func TestLoad_SettingsGiven(t *testing.T) {
	fsys := examples(t)
	s, problems := repo.LoadSettings(fsys)
	if problems != nil {
		t.Fatal(problems)
	}
	fsys["circle.yaml"] = &fstest.MapFile{Data: []byte("not: [valid\n")}
	r, inv := load(t, fsys, repo.Options{Keyring: exampleKeys(t), Settings: s})
	if inv != nil || r.Settings != s || len(r.Envs) != 3 {
		t.Fatalf("with the settings given: %v, %+v", inv, r)
	}
	if _, inv := load(t, fsys, repo.Options{Keyring: exampleKeys(t)}); inv == nil {
		t.Error("without them, the broken circle.yaml is read and passes")
	}
}

// A problem a shared base gives three environments is reported once, naming the three; a
// different one stays apart, in the order found.
func TestProblemSet(t *testing.T) {
	var set repo.ProblemSet
	base := schema.Issue{File: "deploy/base/deployment.yaml", Line: 21, Path: "Deployment/web", Message: "privileged"}
	for _, env := range []string{"dev", "staging", "prod"} {
		set.Add(env, base)
	}
	set.Add("prod", schema.Issue{File: "deploy/prod/patch.yaml", Line: 3, Message: "latest tag"})
	got := set.List()
	if len(got) != 2 || strings.Join(got[0].Envs, ",") != "dev,staging,prod" || got[1].Envs[0] != "prod" || got[1].Line != 3 {
		t.Errorf("problems %v", got)
	}
	if got[0].String() != "deploy/base/deployment.yaml:21:0: Deployment/web: privileged [dev, staging, prod]" {
		t.Errorf("printed %q", got[0].String())
	}
}
