package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

type globalFlags struct {
	verbose bool
	quiet   bool
	json    bool
	// How requests to registries are bounded and retried.
	attempts        int
	responseTimeout time.Duration
	stallTimeout    time.Duration
	backoff         time.Duration
	stderr          io.Writer // where logs go: the command's stderr
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
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print one JSON document with the results on stdout (logs stay on stderr)")
	root.PersistentFlags().IntVar(&g.attempts, "retries", registry.DefaultAttempts, "attempts per registry request, the first included, before a transient failure (5xx, 408, 429, reset, timeout) is an error")
	root.PersistentFlags().DurationVar(&g.responseTimeout, "response-timeout", registry.DefaultResponseTimeout, "give up on a registry request that has no response headers after this long (connecting included)")
	root.PersistentFlags().DurationVar(&g.stallTimeout, "stall-timeout", registry.DefaultStallTimeout, "give up on a download that receives no bytes for this long (it is then retried, resuming where it stopped)")
	// Hidden: tests shorten the waits between attempts.
	root.PersistentFlags().DurationVar(&g.backoff, "retry-backoff", registry.DefaultBackoff, "wait before the second attempt (doubling after)")
	_ = root.PersistentFlags().MarkHidden("retry-backoff")
	root.PersistentPreRun = func(c *cobra.Command, _ []string) {
		g.stderr = c.ErrOrStderr()
		g.quietLibraries()
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	// One command a line: each lives in its own file.
	root.AddCommand(newValidateCmd(g))
	root.AddCommand(newLockCmd(g))
	root.AddCommand(newBuildCmd(g))
	root.AddCommand(newVersionCmd())
	root.AddCommand(newDiffCmd(g))
	root.AddCommand(newVerifyCmd(g))
	root.AddCommand(newInspectCmd(g))
	root.AddCommand(newServeCmd(g))
	root.AddCommand(newPushCmd(g))
	root.AddCommand(newApplyCmd(g))
	root.AddCommand(newJoinCmd(g))
	root.AddCommand(newCacheCmd(g))
	root.AddCommand(newInventoryCmd(g))
	root.AddCommand(newCheckNodeCmd(g))
	root.SetHelpTemplate(root.HelpTemplate() + "{{with manualURL .}}\nManual: {{.}}\n{{end}}")
	return root
}

// repoURL is where the manual pages are read by someone who has only the
// binary.
const repoURL = "https://github.com/airgap-bundle/airgap-bundle"

// manuals maps each command to the page of the repository that documents
// it, so that --help, which can only be short, ends with where the rest is.
// A test checks that every command has one and that it exists.
var manuals = map[string]string{
	"airgap-bundle": "README.md",
	"validate":      "docs/spec.md",
	"lock":          "docs/spec.md#the-lockfile",
	"build":         "docs/build.md",
	"apply":         "docs/delta.md",
	"join":          "docs/spec.md#parts",
	"cache":         "docs/build.md#the-cache",
	"inventory":     "docs/delta.md#inventory",
	"check-node":    "docs/delta.md#dropping-a-delta-on-a-k3srke2-node",
	"diff":          "docs/ci.md#what-a-bump-changes-lock---dry-run-and-diff",
	"verify":        "docs/archive-format.md#checking-archives-verify-and-inspect",
	"inspect":       "docs/archive-format.md#checking-archives-verify-and-inspect",
	"serve":         "docs/serve.md",
	"push":          "docs/push.md",
	"version":       "docs/release.md",
	"completion":    "docs/ci.md#shell-completion",
	"help":          "README.md",
}

// manualPage is the page documenting c: its own, or that of the nearest
// parent that has one (completion's per-shell subcommands share one).
func manualPage(c *cobra.Command) string {
	for ; c != nil; c = c.Parent() {
		if p, ok := manuals[c.Name()]; ok {
			return p
		}
	}
	return ""
}

// manualURL is manualPage as a link at the git ref matching this binary.
func manualURL(c *cobra.Command) string {
	p := manualPage(c)
	if p == "" {
		return ""
	}
	return repoURL + "/blob/" + docRef() + "/" + p
}

func init() { cobra.AddTemplateFunc("manualURL", manualURL) }

// progress reports on stderr: bars on a terminal, timestamped lines
// otherwise, nothing with --quiet or --json.
func (g *globalFlags) progress() progress.Reporter {
	if g.quiet || g.json {
		return progress.New(nil, progress.Quiet)
	}
	return progress.New(os.Stderr, progress.Auto)
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
	w := g.stderr
	if w == nil {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// registryOptions are the settings of every registry session.
func (g *globalFlags) registryOptions() registry.Options {
	return registry.Options{UserAgent: userAgent(), Logger: g.logger(), Policy: g.policy()}
}

// policy is how every registry request of the run is bounded and retried.
func (g *globalFlags) policy() registry.Policy {
	return registry.Policy{Attempts: g.attempts, ResponseTimeout: g.responseTimeout, StallTimeout: g.stallTimeout, Backoff: g.backoff, Logger: g.logger()}
}

// out is where human-readable results go; --quiet and --json silence it
// (with --json, stdout carries only the JSON document).
func (g *globalFlags) out(c *cobra.Command) io.Writer {
	if g.quiet || g.json {
		return io.Discard
	}
	return c.OutOrStdout()
}

// printJSON writes v as the one JSON document of a --json run.
func (g *globalFlags) printJSON(c *cobra.Command, v any) error {
	enc := json.NewEncoder(c.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// quietLibraries applies --quiet and --verbose to containers/image, which
// logs through logrus on its own: warnings by default, only errors with
// --quiet, its informational lines with --verbose.
func (g *globalFlags) quietLibraries() {
	level := logrus.WarnLevel
	switch {
	case g.quiet:
		level = logrus.ErrorLevel
	case g.verbose:
		level = logrus.InfoLevel
	}
	logrus.SetLevel(level)
	logrus.SetOutput(os.Stderr)
}
