package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/circlecore/circle/scaffold"
)

func newInitCmd() *cobra.Command {
	var (
		o      scaffold.Options
		keyDir string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Make a new configuration repository that validates and publishes as made",
		Long: `init writes a working repository into DIR (default: the current folder):

  circle.yaml                 the environments (--env) and where each part lives
  schema/app.cue              a starter CUE schema every environment must satisfy
  config/base, config/ENV     configuration layers; the kubernetes key describes a
                              PersistentVolumeClaim and an Ingress per environment
  secrets/ENV.sops.yaml       one SOPS file per environment, encrypted for a fresh age key
  .sops.yaml                  so that sops encrypts new files for the same key
  deploy/base, deploy/ENV     a kustomize base and overlays for one service (--service)
  packages/, licenses/        a package with each environment's requirement; a signed license
  .github/workflows/circle.yml  validate and plan every pull request

The private keys are written outside the repository, into --key-dir (default
~/.config/circle/<DIR's name>): age.agekey opens the secrets, license-issuer.key signs
licenses. Their paths are printed; keep them safe.

init never overwrites a file: when one it would write exists, it writes nothing and exits
2 naming it. --dry-run lists what it would write.

Next: circle validate DIR --key-file KEY, edit, circle plan, circle serve --source DIR.`,
		Example: `  circle init shop-config
  circle init shop-config --env dev,prod --service shop
  circle init --dry-run`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			if keyDir == "" {
				conf, err := os.UserConfigDir()
				if err != nil {
					return fmt.Errorf("--key-dir: %w", err)
				}
				keyDir = filepath.Join(conf, "circle", filepath.Base(abs))
			}
			if keyDir, err = filepath.Abs(keyDir); err != nil {
				return err
			}
			if rel, err := filepath.Rel(abs, keyDir); err == nil && !strings.HasPrefix(rel, "..") {
				return fmt.Errorf("--key-dir %s is inside the repository %s: the private keys must not be committed", keyDir, abs)
			}
			o.AgeKeyFile = filepath.Join(keyDir, "age.agekey")
			o.IssuerKeyFile = filepath.Join(keyDir, "license-issuer.key")
			repo, err := scaffold.Make(o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if dryRun {
				for _, p := range repo.Paths() {
					fmt.Fprintln(out, filepath.Join(dir, filepath.FromSlash(p)))
				}
				fmt.Fprintln(out, o.AgeKeyFile)
				fmt.Fprintln(out, o.IssuerKeyFile)
				return nil
			}
			if err := repo.Write(abs, o); err != nil {
				if errors.Is(err, scaffold.ErrExists) {
					return &exitError{code: exitUsage, err: err}
				}
				return err
			}
			fmt.Fprintf(out, "made %s: %d files\n", dir, len(repo.Files))
			fmt.Fprintf(out, "age key (opens secrets/*.sops.yaml; CI's CIRCLE_AGE_KEY): %s\n", o.AgeKeyFile)
			fmt.Fprintf(out, "license issuer key (circle license issue --key): %s\n", o.IssuerKeyFile)
			fmt.Fprintf(out, "next: circle validate %s --key-file %s\n", dir, o.AgeKeyFile)
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&o.Envs, "env", nil, "the environments, in promotion order (default dev,staging,prod)")
	cmd.Flags().StringVar(&o.Service, "service", "web", "the service the repository deploys")
	cmd.Flags().StringVar(&keyDir, "key-dir", "", "where the private keys go, outside the repository (default ~/.config/circle/<DIR's name>)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the files init would write, and write nothing")
	return cmd
}
