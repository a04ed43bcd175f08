package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	pushpkg "github.com/airgap-bundle/airgap-bundle/push"
)

type inventoryFlags struct {
	out        string
	spec       string
	lockfile   string
	registries string
	perHost    bool
	insecure   bool
	jobs       int
	hash       bool
}

func newInventoryCmd(g *globalFlags) *cobra.Command {
	f := &inventoryFlags{}
	c := &cobra.Command{
		Use:   "inventory DIR|REGISTRY[/PREFIX] (-o have.json | --json)",
		Short: "List the blobs a site holds, for build --since have.json",
		Long: `inventory lists the blob digests (layers, configs, manifests) a site
already holds, as a JSON file (schemas/inventory.schema.json) that
build --since takes as BASE: the delta then leaves out exactly those. An
argument that exists on disk is DIR; anything else is a REGISTRY.

DIR is a directory of archives (any compression; or one archive): every
blob of every archive, each with the archive's name. A .tar is listed by
its tar headers alone, so that tens of gigabytes list in seconds: apply
hashes every BASE blob it copies, so a damaged one fails the apply, naming
it, and never makes a wrong archive. --hash reads and hashes every blob
and leaves damaged ones out. Compressed archives are always hashed (they
are read whole anyway).

REGISTRY is a registry host[:port], with the path prefix push --to was
given: the repositories of the images a lockfile pins (--lockfile, or the
lockfile beside --spec), named as push names them (--to-per-host as
push's). Each pinned manifest is fetched by digest and checked, each index
HEADed, and each config and layer they list HEADed; an image whose
manifest is absent is named and contributes nothing. Requests run -j at a
time under the global --retries and timeouts. TLS settings and credentials
come from --registries (a bundle spec, or a file with only
[registries."HOST"] tables, as push --spec), else from --spec's file, else
from the standard auth files; --insecure as push's.`,
		Example: `  airgap-bundle inventory /srv/airgap -o have.json
  airgap-bundle inventory registry.internal:5000 --lockfile bundle.lock --registries registries.toml -o have.json
  airgap-bundle inventory registry.internal/mirror --spec bundle.toml --json > have.json`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error { return runInventory(c, g, f, args[0]) },
	}
	c.Flags().StringVarP(&f.out, "output", "o", "", "write the inventory to this file (atomically)")
	c.Flags().StringVar(&f.lockfile, "lockfile", "", "REGISTRY: the lockfile whose images to look for")
	c.Flags().StringVar(&f.spec, "spec", "", "REGISTRY: the spec whose lockfile (beside it) names the images; its registries table gives TLS and credentials unless --registries is given")
	c.Flags().StringVar(&f.registries, "registries", "", "REGISTRY: take TLS settings and credentials from this file's registries table (a bundle spec, or a file with only [registries.\"HOST\"] tables)")
	c.Flags().BoolVar(&f.perHost, "to-per-host", false, "REGISTRY: the images were pushed with --to-per-host (TO/docker.io/rancher/...)")
	c.Flags().BoolVar(&f.insecure, "insecure", false, "REGISTRY: allow plain HTTP or unverified TLS (as insecure = true in a spec)")
	c.Flags().IntVarP(&f.jobs, "jobs", "j", pushpkg.DefaultJobs, "REGISTRY: requests in flight")
	c.Flags().BoolVar(&f.hash, "hash", false, "DIR: read and hash every blob of .tar archives too, leaving damaged ones out")
	return c
}

// inventorySummary is what the human summary says; --json prints the
// inventory itself instead.
type inventorySummary struct {
	inv      *delta.Inventory
	archives []delta.ArchiveListing
	reg      *pushpkg.InventoryResult
}

func runInventory(c *cobra.Command, g *globalFlags, f *inventoryFlags, arg string) error {
	if f.out == "" && !g.json {
		return usageError{errors.New("inventory: give -o FILE to write the inventory, or --json to print it")}
	}
	if f.jobs < 1 {
		return usageError{fmt.Errorf("inventory: --jobs %d: want at least 1", f.jobs)}
	}
	var s inventorySummary
	var err error
	if _, statErr := os.Stat(arg); statErr == nil {
		s, err = inventoryDir(c, g, f, arg)
	} else {
		s, err = inventoryRegistry(c, g, f, arg, statErr)
	}
	if err != nil {
		return err
	}
	doc, err := s.inv.Encode()
	if err != nil {
		return err
	}
	if f.out != "" {
		if err := atomicfile.WriteFile(f.out, doc, 0o644); err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
	}
	if g.json {
		_, err := c.OutOrStdout().Write(doc)
		return err
	}
	printInventory(g, c, f, s)
	return nil
}

func inventoryDir(c *cobra.Command, g *globalFlags, f *inventoryFlags, dir string) (inventorySummary, error) {
	if f.spec != "" || f.lockfile != "" || f.registries != "" || f.perHost || f.insecure {
		return inventorySummary{}, usageError{fmt.Errorf("inventory: %s is a directory: --spec, --lockfile, --registries, --to-per-host and --insecure go with a registry", dir)}
	}
	inv, archives, err := delta.InventoryDir(c.Context(), dir, delta.DirOptions{Hash: f.hash, Logger: g.logger()})
	switch {
	case errors.Is(err, archive.ErrNoArchive):
		return inventorySummary{}, usageError{fmt.Errorf("inventory: %w", err)}
	case err != nil:
		return inventorySummary{}, fmt.Errorf("inventory: %w", err)
	}
	return inventorySummary{inv: inv, archives: archives}, nil
}

func inventoryRegistry(c *cobra.Command, g *globalFlags, f *inventoryFlags, arg string, statErr error) (inventorySummary, error) {
	ctx := c.Context()
	target, err := pushpkg.ParseTarget(arg)
	if err != nil {
		return inventorySummary{}, usageError{fmt.Errorf("inventory: %s is neither a directory (%v) nor a registry: %w", arg, statErr, err)}
	}
	if f.hash {
		return inventorySummary{}, usageError{errors.New("inventory: --hash goes with a directory of archives")}
	}
	lockPath := f.lockfile
	switch {
	case (f.spec == "") == (f.lockfile == ""):
		return inventorySummary{}, usageError{fmt.Errorf("inventory %s: give the images to look for: --lockfile LOCK or --spec SPEC (if %s is meant as a directory: %v)", arg, arg, statErr)}
	case f.spec != "":
		lockPath = lockfile.Path(f.spec)
	}
	lock, err := lockfile.Read(lockPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return inventorySummary{}, usageError{fmt.Errorf("inventory: %w (airgap-bundle lock writes it)", err)}
		}
		return inventorySummary{}, err
	}
	var spec *config.Spec
	if creds := f.registries; creds != "" || f.spec != "" {
		if creds == "" {
			creds = f.spec
		}
		if spec, err = config.LoadRegistries(ctx, creds); err != nil {
			return inventorySummary{}, err
		}
	}
	res, err := pushpkg.Inventory(ctx, lock, pushpkg.InventoryOptions{
		Target:   target,
		PerHost:  f.perHost,
		Jobs:     f.jobs,
		Spec:     spec,
		Insecure: f.insecure,
		Registry: g.registryOptions(),
	})
	if err != nil {
		return inventorySummary{}, err
	}
	return inventorySummary{inv: res.Inventory, reg: res}, nil
}

func printInventory(g *globalFlags, c *cobra.Command, f *inventoryFlags, s inventorySummary) {
	w := g.out(c)
	var total int64
	for _, b := range s.inv.Blobs {
		total += b.Size
	}
	if s.archives != nil {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ARCHIVE\tBLOBS\tBYTES\tCHECKED")
		for _, a := range s.archives {
			checked := "tar headers"
			switch {
			case a.NoBlobs:
				checked = "no blobs/ (a Docker archive): nothing listed"
			case a.Hashed && len(a.Damaged) > 0:
				checked = fmt.Sprintf("hashed; %d damaged, left out", len(a.Damaged))
			case a.Hashed:
				checked = "hashed"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", a.Path, a.Blobs, progress.HumanBytes(a.Bytes), checked)
		}
		tw.Flush()
	}
	if r := s.reg; r != nil {
		for _, a := range r.Absent {
			fmt.Fprintf(w, "absent: %s\n", a)
		}
		fmt.Fprintf(w, "%s holds %d of the %d pinned manifests and indexes looked for\n", s.inv.Source, r.Manifests-len(r.Absent), r.Manifests)
	}
	fmt.Fprintf(w, "%d blobs (%s) listed", len(s.inv.Blobs), progress.HumanBytes(total))
	if f.out != "" {
		fmt.Fprintf(w, "; wrote %s (build --since %s leaves them out)", f.out, f.out)
	}
	fmt.Fprintln(w)
}
