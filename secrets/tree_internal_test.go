package secrets

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/cmd/sops/formats"
)

// Circle's JSON writer gives sops' JSON store's bytes for every kind of value sops holds:
// maps in order, lists, comments dropped, HTML characters escaped as encoding/json does.
func TestEmitJSONMatchesSops(t *testing.T) {
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tree := sops.TreeBranches{{
		{Key: sops.Comment{Value: "a comment"}},
		{Key: "s", Value: "a<b>&c \"quoted\" \u2028"},
		{Key: "n", Value: 5},
		{Key: "f", Value: 0.5},
		{Key: "b", Value: true},
		{Key: "t", Value: when},
		{Key: "nil", Value: nil},
		{Key: "list", Value: []any{1, "x", sops.Comment{Value: "c"}, []any{}, sops.TreeBranch{}, sops.TreeBranch{{Key: "k", Value: "v"}}}},
		{Key: "map", Value: sops.TreeBranch{{Key: "inner", Value: []any{sops.Comment{Value: "only"}}}}},
	}}
	got, err := emit("f.json", formats.Json, tree)
	if err != nil {
		t.Fatal(err)
	}
	want, err := store("f.json").EmitPlainFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("Circle:\n%s\nsops:\n%s", got, want)
	}
	for name, bad := range map[string]sops.TreeBranches{
		"NaN":        {{{Key: "f", Value: math.NaN()}}},
		"NaN listed": {{{Key: "f", Value: []any{math.Inf(1)}}}},
		"int key":    {{{Key: 1, Value: "x"}}},
		"two docs":   {{}, {}},
	} {
		if _, err := emit("f.json", formats.Json, bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	deep := any("x")
	for i := 0; i < 10002; i++ {
		deep = []any{deep}
	}
	if _, err := emit("f.json", formats.Json, sops.TreeBranches{{{Key: "d", Value: deep}}}); err == nil || !strings.Contains(err.Error(), "deep") {
		t.Errorf("deep: %v", err)
	}
}

// Keys and values sops' walk refuses are problems at their path, not panics.
func TestCheckEntriesOddTrees(t *testing.T) {
	tree := &sops.Tree{
		Metadata: sops.Metadata{UnencryptedSuffix: "_unencrypted"},
		Branches: sops.TreeBranches{{
			{Key: 7, Value: "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]"},
			{Key: "big", Value: uint64(math.MaxUint64)},
			{Key: "raw", Value: []byte("plain")},
			{Key: "list", Value: []any{sops.Comment{Value: "only a comment"}}},
			{Key: "note", Value: sops.Comment{Value: "a comment as a value"}},
		}},
	}
	ps := &problems{file: "odd.yaml", lines: lineIndex{}}
	checkEntries(tree, ps)
	var got []string
	for _, p := range ps.list {
		got = append(got, p.Path+": "+p.Message)
	}
	want := []string{": " + msgKey, "big: " + msgUnsupported, "raw: " + msgClear, "list: " + msgEmpty}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
