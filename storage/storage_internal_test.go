package storage

import (
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/circlecore/circle/testenv"
)

func TestPartSize(t *testing.T) {
	for _, tc := range []struct {
		requested int
		size      int64
		want      int
	}{
		{0, 0, DefaultPartSize},
		{1, 0, MinPartSize},
		{16 << 20, 0, 16 << 20},
		{0, 10000 * DefaultPartSize, DefaultPartSize},
		{0, 10000*DefaultPartSize + 1, DefaultPartSize + 1<<20}, // next whole MiB
		{0, 1 << 40, 105 << 20},                                 // 1 TiB in at most 10,000 parts
	} {
		if got := partSize(tc.requested, tc.size); got != tc.want {
			t.Errorf("partSize(%d, %d) = %d, want %d", tc.requested, tc.size, got, tc.want)
		}
		if tc.size > 0 && int64(partSize(tc.requested, tc.size))*maxParts < tc.size {
			t.Errorf("partSize(%d, %d) needs more than %d parts", tc.requested, tc.size, maxParts)
		}
	}
}

func TestHexUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"plain":               "plain",
		"tab__0x9__here":      "tab\there",
		"a/__0x2f__b":         "a//b",
		"__0x5f___0x41__":     "__0x41__", // gocloud's escape of a literal "__0x41__"
		"__0x":                "__0x",
		"__0xzz__":            "__0xzz__",
		"__0x41_":             "__0x41_",
		"x__0x1F600__y":       "x\U0001F600y",
		"__0x__ empty digits": "__0x__ empty digits",
	} {
		if got := hexUnescape(in); got != want {
			t.Errorf("hexUnescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPlainKeys(t *testing.T) {
	for key, want := range map[string]bool{
		"a/b c/ü": true, "a#b": false, "a%20": false, "q?": false, `back\slash`: false,
		`"`: false, "tab\t": false, "\x7f": false, "x/": false, "a/../b": false, "__0x41__": false,
	} {
		if got := plainAzureKey(key); got != want {
			t.Errorf("plainAzureKey(%q) = %v", key, got)
		}
	}
	for dir, want := range map[string]bool{
		"a/b": true, "a b/ü": true, "a//b": false, "./a": false, "a/..": false, "tab\t": false, "__0x9__": false,
	} {
		if got := plainFileDir(dir); got != want {
			t.Errorf("plainFileDir(%q) = %v", dir, got)
		}
	}
}

func TestRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1":                      "s3://bucket?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=us-east-1",
		"s3://AKIA:secret@bucket?region=eu":                                                "s3://bucket?region=eu",
		"azblob://c?sv=2024&sig=SECRET&se=2030&domain=x":                                   "azblob://c?domain=x&se=2030&sv=2024",
		"gs://b?access_id=me&private_key_path=/k.pem":                                      "gs://b?access_id=me",
		"https://h/p?X-Amz-Credential=A&X-Amz-Signature=S&X-Amz-Security-Token=T&x=1#frag": "https://h/p?x=1",
		"s3://b?aws_secret_access_key=s&AWS_ACCESS_KEY_ID=a&password=p&sas_token=t&auth=a": "s3://b",
		"file:///var/lib/circle":                                                           "file:///var/lib/circle",
		"mem://":                                                                           "mem://",
		"s3://b?endpoint=http://user:pw@127.0.0.1:9000":                                    "s3://b?endpoint=http%3A%2F%2F127.0.0.1%3A9000",
		"s3://b?%zz":               "s3://b",
		"s3://b\x7f?secret=leaked": "<unparsable URL>",
	} {
		got := Redacted(in)
		if got != want {
			t.Errorf("Redacted(%q) = %q, want %q", in, got, want)
		}
		for _, secret := range []string{"SECRET", "secret@", "leaked", "=S&", "private_key"} {
			if strings.Contains(got, secret) {
				t.Errorf("Redacted(%q) = %q keeps %q", in, got, secret)
			}
		}
	}
}

func TestOpen_Errors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, raw := range []string{
		"ftp://host/x",
		"no-scheme",
		"s3://b\x7f",
		"file://data/x", // a host fileblob would ignore
		"file://",
		"file://" + filepath.ToSlash(dir) + "?metadata=skip",
		"file://" + filepath.ToSlash(dir) + "?unknown=1",
		"s3://bucket?unknown_param=1&secret_key=hunter2",
		"s3://AKIA:hunter2@bucket",
	} {
		s, err := Open(ctx, raw)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", raw)
			continue
		}
		var se *Error
		if !errors.As(err, &se) || se.Op != "open" || strings.Contains(err.Error(), "\x7f") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q): %v", raw, err)
		}
	}
	// A file where the folder should be.
	f := filepath.Join(dir, "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, "file://"+filepath.ToSlash(f)); err == nil {
		s.Close()
		t.Error("Open of a file as a folder succeeded")
	}
}

func TestOpen_File(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "new", "folder")
	s, err := Open(ctx, "file://"+filepath.ToSlash(root))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Backend() != BackendFile || s.fileRoot != root {
		t.Errorf("backend %q, root %q", s.Backend(), s.fileRoot)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Errorf("folder not created: %v", err)
	}

	// Relative paths, as fileblob reads them.
	wd, _ := os.Getwd()
	u, _ := url.Parse("file://./rel/dir")
	if got, err := fileRoot(u); err != nil || got != filepath.Join(wd, "rel", "dir") {
		t.Errorf("relative root = %q, %v", got, err)
	}
	u, _ = url.Parse("file://localhost/abs")
	if got, err := fileRoot(u); err != nil || got != "/abs" {
		t.Errorf("localhost root = %q, %v", got, err)
	}

	if sameFileSystem(root, filepath.Join(root, "missing")) || sameFileSystem(filepath.Join(root, "missing"), root) {
		t.Error("sameFileSystem of a missing path")
	}
	if !sameFileSystem(root, filepath.Dir(root)) {
		t.Error("a folder is not on its parent's file system")
	}
}

// TestFile_NoTmpDir runs the writes that make temporary files with them next to the objects,
// as when os.TempDir is on another file system, and checks none is left behind.
func TestFile_NoTmpDir(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(ctx, "file://"+filepath.ToSlash(root)+"?no_tmp_dir=true")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "a/b", strings.NewReader("x"), &PutOptions{Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMetadata(ctx, "a/b", map[string]string{"k": "w"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a/c", &failing{}, nil); err == nil {
		t.Fatal("failing put succeeded")
	}
	var names []string
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if !slices.Equal(names, []string{"a/b", "a/b.attrs"}) {
		t.Errorf("files in the folder: %q", names)
	}
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("boom") }

// TestFile_Foreign reads files that fileblob did not write: no side file, names with escapes.
func TestFile_Foreign(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for name, body := range map[string]string{
		"plain.txt":            "p",
		"dir/tab__0x9__x":      "t",
		"dir/sub/deep":         "d",
		"ctl__0x1__dir/inside": "c",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "plain.txt"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, "file://"+filepath.ToSlash(root))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var keys []string
	for a, err := range s.Walk(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, a.Key)
	}
	want := []string{"ctl\x01dir/inside", "dir/sub/deep", "dir/tab\tx", "link", "plain.txt"}
	if !slices.Equal(keys, want) {
		t.Errorf("walk = %q, want %q", keys, want)
	}
	p, err := s.List(ctx, ListOptions{Prefix: "ctl\x01dir/"})
	if err != nil || len(p.Objects) != 1 || p.Objects[0].Key != "ctl\x01dir/inside" {
		t.Errorf("list under an escaped folder: %+v, %v", p, err)
	}

	// No side file: the default content type, and SetMetadata creates the side file.
	a, err := s.Stat(ctx, "plain.txt")
	if err != nil || a.ContentType != "application/octet-stream" {
		t.Fatalf("stat: %+v, %v", a, err)
	}
	if rewritten, err := s.SetMetadata(ctx, "plain.txt", map[string]string{"Owner": "ops"}); err != nil || rewritten {
		t.Fatalf("set metadata: %v, rewritten %v", err, rewritten)
	}
	if a, err := s.Stat(ctx, "plain.txt"); err != nil || a.Metadata["owner"] != "ops" || a.ContentType != "application/octet-stream" {
		t.Errorf("after set metadata: %+v, %v", a, err)
	}
	// A corrupt side file is reported, not replaced.
	if err := os.WriteFile(filepath.Join(root, "dir", "sub", "deep.attrs"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMetadata(ctx, "dir/sub/deep", nil); err == nil {
		t.Error("set metadata over a corrupt side file succeeded")
	}
	if err := s.Put(ctx, "x.attrs", strings.NewReader("x"), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("put of a .attrs key: %v", err)
	}
}

// TestS3_LargeCopyFallback makes the S3 copy limit tiny, so Copy and SetMetadata take the
// streaming path that objects over 5 GiB take.
func TestS3_LargeCopyFallback(t *testing.T) {
	if _, err := testenv.Tool(testenv.ToolVersityGW); err != nil {
		t.Fatal(err) // make testenv installs it; a missing tool fails, never skips
	}
	ctx := context.Background()
	s, err := Open(ctx, testenv.StartS3(t).NewBucket(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := s3CopyLimit
	s3CopyLimit = 10
	defer func() { s3CopyLimit = old }()

	body := strings.Repeat("over the limit ", 10)
	if err := s.Put(ctx, "big", strings.NewReader(body), &PutOptions{ContentType: "text/plain", Metadata: map[string]string{"a": "1"}}); err != nil {
		t.Fatal(err)
	}
	// CopyObject would succeed on this server; fail it the way S3 does over 5 GiB by
	// copying onto itself without a change, which S3 refuses.
	if err := s.Copy(ctx, "big", "big"); err != nil {
		t.Fatalf("copy onto itself through the fallback: %v", err)
	}
	rewritten, err := s.SetMetadata(ctx, "big", map[string]string{"b": "2"})
	if err != nil || !rewritten {
		t.Fatalf("set metadata: %v, rewritten %v", err, rewritten)
	}
	r, a, err := s.Get(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != body || a.ContentType != "text/plain" || a.Metadata["b"] != "2" || a.Metadata["a"] != "" {
		t.Errorf("after the fallbacks: %q %+v", got, a)
	}
}

func TestError(t *testing.T) {
	e := &Error{Op: "list", URL: "mem://", Err: ErrInvalid}
	if e.Error() != "storage: list mem://: invalid argument" || !errors.Is(e, ErrInvalid) {
		t.Errorf("%v", e)
	}
	e = &Error{Op: "get", URL: "mem://", Key: "a\nb", Err: ErrNotFound}
	if e.Error() != `storage: get "a\nb" in mem://: object not found` {
		t.Errorf("%v", e)
	}
}
