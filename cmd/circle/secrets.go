package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/circlecore/circle/repo"
)

func newSecretsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Check the repository's SOPS files against the configured keys",
	}
	cmd.AddCommand(newSecretsCheckCmd())
	return cmd
}

func newSecretsCheckCmd() *cobra.Command {
	var (
		keys keyFlags
		caps capFlags
		out  outputFlag
	)
	cmd := &cobra.Command{
		Use:   "check [path]",
		Short: "Check that every SOPS file decrypts with the configured keys (exit 1 if one does not)",
		Long: `Check tries every SOPS file of a repository (each file in the secrets folder, and any
*.sops.* file elsewhere) with the configured keys, the way the daemon will. It prints
whom each file was encrypted for, and why a file does not open, at the line and key path
of the entry at fault: no matching key; a tampered file (MAC mismatch, a changed value or
type tag); an entry left unencrypted (null, "" and [] are never accepted: sops' MAC does
not cover them); a remote key source (KMS, Vault) that --kms-allow does not name, for
which no request is made; or a file that is not encrypted at all. Plaintext is never
printed, nor is any value in an error, and it is dropped as soon as the file opens.`,
		Example: `  circle secrets check examples --key-file examples/keys/age.example.key
  CIRCLE_AGE_KEY="$(cat key.txt)" circle secrets check -o json
  circle secrets check --kms-allow hc_vault:https://vault.example.com:8200/v1/sops/keys/circle`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "."
			if len(args) == 1 {
				path = args[0]
			}
			ctx := cmd.Context()
			snap, err := snapshotOf(ctx, path, caps)
			if err != nil {
				return err
			}
			settings, problems := repo.LoadSettings(snap.FS)
			if problems != nil {
				return &exitError{code: exitFailed, err: &repo.Invalid{Problems: problems}}
			}
			ring, err := keys.keyring(ctx)
			if err != nil {
				return err
			}
			checks, err := repo.CheckSecrets(ctx, snap.FS, settings, ring)
			if err != nil {
				return err
			}
			failed := 0
			for _, c := range checks {
				if !c.OK() {
					failed++
				}
			}
			err = out.print(cmd.OutOrStdout(), checks, func() string {
				var b strings.Builder
				for _, c := range checks {
					if c.OK() {
						fmt.Fprintf(&b, "ok    %s  (%s)\n", c.File, strings.Join(c.Recipients, ", "))
					} else {
						fmt.Fprintf(&b, "FAIL  %s: %s\n", c.File, c.Error)
					}
				}
				fmt.Fprintf(&b, "\n%d file(s), %d failed\n", len(checks), failed)
				return b.String()
			})
			if err != nil {
				return err
			}
			if failed > 0 {
				return &exitError{code: exitFailed, err: errors.New(fmt.Sprint(failed, " SOPS file(s) do not open with the configured keys"))}
			}
			return nil
		},
	}
	keys.register(cmd)
	caps.register(cmd)
	out.register(cmd)
	return cmd
}
