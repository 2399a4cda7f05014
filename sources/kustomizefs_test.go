package sources_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/circlecore/circle/sources"
)

// realworldKustomize is relative to this package's directory: the repo is /work/main and the
// shared test data sits beside it in /work/shared.
const realworldKustomize = "../../shared/realworld/kustomize"

// loadTree reads a directory from disk into a MapFS, the form snapshots take.
func loadTree(t *testing.T, root string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			if d.IsDir() {
				return nil
			}
			t.Fatalf("%s: not a regular file; snapshots hold only files", p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data, Mode: 0o644}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func build(fsys fs.FS, dir string, restrictions types.LoadRestrictions) (string, error) {
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = restrictions
	// As `kubectl kustomize` without --reorder: the kustomization's sortOptions, else the
	// legacy order (kinds such as Namespace and Service first). MakeDefaultOptions keeps input
	// order instead, which EXPECTED.yaml was not made with.
	opts.Reorder = krusty.ReorderOptionUnspecified
	m, err := krusty.MakeKustomizer(opts).Run(sources.KustomizeFS(fsys), dir)
	if err != nil {
		return "", err
	}
	out, err := m.AsYaml()
	return string(out), err
}

func TestKustomizeFSRealWorldBuilds(t *testing.T) {
	if _, err := os.Stat(realworldKustomize); err != nil {
		abs, _ := filepath.Abs(realworldKustomize)
		t.Skipf("realworld test data not found at %s; this test runs in CI", abs)
	}
	tree := loadTree(t, realworldKustomize)
	var dirs []string
	for name := range tree {
		if path.Base(name) == "EXPECTED.yaml" {
			dirs = append(dirs, path.Dir(name))
		}
	}
	slices.Sort(dirs)
	if len(dirs) == 0 {
		t.Fatalf("no EXPECTED.yaml under %s", realworldKustomize)
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			want := string(tree[dir+"/EXPECTED.yaml"].Data)
			got, err := build(tree, "/"+dir, types.LoadRestrictionsRootOnly)
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			if got != want {
				t.Errorf("output differs from EXPECTED.yaml\n--- got\n%s\n--- want\n%s", got, want)
			}
		})
	}
}

// decoy stands where a clamped escape would land inside the snapshot: if any build below
// returns it, "../" above the root was silently turned into the root.
const decoy = `apiVersion: v1
kind: ConfigMap
metadata:
  name: clamped-decoy
data:
  passwd: "root:x:0:0:decoy"
`

func TestKustomizeFSConfinement(t *testing.T) {
	kust := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }
	cm := kust("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n")
	cases := []struct {
		name     string
		fsys     fstest.MapFS
		dir      string
		mentions []string // each must appear in the error
		outside  bool     // the error must wrap ErrOutsideSnapshot
	}{
		{
			name: "resource ../outside from the root",
			fsys: fstest.MapFS{
				"kustomization.yaml":         kust("resources: [\"../outside\"]\n"),
				"outside/kustomization.yaml": kust("resources: [cm.yaml]\n"),
				"outside/cm.yaml":            kust(decoy),
			},
			dir:      "/",
			mentions: []string{"../outside"},
			outside:  true,
		},
		{
			name: "base ../../outside from one level down",
			fsys: fstest.MapFS{
				"app/kustomization.yaml":     kust("resources: [\"../../outside\"]\n"),
				"outside/kustomization.yaml": kust("resources: [cm.yaml]\n"),
				"outside/cm.yaml":            kust(decoy),
			},
			dir:      "/app",
			mentions: []string{"../../outside", "../outside"},
			outside:  true,
		},
		{
			name: "resource ../../../../etc/passwd",
			fsys: fstest.MapFS{
				"deploy/overlays/prod/kustomization.yaml": kust("resources: [\"../../../../etc/passwd\"]\n"),
				"etc/passwd": kust(decoy),
			},
			dir:      "/deploy/overlays/prod",
			mentions: []string{"../../../../etc/passwd", "../etc/passwd"},
			outside:  true,
		},
		{
			// Absolute means snapshot-root-relative; this snapshot has no etc/passwd, and the
			// host's must not be found instead.
			name: "absolute resource /etc/passwd",
			fsys: fstest.MapFS{
				"app/kustomization.yaml": kust("resources: [\"/etc/passwd\"]\n"),
				"app/cm.yaml":            cm,
			},
			dir:      "/app",
			mentions: []string{"/etc/passwd", "does not exist in the snapshot"},
		},
		{
			name: "patch path escaping",
			fsys: fstest.MapFS{
				"app/kustomization.yaml": kust("resources: [cm.yaml]\npatches:\n- path: ../../patch.yaml\n"),
				"app/cm.yaml":            cm,
				"patch.yaml":             kust(decoy),
			},
			dir:      "/app",
			mentions: []string{"../patch.yaml"},
			outside:  true,
		},
		{
			name: "configMapGenerator files escaping",
			fsys: fstest.MapFS{
				"app/kustomization.yaml": kust("configMapGenerator:\n- name: leak\n  files: [../../secret.txt]\n"),
				"secret.txt":             kust("root:x:0:0:decoy\n"),
			},
			dir:      "/app",
			mentions: []string{"../secret.txt"},
			outside:  true,
		},
		{
			name: "configMapGenerator key=file escaping",
			fsys: fstest.MapFS{
				"app/kustomization.yaml": kust("configMapGenerator:\n- name: leak\n  files: [key=../../secret.txt]\n"),
				"secret.txt":             kust("root:x:0:0:decoy\n"),
			},
			dir:      "/app",
			mentions: []string{"../secret.txt"},
			outside:  true,
		},
		{
			name: "component escaping",
			fsys: fstest.MapFS{
				"app/kustomization.yaml":  kust("components: [\"../../comp\"]\n"),
				"comp/kustomization.yaml": kust("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [cm.yaml]\n"),
				"comp/cm.yaml":            kust(decoy),
			},
			dir:      "/app",
			mentions: []string{"../comp"},
			outside:  true,
		},
		{
			name: "build directory above the root",
			fsys: fstest.MapFS{
				"app/kustomization.yaml": kust("resources: [cm.yaml]\n"),
				"app/cm.yaml":            kust(decoy),
			},
			dir:      "/../app",
			mentions: []string{"/../app"},
			outside:  true,
		},
		{
			name: "resource through a symbolic link",
			fsys: fstest.MapFS{
				"app/kustomization.yaml": kust("resources: [etc/passwd]\n"),
				"app/etc":                &fstest.MapFile{Data: []byte("/etc"), Mode: fs.ModeSymlink},
			},
			dir:      "/app",
			mentions: []string{"etc/passwd", "symbolic link"},
			outside:  true,
		},
	}
	for _, c := range cases {
		// Flux builds with LoadRestrictionsNone, leaving confinement to the file system, so
		// both settings must refuse.
		for _, lr := range []types.LoadRestrictions{types.LoadRestrictionsRootOnly, types.LoadRestrictionsNone} {
			t.Run(c.name+"/"+lr.String(), func(t *testing.T) {
				out, err := build(c.fsys, c.dir, lr)
				if strings.Contains(out, "root:x:0:0") || strings.Contains(out, "clamped-decoy") {
					t.Fatalf("build read outside the tree:\n%s", out)
				}
				if err == nil {
					t.Fatalf("build succeeded; want a refusal\n%s", out)
				}
				msg := err.Error()
				t.Logf("refused: %v", err)
				if strings.Contains(msg, "root:x:0:0:") && !strings.Contains(msg, "decoy") {
					t.Fatalf("the host's /etc/passwd reached the error: %v", err)
				}
				for _, m := range c.mentions {
					if !strings.Contains(msg, m) {
						t.Errorf("error does not name %q: %v", m, err)
					}
				}
				if c.outside && !strings.Contains(msg, sources.ErrOutsideSnapshot.Error()) &&
					!strings.Contains(msg, "climbs above the snapshot root") {
					t.Errorf("error does not say the path leaves the snapshot: %v", err)
				}
			})
		}
	}
}

// An absolute reference inside the snapshot is read from the snapshot's root, and kustomize's
// default restrictions still keep it to the kustomization's own directory.
func TestKustomizeFSAbsoluteIsSnapshotRelative(t *testing.T) {
	fsys := fstest.MapFS{
		"app/kustomization.yaml": {Data: []byte("resources: [\"/shared/cm.yaml\"]\n")},
		"shared/cm.yaml":         {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n")},
	}
	out, err := build(fsys, "/app", types.LoadRestrictionsNone)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "name: shared") {
		t.Errorf("output does not hold the snapshot's /shared/cm.yaml:\n%s", out)
	}
	_, err = build(fsys, "/app", types.LoadRestrictionsRootOnly)
	if err == nil || !strings.Contains(err.Error(), "/shared/cm.yaml") {
		t.Errorf("root-only build: err = %v; want a refusal naming /shared/cm.yaml", err)
	}
}

// Kustomizations in subdirectories and at the root, with bases reached by "../", build as they
// would on disk: the "./"-relative directories must not upset kustomize's prefix checks.
func TestKustomizeFSInTreeReferences(t *testing.T) {
	fsys := fstest.MapFS{
		"kustomization.yaml":                      {Data: []byte("resources: [deploy/overlays/prod, extra/cm.yaml]\n")},
		"extra/cm.yaml":                           {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n")},
		"deploy/base/kustomization.yaml":          {Data: []byte("resources: [cm.yaml]\n")},
		"deploy/base/cm.yaml":                     {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\n")},
		"deploy/overlays/prod/kustomization.yaml": {Data: []byte("namePrefix: prod-\nresources: [../../base]\n")},
	}
	for _, dir := range []string{"/", ".", "deploy/..", "/deploy/overlays/../.."} {
		out, err := build(fsys, dir, types.LoadRestrictionsRootOnly)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, want := range []string{"name: prod-base", "name: extra"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", dir, want, out)
			}
		}
	}
	// A base at or above the kustomization is still a cycle to kustomize.
	fsys["deploy/overlays/prod/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources: [\"../../..\"]\n")}
	if _, err := build(fsys, "/deploy/overlays/prod", types.LoadRestrictionsRootOnly); err == nil ||
		!strings.Contains(err.Error(), "cycle") {
		t.Errorf("base above the kustomization: err = %v; want a cycle error", err)
	}
}

func TestKustomizeFSWritesFail(t *testing.T) {
	k := sources.KustomizeFS(fstest.MapFS{"a/b.yaml": {Data: []byte("x")}})
	_, createErr := k.Create("/a/new.yaml")
	errs := map[string]error{
		"Create":    createErr,
		"Mkdir":     k.Mkdir("/a/new"),
		"MkdirAll":  k.MkdirAll("/a/new/deeper"),
		"RemoveAll": k.RemoveAll("/a"),
		"WriteFile": k.WriteFile("/a/b.yaml", []byte("y")),
	}
	f, err := k.Open("/a/b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, errs["File.Write"] = f.Write([]byte("y"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for op, err := range errs {
		if !errors.Is(err, sources.ErrReadOnly) || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s: err = %v; want ErrReadOnly", op, err)
		}
	}
	if got, _ := k.ReadFile("/a/b.yaml"); string(got) != "x" {
		t.Errorf("file changed to %q", got)
	}
}

// tree is small but has what the methods branch on: nesting, an empty directory, a hidden
// file, a file where a directory might be expected.
var tree = fstest.MapFS{
	"deploy/base/kustomization.yaml": {Data: []byte("resources: [cm.yaml]\n")},
	"deploy/base/cm.yaml":            {Data: []byte("kind: ConfigMap\n")},
	"deploy/base/.hidden.yaml":       {Data: []byte("hidden\n")},
	"deploy/prod/kustomization.yaml": {Data: []byte("resources: [../base]\n")},
	"empty":                          {Mode: fs.ModeDir | 0o755},
	"top.yaml":                       {Data: []byte("top\n")},
}

// inMemory is kustomize's own in-memory file system holding tree, the reference for behaviour.
func inMemory(t *testing.T) filesys.FileSystem {
	t.Helper()
	m := filesys.MakeFsInMemory()
	for name, f := range tree {
		var err error
		if f.Mode.IsDir() {
			err = m.MkdirAll("/" + name)
		} else {
			err = m.WriteFile("/"+name, f.Data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestKustomizeFSMatchesInMemory(t *testing.T) {
	k := sources.KustomizeFS(tree)
	ref := inMemory(t)
	paths := []string{
		"/", ".", "", "/deploy", "deploy", "/deploy/", "/deploy/base/cm.yaml", "deploy/base/cm.yaml",
		"/deploy/./base/../base/cm.yaml", "//deploy//base", "/deploy/missing", "/top.yaml/x",
		"/empty", "/top.yaml", "/deploy/base/.hidden.yaml",
	}
	for _, p := range paths {
		if got, want := k.Exists(p), ref.Exists(p); got != want {
			t.Errorf("Exists(%q) = %v; in-memory says %v", p, got, want)
		}
		if got, want := k.IsDir(p), ref.IsDir(p); got != want {
			t.Errorf("IsDir(%q) = %v; in-memory says %v", p, got, want)
		}
		gotData, gotErr := k.ReadFile(p)
		wantData, wantErr := ref.ReadFile(p)
		if (gotErr == nil) != (wantErr == nil) || !bytes.Equal(gotData, wantData) {
			t.Errorf("ReadFile(%q) = %q, %v; in-memory says %q, %v", p, gotData, gotErr, wantData, wantErr)
		}
		gotNames, gotErr := k.ReadDir(p)
		wantNames, wantErr := ref.ReadDir(p)
		slices.Sort(wantNames)
		if (gotErr == nil) != (wantErr == nil) || !slices.Equal(gotNames, wantNames) {
			t.Errorf("ReadDir(%q) = %q, %v; in-memory says %q, %v", p, gotNames, gotErr, wantNames, wantErr)
		}
		gotDir, gotFile, gotErr := k.CleanedAbs(p)
		wantDir, wantFile, wantErr := ref.CleanedAbs(p)
		// The directory is "./"-relative by design; the rest must agree.
		if (gotErr == nil) != (wantErr == nil) || gotFile != wantFile ||
			(gotErr == nil && "/"+strings.TrimPrefix(strings.TrimPrefix(gotDir.String(), "."), "/") != wantDir.String()) {
			t.Errorf("CleanedAbs(%q) = %q, %q, %v; in-memory says %q, %q, %v",
				p, gotDir, gotFile, gotErr, wantDir, wantFile, wantErr)
		}
		if gotErr == nil && !strings.HasPrefix(gotDir.String(), ".") {
			t.Errorf("CleanedAbs(%q) dir %q is not root-relative", p, gotDir)
		}
	}
	for _, pattern := range []string{
		"/*", "/deploy/*/*.yaml", "/deploy/base/*", "/deploy/base/.*", "/*/*/kustomization.yaml",
		"/empty/*", "/nothing*", "/[", "deploy/*",
	} {
		got, gotErr := k.Glob(pattern)
		want, wantErr := ref.Glob(pattern)
		if (gotErr == nil) != (wantErr == nil) || !slices.Equal(got, want) {
			if pattern == "deploy/*" { // relative patterns are the one extension
				continue
			}
			t.Errorf("Glob(%q) = %q, %v; in-memory says %q, %v", pattern, got, gotErr, want, wantErr)
		}
	}
	walk := func(fsys filesys.FileSystem, root string, skip map[string]error) ([]string, error) {
		var seen []string
		err := fsys.Walk(root, func(p string, info fs.FileInfo, err error) error {
			if err != nil {
				return err
			}
			seen = append(seen, p+map[bool]string{true: "/", false: ""}[info.IsDir() && p != "/"])
			return skip[p]
		})
		return seen, err
	}
	stop := errors.New("stop")
	for _, c := range []struct {
		root string
		skip map[string]error
	}{
		{"/", nil},
		{"deploy", nil},
		{"/deploy/base/cm.yaml", nil},
		{"/", map[string]error{"/deploy/base": filepath.SkipDir}},
		{"/", map[string]error{"/deploy/base/.hidden.yaml": filepath.SkipDir}},
		{"/", map[string]error{"/deploy/base/cm.yaml": stop}},
		{"/missing", nil},
	} {
		got, gotErr := walk(k, c.root, c.skip)
		want, wantErr := walk(ref, c.root, c.skip)
		if (gotErr == nil) != (wantErr == nil) || !errors.Is(gotErr, stop) != !errors.Is(wantErr, stop) ||
			!slices.Equal(got, want) {
			t.Errorf("Walk(%q, skip %v) = %q, %v; in-memory says %q, %v", c.root, c.skip, got, gotErr, want, wantErr)
		}
	}
	// The in-memory file system ignores an error returned for a directory and walks on; this
	// one stops, as filepath.Walk does, so a caller's error is never lost.
	got, err := walk(k, "/", map[string]error{"/deploy": stop})
	if !errors.Is(err, stop) || !slices.Equal(got, []string{"/", "/deploy/"}) {
		t.Errorf("Walk stopped at /deploy: saw %q, err %v", got, err)
	}
}

func TestKustomizeFSRefusesEscapes(t *testing.T) {
	k := sources.KustomizeFS(tree)
	for _, p := range []string{"..", "../etc/passwd", "/..", "/../etc/passwd", "/deploy/../../etc", "deploy/base/../../../x"} {
		if k.Exists(p) || k.IsDir(p) {
			t.Errorf("%q: Exists or IsDir is true", p)
		}
		errs := map[string]error{}
		_, errs["ReadFile"] = k.ReadFile(p)
		_, errs["ReadDir"] = k.ReadDir(p)
		_, _, errs["CleanedAbs"] = k.CleanedAbs(p)
		_, errs["Open"] = k.Open(p)
		_, errs["Glob"] = k.Glob(p + "/*")
		errs["Walk"] = k.Walk(p, func(string, fs.FileInfo, error) error { return nil })
		for op, err := range errs {
			if !errors.Is(err, sources.ErrOutsideSnapshot) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s(%q): err = %v; want ErrOutsideSnapshot naming the path", op, p, err)
			}
		}
	}
}

func TestKustomizeFSSymlinks(t *testing.T) {
	k := sources.KustomizeFS(fstest.MapFS{
		"app/kustomization.yaml": {Data: []byte("resources: [etc/passwd]\n")},
		"app/etc":                {Data: []byte("/etc"), Mode: fs.ModeSymlink | 0o777},
		"app/link.yaml":          {Data: []byte("kustomization.yaml"), Mode: fs.ModeSymlink | 0o777},
	})
	for _, p := range []string{"/app/etc", "/app/etc/passwd", "/app/link.yaml"} {
		if _, err := k.ReadFile(p); !errors.Is(err, sources.ErrOutsideSnapshot) || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("ReadFile(%q): err = %v; want a refusal of the link", p, err)
		}
	}
	// Listing shows links without following them.
	var seen []string
	if err := k.Walk("/app", func(p string, info fs.FileInfo, err error) error {
		seen = append(seen, p)
		if info.Mode()&fs.ModeSymlink != 0 && info.IsDir() {
			t.Errorf("%s: link walked as a directory", p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/app", "/app/etc", "/app/kustomization.yaml", "/app/link.yaml"}; !slices.Equal(seen, want) {
		t.Errorf("Walk saw %q; want %q", seen, want)
	}
}

func TestKustomizeFSOpen(t *testing.T) {
	k := sources.KustomizeFS(tree)
	f, err := k.Open("/deploy/base/cm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(f)
	if err != nil || string(data) != "kind: ConfigMap\n" {
		t.Errorf("read %q, %v", data, err)
	}
	info, err := f.Stat()
	if err != nil || info.Name() != "cm.yaml" || info.Size() != int64(len(data)) {
		t.Errorf("Stat = %v, %v", info, err)
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	if _, err := k.Open("/deploy/missing.yaml"); !errors.Is(err, fs.ErrNotExist) ||
		!strings.Contains(err.Error(), "/deploy/missing.yaml") {
		t.Errorf("Open of a missing file: err = %v", err)
	}
	if _, err := k.Open(""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(\"\"): err = %v", err)
	}
	d, err := k.Open("/deploy")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := d.Stat(); err != nil || !info.IsDir() {
		t.Errorf("Stat of an opened directory = %v, %v", info, err)
	}
	d.Close()
}

// failingFS lists a directory it cannot read and holds an entry it cannot describe, for the
// error paths that a MapFS never takes.
type failingFS struct{ fstest.MapFS }

var errBroken = errors.New("broken")

func (f failingFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name == "unreadable" {
		return nil, errBroken
	}
	entries, err := f.MapFS.ReadDir(name)
	for i, e := range entries {
		if e.Name() == "undescribable" {
			entries[i] = brokenEntry{e}
		}
	}
	return entries, err
}

func (f failingFS) ReadFile(name string) ([]byte, error) {
	if name == "unreadable.yaml" {
		return nil, errBroken
	}
	return f.MapFS.ReadFile(name)
}

func (f failingFS) Open(name string) (fs.File, error) {
	if name == "unopenable.yaml" {
		return nil, errBroken
	}
	return f.MapFS.Open(name)
}

func (f failingFS) Lstat(name string) (fs.FileInfo, error) {
	if name == "unstatable" {
		return nil, errBroken
	}
	return f.MapFS.Lstat(name)
}

type brokenEntry struct{ fs.DirEntry }

func (brokenEntry) Info() (fs.FileInfo, error) { return nil, errBroken }

func TestKustomizeFSUnderlyingErrors(t *testing.T) {
	k := sources.KustomizeFS(failingFS{fstest.MapFS{
		"unreadable/x.yaml":    {Data: []byte("x")},
		"unreadable.yaml":      {Data: []byte("x")},
		"unopenable.yaml":      {Data: []byte("x")},
		"unstatable":           {Data: []byte("x")},
		"dir/undescribable":    {Data: []byte("x")},
		"dir/fine.yaml":        {Data: []byte("x")},
		"dir/nested/deep.yaml": {Data: []byte("x")},
	}})
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, errBroken) {
			t.Errorf("%s: err = %v; want the underlying error", what, err)
		}
	}
	_, err := k.ReadDir("/unreadable")
	check("ReadDir", err)
	_, err = k.ReadFile("/unreadable.yaml")
	check("ReadFile", err)
	_, err = k.Open("/unopenable.yaml")
	check("Open", err)
	_, err = k.ReadFile("/unstatable")
	check("ReadFile via Lstat", err)
	check("Walk of an unreadable directory", k.Walk("/unreadable", func(_ string, _ fs.FileInfo, err error) error { return err }))
	var seen []string
	check("Walk of an undescribable entry", k.Walk("/dir", func(p string, _ fs.FileInfo, err error) error {
		seen = append(seen, p)
		return err
	}))
	if want := []string{"/dir", "/dir/fine.yaml", "/dir/nested", "/dir/nested/deep.yaml", "/dir/undescribable"}; !slices.Equal(seen, want) {
		t.Errorf("Walk saw %q; want %q", seen, want)
	}
	_, err = k.Glob("/*")
	check("Glob over a broken tree", err)
	if _, err := k.ReadDir("/dir/fine.yaml"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("ReadDir of a file: err = %v", err)
	}
}

func TestKustomizeFSBrokenRoot(t *testing.T) {
	k := sources.KustomizeFS(rootless{})
	if k.Exists("/") {
		t.Error("Exists(\"/\") on a file system without a root")
	}
	if _, _, err := k.CleanedAbs("/"); err == nil || !strings.Contains(err.Error(), "snapshot root") {
		t.Errorf("CleanedAbs(\"/\"): err = %v", err)
	}
}

// rootless is an fs.FS whose root cannot be opened.
type rootless struct{}

func (rootless) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
}
