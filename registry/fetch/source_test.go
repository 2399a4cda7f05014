package fetch_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/circlecore/circle/registry/fetch"
)

// The operator's sources are checked as strictly as the repository's URLs: a mistyped
// source refuses to start rather than allowing more than meant.
func TestParseSource_Refused(t *testing.T) {
	cases := []struct{ source, want string }{
		{"http://artifacts.example.com/", "http is not allowed"},
		{"https://user:pw@artifacts.example.com/", "user info is not allowed"},
		{"https://artifacts.example.com/?sig=secret", "an https source has no query"},
		{"https://artifacts.example.com/#x", "want scheme://host/prefix/"},
		{"ftp://artifacts.example.com/", `scheme "ftp" is not one of`},
		{"mem://", `scheme "mem" is not one of`},
		{"https:///releases/", "no host or bucket"},
		{"https://artifacts.example.com/a%2Fb/", "the path may not be escaped"},
		{"https://artifacts.example.com/a/../b/", `path segment ".."`},
		{"https://artifacts.example.com/a//b/", "empty path segment"},
		{"file://host/srv/", "want file:///absolute/folder/"},
		{"s3://bucket:9000/x/", "a bucket has no port"},
		{"https://h:x/", "invalid port"},
	}
	for _, c := range cases {
		if _, err := fetch.ParseSource(c.source); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.source, err, c.want)
		}
	}
	// The secret of a refused source is not repeated.
	if _, err := fetch.ParseSource("s3://user:hunter2@bucket/"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("user info: %v", err)
	}
}

// Allowed compares normalised parts: case of scheme and host, the default port, and a
// prefix given without its trailing slash.
func TestFetcher_Allowed(t *testing.T) {
	f := newFetcher(t, fetch.Options{Sources: []string{"https://Artifacts.Example.com:443/releases", "s3://bucket/pkgs/?region=eu-west-1&endpoint=https://s3.example.com", "gs://b/", "file:///srv/a/"}})
	allowed := []string{
		"https://artifacts.example.com/releases/a.tgz",
		"https://ARTIFACTS.example.com:443/releases/sub/a.tgz",
		"s3://bucket/pkgs/a.tgz",
		"gs://b/anything/a.tgz",
		"file:///srv/a/x.tgz",
		"file://localhost/srv/a/x.tgz",
	}
	for _, u := range allowed {
		if _, err := f.Allowed(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	refused := []string{
		"https://artifacts.example.com/releases",
		"https://artifacts.example.com/releasesx/a.tgz",
		"https://artifacts.example.com:8443/releases/a.tgz",
		"https://artifacts.example.com.evil.test/releases/a.tgz",
		"https://evil.test/https://artifacts.example.com/releases/a.tgz",
		"https://artifacts.example.com/releases/\u00e9.tgz",
		"https://artifacts.example.com/releases/a b.tgz",
		"https://artifacts.example.com/releases/./a.tgz",
		"https:artifacts.example.com/releases/a.tgz",
		"s3://bucket/other/a.tgz",
		"s3://bucket/pkgs/a.tgz?endpoint=http://127.0.0.1:1",
		"s3://bucket:1/pkgs/a.tgz",
		"azblob://bucket/pkgs/a.tgz",
		"file:///srv/ab/x.tgz",
		"file://./srv/a/x.tgz",
		"mem://x/a",
		"https://artifacts.example.com/releases/" + strings.Repeat("a", 2100),
	}
	for _, u := range refused {
		if _, err := f.Allowed(u); !errors.Is(err, fetch.ErrNotAllowed) {
			t.Errorf("%s: %v", u, err)
		}
	}
	if got := f.Sources()[1].String(); got != "s3://bucket/pkgs/" {
		t.Errorf("String() = %q: the store options stay out of messages", got)
	}
}
