// Package repo loads the repository a user writes, from a snapshot: circle.yaml, the
// repository's schema, and per environment the merged configuration with its secrets
// decrypted, validated against the schema.
//
// Load reports every problem it finds in one pass, across all environments, each naming the
// file, line and column to fix. Values from SOPS files, and values under keys that look
// secret, are registered with the Redactor before anything is validated, so no message Load
// returns can show them.
package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/circlecore/circle/layers"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/schema"
	"github.com/circlecore/circle/secrets"
)

// SettingsFile is the name of the settings file at the root of a repository.
const SettingsFile = "circle.yaml"

// Settings is circle.yaml, after validation with the built-in #Settings definition, defaults
// applied.
type Settings struct {
	APIVersion   string        `json:"apiVersion"`
	Environments []Environment `json:"environments"`
	Paths        Paths         `json:"paths"`
	Schema       *struct {
		Definition string `json:"definition"`
	} `json:"schema,omitempty"`
	Redact *struct {
		KeyPattern string `json:"keyPattern,omitempty"`
	} `json:"redact,omitempty"`
	Targets []Target `json:"targets,omitempty"`
}

// Environment is one environment a commit is built for.
type Environment struct {
	Name string `json:"name"`
	// Namespace is where Circle's generated objects (circle-config, circle-secrets,
	// circle-licenses) go when the environment's overlay sets no namespace of its own.
	Namespace string  `json:"namespace,omitempty"`
	Policy    *Policy `json:"policy,omitempty"`
}

// Policy is what an environment demands of a revision.
type Policy struct {
	RequireSignedCommits bool     `json:"requireSignedCommits"`
	TrustedKeys          []string `json:"trustedKeys,omitempty"`
	// Manifests is what the environment's rendered manifests are held to; nil keeps the
	// defaults.
	Manifests *ManifestPolicy `json:"manifests,omitempty"`
}

// ManifestPolicy is circle.yaml's say on the policies the manifests package checks. A
// field left out keeps that package's default for the environment.
type ManifestPolicy struct {
	// RequiredLabels replaces the default list when not nil ([] requires none).
	RequiredLabels []string `json:"requiredLabels,omitempty"`
	// DenyLatestTag refuses latest and untagged images when true.
	DenyLatestTag *bool `json:"denyLatestTag,omitempty"`
	// Disable names checks that do not run.
	Disable []string `json:"disable,omitempty"`
}

// Paths says where each part of the repository lives.
type Paths struct {
	Schema     string `json:"schema"`
	Config     string `json:"config"`
	Secrets    string `json:"secrets"`
	Packages   string `json:"packages"`
	Advisories string `json:"advisories"`
	Licenses   string `json:"licenses"`
	Manifests  string `json:"manifests"`
}

// Target names a place an environment's build goes; its URL is in the daemon's
// configuration.
type Target struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	Environments []string `json:"environments"`
}

// Definition is the schema definition each environment's config must satisfy.
func (s *Settings) Definition() string {
	if s.Schema != nil && s.Schema.Definition != "" {
		return s.Schema.Definition
	}
	return "#Config"
}

// Namespace is the namespace circle.yaml gives the environment called name, or "".
func (s *Settings) Namespace(name string) string {
	for _, e := range s.Environments {
		if e.Name == name {
			return e.Namespace
		}
	}
	return ""
}

// EnvNames lists the environments in the order circle.yaml gives them.
func (s *Settings) EnvNames() []string {
	out := make([]string, len(s.Environments))
	for i, e := range s.Environments {
		out[i] = e.Name
	}
	return out
}

// Options tunes Load.
type Options struct {
	// Keyring opens the SOPS files. Without keys, a repository with secrets fails to load.
	Keyring *secrets.Keyring
	// Redactor learns every secret value. Nil means a fresh one; Repo.Redactor returns it.
	Redactor *redact.Redactor
	// Envs restricts loading to these environments; empty means all.
	Envs []string
	// Overrides are the daemon's own values per environment, merged last.
	Overrides map[string]map[string]any
	// EvalLimit bounds each evaluation of the repository's CUE (loading the schema,
	// validating an environment, each pass that finds derived secrets); zero means
	// schema.DefaultEvalLimit (10s). It is the daemon's setting, never the repository's;
	// see schema.WithEvalLimit for what happens to an evaluation that exceeds it.
	EvalLimit time.Duration
	// Settings, when set, is the snapshot's circle.yaml as LoadSettings read it, so a caller
	// that read it first (the daemon's settings stage) does not have it parsed and validated
	// again. It must come from the same fsys.
	Settings *Settings
	// NoDecrypt reviews without keys: secrets files are not decrypted but read for their
	// key names and type tags, each value standing in as its type, and what depends on them
	// is listed in Env.NotDecrypted instead of checked (see nodecrypt.go).
	NoDecrypt bool
}

// Repo is a loaded repository.
type Repo struct {
	Settings *Settings
	Envs     []*Env
	redactor *redact.Redactor
}

// Redactor is the redactor that knows this repository's secrets.
func (r *Repo) Redactor() *redact.Redactor { return r.redactor }

// Env returns the loaded environment called name, or nil.
func (r *Repo) Env(name string) *Env {
	for _, e := range r.Envs {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// Env is one environment's configuration.
type Env struct {
	Name string
	// Config is the merged, validated configuration with the schema's defaults applied:
	// maps, slices and scalars as encoding/json produces them.
	Config    map[string]any
	Merged    *layers.Merged
	sensitive func(layers.Origin) bool
	secretKey func(string) bool
	redactor  *redact.Redactor
	// derived are the leaves the schema computed from sensitive values (see derive).
	derived map[string]bool
	// Kubernetes is the configuration's reserved key KubernetesKey, validated against
	// Circle's #Kubernetes: the PersistentVolumeClaims and Ingresses Circle generates. It
	// is not in Config, Merged or anything published as the service's configuration.
	Kubernetes map[string]any
	// kubernetes is that key's part of the merged layers, for its origins.
	kubernetes *layers.Merged
	// NotDecrypted are the configuration's paths whose values were not known in a review
	// without keys (Options.NoDecrypt): the secrets, and what the schema computes from
	// them. Their values in Config are schema.NotDecrypted.
	NotDecrypted []string
}

// KubernetesKey is the top-level key of an environment's configuration that describes the
// Kubernetes objects Circle generates (schema/circle.cue #Kubernetes) rather than the
// service's configuration.
const KubernetesKey = "kubernetes"

// KubernetesOrigin returns where the value at p under KubernetesKey ("ingresses.web.host")
// was set.
func (e *Env) KubernetesOrigin(p string) (layers.Origin, bool) {
	if e.kubernetes == nil {
		return layers.Origin{}, false
	}
	return e.kubernetes.Origin(p)
}

// Sensitive reports whether the value at a dotted path is secret: it came from a SOPS file,
// its key matches the redaction pattern, or the schema computed it from such a value.
func (e *Env) Sensitive(p string) bool {
	o, ok := e.Merged.Origin(p)
	return ok && e.sensitive(o) || e.derived[p]
}

// hidden is the rule Redacted and Split share for the leaf at p, whose key is key.
func (e *Env) hidden(key, p string) bool {
	if e.derived[p] {
		return true
	}
	// A value the schema supplied has no origin; its key alone decides.
	o, ok := e.Merged.Origin(p)
	return ok && e.sensitive(o) || !ok && e.secretKey(key)
}

// Redacted is Config with every sensitive value replaced by its mask: what status, logs and
// plan output may show.
func (e *Env) Redacted() map[string]any {
	out, _ := e.redactValue(e.Config, "", "").(map[string]any)
	return out
}

func (e *Env) redactValue(v any, key, p string) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = e.redactValue(x, k, layers.Join(p, k))
		}
		return out
	default:
		if e.hidden(key, p) {
			b, _ := json.Marshal(v)
			return e.redactor.Mask(string(b))
		}
		return v
	}
}

// Split divides Config into its plain values and its sensitive ones (same rule as
// Redacted), each keeping the nesting of Config; a map left empty is dropped. Render puts
// the first in a ConfigMap and the second in a Secret.
func (e *Env) Split() (plain, sensitive map[string]any) {
	plain, sensitive = map[string]any{}, map[string]any{}
	e.split(e.Config, "", plain, sensitive)
	return plain, sensitive
}

func (e *Env) split(m map[string]any, p string, plain, sensitive map[string]any) {
	for k, v := range m {
		kp := layers.Join(p, k)
		if sub, ok := v.(map[string]any); ok {
			ps, ss := map[string]any{}, map[string]any{}
			e.split(sub, kp, ps, ss)
			if len(ps) > 0 {
				plain[k] = ps
			}
			if len(ss) > 0 {
				sensitive[k] = ss
			}
			continue
		}
		if e.hidden(k, kp) {
			sensitive[k] = v
		} else {
			plain[k] = v
		}
	}
}

// Problem is one thing wrong with a repository, in the environments it affects.
type Problem struct {
	schema.Issue
	Envs []string `json:"envs,omitempty"`
}

// ProblemSet gathers problems found environment by environment, one per distinct issue,
// listing every environment that has it: a base shared by three overlays reports its
// problem once. The zero value is empty and ready.
type ProblemSet struct {
	list  []Problem
	index map[string]int
}

// Add records is as found in env ("" for a problem of no one environment).
func (s *ProblemSet) Add(env string, is schema.Issue) {
	key := is.String()
	if i, ok := s.index[key]; ok {
		if env != "" {
			s.list[i].Envs = append(s.list[i].Envs, env)
		}
		return
	}
	if s.index == nil {
		s.index = map[string]int{}
	}
	p := Problem{Issue: is}
	if env != "" {
		p.Envs = []string{env}
	}
	s.index[key] = len(s.list)
	s.list = append(s.list, p)
}

// List returns the problems in the order first found.
func (s *ProblemSet) List() []Problem { return s.list }

// String is the issue with the environments it was found in.
func (p Problem) String() string {
	if len(p.Envs) == 0 {
		return p.Issue.String()
	}
	return p.Issue.String() + " [" + strings.Join(p.Envs, ", ") + "]"
}

// Invalid is Load's error when the repository has problems: all of them.
type Invalid struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *Invalid) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("%d problem(s):\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

// Load reads and validates the repository in fsys. A repository with problems returns an
// *Invalid error listing them all; other errors are I/O. The returned Repo is nil on error.
func Load(ctx context.Context, fsys fs.FS, opts Options) (*Repo, error) {
	red := opts.Redactor
	if red == nil {
		red = redact.New()
	}
	settings := opts.Settings
	if settings == nil {
		var problems []Problem
		if settings, problems = LoadSettings(fsys); problems != nil {
			return nil, &Invalid{Problems: problems}
		}
	}
	secretKey := red.SensitiveKey
	if settings.Redact != nil && settings.Redact.KeyPattern != "" {
		// A repository's own pattern widens the redactor's: both apply.
		re, err := regexp.Compile(settings.Redact.KeyPattern)
		if err != nil {
			return nil, &Invalid{Problems: []Problem{{Issue: schema.Issue{File: SettingsFile, Path: "redact.keyPattern", Message: err.Error()}}}}
		}
		secretKey = func(k string) bool { return red.SensitiveKey(k) || re.MatchString(k) }
	}
	envs, err := SelectEnvs(settings, opts.Envs, false)
	if err != nil {
		return nil, err
	}
	limit := schema.WithEvalLimit(opts.EvalLimit)
	sch, err := schema.Load(fsys, settings.Paths.Schema, limit)
	if err != nil {
		return nil, &Invalid{Problems: problemsOf(err, "")}
	}
	def := settings.Definition()
	if !sch.Has(def) {
		def = "" // a repository without a schema gets its data checked, not constrained
	}
	// Environments load in parallel, one per core, each with its own collector and schema
	// (a cue.Context is not safe for concurrent use). Files are parsed once and shared:
	// CUE only reads the syntax trees (go test -race agrees, on the benchmark's 1,000 files).
	type result struct {
		env      *Env
		problems []Problem
	}
	results := make([]result, len(envs))
	shared := &parseCache{m: map[string]func() (*layers.Layer, error){}}
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, name := range envs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			ec := &collector{red: red, secretKey: secretKey, shared: shared}
			env := ec.loadEnv(ctx, fsys, settings, name, opts)
			if env != nil {
				envSchema := sch
				if i > 0 { // the first goroutine may use the one loaded above
					var err error
					if envSchema, err = schema.Load(fsys, settings.Paths.Schema, limit); err != nil {
						ec.addErr(name, settings.Paths.Schema, err)
						env = nil
					}
				}
				if env != nil {
					if issues := env.validateKubernetes(envSchema); issues != nil {
						ec.add(name, issues...)
						env = nil
					}
				}
				if env != nil && opts.NoDecrypt {
					if issues := env.validateWithoutKeys(envSchema, def); issues != nil {
						ec.add(name, issues...)
						env = nil
					}
				} else if env != nil {
					cfg, issues := envSchema.Validate(def, env.Merged.Expr())
					if issues != nil {
						ec.add(name, env.withhold(envSchema, def, issues)...)
						env = nil
					} else {
						env.Config, _ = cfg.(map[string]any)
						if env.Config == nil {
							env.Config = map[string]any{}
						}
						if issues := env.derive(envSchema, def); issues != nil {
							ec.add(name, issues...)
							env = nil
						}
					}
				}
			}
			results[i] = result{env: env, problems: ec.problems.List()}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Problems are gathered in circle.yaml's order and redacted again, now that every
	// environment's secrets are known.
	c := &collector{red: red, secretKey: secretKey}
	r := &Repo{Settings: settings, redactor: red}
	for i, res := range results {
		for _, p := range res.problems {
			c.add(envs[i], p.Issue)
		}
		if res.env != nil {
			r.Envs = append(r.Envs, res.env)
		}
	}
	if len(c.problems.List()) > 0 {
		return nil, &Invalid{Problems: c.sorted()}
	}
	return r, nil
}

// SelectEnvs returns the environments of s that want names, in circle.yaml's order (all of
// them for an empty want). A name s lacks is an error, unless skipMissing (a plan's base,
// from before the environment was added), which leaves it out.
func SelectEnvs(s *Settings, want []string, skipMissing bool) ([]string, error) {
	all := s.EnvNames()
	if len(want) == 0 {
		return all, nil
	}
	for _, w := range want {
		if !slices.Contains(all, w) && !skipMissing {
			return nil, fmt.Errorf("environment %q is not in %s (have %s)", w, SettingsFile, strings.Join(all, ", "))
		}
	}
	var out []string
	for _, n := range all {
		if slices.Contains(want, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// LoadSettings reads and validates circle.yaml.
func LoadSettings(fsys fs.FS) (*Settings, []Problem) {
	data, err := fs.ReadFile(fsys, SettingsFile)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			msg = "not found: a Circle repository has circle.yaml at its root"
		}
		return nil, []Problem{{Issue: schema.Issue{File: SettingsFile, Message: msg}}}
	}
	l, err := layers.Parse(SettingsFile, data)
	if err != nil {
		return nil, problemsOf(err, "")
	}
	v, issues := schema.Builtin().Validate("#Settings", layers.Merge(l).Expr())
	if issues != nil {
		return nil, problemsOf(issues, "")
	}
	var s Settings
	b, _ := json.Marshal(v)
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, []Problem{{Issue: schema.Issue{File: SettingsFile, Message: err.Error()}}}
	}
	var ps []Problem
	seen := map[string]bool{}
	for i, e := range s.Environments {
		if seen[e.Name] {
			ps = append(ps, Problem{Issue: schema.Issue{File: SettingsFile, Path: fmt.Sprintf("environments.%d.name", i), Message: fmt.Sprintf("environment %q is listed twice", e.Name)}})
		}
		seen[e.Name] = true
	}
	for i, t := range s.Targets {
		for _, e := range t.Environments {
			if !seen[e] {
				ps = append(ps, Problem{Issue: schema.Issue{File: SettingsFile, Path: fmt.Sprintf("targets.%d.environments", i), Message: fmt.Sprintf("target %q names environment %q, which circle.yaml does not define", t.Name, e)}})
			}
		}
	}
	if ps != nil {
		return nil, ps
	}
	return &s, nil
}

// collector gathers problems across environments, merging the same problem seen in several.
type collector struct {
	red       *redact.Redactor
	secretKey func(string) bool
	problems  ProblemSet
	// shared holds each config file parsed once per Load: base files are read by every
	// environment, and layers are never changed by merging.
	shared *parseCache
}

type parseCache struct {
	mu sync.Mutex
	m  map[string]func() (*layers.Layer, error)
}

// parse reads and parses one config file, once per Load, however many environments ask.
func (c *collector) parse(fsys fs.FS, f string) (*layers.Layer, error) {
	c.shared.mu.Lock()
	once, ok := c.shared.m[f]
	if !ok {
		once = sync.OnceValues(func() (*layers.Layer, error) {
			data, err := fs.ReadFile(fsys, f)
			if err != nil {
				return nil, err
			}
			return layers.Parse(f, data)
		})
		c.shared.m[f] = once
	}
	c.shared.mu.Unlock()
	return once()
}

func (c *collector) add(env string, issues ...schema.Issue) {
	for _, is := range issues {
		is.Message = c.red.String(is.Message)
		c.problems.Add(env, is)
	}
}

func (c *collector) addErr(env, file string, err error) {
	var issues schema.Issues
	if errors.As(err, &issues) {
		c.add(env, issues...)
		return
	}
	c.add(env, schema.Issue{File: file, Message: strings.TrimPrefix(err.Error(), file+": ")})
}

func (c *collector) sorted() []Problem {
	out := slices.Clone(c.problems.List())
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Issue, out[j].Issue
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return out
}

func problemsOf(err error, env string) []Problem {
	c := &collector{red: redact.New()}
	c.addErr(env, "", err)
	return c.problems.List()
}

// loadEnv reads an environment's layers in order and merges them. Problems go to c; a nil
// result means the environment could not be assembled.
func (c *collector) loadEnv(ctx context.Context, fsys fs.FS, s *Settings, env string, opts Options) *Env {
	before := len(c.problems.List())
	var ls []*layers.Layer
	for _, dir := range []string{path.Join(s.Paths.Config, "base"), path.Join(s.Paths.Config, env)} {
		files, err := configFiles(fsys, dir)
		if err != nil {
			c.addErr(env, dir, err)
			continue
		}
		for _, f := range files {
			l, err := c.parse(fsys, f)
			if err != nil {
				c.addErr(env, f, err)
				continue
			}
			ls = append(ls, l)
		}
	}
	files, err := secretFiles(fsys, s.Paths.Secrets, env)
	if err != nil {
		c.addErr(env, s.Paths.Secrets, err)
	}
	for _, f := range files {
		read := decrypt
		if opts.NoDecrypt {
			read = readStandIns
		}
		l, err := read(ctx, fsys, f, opts.Keyring)
		if err != nil {
			c.addErr(env, f, err)
			continue
		}
		ls = append(ls, l)
	}
	if o := opts.Overrides[env]; o != nil {
		l, err := layers.FromValues("daemon overrides", o)
		if err != nil {
			c.addErr(env, "daemon overrides", err)
		} else {
			ls = append(ls, l)
		}
	}
	m := layers.Merge(ls...)
	e := &Env{Name: env, Merged: m, redactor: c.red, secretKey: c.secretKey, kubernetes: m.Cut(KubernetesKey)}
	e.sensitive = func(o layers.Origin) bool { return o.Sensitive || c.secretKey(o.Key) }
	c.red.Add(m.ScalarsWhere(e.sensitive)...)
	if e.kubernetes != nil {
		// Only a SOPS file's values: a key like tlsSecretName names a Secret, it holds none.
		c.red.Add(e.kubernetes.SecretValues()...)
	}
	if len(c.problems.List()) > before {
		return nil
	}
	return e
}

var configExts = map[string]bool{".yaml": true, ".yml": true, ".json": true, ".cue": true}

// configFiles lists a layer folder's files in lexical order, subfolders included; other
// files (a README) are left alone. A missing folder is an empty layer.
func configFiles(fsys fs.FS, dir string) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if !d.IsDir() && configExts[path.Ext(p)] {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// secretFiles lists an environment's SOPS files: secrets/<env>.sops.{yaml,yml,json} and
// everything under secrets/<env>/.
func secretFiles(fsys fs.FS, dir, env string) ([]string, error) {
	var out []string
	for _, ext := range []string{".sops.yaml", ".sops.yml", ".sops.json"} {
		p := path.Join(dir, env+ext)
		if _, err := fs.Stat(fsys, p); err == nil {
			out = append(out, p)
		}
	}
	more, err := configFiles(fsys, path.Join(dir, env))
	return append(out, more...), err
}

func decrypt(ctx context.Context, fsys fs.FS, name string, keys *secrets.Keyring) (*layers.Layer, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	if !secrets.IsEncrypted(name, data) {
		// Refuse rather than read it: a plaintext file here means a secret was committed.
		return nil, fmt.Errorf("%s: not encrypted with SOPS; files under the secrets folder must be", name)
	}
	if keys == nil {
		keys = &secrets.Keyring{}
	}
	plain, err := keys.Decrypt(ctx, name, data)
	if err != nil {
		return nil, secretIssues(err)
	}
	return layers.FromSOPS(name, data, plain)
}

// validateKubernetes judges the reserved key against Circle's #Kubernetes. Its values go
// into plain objects (an Ingress host, a claim's size), so none may come from a SOPS file:
// that would publish a secret in the clear. (Keys are not judged by the redaction pattern
// here: tlsSecretName names a Secret, it holds none.)
func (e *Env) validateKubernetes(sch *schema.Schema) schema.Issues {
	if e.kubernetes == nil {
		return nil
	}
	var issues schema.Issues
	for _, o := range e.kubernetes.Origins() {
		if o.Sensitive {
			issues = append(issues, schema.Issue{File: o.File, Line: o.Line, Column: o.Column, Path: KubernetesKey + "." + o.Path,
				Message: "a value of the kubernetes key goes into plain Kubernetes objects, so it cannot come from a SOPS file"})
		}
	}
	if issues != nil {
		return issues
	}
	v, issues := sch.Validate("#Kubernetes", e.kubernetes.Expr())
	for i := range issues {
		issues[i].Path = strings.TrimSuffix(KubernetesKey+"."+issues[i].Path, ".")
	}
	if issues != nil {
		return issues
	}
	e.Kubernetes, _ = v.(map[string]any)
	return nil
}
