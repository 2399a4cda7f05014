package config_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circlecore/circle/sdk/config"
)

func write(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustNew(t *testing.T, opts ...config.Option) *config.Loader {
	t.Helper()
	l, err := config.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	f := write(t, filepath.Join(dir, "config.yaml"), "db:\n  host: from-file\n  port: 2\n")
	l := mustNew(t,
		config.Defaults(map[string]any{"db": map[string]any{"host": "from-defaults", "port": 1, "user": "app"}}),
		config.File(f),
		config.Env("SHOP_"),
		config.Environ([]string{"SHOP_DB__HOST=from-env", "OTHER_DB__HOST=ignored", "PATH=/bin"}),
	)
	c := l.Current()
	if got := c.String("db.host"); got != "from-env" {
		t.Errorf("db.host = %q, want the env value", got)
	}
	if got := c.Int("db.port"); got != 2 {
		t.Errorf("db.port = %d, want the file value 2", got)
	}
	if got := c.String("db.user"); got != "app" {
		t.Errorf("db.user = %q, want the default to survive", got)
	}
	if c.Exists("path") || c.Exists("other_db") {
		t.Errorf("variables without the prefix leaked in: %v", c.Map())
	}
}

func TestFilesDeepMergeAndListsReplace(t *testing.T) {
	dir := t.TempDir()
	a := write(t, filepath.Join(dir, "a.yaml"), `
db:
  host: a-host
  port: 1
  pool: {min: 1, max: 5}
tags: [x, y]
`)
	b := write(t, filepath.Join(dir, "b.json"), `{"db": {"port": 2, "pool": {"max": 9}}, "tags": ["z"], "ratio": 1.0}`)
	c := mustNew(t, config.File(a), config.File(b)).Current()
	want := map[string]any{
		"db": map[string]any{
			"host": "a-host",
			"port": int64(2),
			"pool": map[string]any{"min": int64(1), "max": int64(9)},
		},
		"tags":  []any{"z"},
		"ratio": 1.0,
	}
	if got := c.Map(); !reflect.DeepEqual(got, want) {
		t.Errorf("merged = %#v\nwant %#v", got, want)
	}
}

func TestEnvNesting(t *testing.T) {
	c := mustNew(t,
		config.Env("SHOP_"),
		config.Environ([]string{
			"SHOP_DB__PORT=5433",
			"SHOP_LOG_LEVEL=debug",
			"SHOP_A__B__C=deep",
			"SHOP_=bare prefix",
			"SHOP_NOEQUALS",
		}),
	).Current()
	want := map[string]any{
		"db":        map[string]any{"port": "5433"},
		"log_level": "debug",
		"a":         map[string]any{"b": map[string]any{"c": "deep"}},
	}
	if got := c.Map(); !reflect.DeepEqual(got, want) {
		t.Errorf("env map = %#v, want %#v", got, want)
	}
	if got := c.Int("db.port"); got != 5433 {
		t.Errorf("Int(db.port) = %d, want 5433", got)
	}
}

func TestEnvDefaultsToProcessEnvironment(t *testing.T) {
	t.Setenv("CIRCLECONFIGTEST_X__Y", "7")
	c := mustNew(t, config.Env("CIRCLECONFIGTEST_")).Current()
	if got := c.Int("x.y"); got != 7 {
		t.Errorf("x.y = %d, want 7 from os.Environ", got)
	}
}

type Base struct {
	Name string `json:"name"`
}

type DB struct {
	Host    string        `json:"host"`
	Port    int           `json:"port"`
	TLS     bool          `json:"tls"`
	Timeout time.Duration `json:"timeout"`
}

type AppConfig struct {
	Base
	DB     DB       `json:"db"`
	Tags   []string `json:"tags,omitempty"`
	Ratio  float64  `json:"ratio"`
	Unused string   `json:"unused"`
}

func TestDecodeTyped(t *testing.T) {
	dir := t.TempDir()
	f := write(t, filepath.Join(dir, "c.json"), `{"name": "shop", "db": {"host": "db", "port": 5432, "timeout": "1m30s"}, "tags": ["a", "b"], "ratio": 0.5}`)
	l := mustNew(t,
		config.File(f),
		config.Env("SHOP_"),
		config.Environ([]string{"SHOP_DB__PORT=5433", "SHOP_DB__TLS=true", "SHOP_RATIO=0.25"}),
	)
	got := AppConfig{Unused: "kept"}
	if err := l.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := AppConfig{
		Base:   Base{Name: "shop"},
		DB:     DB{Host: "db", Port: 5433, TLS: true, Timeout: 90 * time.Second},
		Tags:   []string{"a", "b"},
		Ratio:  0.25,
		Unused: "kept",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v\nwant    %+v", got, want)
	}
	c := l.Current()
	if !c.Bool("db.tls") || c.Duration("db.timeout") != 90*time.Second || c.Get("db.host") != "db" {
		t.Errorf("getters: tls=%v timeout=%v host=%v", c.Bool("db.tls"), c.Duration("db.timeout"), c.Get("db.host"))
	}

	var bad struct {
		DB struct {
			Port int `json:"port"`
		} `json:"db"`
	}
	l = mustNew(t, config.Defaults(map[string]any{"db.port": "not a number"}))
	if err := l.Decode(&bad); err == nil || !strings.HasPrefix(err.Error(), "config: decode:") {
		t.Errorf("Decode of a non-number into int: err = %v", err)
	}
}

func TestDefaultsStruct(t *testing.T) {
	d := AppConfig{Base: Base{Name: "def"}, DB: DB{Host: "localhost", Port: 5432, Timeout: time.Second}}
	dir := t.TempDir()
	f := write(t, filepath.Join(dir, "c.yaml"), "db:\n  host: prod-db\n")
	l := mustNew(t, config.Defaults(&d), config.File(f))
	var got AppConfig
	if err := l.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := d
	want.DB.Host = "prod-db"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v\nwant    %+v", got, want)
	}
	if !l.Current().Exists("name") {
		t.Error("the embedded struct's key should be at the top level, as in encoding/json")
	}
}

const schema = `
#Config: {
	name: string
	db: {
		host: string | *"localhost"
		port: int & >0 & <65536
		tls:  bool | *false
		ratio?: float
	}
	level: *"info" | "debug"
	tags: [...string]
}
`

func TestSchemaListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	f := write(t, filepath.Join(dir, "c.yaml"), `
db:
  port: 0
  ratio: 1
bogus: true
tags: [a, 1]
`)
	_, err := config.New(config.File(f), config.Schema([]byte(schema), "#Config"))
	var verr *config.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	got := map[string]string{}
	for _, p := range verr.Problems {
		got[p.Path] = p.Message
	}
	for _, path := range []string{"db.port", "db.ratio", "tags.1", "bogus", "name"} {
		if _, ok := got[path]; !ok {
			t.Errorf("no problem reported at %s; got %q", path, verr.Problems)
		}
	}
	if !strings.Contains(got["db.port"], "out of bound") || !strings.Contains(got["bogus"], "not allowed") {
		t.Errorf("messages: %q", verr.Problems)
	}
	msg := err.Error()
	t.Log(msg)
	if !strings.HasPrefix(msg, "config: does not match #Config:") || !strings.Contains(msg, "db.port: ") || !strings.Contains(msg, "; name: ") {
		t.Errorf("message = %q", msg)
	}
}

func TestSchemaDefaultsAndEnvConversion(t *testing.T) {
	dir := t.TempDir()
	f := write(t, filepath.Join(dir, "c.json"), `{"name": "shop", "db": {"port": 5432, "ratio": 1.0}}`)
	l := mustNew(t,
		config.File(f),
		config.Env("SHOP_"),
		config.Environ([]string{"SHOP_DB__PORT=5433", "SHOP_DB__TLS=true", "SHOP_DB__RATIO=2", "SHOP_LEVEL=debug"}),
		config.Schema([]byte(schema), "#Config"),
	)
	c := l.Current()
	if got := c.Get("db.port"); got != int64(5433) {
		t.Errorf("db.port = %#v (%T), want the env value as an int", got, got)
	}
	if got := c.Get("db.tls"); got != true {
		t.Errorf("db.tls = %#v, want true", got)
	}
	if got := c.Get("db.ratio"); got != 2.0 {
		t.Errorf("db.ratio = %#v, want 2.0 (schema says float)", got)
	}
	if got := c.String("db.host"); got != "localhost" {
		t.Errorf("db.host = %q, want the schema default", got)
	}
	if got := c.String("level"); got != "debug" {
		t.Errorf("level = %q, want debug", got)
	}
	if got := c.Get("tags"); !reflect.DeepEqual(got, []any{}) {
		t.Errorf("tags = %#v, want the empty list default", got)
	}

	// An env value that cannot be converted is reported, not dropped.
	_, err := config.New(config.File(f), config.Env("SHOP_"),
		config.Environ([]string{"SHOP_DB__PORT=many", "SHOP_EXTRA=1"}),
		config.Schema([]byte(schema), "#Config"))
	var verr *config.ValidationError
	if !errors.As(err, &verr) || len(verr.Problems) != 2 || verr.Problems[0].Path != "db.port" || verr.Problems[1].Path != "extra" {
		t.Errorf("err = %v", err)
	}

	// Without a definition the whole source is the schema.
	l = mustNew(t, config.File(f), config.Schema([]byte("name: string\nport: *80 | int\n..."), ""))
	if got := l.Current().Int("port"); got != 80 {
		t.Errorf("port = %d, want 80", got)
	}
	_, err = config.New(config.Defaults(map[string]any{"port": "x"}), config.Schema([]byte("port: int"), ""))
	if err == nil || !strings.HasPrefix(err.Error(), "config: does not match schema: port: ") {
		t.Errorf("err = %v", err)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	badYAML := write(t, filepath.Join(dir, "bad.yaml"), "a: [unclosed\n")
	badJSON := write(t, filepath.Join(dir, "bad.json"), `{"a": 1} {"b": 2}`)
	for name, tc := range map[string]struct {
		opts []config.Option
		want string
	}{
		"missing file":  {[]config.Option{config.File(missing)}, "config: read " + missing + ":"},
		"bad yaml":      {[]config.Option{config.File(badYAML)}, "config: read " + badYAML + ":"},
		"trailing json": {[]config.Option{config.File(badJSON)}, "config: read " + badJSON + ":"},
		"extension":     {[]config.Option{config.File("config.toml")}, "unsupported file type"},
		"empty prefix":  {[]config.Option{config.Env("")}, "non-empty prefix"},
		"defaults type": {[]config.Option{config.Defaults(42)}, "config: defaults: want a map or a struct, got int"},
		"defaults json": {[]config.Option{config.Defaults(func() {})}, "config: defaults:"},
		"schema syntax": {[]config.Option{config.Schema([]byte("a: {"), "#Config")}, "config: compile schema:"},
		"no definition": {[]config.Option{config.Schema([]byte("#Other: {}"), "#Config")}, "config: schema has no #Config"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := config.New(tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	_, err := config.New(config.File(missing))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want it to wrap fs.ErrNotExist", err)
	}
	if _, err := mustNew(t).Watch(context.Background()); err == nil {
		t.Error("Watch without files should fail")
	}
	stop, err := mustNew(t, config.File(write(t, filepath.Join(dir, "ok.yaml"), "a: 1"))).Watch(context.Background())
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	stop()
	stop() // a second stop is harmless
}

// recorder collects callbacks for tests that wait on them.
type recorder struct {
	changes chan [2]*config.Config
	errs    chan error
}

func newRecorder() *recorder {
	return &recorder{changes: make(chan [2]*config.Config, 10), errs: make(chan error, 10)}
}

func (r *recorder) options() []config.Option {
	return []config.Option{
		config.OnChange(func(old, new *config.Config) { r.changes <- [2]*config.Config{old, new} }),
		config.OnError(func(err error) { r.errs <- err }),
	}
}

func (r *recorder) change(t *testing.T) (old, new *config.Config) {
	t.Helper()
	select {
	case c := <-r.changes:
		return c[0], c[1]
	case err := <-r.errs:
		t.Fatalf("error callback instead of a change: %v", err)
	case <-time.After(2 * time.Second):
		t.Fatal("no change seen within 2s")
	}
	return nil, nil
}

func (r *recorder) err(t *testing.T) error {
	t.Helper()
	select {
	case c := <-r.changes:
		t.Fatalf("change callback instead of an error: %v", c[1].Map())
	case err := <-r.errs:
		return err
	case <-time.After(2 * time.Second):
		t.Fatal("no error seen within 2s")
	}
	return nil
}

func (r *recorder) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-r.changes:
		t.Fatalf("unexpected change: %v", c[1].Map())
	case err := <-r.errs:
		t.Fatalf("unexpected error: %v", err)
	case <-time.After(d):
	}
}

func watch(t *testing.T, l *config.Loader) func() {
	t.Helper()
	stop, err := l.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return stop
}

func TestWatchReloadsAndKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	f := write(t, filepath.Join(dir, "config.yaml"), "name: shop\ndb:\n  port: 5432\n")
	r := newRecorder()
	l := mustNew(t, append(r.options(), config.File(f), config.Schema([]byte(schema), "#Config"))...)
	watch(t, l)

	// Reading concurrently with reloads must be race-free.
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				var c AppConfig
				_ = l.Decode(&c)
			}
		}
	})
	defer func() { close(done); wg.Wait() }()

	write(t, f, "name: shop\ndb:\n  port: 6000\n")
	old, cur := r.change(t)
	if old.Int("db.port") != 5432 || cur.Int("db.port") != 6000 || l.Current().Int("db.port") != 6000 {
		t.Errorf("old=%d new=%d current=%d", old.Int("db.port"), cur.Int("db.port"), l.Current().Int("db.port"))
	}

	write(t, f, "name: shop\ndb: [broken\n")
	if err := r.err(t); !strings.Contains(err.Error(), f) {
		t.Errorf("error %q does not name the file", err)
	}
	if got := l.Current().Int("db.port"); got != 6000 {
		t.Errorf("db.port = %d after a broken file, want the last good 6000", got)
	}

	write(t, f, "name: shop\ndb:\n  port: 70000\n")
	var verr *config.ValidationError
	if err := r.err(t); !errors.As(err, &verr) {
		t.Errorf("err = %v, want a *ValidationError", err)
	}
	if got := l.Current().Int("db.port"); got != 6000 {
		t.Errorf("db.port = %d after an invalid file, want the last good 6000", got)
	}

	// Deleting and recreating the file, as some editors do, ends in one good reload.
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	write(t, f, "name: shop\ndb:\n  port: 7000\n")
	if _, cur := r.change(t); cur.Int("db.port") != 7000 {
		t.Errorf("after recreate: %v", cur.Map())
	}
}

func TestWatchIgnoresUnchangedAndOtherFiles(t *testing.T) {
	dir := t.TempDir()
	f := write(t, filepath.Join(dir, "config.json"), `{"a": 1}`)
	r := newRecorder()
	l := mustNew(t, append(r.options(), config.File(f))...)
	watch(t, l)

	write(t, filepath.Join(dir, "unrelated.json"), `{"a": 2}`)
	write(t, f, `{"a":   1}`) // same content, different bytes
	r.quiet(t, 500*time.Millisecond)
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	r.quiet(t, 50*time.Millisecond)
}

func TestWatchStop(t *testing.T) {
	dir := t.TempDir()
	f := write(t, filepath.Join(dir, "config.yaml"), "a: 1\n")
	r := newRecorder()
	l := mustNew(t, append(r.options(), config.File(f))...)
	ctx, cancel := context.WithCancel(context.Background())
	stop, err := l.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	stop() // waits for the watcher to finish, even after cancel
	write(t, f, "a: 2\n")
	r.quiet(t, 400*time.Millisecond)
	if got := l.Current().Int("a"); got != 1 {
		t.Errorf("a = %d after stop, want 1", got)
	}
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, cur := r.change(t); cur.Int("a") != 2 {
		t.Errorf("explicit Reload: a = %d", cur.Int("a"))
	}
	os.Remove(f)
	if err := l.Reload(); err == nil || l.Current().Int("a") != 2 {
		t.Errorf("Reload of a missing file: err = %v, a = %d", err, l.Current().Int("a"))
	}
}

// TestWatchConfigMapSwap reproduces how the kubelet updates a ConfigMap
// volume: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>, and
// an update renames a new ..data symlink over the old one.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "config.yaml"), content)
	}
	version("..2024_01_01", "db:\n  host: old\n")
	if err := os.Symlink("..2024_01_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/config.yaml", filepath.Join(dir, "config.yaml")); err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	l := mustNew(t, append(r.options(), config.File(filepath.Join(dir, "config.yaml")))...)
	watch(t, l)

	version("..2024_01_02", "db:\n  host: new\n")
	if err := os.Symlink("..2024_01_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2024_01_01")); err != nil {
		t.Fatal(err)
	}
	old, cur := r.change(t)
	if old.String("db.host") != "old" || cur.String("db.host") != "new" {
		t.Errorf("old=%q new=%q", old.String("db.host"), cur.String("db.host"))
	}
}

func TestNumberTypes(t *testing.T) {
	c := mustNew(t, config.Defaults(map[string]any{
		"i": 1, "i8": int8(2), "i16": int16(3), "i32": int32(4),
		"u": uint(5), "u8": uint8(6), "u16": uint16(7), "u32": uint32(8), "u64": uint64(9),
		"huge": uint64(1 << 63), "f32": float32(0.5),
		"list": []any{1, []any{uint8(2)}, map[string]any{"x": int32(3)}},
	})).Current()
	for _, key := range []string{"i", "i8", "i16", "i32", "u", "u8", "u16", "u32", "u64"} {
		if _, ok := c.Get(key).(int64); !ok {
			t.Errorf("%s is %T, want int64", key, c.Get(key))
		}
	}
	if got := c.Get("huge"); got != uint64(1<<63) {
		t.Errorf("huge = %#v, want it kept as uint64", got)
	}
	if got := c.Get("f32"); got != 0.5 {
		t.Errorf("f32 = %#v, want float64 0.5", got)
	}
	want := []any{int64(1), []any{int64(2)}, map[string]any{"x": int64(3)}}
	if got := c.Get("list"); !reflect.DeepEqual(got, want) {
		t.Errorf("list = %#v, want %#v", got, want)
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l := mustNew(t, config.File(write(t, filepath.Join(dir, "c.yaml"), "a: 1")))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Watch(context.Background()); err == nil || !strings.Contains(err.Error(), "config: watch "+dir) {
		t.Errorf("err = %v, want it to name the directory", err)
	}
}
