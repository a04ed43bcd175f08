package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by the Makefile through -ldflags.
var (
	version = "dev"
	commit  = ""
)

func imageLibVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "go.podman.io/image/v5" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func userAgent() string { return "airgap-bundle/" + version }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, the commit and the containers/image version",
		Example: "  airgap-bundle version",
		Args:    exactArgs(0),
		Run: func(c *cobra.Command, _ []string) {
			fmt.Fprintf(c.OutOrStdout(), "airgap-bundle %s\ncommit: %s\ncontainers/image (go.podman.io/image/v5): %s\n", version, commit, imageLibVersion())
		},
	}
}
