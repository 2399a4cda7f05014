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
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
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
	// Origins adds kustomize's origin annotation (OriginAnnotation) to every object, so a
	// check of the output can name the file each object came from. It is for validation
	// only: the annotation is not part of what the daemon applies.
	Origins bool
}

// Render builds the environment's manifests as one multi-document YAML stream, in
// kustomize's output order.
func Render(in Input) ([]byte, error) {
	envDir := path.Join(in.Manifests, in.Env)
	if _, _, err := kustomizationFile(in.FS, envDir); err != nil {
		return nil, fmt.Errorf("render %s: %w", in.Env, err)
	}
	if _, err := fs.Stat(in.FS, genDir); err == nil {
		return nil, fmt.Errorf("render %s: the repository has a %s folder, a name Circle reserves", in.Env, genDir)
	}
	c, err := confine(in.FS, envDir, in.Limits)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", in.Env, err)
	}
	ns := c.namespace
	extra := c.files

	k := types.Kustomization{
		TypeMeta:  types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Namespace: ns,
		Resources: []string{"../" + envDir},
	}
	add := func(name string, values map[string]any) (string, error) {
		if len(values) == 0 {
			return "", nil
		}
		b, err := json.MarshalIndent(values, "", "  ")
		if err != nil {
			return "", err
		}
		extra[path.Join(genDir, name)] = append(b, '\n')
		return name, nil
	}
	if f, err := add("config.json", in.Config); err != nil {
		return nil, err
	} else if f != "" {
		k.ConfigMapGenerator = append(k.ConfigMapGenerator, types.ConfigMapArgs{GeneratorArgs: types.GeneratorArgs{
			Name: ConfigMapName, KvPairSources: types.KvPairSources{FileSources: []string{f}}}})
	}
	if f, err := add("secrets.json", in.Secrets); err != nil {
		return nil, err
	} else if f != "" {
		k.SecretGenerator = append(k.SecretGenerator, types.SecretArgs{GeneratorArgs: types.GeneratorArgs{
			Name: SecretName, KvPairSources: types.KvPairSources{FileSources: []string{f}}}, Type: "Opaque"})
	}
	if len(in.Licenses) > 0 {
		names := make([]string, 0, len(in.Licenses))
		for name, b := range in.Licenses {
			// The overlay folder is flat; "key=file" keeps the Secret's keys the files' names.
			extra[path.Join(genDir, "license-"+name)] = b
			names = append(names, name+"=license-"+name)
		}
		sort.Strings(names)
		k.SecretGenerator = append(k.SecretGenerator, types.SecretArgs{GeneratorArgs: types.GeneratorArgs{
			Name: LicenseSecretName, KvPairSources: types.KvPairSources{FileSources: names}}, Type: "Opaque"})
	}
	if in.Origins {
		k.BuildMetadata = []string{types.OriginAnnotations}
	}
	kb, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	extra[path.Join(genDir, "kustomization.yaml")] = kb

	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	// As `kubectl kustomize` and `kustomize build` order their output (legacy kind order or
	// the kustomization's sortOptions), not krusty's default of input order.
	opts.Reorder = krusty.ReorderOptionUnspecified
	m, err := krusty.MakeKustomizer(opts).Run(sources.KustomizeFS(overlay{base: in.FS, extra: extra, dir: genDir}), "/"+genDir)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", in.Env, err)
	}
	if in.Origins {
		if err := rootOrigins(m); err != nil {
			return nil, fmt.Errorf("render %s: %w", in.Env, err)
		}
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", in.Env, err)
	}
	return out, nil
}

// rootOrigins rewrites the origin annotations kustomize wrote, which are relative to the
// generated kustomization's folder ("../deploy/base/deployment.yaml"), to be relative to
// the snapshot's root ("deploy/base/deployment.yaml"): the paths a user opens.
func rootOrigins(m resmap.ResMap) error {
	rel := func(p string) string {
		if p == "" || path.IsAbs(p) {
			return p
		}
		return path.Join(genDir, p)
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
