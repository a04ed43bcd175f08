package main

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/trust"
)

// Set by make build and make release through -ldflags. A plain `go install`
// cannot set them; stamp then falls back to what the toolchain recorded.
var (
	version = "dev"
	commit  = ""
)

// stamp returns the version and commit this binary reports: the -ldflags
// values when set, else the module version `go install module@v1.2.3`
// records and the VCS revision a build inside a git checkout records.
func stamp() (ver, rev string) {
	ver, rev = version, commit
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ver, rev
	}
	if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		ver = bi.Main.Version
	}
	if rev == "" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	return ver, rev
}

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

// signatureSupport says whether this build verifies signatures, since a
// build without the containers_image_openpgp tag leaves the policy engine
// out (see trust.Available).
func signatureSupport() string {
	if trust.Available() != nil {
		return "not in this build (built without -tags containers_image_openpgp)"
	}
	return "containers/image policy engine, pure-Go OpenPGP"
}

func userAgent() string {
	v, _ := stamp()
	return "airgap-bundle/" + v
}

// releaseTag matches the versions that are tags in the repository, whose
// documentation can be linked at that tag rather than at main.
var releaseTag = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)

// docRef is the git ref the help text's manual links point at: the release
// this binary is, so the page describes this binary, else main.
func docRef() string {
	if v, _ := stamp(); releaseTag.MatchString(v) {
		return v
	}
	return "main"
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, the commit and the containers/image version",
		Example: "  airgap-bundle version",
		Args:    exactArgs(0),
		Run: func(c *cobra.Command, _ []string) {
			v, rev := stamp()
			fmt.Fprintf(c.OutOrStdout(), "airgap-bundle %s\ncommit: %s\ncontainers/image (go.podman.io/image/v5): %s\nsignature verification: %s\nbuilt with: %s %s/%s\n",
				v, rev, imageLibVersion(), signatureSupport(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
