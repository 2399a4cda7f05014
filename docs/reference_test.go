package docs_test

import (
	"os"
	"strings"
	"testing"

	"github.com/circlecore/circle/docs"
)

// reference.md is what the schemas give: a key added to a schema and not regenerated (go
// generate ./docs) fails here, in CI.
func TestReference(t *testing.T) {
	sections, err := docs.Sections("..")
	if err != nil {
		t.Fatal(err)
	}
	want, err := docs.Reference(sections...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("reference.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("docs/reference.md is not what the schemas give: run go generate ./docs")
	}
	// What a user looks for is there: every section, nested keys, defaults and comments.
	for _, s := range []string{"## circle.yaml", "`environments[].policy.requireSignedCommits`", "`paths.manifests`",
		"`*\"deploy\" \\| #RelPath`", "## The kubernetes key of configuration", "`kubernetes.volumes.<name>.size`", "`kubernetes.ingresses.<name>.paths.<path>.service`",
		"## The daemon's configuration", "`source.url?`", "A local folder, or a Git URL"} {
		if !strings.Contains(string(got), s) {
			t.Errorf("reference.md lacks %s", s)
		}
	}
}

func TestReference_BadSchema(t *testing.T) {
	if _, err := docs.Reference(docs.Section{Source: []byte("#A: {"), File: "bad.cue", Definition: "#A"}); err == nil ||
		!strings.Contains(err.Error(), "bad.cue") {
		t.Errorf("a broken schema: %v", err)
	}
	if _, err := docs.Reference(docs.Section{Source: []byte("#A: {}"), File: "a.cue", Definition: "#B"}); err == nil {
		t.Error("a missing definition: no error")
	}
	if _, err := docs.Sections("/nonexistent"); err == nil {
		t.Error("a missing schema file: no error")
	}
}
