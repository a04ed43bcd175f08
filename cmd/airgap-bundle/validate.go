package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

func newValidateCmd(g *globalFlags) *cobra.Command {
	var lockPath string
	c := &cobra.Command{
		Use:   "validate SPEC",
		Short: "Check a spec (and its lockfile, if there is one) without network access",
		Long: `validate checks a bundle spec, and its lockfile if there is one, without
network access. It also checks a file with only [registries."HOST"] tables,
the kind push --spec takes where there is no bundle spec.`,
		Example: `  airgap-bundle validate bundle.toml
  airgap-bundle validate --lockfile ci/bundle.lock bundle.toml
  airgap-bundle validate target.toml`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			spec, err := config.LoadRegistries(c.Context(), args[0])
			if err != nil {
				return err
			}
			if spec.RegistriesOnly {
				hosts := make([]string, 0, len(spec.Registries))
				for h := range spec.Registries {
					hosts = append(hosts, h)
				}
				sort.Strings(hosts)
				fmt.Fprintf(g.out(c), "%s: registries only (%s): OK for push --spec; lock and build need a [[group]]\n", spec.Path, strings.Join(hosts, ", "))
				return nil
			}
			images := 0
			for _, gr := range spec.Groups {
				images += len(gr.Images)
			}
			if lockPath == "" {
				lockPath = lockfile.Path(spec.Path)
			}
			lockNote := "no lockfile yet"
			if _, err := lockfile.Read(lockPath); err == nil {
				lockNote = lockPath + " is well-formed"
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			fmt.Fprintf(g.out(c), "%s: %d groups, %d images: OK (%s)\n", spec.Path, len(spec.Groups), images, lockNote)
			return nil
		},
	}
	c.Flags().StringVar(&lockPath, "lockfile", "", "lockfile path (default: beside the spec, with a .lock extension)")
	return c
}

// exactArgs is cobra.ExactArgs with a usage exit code.
func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(c, args); err != nil {
			return usageError{fmt.Errorf("%s: %w", c.CommandPath(), err)}
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs with a usage exit code.
func minArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(c, args); err != nil {
			return usageError{fmt.Errorf("%s: %w", c.CommandPath(), err)}
		}
		return nil
	}
}
