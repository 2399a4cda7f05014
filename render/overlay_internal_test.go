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
	// What fstest does not ask: the generated folder is not readable as a file, and the
	// in-memory entries carry no system data.
	d, err := o.Open(genDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(make([]byte, 1)); err == nil {
		t.Error("a folder read as a file")
	}
	if st, _ := d.Stat(); st.Sys() != nil {
		t.Error("a folder with system data")
	}
	f, err := o.Open(genDir + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Sys() != nil || st.Mode().IsDir() {
		t.Errorf("a generated file's info: %v", st)
	}
}
