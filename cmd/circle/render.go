package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"

	"github.com/fluxcd/pkg/ssa/utils"
	"github.com/spf13/cobra"

	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/repo"
)

func newRenderCmd() *cobra.Command {
	var (
		env    string
		keys   keyFlags
		caps   capFlags
		format string
	)
	cmd := &cobra.Command{
		Use:   "render [path] --env ENV",
		Short: "Render an environment's Kubernetes manifests with kustomize, as the daemon would",
		Long: `Render builds the environment's kustomize overlay (paths.manifests/ENV in circle.yaml)
with the ConfigMap circle-config (plain values) and the Secret circle-secrets (sensitive
values) that Circle generates from the environment's configuration, exactly as the daemon
does: content-hash name suffixes, and the workloads' references rewritten to them.

The repository is loaded and validated first; an invalid one exits 1 with its problems.
The circle-licenses Secret the daemon adds (from verified licenses/*.lic) is not rendered
here.
Secret values are masked in this output (**redacted:<hash>**), so the Secret's name
suffix here differs from the one the daemon applies.`,
		Example: `  circle render examples --env prod --key-file examples/keys/age.example.key`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := "."
			if len(args) == 1 {
				root = args[0]
			}
			ctx := cmd.Context()
			snap, err := snapshotOf(ctx, root, caps)
			if err != nil {
				return err
			}
			ring, err := keys.keyring(ctx)
			if err != nil {
				return err
			}
			red := redact.New()
			r, err := repo.Load(ctx, snap.FS, repo.Options{Keyring: ring, Redactor: red, Envs: []string{env}})
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			e := r.Env(env)
			plain, sensitive := e.Split()
			out, err := render.Render(render.Input{FS: snap.FS, Manifests: r.Settings.Paths.Manifests, Env: env,
				Namespace: r.Settings.Namespace(env), Config: plain, Secrets: masked(sensitive, red)})
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			// Like every other output, through the redactor: what the masks above missed
			// (a value the schema derived from a secret, say) is still not printed.
			stdout := red.Writer(cmd.OutOrStdout())
			switch format {
			case "yaml", "":
				fmt.Fprintf(stdout, "# circle render %s --env %s (revision %s)\n", path.Clean(root), env, snap.Revision)
				_, err = stdout.Write(out)
				return err
			case "json":
				objects, err := utils.ReadObjects(bytes.NewReader(out))
				if err != nil {
					return err
				}
				list := make([]map[string]any, len(objects))
				for i, o := range objects {
					list[i] = o.Object
				}
				b, err := json.MarshalIndent(list, "", "  ")
				if err != nil {
					return err
				}
				_, err = stdout.Write(append(b, '\n'))
				return err
			default:
				return fmt.Errorf("unknown output format %q: use yaml or json", format)
			}
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "the environment to render (required)")
	enumVarP(cmd.Flags(), &format, "output", "o", "yaml", "output format", []string{"yaml", "json"}, "output format: yaml (a multi-document stream) or json (a list)")
	_ = cmd.MarkFlagRequired("env")
	keys.register(cmd)
	caps.register(cmd)
	return cmd
}

// masked replaces every leaf with its redaction mask, keeping the nesting.
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
