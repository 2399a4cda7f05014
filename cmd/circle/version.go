package main

import (
	"runtime"

	"github.com/spf13/cobra"
)

// Set at build time by the Makefile: -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

// versionInfo is what `circle version` prints.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func newVersionCmd() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{Version: version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
			return out.print(cmd.OutOrStdout(), v, func() string {
				return "circle " + v.Version + " (commit " + v.Commit + ", " + v.GoVersion + ", " + v.Platform + ")\n"
			})
		},
	}
	out.register(cmd)
	return cmd
}
