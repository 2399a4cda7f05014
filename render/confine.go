package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// This file is the repository boundary of a render. A kustomization is hostile input: kustomize
// fetches any http(s) path it is given, and runs `git fetch` (with the reference's ?ref= as an
// argument) for anything its git URL parser accepts. Its API offers no way to hand krusty a
// loader, an HTTP client or a cloner that refuse: krusty.Kustomizer.Run builds its own
// FileLoader with git.ClonerUsingGitExec and a default http.Client. What the API does let a
// caller choose is the file system, and so the bytes of every kustomization krusty reads.
//
// So krusty never reads a kustomization as the user wrote it. confine reads every
// kustomization the overlay reaches, resolves each path-like field through the snapshot, and
// hands krusty a rewritten copy in which every such field is the path it resolved, written as
// "./x" or "../x". Kustomize decides that a reference is remote from its spelling alone, before
// it looks at a file system: loader.IsRemoteFile wants an http(s) scheme, and
// git.NewRepoSpecFromURL a scheme, a leading "user@" or a leading "github.com". None of those
// can start with ".", so what krusty is given is always read from the snapshot, whatever
// spelling the user tried. A field that names nothing in the snapshot is refused at its
// file:line before krusty runs. TestConfine_EveryPathFieldIsKnown fails when a kustomize
// upgrade adds a field this file does not know.

// ErrRemote is wrapped when a kustomization field names something that is not a file or
// folder of the repository snapshot: a URL, a Git remote, or a path that does not exist.
// Nothing is ever fetched.
var ErrRemote = errors.New("names nothing in the repository snapshot (remote resources are never fetched)")

// ErrRefused is wrapped when a kustomization uses a feature Circle does not run on repository
// content: Helm chart inflation (it runs the helm binary), plugins that are not kustomize's
// built-ins, and folders of generator or transformer configurations.
var ErrRefused = errors.New("not allowed in a repository Circle renders")

// ErrTooLarge is wrapped when an overlay reaches more kustomizations or patches than the
// render's Limits allow.
var ErrTooLarge = errors.New("over the render's limit")

// Limits bound the work of one render, which kustomize does not: its patch application grows
// faster than linearly with the number of patches (3,000 patches took over a minute). They are
// the daemon's setting, never the repository's.
type Limits struct {
	// Kustomizations is how many kustomizations one overlay may reach (its own included);
	// 0 means DefaultLimits'.
	Kustomizations int
	// Patches is how many patches (of every kind, replacements included) they may hold in
	// all; 0 means DefaultLimits'.
	Patches int
}

// DefaultLimits are the limits of a render that sets none. Real overlays stay far below:
// the largest of the real-world trees the tests render reaches 5 kustomizations and 4 patches.
var DefaultLimits = Limits{Kustomizations: 200, Patches: 500}

func (l Limits) orDefault() Limits {
	if l.Kustomizations <= 0 {
		l.Kustomizations = DefaultLimits.Kustomizations
	}
	if l.Patches <= 0 {
		l.Patches = DefaultLimits.Patches
	}
	return l
}

// FieldError is a kustomization field Circle will not hand kustomize, at the place it was
// written.
type FieldError struct {
	File  string // the file, relative to the snapshot's root
	Line  int    // 0 when unknown
	Field string // e.g. resources[2], patches[0].path
	Value string
	Err   error
}

func (e *FieldError) Error() string {
	at := e.File
	if e.Line > 0 {
		at = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Value == "" {
		return fmt.Sprintf("%s: %s: %v", at, e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %s %q: %v", at, e.Field, e.Value, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// confined is what confine learned of an overlay: the files krusty is to be given instead of
// the snapshot's (rewritten kustomizations and generator/transformer configurations), the
// overlay's kustomization file, and its own namespace and build metadata.
type confined struct {
	// dirs are the kustomization roots the overlay reaches, itself included.
	dirs          []string
	files         map[string][]byte
	root          string
	namespace     string
	buildMetadata []string
}

// walker reads the kustomizations of one overlay.
type walker struct {
	fsys    fs.FS
	limits  Limits
	files   map[string][]byte
	seen    map[string]bool
	patches int
	rf      *resmap.Factory
}

// confine walks the overlay in dir and everything it reaches.
func confine(fsys fs.FS, dir string, limits Limits) (*confined, error) {
	w := &walker{
		fsys:   fsys,
		limits: limits.orDefault(),
		files:  map[string][]byte{},
		seen:   map[string]bool{},
		rf:     resmap.NewFactory(provider.NewDepProvider().GetResourceFactory()),
	}
	k, err := w.kustomization(dir)
	if err != nil {
		return nil, err
	}
	root, _, _ := kustomizationFile(fsys, dir) // found already, by w.kustomization
	dirs := make([]string, 0, len(w.seen))
	for d := range w.seen {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return &confined{dirs: dirs, files: w.files, root: root, namespace: k.Namespace, buildMetadata: k.BuildMetadata}, nil
}

// Reaches returns the kustomization roots the overlay of env reaches (its own folder, its
// bases and components), which may lie outside paths.manifests (a shared ../../common).
// kustomize's load restrictor keeps every file a kustomization reads in or below its root,
// so these folders hold every file a render of env may read: what the pipeline's input
// digests must cover, so that a change there is never skipped as "unchanged".
func Reaches(fsys fs.FS, manifests, env string) ([]string, error) {
	c, err := confine(fsys, path.Join(manifests, env), Limits{})
	if err != nil {
		return nil, err
	}
	return c.dirs, nil
}

// field is one kustomization (or configuration) file being rewritten, for resolving its
// fields and placing problems in it.
type field struct {
	w    *walker
	dir  string // the kustomization root its paths are relative to
	file string
	doc  *yamlv3.Node
	// base is where, in doc, the fields of an inline configuration sit (e.g. transformers,
	// 0), for placing its problems; nil for a file of its own.
	base []any
}

func (f field) errorf(err error, value string, at ...any) error {
	at = append(append([]any{}, f.base...), at...)
	return &FieldError{File: f.file, Line: lineOf(f.doc, at...), Field: fieldName(at), Value: value, Err: err}
}

// kustomization reads the kustomization in dir, checks and rewrites its path fields, and
// walks the folders it names. It returns the kustomization as read.
func (w *walker) kustomization(dir string) (*types.Kustomization, error) {
	file, b, err := kustomizationFile(w.fsys, dir)
	if err != nil {
		return nil, err
	}
	var k types.Kustomization
	// The very decoding kustomize does (unknown fields refused), so the copy krusty reads
	// back means what the user wrote.
	if err := k.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if w.seen[dir] {
		return &k, nil
	}
	w.seen[dir] = true
	if len(w.seen) > w.limits.Kustomizations {
		return nil, fmt.Errorf("%s: the overlay reaches more than %d kustomizations: %w", file, w.limits.Kustomizations, ErrTooLarge)
	}
	w.patches += len(k.Patches) + len(k.PatchesStrategicMerge) + len(k.PatchesJson6902) + len(k.Replacements)
	if w.patches > w.limits.Patches {
		return nil, fmt.Errorf("%s: the overlay holds more than %d patches and replacements: %w", file, w.limits.Patches, ErrTooLarge)
	}
	f := field{w: w, dir: dir, file: file, doc: parseNode(b)}
	out := k // rewritten in place; k stays as read for the caller
	if err := f.rewrite(&out); err != nil {
		return nil, err
	}
	kb, err := yaml.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	w.files[file] = kb
	return &k, nil
}

// rewrite resolves every path-like field of k in place. It copies the slices it changes, so
// a caller's copy of k is left as read.
func (f field) rewrite(k *types.Kustomization) error {
	if len(k.HelmCharts) > 0 || len(k.HelmChartInflationGenerator) > 0 || k.HelmGlobals != nil {
		return f.errorf(fmt.Errorf("Helm chart inflation runs the helm binary: %w", ErrRefused), "", firstKey(f.doc, "helmCharts", "helmChartInflationGenerator", "helmGlobals"))
	}
	var err error
	for _, list := range []struct {
		key string
		ps  *[]string
	}{{"resources", &k.Resources}, {"bases", &k.Bases}, {"components", &k.Components}} {
		if *list.ps, err = f.bases(list.key, *list.ps); err != nil {
			return err
		}
	}
	if k.Crds, err = f.files("crds", k.Crds); err != nil {
		return err
	}
	if k.Configurations, err = f.files("configurations", k.Configurations); err != nil {
		return err
	}
	if p, ok := k.OpenAPI["path"]; ok {
		if p, err = f.regular(p, "openapi", "path"); err != nil {
			return err
		}
		k.OpenAPI = cloneMap(k.OpenAPI)
		k.OpenAPI["path"] = p
	}
	k.Patches = append([]types.Patch(nil), k.Patches...)
	for i := range k.Patches {
		if k.Patches[i].Path != "" {
			if k.Patches[i].Path, err = f.regular(k.Patches[i].Path, "patches", i, "path"); err != nil {
				return err
			}
		}
	}
	k.PatchesJson6902 = append([]types.Patch(nil), k.PatchesJson6902...)
	for i := range k.PatchesJson6902 {
		if k.PatchesJson6902[i].Path != "" {
			if k.PatchesJson6902[i].Path, err = f.regular(k.PatchesJson6902[i].Path, "patchesJson6902", i, "path"); err != nil {
				return err
			}
		}
	}
	k.PatchesStrategicMerge = append([]types.PatchStrategicMerge(nil), k.PatchesStrategicMerge...)
	for i, p := range k.PatchesStrategicMerge {
		if s, err := f.patchOrPath(string(p), "patchesStrategicMerge", i); err != nil {
			return err
		} else {
			k.PatchesStrategicMerge[i] = types.PatchStrategicMerge(s)
		}
	}
	k.Replacements = append([]types.ReplacementField(nil), k.Replacements...)
	for i := range k.Replacements {
		if k.Replacements[i].Path != "" {
			if k.Replacements[i].Path, err = f.regular(k.Replacements[i].Path, "replacements", i, "path"); err != nil {
				return err
			}
		}
	}
	if k.ConfigMapGenerator, err = f.configMaps("configMapGenerator", k.ConfigMapGenerator); err != nil {
		return err
	}
	secrets := make([]types.SecretArgs, len(k.SecretGenerator))
	for i, s := range k.SecretGenerator {
		if s.KvPairSources, err = f.kvSources(s.KvPairSources, "secretGenerator", i); err != nil {
			return err
		}
		secrets[i] = s
	}
	k.SecretGenerator = secrets
	for _, list := range []struct {
		key string
		ps  *[]string
	}{{"generators", &k.Generators}, {"transformers", &k.Transformers}, {"validators", &k.Validators}} {
		if *list.ps, err = f.plugins(list.key, *list.ps); err != nil {
			return err
		}
	}
	return nil
}

// resolve checks that v, a path written in the file, names a file or folder of the snapshot,
// and returns it in the form krusty is given (see the top of this file) with what it is.
func (f field) resolve(v string, at ...any) (string, fs.FileInfo, error) {
	if v == "" {
		return "", nil, f.errorf(errors.New("an empty path"), v, at...)
	}
	if path.IsAbs(v) {
		return "", nil, f.errorf(fmt.Errorf("an absolute path: %w", ErrRemote), v, at...)
	}
	target := path.Join(f.dir, v)
	if !fs.ValidPath(target) {
		return "", nil, f.errorf(fmt.Errorf("climbs above the repository's root: %w", ErrRemote), v, at...)
	}
	st, err := fs.Stat(f.w.fsys, target)
	if err != nil {
		return "", nil, f.errorf(ErrRemote, v, at...)
	}
	c := path.Clean(v)
	if c != "." && c != ".." && !strings.HasPrefix(c, "../") {
		c = "./" + c
	}
	return c, st, nil
}

// regular resolves a field that must name a file.
func (f field) regular(v string, at ...any) (string, error) {
	p, st, err := f.resolve(v, at...)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return "", f.errorf(errors.New("a folder, where a file is expected"), v, at...)
	}
	return p, nil
}

func (f field) files(key string, vs []string) ([]string, error) {
	out := make([]string, len(vs))
	for i, v := range vs {
		p, err := f.regular(v, key, i)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// bases resolves resources, bases or components: files, or folders whose kustomizations are
// walked in turn.
func (f field) bases(key string, vs []string) ([]string, error) {
	out := make([]string, len(vs))
	for i, v := range vs {
		p, st, err := f.resolve(v, key, i)
		if err != nil {
			return nil, err
		}
		if st.IsDir() {
			if _, err := f.w.kustomization(path.Join(f.dir, v)); err != nil {
				return nil, err
			}
		}
		out[i] = p
	}
	return out, nil
}

// patchOrPath resolves an entry that kustomize reads as an inline patch when it parses as
// one (patchesStrategicMerge, PatchStrategicMergeTransformer's paths) and as a path
// otherwise. The test is kustomize's own, so both sides agree on which it is.
func (f field) patchOrPath(v string, at ...any) (string, error) {
	if _, err := f.w.rf.RF().SliceFromBytes([]byte(v)); err == nil {
		return v, nil
	}
	return f.regular(v, at...)
}

func (f field) configMaps(key string, args []types.ConfigMapArgs) ([]types.ConfigMapArgs, error) {
	out := make([]types.ConfigMapArgs, len(args))
	for i, a := range args {
		var err error
		if a.KvPairSources, err = f.kvSources(a.KvPairSources, key, i); err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

// kvSources resolves a generator's files ("path" or "key=path") and env files.
func (f field) kvSources(s types.KvPairSources, at ...any) (types.KvPairSources, error) {
	files := make([]string, len(s.FileSources))
	for i, src := range s.FileSources {
		key, p, hasKey := "", src, false
		// kustomize's kv.ParseFileSource: one "=" separates a key; more are its error.
		if strings.Count(src, "=") == 1 {
			key, p, hasKey = strings.Cut(src, "=")
		}
		r, err := f.regular(p, append(append([]any{}, at...), "files", i)...)
		if err != nil {
			return s, err
		}
		if hasKey {
			r = key + "=" + r
		}
		files[i] = r
	}
	s.FileSources = files
	envs := make([]string, len(s.EnvSources))
	for i, e := range s.EnvSources {
		r, err := f.regular(e, append(append([]any{}, at...), "envs", i)...)
		if err != nil {
			return s, err
		}
		envs[i] = r
	}
	s.EnvSources = envs
	if s.EnvSource != "" {
		r, err := f.regular(s.EnvSource, append(append([]any{}, at...), "env")...)
		if err != nil {
			return s, err
		}
		s.EnvSource = r
	}
	return s, nil
}

// plugins resolves generators, transformers or validators. Kustomize takes an entry as an
// inline configuration when it parses as resources, and as a path otherwise; a configuration's
// own path fields are read through the loader of the kustomization that lists it, so they are
// rewritten relative to this one's folder.
func (f field) plugins(key string, vs []string) ([]string, error) {
	out := make([]string, len(vs))
	for i, v := range vs {
		if _, err := f.w.rf.NewResMapFromBytes([]byte(v)); err == nil {
			loc := field{w: f.w, dir: f.dir, file: f.file, doc: f.doc, base: []any{key, i}}
			s, err := f.pluginConfigs([]byte(v), loc, key, i)
			if err != nil {
				return nil, err
			}
			out[i] = string(s)
			continue
		}
		p, st, err := f.resolve(v, key, i)
		if err != nil {
			return nil, err
		}
		if st.IsDir() {
			// A folder's kustomization may patch the configurations it lists, after any
			// rewrite here; following that is not worth the risk.
			return nil, f.errorf(fmt.Errorf("a folder of %s: %w; list the configuration files instead", key, ErrRefused), v, key, i)
		}
		name := path.Join(f.dir, v)
		b, err := fs.ReadFile(f.w.fsys, name)
		if err != nil {
			return nil, err
		}
		loc := field{w: f.w, dir: f.dir, file: name, doc: parseNode(b)}
		s, err := f.pluginConfigs(b, loc, key, i)
		if err != nil {
			return nil, err
		}
		f.w.files[name] = s
		out[i] = p
	}
	return out, nil
}

// pluginPaths names the path fields of kustomize's built-in generators and transformers, by
// kind. A kind missing here is not a built-in, and kustomize (with plugins disabled, as
// Circle runs it) refuses it anyway.
var pluginPaths = map[string][]string{
	"AnnotationsTransformer":         nil,
	"ConfigMapGenerator":             {"files", "envs", "env"},
	"HashTransformer":                nil,
	"IAMPolicyGenerator":             nil,
	"ImageTagTransformer":            nil,
	"LabelTransformer":               nil,
	"LegacyOrderTransformer":         nil,
	"NamespaceTransformer":           nil,
	"PatchJson6902Transformer":       {"path"},
	"PatchStrategicMergeTransformer": {"paths"},
	"PatchTransformer":               {"path"},
	"PrefixSuffixTransformer":        nil,
	"PrefixTransformer":              nil,
	"ReplacementTransformer":         {"replacements"},
	"ReplicaCountTransformer":        nil,
	"SecretGenerator":                {"files", "envs", "env"},
	"SortOrderTransformer":           nil,
	"SuffixTransformer":              nil,
	"ValueAddTransformer":            nil,
}

// pluginConfigs rewrites the path fields of the configurations in b (one YAML stream, placed
// by loc) relative to the folder of the kustomization f that lists them.
func (f field) pluginConfigs(b []byte, loc field, key string, i int) ([]byte, error) {
	dec := yamlv3.NewDecoder(bytes.NewReader(b))
	var out [][]byte
	for n := 0; ; n++ {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", loc.file, err)
		}
		if doc == nil {
			continue
		}
		kind, _ := doc["kind"].(string)
		fields, builtin := pluginPaths[kind]
		if !builtin {
			return nil, f.errorf(fmt.Errorf("kind %q is not one of kustomize's built-in generators or transformers: %w", kind, ErrRefused), kind, key, i)
		}
		g := loc
		if n > 0 && g.base == nil {
			g.doc = nil // lines are looked up in a file's first document only
		}
		for _, name := range fields {
			if err := g.pluginField(doc, name); err != nil {
				return nil, err
			}
		}
		y, err := yaml.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", loc.file, err)
		}
		out = append(out, y)
	}
	if kinds := len(out); kinds > 0 {
		f.w.patches += kinds
		if f.w.patches > f.w.limits.Patches {
			return nil, fmt.Errorf("%s: the overlay holds more than %d patches and transformers: %w", loc.file, f.w.limits.Patches, ErrTooLarge)
		}
	}
	return bytes.Join(out, []byte("---\n")), nil
}

// pluginField rewrites one path field of a built-in's configuration.
func (f field) pluginField(doc map[string]any, name string) error {
	v, ok := doc[name]
	if !ok {
		return nil
	}
	bad := func(v any) error {
		return f.errorf(errors.New("not a string or list of strings"), fmt.Sprint(v), name)
	}
	str := func(v any, at ...any) (string, error) {
		s, ok := v.(string)
		if !ok {
			return "", bad(v)
		}
		switch name {
		case "files":
			key, p, hasKey := "", s, false
			if strings.Count(s, "=") == 1 {
				key, p, hasKey = strings.Cut(s, "=")
			}
			r, err := f.regular(p, at...)
			if hasKey && err == nil {
				r = key + "=" + r
			}
			return r, err
		case "paths":
			return f.patchOrPath(s, at...)
		}
		return f.regular(s, at...)
	}
	switch name {
	case "path", "env":
		s, err := str(v, name)
		if err != nil {
			return err
		}
		doc[name] = s
	case "files", "envs", "paths":
		list, ok := v.([]any)
		if !ok {
			return bad(v)
		}
		for j, e := range list {
			s, err := str(e, name, j)
			if err != nil {
				return err
			}
			list[j] = s
		}
	case "replacements":
		list, ok := v.([]any)
		if !ok {
			return bad(v)
		}
		for j, e := range list {
			m, ok := e.(map[string]any)
			if !ok {
				continue // kustomize reports the malformed entry
			}
			if p, ok := m["path"]; ok {
				ps, ok := p.(string)
				if !ok {
					return bad(p)
				}
				s, err := f.regular(ps, name, j, "path")
				if err != nil {
					return err
				}
				m["path"] = s
			}
		}
	}
	return nil
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// parseNode parses b for locating fields; nil when it does not parse (kustomize's decoding
// already succeeded, so that only costs the line number).
func parseNode(b []byte) *yamlv3.Node {
	var n yamlv3.Node
	if err := yamlv3.Unmarshal(b, &n); err != nil {
		return nil
	}
	return &n
}

// lineOf finds the line of the node at a path of map keys (string) and list indexes (int);
// where the path leaves the document it gives the line of the deepest node found, 0 without one.
func lineOf(n *yamlv3.Node, at ...any) int {
	if n == nil {
		return 0
	}
	if n.Kind == yamlv3.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, step := range at {
		var next *yamlv3.Node
		switch s := step.(type) {
		case string:
			if n.Kind == yamlv3.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == s {
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yamlv3.SequenceNode && s < len(n.Content) {
				next = n.Content[s]
			}
		}
		if next == nil {
			return line
		}
		n, line = next, next.Line
	}
	return line
}

// firstKey is the first of keys present at the top of the document, for placing a problem
// about any of them.
func firstKey(n *yamlv3.Node, keys ...string) string {
	for _, k := range keys {
		if lineOf(n, k) != lineOf(n) {
			return k
		}
	}
	return keys[0]
}

// fieldName spells a path of keys and indexes the way a user reads it: patches[0].path.
func fieldName(at []any) string {
	var b strings.Builder
	for _, step := range at {
		switch s := step.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, s)
		}
	}
	return b.String()
}
