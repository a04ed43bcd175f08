package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
)

type applyFlags struct {
	base    string
	out     string
	inPlace bool
}

func newApplyCmd(g *globalFlags) *cobra.Command {
	f := &applyFlags{}
	c := &cobra.Command{
		Use:   "apply DELTA_DIR --base BASE_DIR (-o OUT_DIR | --in-place)",
		Short: "Rebuild a version's full archives from the site's archives and a delta",
		Long: `apply rebuilds every full archive of the version a delta (build --since)
stands for, from BASE_DIR's archives (any compression: a .tar is read in
place, a compressed one decompressed once) and the delta archives in
DELTA_DIR. Each archive is checked against delta.json before anything is
put in place: byte for byte what build wrote outside (size and sha256).
They are committed as one set with the new bundle.lock and SHA256SUMS, as
build commits, so the next delta can be checked against that lockfile.

Everything the delta needs from BASE is looked for first; a blob BASE
lacks (a delta made against another BASE), a damaged BASE blob or delta,
or a full disk is an error naming the archive and the blob, and nothing in
the output directory changes. --in-place replaces BASE_DIR's archives as
one set.`,
		Example: `  airgap-bundle apply /media/usb/delta --base /srv/airgap -o /srv/airgap-next
  airgap-bundle apply /media/usb/delta --base /var/lib/rancher/k3s/agent/images --in-place`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error { return runApply(c, g, f, args[0]) },
	}
	c.Flags().StringVar(&f.base, "base", "", "the directory of the archives the site has (BASE)")
	c.Flags().StringVarP(&f.out, "output", "o", "", "where the new archives go")
	c.Flags().BoolVar(&f.inPlace, "in-place", false, "replace BASE_DIR's archives as one set")
	return c
}

func runApply(c *cobra.Command, g *globalFlags, f *applyFlags, dir string) error {
	switch {
	case f.base == "":
		return usageError{errors.New("apply: --base BASE_DIR is required")}
	case f.inPlace == (f.out != ""):
		return usageError{errors.New("apply: give either -o OUT_DIR or --in-place")}
	case !f.inPlace && filepath.Clean(f.out) == filepath.Clean(f.base):
		return usageError{errors.New("apply: -o is BASE_DIR: use --in-place to replace BASE's archives")}
	}
	// Compressed archives are decompressed into the cache's private tmp/
	// (removed when apply ends, or by the next run if it is killed).
	var tmpDir string
	if dir, err := cache.DefaultDir(); err == nil {
		if bc, err := cache.Open(dir); err == nil {
			tmpDir = bc.TempDir()
			defer bc.Close()
		}
	}
	applied, err := delta.Apply(c.Context(), dir, delta.ApplyOptions{Base: f.base, Out: f.out, InPlace: f.inPlace, TempDir: tmpDir, Logger: g.logger()})
	if err != nil {
		return err
	}
	if g.json {
		return g.printJSON(c, applyJSON{Archives: applied})
	}
	tw := tabwriter.NewWriter(g.out(c), 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tARCHIVE\tSIZE\tFROM BASE\tFROM DELTA\tSHA256")
	for _, a := range applied {
		from := progress.HumanBytes(a.FromDelta)
		if a.Unchanged {
			from = "unchanged"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Group, a.Path, progress.HumanBytes(a.Size), progress.HumanBytes(a.FromBase), from, a.SHA256)
	}
	tw.Flush()
	if len(applied) > 0 {
		fmt.Fprintf(g.out(c), "every archive matches delta.json; checksums in %s\n", filepath.Join(filepath.Dir(applied[0].Path), "SHA256SUMS"))
	}
	return nil
}

// applyJSON is apply's --json document.
type applyJSON struct {
	Archives []delta.Applied `json:"archives"`
}
