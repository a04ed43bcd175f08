package main

import (
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

type globalFlags struct {
	verbose bool
	quiet   bool
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "airgap-bundle",
		Short: "Build air-gap image tarballs for k3s, RKE2, containerd and docker from a TOML spec",
		Long: `airgap-bundle resolves the images a bundle spec lists to their registry
digests (a lockfile you commit), then writes one tarball per group that
docker load, ctr images import, k3s, podman and skopeo all take, with the
registry's manifest and index digests intact. No daemon is needed.`,
		Example: `  airgap-bundle validate bundle.toml
  airgap-bundle lock bundle.toml
  airgap-bundle lock --check bundle.toml`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log every step")
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "print only errors")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newValidateCmd(g), newLockCmd(g), newBuildCmd(g), newVersionCmd())
	return root
}

// logger writes to stderr so stdout stays for results.
func (g *globalFlags) logger() *slog.Logger {
	level := slog.LevelWarn
	switch {
	case g.quiet:
		level = slog.LevelError
	case g.verbose:
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// out is where human-readable results go; --quiet silences it.
func (g *globalFlags) out(c *cobra.Command) io.Writer {
	if g.quiet {
		return io.Discard
	}
	return c.OutOrStdout()
}
