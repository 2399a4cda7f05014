// Package render builds an environment's Kubernetes manifests: the kustomize overlay
// manifests/<env> (over its bases), read through the confined snapshot, plus what Circle
// generates from the environment's configuration: a ConfigMap "circle-config" holding the
// plain values and a Secret "circle-secrets" holding the sensitive ones, both as JSON.
//
// The generated objects come from kustomize's own configMapGenerator and secretGenerator,
// in a kustomization that exists only in memory and takes the overlay as its resource. So
// they get kustomize's content-hash name suffixes, and every reference to "circle-config"
// or "circle-secrets" in the overlay's workloads is rewritten to the suffixed name:
// workloads roll when their configuration changes. Secret values are never written to
// disk.
//
// Kustomize runs with load restrictions on (files only from inside a kustomization's
// root), no plugins and no Helm, and it is never handed a kustomization as the repository
// wrote it: confine.go resolves every path a kustomization names through the snapshot and
// gives krusty a copy in a spelling kustomize cannot take for a URL, so no build fetches
// anything or runs git, whatever the repository holds (see that file).
package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/sources"
)

// Names of the generated objects, before kustomize adds its hash suffix.
const (
	ConfigMapName     = "circle-config"
	SecretName        = "circle-secrets"
	LicenseSecretName = "circle-licenses"
)

// GeneratedDir is the in-memory folder of the generated kustomization, at the snapshot's
// root. A repository with a folder of that name is refused rather than shadowed. With
// Input.Origins, the objects Circle generates name it as the origin they were configured
// in, which is how a reader of the stream tells them from objects a user wrote.
const GeneratedDir = ".circle-generated"

const genDir = GeneratedDir

// OriginAnnotation is the annotation kustomize records an object's origin in, with
// Input.Origins: a YAML map with path (the file the object came from) or configuredIn (the
// kustomization whose generator made it), both relative to the snapshot's root here.
const OriginAnnotation = "config.kubernetes.io/origin"

// IsGenerated reports whether an object of the rendered output is one Circle generated
// (the ConfigMap ConfigMapName and the Secrets SecretName and LicenseSecretName, each with
// kustomize's hash suffix), for readers of output rendered without origin annotations.
func IsGenerated(kind, name string) bool {
	base, suffix, ok := cutLast(name, "-")
	if !ok || len(suffix) != 10 {
		return false
	}
	return kind == "ConfigMap" && base == ConfigMapName || kind == "Secret" && (base == SecretName || base == LicenseSecretName)
}

func cutLast(s, sep string) (before, after string, ok bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// Input is what an environment's render needs.
type Input struct {
	// FS is the snapshot.
	FS fs.FS
	// Manifests is the repository's manifests folder (circle.yaml paths.manifests).
	Manifests string
	// Env is the environment's name: the overlay is Manifests/Env.
	Env string
	// Config and Secrets are the environment's plain and sensitive values; either may be
	// nil, and no object is generated for an empty one.
	Config, Secrets map[string]any
	// Licenses are license files (and the revocation list and issuer keys) by base name,
	// for the Secret LicenseSecretName that services mount; nil generates none.
	Licenses map[string][]byte
	// Limits bound the render's work; the zero value is DefaultLimits.
	Limits Limits
	// Namespace is where the generated objects go when the overlay sets no namespace of
	// its own (circle.yaml's environments[].namespace); with neither, Render fails.
	Namespace string
	// Kubernetes are the PersistentVolumeClaims and Ingresses the configuration asks for
	// (its "kubernetes" key); nil generates none.
	Kubernetes *Kubernetes
	// Origins adds kustomize's origin annotation (OriginAnnotation) to every object, so a
	// check of the output can name the file each object came from. It is for validation
	// only: the annotation is not part of what the daemon applies.
	Origins bool
}

// Render builds the environment's manifests as one multi-document YAML stream: Circle's
// generated objects first, then the user's objects exactly as `kustomize build` of the
// overlay makes them, in its order, with only the references to the generated objects
// given their hash-suffixed names.
//
// The overlay is built on its own, as the kustomize CLI would build it: its namespace,
// late transformers, replacements, sortOptions and buildMetadata are its own business and
// are not run a second time. Its output then joins the generated objects in a second,
// in-memory kustomization that does nothing else but keep the input order and resolve the
// name references (kustomize's own nameReference transformer, so every field kustomize
// knows to refer to a ConfigMap or Secret is rewritten, and nothing else).
func Render(in Input) ([]byte, error) {
	envDir := path.Join(in.Manifests, in.Env)
	if _, err := fs.Stat(in.FS, genDir); err == nil {
		return nil, fmt.Errorf("render %s: the repository has a %s folder, a name Circle reserves", in.Env, genDir)
	}
	c, err := confine(in.FS, envDir, in.Limits)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", in.Env, err)
	}
	if in.Origins {
		if err := addBuildMetadata(c.files, c.root, types.OriginAnnotations); err != nil {
			return nil, fmt.Errorf("render %s: %w", in.Env, err)
		}
	}
	user, err := kustomize(overlay{base: in.FS, extra: c.files}, envDir)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", in.Env, err)
	}
	if in.Origins {
		if err := rootOrigins(user, envDir, ""); err != nil {
			return nil, fmt.Errorf("render %s: %w", in.Env, err)
		}
	}
	gen, files, err := generated(in)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", in.Env, err)
	}
	if gen == nil {
		return asYAML(user, in.Env)
	}
	// The generated objects must land in a namespace: an overlay that sets none names its
	// objects' namespaces itself, and a ConfigMap without one cannot be applied.
	if gen.Namespace = c.namespace; gen.Namespace == "" {
		if gen.Namespace = in.Namespace; gen.Namespace == "" {
			return nil, fmt.Errorf("render %s: %w", in.Env, &FieldError{File: c.root, Line: 1, Field: "namespace",
				Err: ErrNoNamespace})
		}
	}
	// Only the user's objects that name a generated object can have a reference to
	// rewrite: kustomize's nameReference rewrites a field holding the name exactly, so
	// an object whose YAML lacks every generated name is left as the overlay built it, and
	// need not be written out, parsed and matched again (at 1,000 objects that was half
	// of a render). The others go through the join, and take their places again after.
	users := user.Resources()
	docs := make([][]byte, len(users))
	var referrers []byte
	refers, nRefs := make([]bool, len(users)), 0
	for i, r := range users {
		if docs[i], err = r.AsYAML(); err != nil {
			return nil, fmt.Errorf("render %s: %w", in.Env, err)
		}
		if namesGenerated(docs[i]) {
			refers[i] = true
			nRefs++
			referrers = append(append(referrers, "---\n"...), docs[i]...)
		}
	}
	// The joining kustomization keeps the overlay's build metadata, so what kustomize adds
	// or strips at the end of a build (origins, transformer annotations, the managed-by
	// label) is what the overlay asked for.
	join := types.Kustomization{
		TypeMeta:      types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Resources:     []string{objectsDir},
		SortOptions:   &types.SortOptions{Order: types.FIFOSortOrder},
		BuildMetadata: c.buildMetadata,
	}
	if len(referrers) > 0 {
		join.Resources = append(join.Resources, "overlay.yaml")
		c.files[path.Join(genDir, "overlay.yaml")] = referrers
	}
	if in.Origins && !slices.Contains(join.BuildMetadata, types.OriginAnnotations) {
		join.BuildMetadata = append(slices.Clone(join.BuildMetadata), types.OriginAnnotations)
	}
	for name, b := range files {
		c.files[path.Join(genDir, objectsDir, name)] = b
	}
	if c.files[path.Join(genDir, objectsDir, "kustomization.yaml")], err = yaml.Marshal(gen); err != nil {
		return nil, err
	}
	if c.files[path.Join(genDir, "kustomization.yaml")], err = yaml.Marshal(join); err != nil {
		return nil, err
	}
	m, err := kustomize(overlay{base: in.FS, extra: c.files, dir: genDir}, genDir)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", in.Env, err)
	}
	if slices.Contains(join.BuildMetadata, types.OriginAnnotations) {
		// kustomize gave the user's objects the origin "overlay.yaml"; theirs are the
		// ones the overlay's build recorded. The generated objects' are relative to the
		// joining kustomization.
		if err := keepOrigins(m, user); err != nil {
			return nil, fmt.Errorf("render %s: %w", in.Env, err)
		}
		if err := rootOrigins(m, genDir, objectsDir+"/"); err != nil {
			return nil, fmt.Errorf("render %s: %w", in.Env, err)
		}
	}
	// The stream: the generated objects (the join's first, in FIFO order), then every
	// user object in the overlay's order, a referrer as the join rewrote it.
	joined := m.Resources()
	nGen := len(joined) - nRefs
	// A claim or Ingress of the kubernetes key must not stand in for one the overlay has:
	// kustomize only catches the clash among the objects it joined.
	ids := make(map[string]bool, len(users))
	for _, r := range users {
		ids[r.CurId().String()] = true
	}
	for _, r := range joined[:nGen] {
		if ids[r.CurId().String()] {
			return nil, fmt.Errorf("render %s: kubernetes: the configuration generates %s %s, which the overlay has already",
				in.Env, r.GetKind(), r.GetName())
		}
	}
	var out bytes.Buffer
	write := func(doc []byte) {
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(doc)
	}
	for _, r := range joined[:nGen] {
		doc, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", in.Env, err)
		}
		write(doc)
	}
	for i, r := range users {
		if !refers[i] {
			write(docs[i])
			continue
		}
		rewritten, err := m.GetById(r.CurId())
		if err != nil {
			return nil, fmt.Errorf("render %s: %s after the join: %w", in.Env, r.CurId(), err)
		}
		doc, err := rewritten.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", in.Env, err)
		}
		write(doc)
	}
	return out.Bytes(), nil
}

// namesGenerated reports whether an object's YAML holds the name of an object Circle
// generates anywhere, so may refer to it.
func namesGenerated(doc []byte) bool {
	for _, name := range []string{ConfigMapName, SecretName, LicenseSecretName} {
		if bytes.Contains(doc, []byte(name)) {
			return true
		}
	}
	return false
}

// objectsDir is the folder, in the generated one, of the kustomization that generates
// Circle's objects; the generated folder's own kustomization joins them to the built overlay.
const objectsDir = "objects"

// ErrNoNamespace is why an overlay that sets no namespace cannot have Circle's generated
// objects: set the overlay's namespace, or the environment's namespace in circle.yaml.
var ErrNoNamespace = errors.New("the overlay sets no namespace, so Circle's generated ConfigMap and Secrets would have none; " +
	"set namespace: here, or the environment's namespace in circle.yaml")

// generated is the kustomization of the objects Circle generates for in, and its input
// files by name; nil when there is nothing to generate.
func generated(in Input) (*types.Kustomization, map[string][]byte, error) {
	k := &types.Kustomization{TypeMeta: types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind}}
	files := map[string][]byte{}
	add := func(name string, values map[string]any) (string, error) {
		if len(values) == 0 {
			return "", nil
		}
		b, err := json.MarshalIndent(values, "", "  ")
		if err != nil {
			return "", err
		}
		files[name] = append(b, '\n')
		return name, nil
	}
	if f, err := add("config.json", in.Config); err != nil {
		return nil, nil, err
	} else if f != "" {
		k.ConfigMapGenerator = append(k.ConfigMapGenerator, types.ConfigMapArgs{GeneratorArgs: types.GeneratorArgs{
			Name: ConfigMapName, KvPairSources: types.KvPairSources{FileSources: []string{f}}}})
	}
	if f, err := add("secrets.json", in.Secrets); err != nil {
		return nil, nil, err
	} else if f != "" {
		k.SecretGenerator = append(k.SecretGenerator, types.SecretArgs{GeneratorArgs: types.GeneratorArgs{
			Name: SecretName, KvPairSources: types.KvPairSources{FileSources: []string{f}}}, Type: "Opaque"})
	}
	if len(in.Licenses) > 0 {
		names := make([]string, 0, len(in.Licenses))
		for name, b := range in.Licenses {
			// The folder is flat; "key=file" keeps the Secret's keys the files' names.
			files["license-"+name] = b
			names = append(names, name+"=license-"+name)
		}
		sort.Strings(names)
		k.SecretGenerator = append(k.SecretGenerator, types.SecretArgs{GeneratorArgs: types.GeneratorArgs{
			Name: LicenseSecretName, KvPairSources: types.KvPairSources{FileSources: names}}, Type: "Opaque"})
	}
	objects, objFiles, err := in.Kubernetes.objects()
	if err != nil {
		return nil, nil, err
	}
	k.Resources = objects
	maps.Copy(files, objFiles)
	if len(files) == 0 {
		return nil, nil, nil
	}
	return k, files, nil
}

// keepOrigins gives each of m's objects that came from the built overlay the origin that
// build recorded for it.
func keepOrigins(m, built resmap.ResMap) error {
	for _, r := range built.Resources() {
		o, err := r.GetOrigin()
		if err != nil {
			return err
		}
		if joined, err := m.GetById(r.CurId()); err == nil {
			if err := joined.SetOrigin(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// kustomize runs krusty on the kustomization in dir of fsys, as `kustomize build` does.
func kustomize(fsys fs.FS, dir string) (resmap.ResMap, error) {
	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	// As `kubectl kustomize` and `kustomize build` order their output (legacy kind order or
	// the kustomization's sortOptions), not krusty's default of input order.
	opts.Reorder = krusty.ReorderOptionUnspecified
	return krusty.MakeKustomizer(opts).Run(sources.KustomizeFS(fsys), "/"+dir)
}

func asYAML(m resmap.ResMap, env string) ([]byte, error) {
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", env, err)
	}
	return out, nil
}

// addBuildMetadata adds an option to the buildMetadata of the (confined copy of the)
// kustomization file.
func addBuildMetadata(files map[string][]byte, file, option string) error {
	var k types.Kustomization
	if err := k.Unmarshal(files[file]); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if slices.Contains(k.BuildMetadata, option) {
		return nil
	}
	k.BuildMetadata = append(k.BuildMetadata, option)
	b, err := yaml.Marshal(k)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	files[file] = b
	return nil
}

// rootOrigins rewrites the origin annotations kustomize wrote, which are relative to the
// folder of the kustomization it built ("../base/deployment.yaml"), to be relative to the
// snapshot's root ("deploy/base/deployment.yaml"): the paths a user opens. With only set,
// only the origins whose path or configuredIn starts with it are rewritten.
func rootOrigins(m resmap.ResMap, dir, only string) error {
	rel := func(p string) string {
		if p == "" || path.IsAbs(p) || !strings.HasPrefix(p, only) {
			return p
		}
		return path.Join(dir, p)
	}
	for _, r := range m.Resources() {
		o, err := r.GetOrigin()
		if err != nil || o == nil {
			return err
		}
		if o.Repo == "" {
			o.Path = rel(o.Path)
		}
		o.ConfiguredIn = rel(o.ConfiguredIn)
		if err := r.SetOrigin(o); err != nil {
			return err
		}
	}
	return nil
}

// kustomizationFile finds a folder's kustomization file under any of the names kustomize
// accepts.
func kustomizationFile(fsys fs.FS, dir string) (string, []byte, error) {
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		p := path.Join(dir, name)
		if b, err := fs.ReadFile(fsys, p); err == nil {
			return p, b, nil
		}
	}
	return "", nil, fmt.Errorf("%s: no kustomization file (kustomization.yaml, kustomization.yml or Kustomization): %w",
		path.Join(dir, "kustomization.yaml"), fs.ErrNotExist)
}
