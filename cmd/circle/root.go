package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/circlecore/circle/termsafe"
)

// Exit codes, documented in the package comment and in `circle --help`.
const (
	exitOK             = 0
	exitFailed         = 1
	exitUsage          = 2
	exitNotImplemented = 3
)

// exitError carries the exit code a command wants; any other error exits with exitUsage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// notImplemented is what a command of the planned tree answers until its issue lands: a
// clear message and exit code 3, never a silent success.
func notImplemented(cmd *cobra.Command, _ []string) error {
	return &exitError{code: exitNotImplemented, err: fmt.Errorf("%s: not implemented yet", cmd.CommandPath())}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "circle",
		Short: "GitOps reconciler for configuration, packages, licenses and Kubernetes manifests",
		Long: `Circle watches a Git repository that holds an organisation's configuration, package
manifests, license files and Kubernetes manifests. Each commit is loaded, validated with
CUE schemas, its SOPS secrets decrypted in memory, built per environment, and published
to storage backends and Kubernetes clusters.

Run it as a daemon with 'circle serve', or run the same pipeline offline for a pull
request with 'circle validate' and 'circle plan'.

Exit codes:
  0  success
  1  the work ran and found a problem (invalid repository, failed check)
  2  usage or I/O error
  3  the command is not implemented yet
circle plan differs, as terraform plan -detailed-exitcode: 0 no changes, 1 an error or an
invalid head, 2 changes.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddGroup(
		&cobra.Group{ID: "pipeline", Title: "Pipeline commands:"},
		&cobra.Group{ID: "tools", Title: "Data tools:"},
	)
	for _, c := range []*cobra.Command{newServeCmd(), newStatusCmd(), newReconcileCmd(), newValidateCmd(), newPlanCmd(), newRenderCmd(), newDiffCmd(), newApplyCmd()} {
		c.GroupID = "pipeline"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newSecretsCmd(), newStorageCmd(), newPackageCmd(), newLicenseCmd()} {
		c.GroupID = "tools"
		root.AddCommand(c)
	}
	root.AddCommand(newVersionCmd())
	root.AddCommand(newInitCmd())
	root.AddCommand(newInstallCmd())
	root.AddCommand(newUninstallCmd())
	return root
}

// execute runs the command line and maps its error to an exit code.
func execute(args []string, stdout, stderr io.Writer) int {
	return executeIn(args, os.Stdin, stdout, stderr)
}

// executeIn is execute reading stdin from in.
func executeIn(args []string, in io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetIn(in)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	// An error may quote what a file holds (a license's product, a YAML value): escaped,
	// so that it cannot drive the terminal.
	fmt.Fprintln(stderr, "Error:", termsafe.Text(err.Error()))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitUsage
}
