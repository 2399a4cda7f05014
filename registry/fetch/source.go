package fetch

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/circlecore/circle/storage"
)

// Schemes a source or an artifact URL may have.
const (
	SchemeHTTPS = "https"
	SchemeS3    = storage.BackendS3
	SchemeGCS   = storage.BackendGCS
	SchemeAzure = storage.BackendAzure
	SchemeFile  = storage.BackendFile
)

// maxURLLen bounds an artifact URL: no store key is longer than 1 KiB, and a longer URL
// is more likely an attempt at something than a name.
const maxURLLen = 2048

// ErrNotAllowed is returned for an artifact URL that is not under any allowed source, or
// that the URL rules refuse (see the package doc); nothing was requested.
var ErrNotAllowed = errors.New("not allowed")

// Source is one prefix the operator allows artifacts to be fetched from, parsed.
type Source struct {
	scheme string
	host   string // lower-case; for https without the default port; "" for file
	path   string // begins and ends with "/"
	// query is the store's options (endpoint, region) for storage schemes: the operator's.
	query string
}

// ParseSource parses an allowed prefix: https://HOST[:PORT]/PATH/, or a storage URL of
// package storage whose path is the key prefix and whose query holds the store's options
// (s3://BUCKET/PREFIX/?region=R&endpoint=E, gs://BUCKET/PREFIX/, azblob://CONTAINER/PREFIX/,
// file:///FOLDER/). A path without a trailing "/" is taken as a folder all the same, so
// a prefix never matches half a name.
func ParseSource(raw string) (Source, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Source{}, fmt.Errorf("artifact source %s: %w", storage.Redacted(raw), err)
	}
	bad := func(format string, args ...any) (Source, error) {
		return Source{}, fmt.Errorf("artifact source %s: "+format, append([]any{storage.Redacted(raw)}, args...)...)
	}
	switch {
	case u.Scheme == "http":
		return bad("http is not allowed: use https (anyone on the path could answer a plain request)")
	case u.User != nil:
		return bad("user info is not allowed: credentials come from the environment")
	case u.Opaque != "" || u.Fragment != "" || u.RawFragment != "":
		return bad("want scheme://host/prefix/")
	}
	s := Source{scheme: u.Scheme, query: u.RawQuery}
	switch u.Scheme {
	case SchemeHTTPS:
		if u.RawQuery != "" || u.ForceQuery {
			return bad("an https source has no query")
		}
	case SchemeS3, SchemeGCS, SchemeAzure:
	case SchemeFile:
		if u.Host != "" && u.Host != "localhost" {
			return bad("want file:///absolute/folder/")
		}
	default:
		return bad("scheme %q is not one of https, s3, gs, azblob, file", u.Scheme)
	}
	if s.host, err = normalHost(u); err != nil {
		return bad("%v", err)
	}
	if s.scheme != SchemeFile && s.host == "" {
		return bad("no host or bucket")
	}
	p := u.Path
	if u.RawPath != "" || strings.ContainsAny(p, "%\\") {
		return bad("the path may not be escaped")
	}
	if p == "" {
		p = "/"
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if p != "/" {
		if err := checkSegments(strings.TrimSuffix(p[1:], "/")); err != nil {
			return bad("%v", err)
		}
	}
	s.path = p
	return s, nil
}

// String is the source as scheme://host/path/, without the store options (which may name
// an endpoint the repository's author need not see).
func (s Source) String() string { return s.scheme + "://" + s.host + s.path }

// storeURL is the URL package storage opens for a storage source: the bucket with the
// operator's options; for file, the source's folder itself.
func (s Source) storeURL() string {
	u := url.URL{Scheme: s.scheme, Host: s.host, RawQuery: s.query}
	if s.scheme == SchemeFile {
		u.Path = s.path
		if len(u.Path) > 1 {
			u.Path = strings.TrimSuffix(u.Path, "/")
		}
	}
	return u.String()
}

// key is the store key of an artifact URL's path under s: relative to the bucket, or for
// file to the source's folder.
func (s Source) key(p string) string {
	if s.scheme == SchemeFile {
		return strings.TrimPrefix(p, s.path)
	}
	return strings.TrimPrefix(p, "/")
}

// under reports whether u, already checked, is under s.
func (s Source) under(u *url.URL, host string) bool {
	return u.Scheme == s.scheme && host == s.host && strings.HasPrefix(u.Path, s.path) && len(u.Path) > len(s.path)
}

// checkURL parses an artifact URL and applies the URL rules of the package doc; it does
// not look at the sources. allowQuery admits a query (a redirect's, chosen by the allowed
// server). It returns the URL and its normalised host.
func checkURL(raw string, allowQuery bool) (*url.URL, string, error) {
	if len(raw) > maxURLLen {
		return nil, "", fmt.Errorf("%w: longer than %d bytes", ErrNotAllowed, maxURLLen)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' || c == '%' || c == '#' || (c == '?' && !allowQuery) {
			return nil, "", fmt.Errorf("%w: %q at byte %d (no escapes, spaces, backslashes, fragments or queries)", ErrNotAllowed, c, i)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrNotAllowed, err)
	}
	switch {
	case u.User != nil:
		return nil, "", fmt.Errorf("%w: user info in the URL", ErrNotAllowed)
	case u.Opaque != "" || !strings.HasPrefix(u.Path, "/"):
		return nil, "", fmt.Errorf("%w: want scheme://host/path", ErrNotAllowed)
	case u.Scheme == "http":
		return nil, "", fmt.Errorf("%w: http (use https)", ErrNotAllowed)
	}
	switch u.Scheme {
	case SchemeHTTPS, SchemeS3, SchemeGCS, SchemeAzure, SchemeFile:
	default:
		return nil, "", fmt.Errorf("%w: scheme %q", ErrNotAllowed, u.Scheme)
	}
	host, err := normalHost(u)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrNotAllowed, err)
	}
	if err := checkSegments(u.Path[1:]); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrNotAllowed, err)
	}
	return u, host, nil
}

// normalHost is u's host lower-cased, without https's default port, and "" for a file
// URL's "localhost", so one origin has one spelling.
func normalHost(u *url.URL) (string, error) {
	host := strings.ToLower(u.Host)
	if u.Port() != "" && strings.Trim(u.Port(), "0123456789") != "" {
		return "", fmt.Errorf("port %q", u.Port())
	}
	switch {
	case u.Scheme == SchemeHTTPS && u.Port() == "443":
		host = strings.TrimSuffix(host, ":443")
	case u.Scheme == SchemeFile && host == "localhost":
		host = ""
	case u.Scheme == SchemeFile && host != "":
		return "", fmt.Errorf("file URL host %q (want file:///path)", u.Host)
	case u.Scheme != SchemeHTTPS && u.Port() != "":
		return "", fmt.Errorf("a bucket has no port")
	}
	return host, nil
}

// checkSegments refuses a slash-separated path with an empty, "." or ".." segment: such a
// path means different objects to different servers.
func checkSegments(p string) error {
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return errors.New("empty path segment")
		case ".", "..":
			return fmt.Errorf("path segment %q", seg)
		}
	}
	return nil
}
