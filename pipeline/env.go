package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"

	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/storage/publish"
)

// Output is one environment's build.
type Output struct {
	Env string
	// Files are what the publish stage writes, in a stable order: config.json, the
	// license files, manifests.yaml when the environment has an overlay, and
	// packages/index.json when the repository has packages.
	Files []publish.File
	// Manifests is manifests.yaml's content, nil when the environment has no overlay.
	Manifests []byte
	// Packages is the environment's package index, nil without packages.
	Packages *registry.Index
}

// File returns the output file at p, or nil.
func (o *Output) File(p string) *publish.File {
	for i := range o.Files {
		if o.Files[i].Path == p {
			return &o.Files[i]
		}
	}
	return nil
}

// buildEnv is the build stage for one environment of a loaded revision. lics are the
// license files that apply to it (Licenses.ForEnv); inputs its input digest ("" when not
// computed), which with opts.Cache saves the render of inputs rendered before; reg is the revision's package registry
// (nil for none); opts.Now decides advisory withdrawals and allow-list expiry. A build fails
// closed: packages that do not resolve or fail the environment's policy, or an overlay that
// does not render, are an error, and the environment keeps its last good revision.
//
// The package index is resolved first and returned even when the build fails, so a plan
// shows what moved and which advisory fails an environment without resolving again.
func buildEnv(ctx context.Context, fsys fs.FS, s *repo.Settings, e *repo.Env, inputs string, lics []publish.File, reg *registry.Registry, opts *Options) (*Output, *registry.Index, error) {
	ix, pkgs, err := packageBuild(ctx, reg, e.Name, opts.Now)
	if err != nil {
		return nil, ix, err
	}
	cfg, err := json.MarshalIndent(e.Config, "", "  ")
	if err != nil {
		return nil, ix, fmt.Errorf("build %s: %w", e.Name, err)
	}
	out := &Output{Env: e.Name, Packages: ix, Files: []publish.File{{Path: "config.json", Data: append(cfg, '\n'), ContentType: "application/json"}}}
	out.Files = append(out.Files, lics...)

	if _, err := fs.Stat(fsys, path.Join(s.Paths.Manifests, e.Name)); err == nil {
		var licSecret map[string][]byte
		for _, f := range lics {
			if licSecret == nil {
				licSecret = map[string][]byte{}
			}
			licSecret[path.Base(f.Path)] = f.Data
		}
		kube, err := render.KubernetesFrom(e.Kubernetes)
		if err != nil {
			return nil, ix, fmt.Errorf("build %s: %w", e.Name, err)
		}
		plain, sensitive := e.Split()
		if opts.Masked {
			sensitive = masked(sensitive, opts.Load.Redactor)
		}
		y, err := opts.Cache.render(inputs, render.Input{FS: fsys, Manifests: s.Paths.Manifests, Env: e.Name, Namespace: s.Namespace(e.Name),
			Config: plain, Secrets: sensitive, Licenses: licSecret, Kubernetes: kube, Origins: opts.Origins})
		if err != nil {
			return nil, ix, err
		}
		out.Manifests = y
		out.Files = append(out.Files, publish.File{Path: "manifests.yaml", Data: y, ContentType: "application/yaml"})
	}
	out.Files = append(out.Files, pkgs...)
	return out, ix, nil
}

// masked replaces every leaf with its redaction mask, keeping the nesting: what renders
// for output, where the structure is what matters and real values need never be in memory.
func masked(m map[string]any, red *redact.Redactor) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			out[k] = masked(sub, red)
			continue
		}
		b, _ := json.Marshal(v)
		out[k] = red.Mask(string(b))
	}
	return out
}
