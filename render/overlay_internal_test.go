package render

import (
	"testing"
	"testing/fstest"
)

// The in-memory overlay behaves as an fs.FS must (fstest.TestFS checks Open, ReadDir,
// Stat, reads and directory listings), showing the snapshot's files and the generated ones.
func TestOverlayFS(t *testing.T) {
	base := fstest.MapFS{
		"deploy/dev/kustomization.yaml": {Data: []byte("resources: []\n")},
		"z.txt":                         {Data: []byte("z")},
	}
	o := overlay{base: base, dir: genDir, extra: map[string][]byte{
		genDir + "/kustomization.yaml": []byte("resources: [../deploy/dev]\n"),
		genDir + "/config.json":        []byte("{}\n"),
	}}
	if err := fstest.TestFS(o, "deploy/dev/kustomization.yaml", "z.txt", genDir+"/kustomization.yaml", genDir+"/config.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Open("../x"); err == nil {
		t.Error("an invalid path opened")
	}
}
