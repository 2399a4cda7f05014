package storage

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gocloud.dev/blob"
)

// DefaultPageSize is the page size of List when ListOptions.PageSize is 0.
const DefaultPageSize = 1000

// ListOptions select and page a listing.
type ListOptions struct {
	// Prefix keeps the keys that start with it.
	Prefix string
	// Delimiter, when set (usually "/"), folds the keys that contain it after Prefix into
	// one entry of Page.Prefixes each: the key up to and including the delimiter.
	Delimiter string
	// PageToken continues a listing: the NextPageToken of the previous page, with the same
	// Prefix and Delimiter. Empty starts at the beginning.
	PageToken string
	// PageSize is the most entries (objects plus prefixes) in a page; 0 means
	// DefaultPageSize.
	PageSize int
}

// Page is one page of a listing. Objects and Prefixes are each in ascending byte order of
// their keys, and every key of a page sorts after every key of the pages before it.
type Page struct {
	// Objects have Key, Size and ModTime set (no content type or metadata: Stat for those).
	Objects []Attrs
	// Prefixes are the folded "directories" when ListOptions.Delimiter is set.
	Prefixes []string
	// NextPageToken is empty on the last page. A page may be short, even empty, and still
	// have one.
	NextPageToken string
}

// List returns one page of the objects under opts.Prefix. Listings are in ascending byte
// order of keys on every backend; see the package doc for how file and the servers are held
// to it. A listing sees a consistent state only on backends that list consistently (all of
// those supported do, but not across pages: objects written or deleted while paging may or
// may not show).
func (s *Store) List(ctx context.Context, opts ListOptions) (*Page, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.wrap(ctx, "list", opts.Prefix, err, false)
	}
	if opts.PageSize < 0 {
		return nil, s.wrap(ctx, "list", opts.Prefix, fmt.Errorf("%w: page size %d", ErrInvalid, opts.PageSize), false)
	}
	if opts.PageSize == 0 {
		opts.PageSize = DefaultPageSize
	}
	token, err := base64.RawURLEncoding.DecodeString(opts.PageToken)
	if err != nil {
		return nil, s.wrap(ctx, "list", opts.Prefix, fmt.Errorf("%w: page token: %v", ErrInvalid, err), false)
	}
	var p *Page
	if s.backend == BackendFile {
		p, err = s.listFile(ctx, opts, string(token))
	} else {
		p, err = s.listBucket(ctx, opts, token)
	}
	if err != nil {
		return nil, s.wrap(ctx, "list", opts.Prefix, err, false)
	}
	return p, nil
}

// listBucket pages through gocloud, whose drivers keep the server's order (S3, GCS and Azure
// list in byte order; memblob sorts). Sorting each page costs little and would hide a
// server that orders a page differently; the conformance suite checks the order across pages.
func (s *Store) listBucket(ctx context.Context, opts ListOptions, token []byte) (*Page, error) {
	if len(token) == 0 {
		token = blob.FirstPageToken
	}
	objs, next, err := s.bucket.ListPage(ctx, token, opts.PageSize, &blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
	if err == io.EOF {
		return &Page{}, nil
	}
	if err != nil {
		return nil, err
	}
	p := &Page{}
	for _, o := range objs {
		if o.IsDir {
			p.Prefixes = append(p.Prefixes, o.Key)
		} else {
			p.Objects = append(p.Objects, Attrs{Key: o.Key, Size: o.Size, ModTime: o.ModTime})
		}
	}
	slices.SortFunc(p.Objects, func(a, b Attrs) int { return strings.Compare(a.Key, b.Key) })
	slices.Sort(p.Prefixes)
	if len(next) > 0 && !bytes.Equal(next, blob.FirstPageToken) {
		p.NextPageToken = base64.RawURLEncoding.EncodeToString(next)
	}
	return p, nil
}

// listFile lists the folder itself, in key order: fileblob walks directories in name order,
// which is not key order ("a-b" < "a/b", but the directory "a" is walked before the file
// "a-b"), and its page tokens skip or repeat keys when that happens. The page token here is
// the last key of the previous page. Each page walks the subtree under the prefix.
func (s *Store) listFile(ctx context.Context, opts ListOptions, after string) (*Page, error) {
	type entry struct {
		key  string
		dir  bool
		info fs.FileInfo
	}
	var entries []entry
	folded := map[string]bool{}
	start := s.fileRoot
	// Start the walk at the deepest folder the prefix names, when fileblob stores that
	// folder under the same name (escaping changes only control characters and odd slashes).
	if i := strings.LastIndex(opts.Prefix, "/"); i > 0 && plainFileDir(opts.Prefix[:i]) {
		start = filepath.Join(s.fileRoot, filepath.FromSlash(opts.Prefix[:i]))
	}
	err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			switch {
			case !os.IsNotExist(err):
				return err
			case path == start:
				return filepath.SkipAll // nothing under this prefix
			}
			return nil // removed while walking
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if path == s.fileRoot {
			return nil
		}
		rel, err := filepath.Rel(s.fileRoot, path)
		if err != nil {
			return err
		}
		key := hexUnescape(filepath.ToSlash(rel))
		if d.IsDir() {
			key += "/"
			// Skip folders whose keys cannot match the prefix, or that fold into a
			// prefix already found.
			if !strings.HasPrefix(key, opts.Prefix) && !strings.HasPrefix(opts.Prefix, key) {
				return filepath.SkipDir
			}
			if opts.Delimiter != "" && len(key) > len(opts.Prefix) {
				if i := strings.Index(key[len(opts.Prefix):], opts.Delimiter); i >= 0 && folded[key[:len(opts.Prefix)+i+len(opts.Delimiter)]] {
					return filepath.SkipDir
				}
			}
			return nil
		}
		// fileblob's side files and this package's temporary ones end in .attrs.
		if strings.HasSuffix(path, ".attrs") || !strings.HasPrefix(key, opts.Prefix) {
			return nil
		}
		if opts.Delimiter != "" {
			if i := strings.Index(key[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				p := key[:len(opts.Prefix)+i+len(opts.Delimiter)]
				if !folded[p] {
					folded[p] = true
					entries = append(entries, entry{key: p, dir: true})
				}
				return nil
			}
		}
		info, err := os.Stat(path) // follows symbolic links, as fileblob's reads do
		if err != nil {
			if os.IsNotExist(err) {
				return nil // deleted while walking
			}
			return err
		}
		entries = append(entries, entry{key: key, info: info})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	p := &Page{}
	n := 0
	for i, e := range entries {
		if after != "" && e.key <= after {
			continue
		}
		if n == opts.PageSize {
			p.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(entries[i-1].key))
			break
		}
		n++
		if e.dir {
			p.Prefixes = append(p.Prefixes, e.key)
		} else {
			p.Objects = append(p.Objects, Attrs{Key: e.key, Size: e.info.Size(), ModTime: e.info.ModTime()})
		}
	}
	return p, nil
}

// plainFileDir reports whether fileblob stores the folder dir under its own name: no control
// characters, no empty, "." or ".." segments, nothing that reads as an escape sequence.
func plainFileDir(dir string) bool {
	if strings.Contains(dir, "__0x") {
		return false
	}
	for _, seg := range strings.Split(dir, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	for _, c := range dir {
		if c < 32 || c == filepath.Separator && c != '/' {
			return false
		}
	}
	return true
}

// hexUnescape reverses gocloud's "__0x<hex>__" escaping of file names (fileblob escapes
// control characters and some slashes that way). It is internal to gocloud, so this is a
// copy of its behaviour: an escape is "__0x", hex digits, "__", naming one rune.
func hexUnescape(s string) string {
	if !strings.Contains(s, "__0x") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "__0x") {
			rest := s[i+4:]
			if end := strings.IndexByte(rest, '_'); end > 0 && strings.HasPrefix(rest[end:], "__") {
				if r, err := strconv.ParseInt(rest[:end], 16, 32); err == nil {
					b.WriteRune(rune(r))
					i += 4 + end + 2
					continue
				}
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// Walk iterates over every object under prefix in key order, fetching pages as it goes. It
// stops at the first error, which it yields with a zero Attrs.
func (s *Store) Walk(ctx context.Context, prefix string) iter.Seq2[Attrs, error] {
	return func(yield func(Attrs, error) bool) {
		opts := ListOptions{Prefix: prefix}
		for {
			p, err := s.List(ctx, opts)
			if err != nil {
				yield(Attrs{}, err)
				return
			}
			for _, o := range p.Objects {
				if !yield(o, nil) {
					return
				}
			}
			if p.NextPageToken == "" {
				return
			}
			opts.PageToken = p.NextPageToken
		}
	}
}
