package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/repo"
)

// clusterFlags are what apply and diff share: the repository, environment, keys and the
// cluster.
type clusterFlags struct {
	env     string
	kctx    string
	keys    keyFlags
	caps    capFlags
	opts    apply.Options
	out     outputFlag
	exitSet bool
}

func (f *clusterFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.env, "env", "", "the environment (required)")
	_ = cmd.MarkFlagRequired("env")
	cmd.Flags().StringVar(&f.kctx, "context", "", "kubeconfig context (default: the current one)")
	cmd.Flags().StringVar(&f.opts.InventoryNamespace, "inventory-namespace", "default", "namespace of the inventory ConfigMaps")
	cmd.Flags().BoolVar(&f.opts.Prune, "prune", true, "delete (or, for diff, show) objects the manifests no longer hold")
	f.keys.register(cmd) // --kubeconfig is shared with --keys-secret
	f.caps.register(cmd)
	f.out.register(cmd)
}

// build builds the environment as the daemon does (load and validate, licenses, packages,
// render) with its real secret values: they go to the cluster, never to output.
func (f *clusterFlags) build(ctx context.Context, root string) ([]byte, *redact.Redactor, error) {
	snap, err := snapshotOf(ctx, root, f.caps)
	if err != nil {
		return nil, nil, err
	}
	ring, err := f.keys.keyring(ctx)
	if err != nil {
		return nil, nil, err
	}
	red := redact.New()
	res, err := pipeline.Run(ctx, snap.FS, pipeline.Options{Load: repo.Options{Keyring: ring, Redactor: red, Envs: []string{f.env}}})
	if inv, invalid := errors.AsType[*repo.Invalid](err); invalid {
		return nil, nil, &exitError{code: exitFailed, err: inv}
	}
	if err != nil {
		return nil, nil, red.Error(err)
	}
	if why, ok := res.Failed[f.env]; ok {
		return nil, nil, &exitError{code: exitFailed, err: fmt.Errorf("build %s: %s", f.env, why.Message)}
	}
	out := res.Output(f.env)
	if out == nil || out.Manifests == nil {
		return nil, nil, &exitError{code: exitFailed, err: fmt.Errorf("environment %s has no overlay %s/%s", f.env, res.Settings.Paths.Manifests, f.env)}
	}
	return out.Manifests, red, nil
}

func (f *clusterFlags) applier() (*apply.Applier, error) {
	cfg, err := apply.RESTConfig(f.keys.kubeconfig, f.kctx)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return apply.New(cfg)
}

func newApplyCmd() *cobra.Command {
	var f clusterFlags
	cmd := &cobra.Command{
		Use:   "apply [path] --env ENV",
		Short: "Render an environment and server-side apply it to a cluster, pruning what left Git",
		Long: `Apply loads and validates the repository, renders the environment (kustomize overlay plus
the generated ConfigMap and Secret) and applies it to the cluster of the kubeconfig as the
daemon does: server-side apply with the field manager "circle", Namespaces and CRDs first,
an inventory (circle-inventory-ENV in --inventory-namespace) so objects removed from Git are
pruned, with the prune guards (more than half the inventory at once is refused; Namespaces,
PVCs and objects annotated circle.circlecore.io/prune: disabled stay).`,
		Example: `  circle apply examples --env dev --key-file examples/keys/age.example.key --context kind-dev
  circle diff examples --env dev --key-file examples/keys/age.example.key`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			y, _, err := f.build(cmd.Context(), pathArg(args))
			if err != nil {
				return err
			}
			a, err := f.applier()
			if err != nil {
				return err
			}
			res, err := a.Apply(cmd.Context(), f.env, y, f.opts)
			if res != nil {
				if perr := f.out.print(cmd.OutOrStdout(), res, func() string { return resultText(res) }); perr != nil {
					return perr
				}
			}
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			return nil
		},
	}
	f.register(cmd)
	durationVar(cmd.Flags(), &f.opts.Wait, "wait", 0, 0, 24*time.Hour, "wait this long for the applied objects to become healthy (at most 24h)")
	fractionVar(cmd.Flags(), &f.opts.MaxDeleteFraction, "max-delete-fraction", "refuse a prune of more than this fraction of the inventory, 0 to 1 (default 0.5; 1 disables)")
	return cmd
}

func resultText(r *apply.Result) string {
	var b strings.Builder
	for _, l := range []struct {
		verb string
		list []string
	}{{"created", r.Created}, {"configured", r.Configured}, {"unchanged", r.Unchanged}, {"deleted", r.Deleted}} {
		for _, s := range l.list {
			fmt.Fprintf(&b, "%s %s\n", s, l.verb)
		}
	}
	return b.String()
}

func newDiffCmd() *cobra.Command {
	var f clusterFlags
	cmd := &cobra.Command{
		Use:   "diff [path] --env ENV",
		Short: "Show what apply would change in the cluster (server-side dry run; secrets masked)",
		Long: `Diff renders the environment as apply would and asks the cluster, by a server-side dry run
of each object, what applying it would change: objects created, configured (with a
unified diff of their YAML) and, with --prune, deleted. Secret values are shown only as
masks. Nothing in the cluster changes. With --exit-code it exits 1 when there are changes.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			y, red, err := f.build(cmd.Context(), pathArg(args))
			if err != nil {
				return err
			}
			a, err := f.applier()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			changes, err := a.Diff(ctx, f.env, y, f.opts, red.Mask)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			changed := 0
			for _, c := range changes {
				if c.Action != "unchanged" {
					changed++
				}
			}
			err = f.out.print(cmd.OutOrStdout(), changes, func() string {
				var b strings.Builder
				for _, c := range changes {
					if c.Action == "unchanged" {
						continue
					}
					fmt.Fprintf(&b, "%s %s\n%s", c.Action, c.Subject, c.Diff)
				}
				fmt.Fprintf(&b, "%d of %d object(s) would change\n", changed, len(changes))
				return b.String()
			})
			if err != nil {
				return err
			}
			if f.exitSet && changed > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("%d object(s) would change", changed)}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&f.exitSet, "exit-code", false, "exit 1 when there are changes")
	return cmd
}

func pathArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return "."
}
