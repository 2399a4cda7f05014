package storage

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// secretParams are substrings of query parameter names whose values must not be shown:
// access keys, SAS signatures (sig), session tokens, passwords, presigned-URL credentials.
var secretParams = []string{"key", "secret", "token", "sig", "password", "passwd", "credential", "auth", "sas"}

// Redacted returns rawURL fit for logs and errors: without user info and without query
// parameters whose names look secret (access keys, SAS signatures, tokens, passwords). A URL
// that does not parse is replaced entirely, since it might be a secret itself.
func Redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	q := u.Query()
	for name, values := range q {
		lower := strings.ToLower(name)
		for _, s := range secretParams {
			if strings.Contains(lower, s) {
				q.Del(name)
				break
			}
		}
		// A parameter that is itself a URL (endpoint=http://user:pass@host) loses its
		// user info too.
		for i, v := range values {
			if inner, err := url.Parse(v); err == nil && inner.User != nil {
				inner.User = nil
				values[i] = inner.String()
			}
		}
	}
	u.RawQuery = q.Encode() // sorted, so a redacted URL is stable
	u.Fragment = ""
	out := u.String()
	if scheme := u.Scheme + ":"; strings.HasPrefix(rawURL, scheme+"//") && !strings.HasPrefix(out, scheme+"//") {
		out = scheme + "//" + strings.TrimPrefix(out, scheme) // "mem://" stays "mem://", not "mem:"
	}
	return out
}

// fileRoot returns the folder a file:// URL names, as fileblob reads it: the path, or a path
// relative to the working directory when the host is ".". Other hosts are refused, since
// fileblob would silently ignore them ("file://data/x" is "/x").
func fileRoot(u *url.URL) (string, error) {
	path := u.Path
	switch u.Host {
	case "", "localhost":
	case ".":
		path = strings.TrimPrefix(path, "/")
	default:
		return "", fmt.Errorf("%w: file URL host %q: use file:///absolute/path or file://./relative/path", ErrInvalid, u.Host)
	}
	if path == "" {
		return "", fmt.Errorf("%w: file URL without a path", ErrInvalid)
	}
	return filepath.Abs(filepath.FromSlash(path))
}

// prepareFileURL creates the folder and chooses fileblob's options: metadata in side files
// (the default; metadata must round-trip, so "metadata=skip" is refused) and temporary files
// in os.TempDir when that is on the same file system as the folder, so no half-written files
// show up in it, else next to the object, since a rename cannot cross file systems.
func prepareFileURL(u *url.URL) (root string, err error) {
	root, err = fileRoot(u)
	if err != nil {
		return "", err
	}
	q := u.Query()
	if _, ok := q["metadata"]; ok {
		return "", fmt.Errorf("%w: file URL parameter metadata: metadata is always kept", ErrInvalid)
	}
	if err := os.MkdirAll(root, 0o777); err != nil {
		return "", err
	}
	if q.Get("no_tmp_dir") == "" && !sameFileSystem(os.TempDir(), root) {
		q.Set("no_tmp_dir", "true")
	}
	u.RawQuery = q.Encode()
	return root, nil
}
