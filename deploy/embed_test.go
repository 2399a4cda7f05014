package deploy_test

import (
	"bytes"
	"io/fs"
	"os"
	"path"
	"testing"

	"github.com/circlecore/circle/deploy"
	"github.com/circlecore/circle/render"
)

// deploy.FS is the kustomize tree of this folder, file for file: every folder holding a
// kustomization (an overlay added later included) is embedded, and each overlay renders
// from the embedded copy exactly as from the files, so `circle install` applies what
// `kubectl apply -k deploy/ENV` would.
func TestFS(t *testing.T) {
	disk := os.DirFS(".")
	entries, err := fs.ReadDir(disk, ".")
	if err != nil {
		t.Fatal(err)
	}
	var trees []string
	for _, e := range entries {
		if _, err := fs.Stat(disk, path.Join(e.Name(), "kustomization.yaml")); e.IsDir() && err == nil {
			trees = append(trees, e.Name())
		}
	}
	if len(trees) < 4 {
		t.Fatalf("kustomize trees on disk: %v, want base and the overlays", trees)
	}
	for _, dir := range trees {
		err := fs.WalkDir(disk, dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			want, _ := fs.ReadFile(disk, p)
			if got, err := fs.ReadFile(deploy.FS(), p); err != nil || !bytes.Equal(got, want) {
				t.Errorf("deploy.FS %s: %v (embedded and on-disk files differ or it is missing)", p, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		fromDisk, err := render.Render(render.Input{FS: os.DirFS(".."), Manifests: "deploy", Env: dir})
		if err != nil {
			t.Fatal(err)
		}
		embedded, err := render.Render(render.Input{FS: deploy.FS(), Manifests: ".", Env: dir})
		if err != nil {
			t.Fatalf("render %s from deploy.FS: %v", dir, err)
		}
		if !bytes.Equal(embedded, fromDisk) {
			t.Errorf("deploy/%s renders differently from deploy.FS", dir)
		}
	}
}
