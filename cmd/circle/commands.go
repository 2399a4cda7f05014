package main

import "github.com/spf13/cobra"

// The commands below are the planned tree. Each answers "not implemented yet" (exit 3)
// until its issue lands and it moves to a file of its own.

func newPlanCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "plan [path]",
		Short: "Show what a revision would change in each environment, as Markdown or JSON",
		Args:  cobra.MaximumNArgs(1),
		RunE:  notImplemented,
	}
}
