package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"github.com/fluxcd/pkg/ssa/utils"
	"github.com/spf13/cobra"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/redact"
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

It runs the daemon's pipeline for the environment: the repository is loaded and
validated, its licenses verified (the circle-licenses Secret carries those that apply),
its packages resolved, the overlay rendered and the manifests checked. An invalid
repository, or an environment the daemon would refuse, exits 1 and says why.
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
			// The daemon's pipeline for one environment: what it would apply, but with
			// secret values masked.
			res, err := pipeline.Run(ctx, snap.FS, pipeline.Options{Load: repo.Options{Keyring: ring, Redactor: red, Envs: []string{env}}, Masked: true})
			if inv, invalid := errors.AsType[*repo.Invalid](err); invalid {
				return &exitError{code: exitFailed, err: inv}
			}
			if err != nil {
				return red.Error(err)
			}
			if why, ok := res.Failed[env]; ok {
				return &exitError{code: exitFailed, err: fmt.Errorf("%s: %s", env, why.Message)}
			}
			built := res.Output(env)
			if built == nil || built.Manifests == nil {
				return &exitError{code: exitFailed, err: fmt.Errorf("environment %s has no overlay %s/%s", env, res.Settings.Paths.Manifests, env)}
			}
			out := built.Manifests
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
