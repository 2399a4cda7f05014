package render

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// overlay is a read-only fs.FS: the snapshot, with some files replaced or added in memory:
// the kustomizations confine rewrote, and under one folder of its own (dir, at the root) the
// generated kustomizations, their inputs (secrets among them, which must never be written to
// disk) and the user's built overlay. Written here because io/fs has no union and
// testing/fstest is for tests.
type overlay struct {
	base  fs.FS
	extra map[string][]byte // slash paths, relative: replaced files, and the folder's files
	dir   string            // the folder that exists only in memory, at the root; "" for none
}

func (o overlay) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if b, ok := o.extra[name]; ok {
		return &memFile{name: path.Base(name), r: strings.NewReader(string(b)), size: int64(len(b))}, nil
	}
	if o.dir != "" && (name == o.dir || strings.HasPrefix(name, o.dir+"/")) {
		entries := o.entries(name)
		if name != o.dir && len(entries) == 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return &memDir{name: path.Base(name), entries: entries}, nil
	}
	if name == "." && o.dir != "" {
		f, err := o.base.Open(name)
		if err != nil {
			return nil, err
		}
		f.Close()
		entries, err := fs.ReadDir(o.base, ".")
		if err != nil {
			return nil, err
		}
		entries = append(entries, fs.FileInfoToDirEntry(dirInfo(o.dir)))
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		return &memDir{name: ".", entries: entries}, nil
	}
	return o.base.Open(name)
}

// entries lists an in-memory folder: its files, and the folders its deeper files imply.
func (o overlay) entries(dir string) []fs.DirEntry {
	var out []fs.DirEntry
	dirs := map[string]bool{}
	for name, b := range o.extra {
		rest, ok := strings.CutPrefix(name, dir+"/")
		if !ok {
			continue
		}
		if sub, _, deeper := strings.Cut(rest, "/"); deeper {
			if !dirs[sub] {
				dirs[sub] = true
				out = append(out, fs.FileInfoToDirEntry(dirInfo(sub)))
			}
			continue
		}
		out = append(out, fs.FileInfoToDirEntry(fileInfo{name: rest, size: int64(len(b))}))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

type fileInfo struct {
	name string
	size int64
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return 0o444 }
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return false }
func (f fileInfo) Sys() any           { return nil }

type dirInfo string

func (d dirInfo) Name() string       { return string(d) }
func (d dirInfo) Size() int64        { return 0 }
func (d dirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o555 }
func (d dirInfo) ModTime() time.Time { return time.Time{} }
func (d dirInfo) IsDir() bool        { return true }
func (d dirInfo) Sys() any           { return nil }

type memFile struct {
	name string
	r    *strings.Reader
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return fileInfo{name: f.name, size: f.size}, nil }
func (f *memFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *memFile) Close() error               { return nil }

type memDir struct {
	name    string
	entries []fs.DirEntry
	pos     int
}

func (d *memDir) Stat() (fs.FileInfo, error) { return dirInfo(d.name), nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}
func (d *memDir) Close() error { return nil }
func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.pos:]
	if n <= 0 {
		d.pos = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.pos += n
	return rest[:n], nil
}
