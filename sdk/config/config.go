package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// delim separates the levels of a key path; it is also what env names
// are rewritten to, so "db.port" means the same thing everywhere.
const delim = "."

// An Option configures a [Loader]; options are applied in order, and the
// order of [Defaults] and [File] options is their precedence.
type Option func(*options)

type options struct {
	defaults  []map[string]any
	files     []source
	envPrefix string
	useEnv    bool
	environ   []string
	hasEnv    bool
	schema    *schemaSpec
	onChange  func(old, new *Config)
	onError   func(error)
	debounce  time.Duration
	poll      time.Duration
	errs      []error
}

// Defaults supplies the lowest-precedence values, so a service runs with
// sensible settings even when Circle published nothing for a key.
//
// v is either a map[string]any, whose keys may be nested maps or dotted
// paths ("db.port"), or a struct (or pointer to one), which is turned
// into a map through encoding/json so that its `json` tags name the keys,
// exactly as [Config.Decode] reads them back.
func Defaults(v any) Option {
	return func(o *options) {
		m, err := toMap(v)
		if err != nil {
			o.errs = append(o.errs, fmt.Errorf("config: defaults: %w", err))
			return
		}
		// Copy now, so that later changes to the caller's map do not
		// surface at the next reload.
		m, _ = confmap.Provider(m, delim).Read()
		o.defaults = append(o.defaults, m)
	}
}

// File adds a JSON (.json) or YAML (.yaml, .yml) file. Files given later
// override earlier ones, so a local override can follow the published
// document. A missing file is an error: a service that starts without its
// published configuration should fail loudly rather than run on defaults.
func File(path string) Option {
	return func(o *options) {
		abs, err := filepath.Abs(path)
		if err != nil {
			o.errs = append(o.errs, fmt.Errorf("config: file %s: %w", path, err))
			return
		}
		p, err := parserFor(abs)
		if err != nil {
			o.errs = append(o.errs, err)
			return
		}
		o.files = append(o.files, source{path: abs, parser: p})
	}
}

// Env lets environment variables starting with prefix (for example
// "SHOP_") override everything else, which is how a Deployment patches a
// single value without a new config document. The prefix is required so
// that unrelated variables such as PATH never become configuration.
func Env(prefix string) Option {
	return func(o *options) {
		if prefix == "" {
			o.errs = append(o.errs, errors.New("config: Env needs a non-empty prefix"))
			return
		}
		o.useEnv = true
		o.envPrefix = prefix
	}
}

// Environ replaces os.Environ as the source of environment variables
// ("KEY=value" entries), so tests and tools can supply them without
// changing the process environment.
func Environ(environ []string) Option {
	return func(o *options) {
		o.environ = append([]string(nil), environ...)
		o.hasEnv = true
	}
}

// OnChange is called after a reload produced a configuration different
// from the current one, with the replaced and the new [Config]. Calls are
// made one at a time; fn must not call [Loader.Reload], which would wait
// for fn to return.
func OnChange(fn func(old, new *Config)) Option {
	return func(o *options) { o.onChange = fn }
}

// OnError receives the errors of reloads started by [Loader.Watch] and of
// the watcher itself, which otherwise have nowhere to go. The current
// configuration is kept when it is called.
func OnError(fn func(error)) Option {
	return func(o *options) { o.onError = fn }
}

// source is a File (path and parser) or a Remote (remote), kept in one list because
// their order is their precedence.
type source struct {
	path   string
	parser koanf.Parser
	remote Source
}

// A Loader holds the current configuration and knows how to read it
// again. It is safe for concurrent use.
type Loader struct {
	opts options
	// mu serialises reloads so that each OnChange sees the Config the
	// previous one installed.
	mu  sync.Mutex
	cur atomic.Pointer[Config]
}

// New reads every source once and returns a Loader holding the result.
// It fails if any file or [Remote] source is missing, malformed or
// unverifiable, or the result does not match the schema, so a
// misconfigured service stops at start-up.
func New(opts ...Option) (*Loader, error) {
	l := &Loader{opts: options{debounce: 100 * time.Millisecond, poll: DefaultPollInterval}}
	for _, opt := range opts {
		opt(&l.opts)
	}
	if err := errors.Join(l.opts.errs...); err != nil {
		return nil, err
	}
	c, err := l.load(context.Background())
	if err != nil {
		return nil, err
	}
	l.cur.Store(c)
	return l, nil
}

// Current returns the configuration in effect. The returned value never
// changes, so read several keys from one Current rather than calling it
// per key: the values then come from the same version of the document.
func (l *Loader) Current() *Config { return l.cur.Load() }

// Decode decodes the current configuration into v; see [Config.Decode].
func (l *Loader) Decode(v any) error { return l.Current().Decode(v) }

// Reload reads and validates every source again and, if that succeeds and
// the result differs from the current configuration, installs it and calls
// the [OnChange] function. On error the current configuration is kept and
// the error is returned (not passed to [OnError]). A service can call it,
// for example, on SIGHUP.
func (l *Loader) Reload() error { return l.reload(context.Background()) }

// reload is Reload with a context, so that stopping the watcher also stops a read of a
// Remote source in flight.
func (l *Loader) reload(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	next, err := l.load(ctx)
	if err != nil {
		return err
	}
	old := l.cur.Load()
	if reflect.DeepEqual(old.data, next.data) {
		return nil
	}
	l.cur.Store(next)
	if l.opts.onChange != nil {
		l.opts.onChange(old, next)
	}
	return nil
}

// load merges all sources in precedence order and validates the result.
func (l *Loader) load(ctx context.Context) (*Config, error) {
	var (
		cctx *cue.Context
		def  cue.Value
	)
	if l.opts.schema != nil {
		cctx = cuecontext.New()
		var err error
		if def, err = l.opts.schema.compile(cctx); err != nil {
			return nil, err
		}
	}
	k := koanf.New(delim)
	// confmap and env read from memory and cannot fail, and a merge that
	// is not strict has no error to report either, hence the ignored
	// errors below.
	for _, m := range l.opts.defaults {
		_ = k.Load(confmap.Provider(m, ""), nil)
	}
	for _, f := range l.opts.files {
		if f.remote != nil {
			b, err := readRemote(ctx, f.remote)
			if err != nil {
				return nil, err
			}
			if err := k.Load(rawBytes(b), jsonParser{}); err != nil {
				return nil, fmt.Errorf("config: read %s: %w", f.remote.Name(), err)
			}
			continue
		}
		if err := k.Load(file.Provider(f.path), f.parser); err != nil {
			return nil, fmt.Errorf("config: read %s: %w", f.path, err)
		}
	}
	if l.opts.useEnv {
		em, _ := env.Provider(delim, env.Opt{
			Prefix:        l.opts.envPrefix,
			TransformFunc: l.envKey,
			EnvironFunc:   l.environ,
		}).Read()
		if l.opts.schema != nil {
			coerce(def, em, nil)
		}
		_ = k.Load(confmap.Provider(em, ""), nil)
	}
	data := k.Raw()
	if l.opts.schema != nil {
		var err error
		if data, err = l.opts.schema.apply(cctx, def, data); err != nil {
			return nil, err
		}
	}
	return newConfig(data), nil
}

// envKey turns SHOP_DB__PORT into db.port, dropping the bare prefix.
func (l *Loader) envKey(k, v string) (string, any) {
	k = strings.TrimPrefix(k, l.opts.envPrefix)
	if k == "" {
		return "", nil
	}
	return strings.ReplaceAll(strings.ToLower(k), "__", delim), v
}

func (l *Loader) environ() []string {
	if l.opts.hasEnv {
		return l.opts.environ
	}
	return os.Environ()
}

// A Config is one immutable version of the merged configuration. Paths
// name nested keys with "." ("db.port"); the typed getters return the
// zero value when a key is missing or cannot be converted, so use
// [Config.Exists] or [Config.Decode] when that matters.
type Config struct {
	k *koanf.Koanf
	// data is the merged map; it is never handed out, so it can be
	// compared with the next version to skip reloads that change nothing.
	data map[string]any
}

func newConfig(data map[string]any) *Config {
	fixNumbers(data)
	k := koanf.New(delim)
	_ = k.Load(confmap.Provider(data, ""), nil) // cannot fail, see load
	return &Config{k: k, data: k.Raw()}
}

// Decode fills v, a pointer to a struct (or map), from the whole
// configuration. Fields are matched by their `json` tag, values are
// converted weakly (the string "5433" fills an int field) and durations
// are parsed from strings such as "1m30s". Fields without a value keep
// what v already held, so v can carry defaults of its own.
func (c *Config) Decode(v any) error {
	err := c.k.UnmarshalWithConf("", v, koanf.UnmarshalConf{
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook: mapstructure.ComposeDecodeHookFunc(
				mapstructure.StringToTimeDurationHookFunc(),
				mapstructure.TextUnmarshallerHookFunc(),
			),
			WeaklyTypedInput: true,
			Squash:           true,
			TagName:          "json",
		},
	})
	if err != nil {
		return fmt.Errorf("config: decode: %w", err)
	}
	return nil
}

// Get returns the value at path (a copy for maps and lists), or nil.
// Maps are map[string]any, lists []any, integers int64 and other numbers
// float64, whatever the source.
func (c *Config) Get(path string) any { return c.k.Get(path) }

// Exists reports whether path is set, telling an absent key apart from
// one set to its zero value.
func (c *Config) Exists(path string) bool { return c.k.Exists(path) }

// String returns the value at path formatted as a string.
func (c *Config) String(path string) string { return c.k.String(path) }

// Int returns the value at path as an int, parsing strings.
func (c *Config) Int(path string) int { return c.k.Int(path) }

// Bool returns the value at path as a bool, parsing strings such as "true".
func (c *Config) Bool(path string) bool { return c.k.Bool(path) }

// Duration returns the value at path as a duration: a string such as
// "30s", or a number of nanoseconds.
func (c *Config) Duration(path string) time.Duration { return c.k.Duration(path) }

// Map returns a copy of the whole configuration as nested maps, for
// logging or for handing to code that does its own decoding.
func (c *Config) Map() map[string]any { return c.k.Raw() }

// parserFor picks the parser by extension, the only hint a mounted file
// carries about its format.
func parserFor(path string) (koanf.Parser, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return jsonParser{}, nil
	case ".yaml", ".yml":
		return yaml.Parser(), nil
	}
	return nil, fmt.Errorf("config: read %s: unsupported file type (want .json, .yaml or .yml)", path)
}

// jsonParser keeps JSON integers as int64 and other numbers as float64.
// (Every source is brought to those two types by fixNumbers.)
// koanf's JSON parser makes every number a float64, which a CUE schema
// then rejects for an "int" field.
type jsonParser struct{}

func (jsonParser) Unmarshal(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("unexpected data after the top-level object")
	}
	return fixNumbers(m).(map[string]any), nil
}

func (jsonParser) Marshal(m map[string]any) ([]byte, error) { return json.Marshal(m) }

// fixNumbers gives every integer the type int64 and every other number
// float64, whichever parser, map or CUE produced them, so values read
// with Get have predictable types.
func fixNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = fixNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = fixNumbers(e)
		}
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		f, _ := v.Float64() // the decoder has already checked the syntax
		return f
	case int:
		return int64(v)
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case uint:
		return uintToInt(uint64(v))
	case uint8:
		return int64(v)
	case uint16:
		return int64(v)
	case uint32:
		return int64(v)
	case uint64:
		return uintToInt(v)
	case float32:
		return float64(v)
	}
	return v
}

// uintToInt keeps values beyond int64 as uint64 rather than wrapping.
func uintToInt(u uint64) any {
	if u > math.MaxInt64 {
		return u
	}
	return int64(u)
}

// toMap accepts a map as is and turns anything else into one through
// encoding/json, so struct defaults use the same keys as Decode.
func toMap(v any) (map[string]any, error) {
	if m, ok := v.(map[string]any); ok {
		return m, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m, err := jsonParser{}.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("want a map or a struct, got %T", v)
	}
	return m, nil
}
