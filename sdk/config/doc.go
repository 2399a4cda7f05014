// Package config reads the configuration that Circle published for a
// service: a merged JSON or YAML document per environment, typically
// mounted from a Kubernetes ConfigMap at /etc/circle/config.yaml, or read
// from the environment's build in object storage through a [Source]
// (package github.com/circlecore/circle/sdk/published) with [Remote].
//
// A service builds a [Loader] once at start-up, decodes the result into
// its own struct, and may [Loader.Watch] the files so that a ConfigMap
// update reaches the running process without a restart:
//
//	l, err := config.New(
//		config.Defaults(map[string]any{"db.port": 5432}),
//		config.File("/etc/circle/config.yaml"),
//		config.Env("SHOP_"),
//		config.Schema(cueSrc, "#Config"),
//		config.OnChange(func(old, new *config.Config) { ... }),
//	)
//	var c MyConfig
//	err = l.Decode(&c)
//
// # Precedence and merging
//
// Sources are merged from lowest to highest precedence:
//
//  1. defaults from the CUE schema, if [Schema] is given (they only fill
//     fields that no other source set);
//  2. [Defaults] (a map or a struct), in the order given;
//  3. [File] and [Remote] options, in the order given, so a later file
//     overrides an earlier one, and a published build read with [Remote]
//     stands exactly where a File would (give a local override file after
//     it);
//  4. environment variables selected by [Env].
//
// Maps are merged deeply: a later source only replaces the keys it sets,
// so a file that sets db.port keeps db.host from the defaults. Every other
// value, lists included, is replaced as a whole, because merging lists
// element by element has no meaning both sides would agree on.
//
// An environment variable PREFIX_A__B=v sets the key a.b: the prefix is
// cut, the rest is lower-cased and "__" separates levels, so a single "_"
// can stay inside a key name (SHOP_LOG_LEVEL sets log_level). Environment
// values are strings; [Config.Decode] converts them to the field's type,
// and when a schema is given they are converted to the type the schema
// asks for before validation.
//
// Keys are addressed with "." between levels, so a key that itself holds
// a "." (such as a host name) is read as nested keys.
//
// # Decoding
//
// [Config.Decode] fills a struct using its `json` tags, so a service can
// use the same struct with encoding/json (for example to print its
// effective configuration). Decoding is weakly typed: strings become
// ints, bools and floats, and "90s" or "1h" become a [time.Duration].
// Embedded structs are flattened, as encoding/json does.
//
// # Why koanf
//
// The sources above are koanf providers and parsers
// (github.com/knadh/koanf/v2): it does the layered deep merge, the
// "__"-to-level environment mapping and the weakly typed decode that this
// package needs, with small, separately versioned modules. Unlike viper
// it keeps the case of keys from files, has no package-level instance to
// share by accident and pulls in far fewer dependencies. JSON files are parsed by
// this package rather than by koanf's JSON parser, which turns every
// number into a float64 and so makes 5432 fail a CUE "int" and 1.0 fail a
// CUE "float".
//
// # Reloading
//
// [Loader.Watch] watches the directory of each file rather than the file,
// because a ConfigMap update replaces a "..data" symlink in the directory
// and never writes to the file the service opened. Events are debounced,
// then every source is read again and validated again. Only a complete,
// valid result replaces the current [Config]; otherwise the last good one
// stays and the error goes to [OnError].
//
// A [Remote] source has no events: Watch asks it every [PollInterval]
// whether it changed (for a published build, one metadata request and no
// download or decryption) and reloads only when it did. A source that
// refuses a build (it does not verify) keeps the current configuration,
// like a file that does not parse.
package config
