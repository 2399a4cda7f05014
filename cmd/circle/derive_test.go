package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
)

// derivingSchema computes plain fields from the secret db.password, each in another form:
// what an attacker with write access to the repository adds to read a secret in a pull
// request's plan or in the published ConfigMap.
const derivingSchema = `package circle

import (
	"encoding/base64"
	"strings"
)

#Config: {
	db: _
	derived: {
		dsn:   "pw=\(db.password)"
		b64:   base64.Encode(null, db.password)
		upper: strings.ToUpper(db.password)
		split: strings.Split(db.password, "")
		nested: {deeper: value: "x-\(db.password)", plain: "stays plain"}
	}
}
`

// derivedForms are the canary and what derivingSchema turns it into, each as it may
// appear in an output once whitespace and backslashes are removed (a list spread over
// indented lines, or quoted inside a JSON string).
func derivedForms() map[string]string {
	split, _ := json.Marshal(strings.Split(canary, ""))
	return map[string]string{
		"plain":  canary,
		"base64": base64.StdEncoding.EncodeToString([]byte(canary)),
		"upper":  strings.ToUpper(canary),
		"split":  string(split[1 : len(split)-1]),
	}
}

func assertNoDerivedForm(t *testing.T, what, out string) {
	t.Helper()
	flat := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '\\' {
			return -1
		}
		return r
	}, out)
	for name, form := range derivedForms() {
		if strings.Contains(flat, form) {
			t.Errorf("%s shows the canary's %s form", what, name)
		}
	}
}

// derivingRepo is the example repository with derivingSchema and the canary as prod's
// db.password, encrypted by the real sops CLI.
func derivingRepo(t *testing.T, dir string) {
	write(t, dir, "schema/derived.cue", derivingSchema)
	encryptWithSOPS(t, dir, "secrets/prod.sops.yaml", "db:\n  password: "+canary+"\n")
}

// A pull request adding derivingSchema: circle plan, in every format, shows the derived
// fields as changes and none of the canary's forms.
func TestPlan_DerivedSecrets(t *testing.T) {
	dir := copyExamples(t)
	g := newGitRepo(t, dir)
	base := g.commit(t, "base")
	derivingRepo(t, dir)
	g.commit(t, "derive plain values from the password")
	for _, format := range []string{"text", "json", "markdown"} {
		code, out, errOut := run(t, "plan", dir, "--base", base, "--key-file", exampleKey, "-o", format, "--full")
		if code != planChanges {
			t.Fatalf("-o %s: exit %d\n%s%s", format, code, out, errOut)
		}
		assertNoDerivedForm(t, "plan -o "+format, out+errOut)
		for _, want := range []string{"derived.dsn", "derived.nested.deeper.value", "**redacted:", "stays plain"} {
			if !strings.Contains(out, want) {
				t.Errorf("plan -o %s lacks %q:\n%s", format, want, out)
			}
		}
	}
}

// circle render of that repository: the ConfigMap holds none of the derived values, the
// Secret masks them, in YAML and JSON; circle validate --origins shows none either.
func TestRender_DerivedSecrets(t *testing.T) {
	dir := copyExamples(t)
	derivingRepo(t, dir)
	for _, format := range []string{"yaml", "json"} {
		code, out, errOut := run(t, "render", dir, "--env", "prod", "--key-file", exampleKey, "-o", format)
		if code != exitOK {
			t.Fatalf("-o %s: exit %d\n%s", format, code, errOut)
		}
		assertNoDerivedForm(t, "render -o "+format, out+errOut)
		// The plain part of derived is in the ConfigMap; the rest went to the Secret.
		if !strings.Contains(out, "stays plain") || strings.Contains(out, `"dsn"`) || strings.Contains(out, `"upper"`) {
			t.Errorf("render -o %s: the ConfigMap holds a derived value or lost a plain one:\n%s", format, out)
		}
	}
	code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey, "--origins", "-o", "json")
	if code != exitOK {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}
	assertNoDerivedForm(t, "validate --origins", out+errOut)
}
