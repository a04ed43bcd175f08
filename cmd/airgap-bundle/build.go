package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/bundler"
	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
)

type buildFlags struct {
	lockPath string
	output   string
	cacheDir string
	noCache  bool
	jobs     int
	locked   bool
	groups   []string
	since    string
	deltaDir string
	maxSize  string
}

func newBuildCmd(g *globalFlags) *cobra.Command {
	f := &buildFlags{}
	c := &cobra.Command{
		Use:   "build SPEC",
		Short: "Write one archive per group, from the lockfile (locking first when needed)",
		Long: `build writes one tarball per group of SPEC into the output directory
(output-dir in the spec, default "dist" beside it), plus SHA256SUMS.

Images come from the lockfile. If the lockfile is missing or out of date,
build first updates it as "lock" does; with --locked it refuses instead
(exit 3), so CI builds exactly what was reviewed. The lockfile is not
taken as proof of signatures: for every image the spec requires signatures
of, build fetches the signature manifests the lockfile records and checks
them with the spec's keys against the pinned manifests before anything is
written (exit 1, naming image, digest and key, when one does not verify).
Blobs are fetched once
into a verified cache and archives are written from it. Every archive is
written completely before any replaces the previous one; then all are put in
place together with SHA256SUMS, so a failed or interrupted build changes
nothing in the output directory. SOURCE_DATE_EPOCH sets the
mtime of archive entries (default 0): the same lockfile gives byte-identical
archives.

A group over its max-size (in the spec, or --max-size for this run) is
written as parts NAME.part-I-of-N.tar*, each a complete archive of whole
images that loads on its own (docs/spec.md#parts).

With --since BASE, build also writes a delta of the new archives against
BASE, what the site already has: a lockfile path, git:REV (the lockfile as
it was at that revision of its repository, e.g. git:v1.4.0), or an
inventory file (airgap-bundle inventory). The delta directory (--delta-dir,
default "delta" in the output directory) gets, for each group whose
archive changed, NAME.delta.tar* (the archive without the layers BASE
holds), delta.json, the new bundle.lock and SHA256SUMS: carry it across
and run "airgap-bundle apply" inside.`,
		Example: `  airgap-bundle build bundle.toml
  airgap-bundle build --since git:v1.4.0 bundle.toml
  airgap-bundle build --locked --output /srv/airgap bundle.toml
  airgap-bundle build --group calico bundle.toml`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error { return runBuild(c, g, f, args[0]) },
	}
	c.Flags().StringVar(&f.lockPath, "lockfile", "", "lockfile path (default: beside the spec, with a .lock extension)")
	c.Flags().StringVarP(&f.output, "output", "o", "", "output directory (default: the spec's output-dir)")
	c.Flags().StringVar(&f.cacheDir, "cache-dir", "", "blob cache (default: $XDG_CACHE_HOME/airgap-bundle)")
	c.Flags().BoolVar(&f.noCache, "no-cache", false, "no blob cache: big layers stream from the registry into the archive (one-shot CI builds; also cache = false in the spec)")
	c.Flags().IntVarP(&f.jobs, "jobs", "j", bundler.DefaultJobs, "parallel downloads (and images resolved in parallel when locking first)")
	c.Flags().BoolVar(&f.locked, "locked", false, "fail (exit 3) instead of updating a missing or stale lockfile")
	c.Flags().StringArrayVar(&f.groups, "group", nil, "build only this group (repeatable)")
	c.Flags().StringVar(&f.maxSize, "max-size", "", `largest archive file for every group, this run ("4GiB", "4.7GB", fat32, dvd, bd25): a larger group is written as parts`)
	c.Flags().StringVar(&f.since, "since", "", "also write a delta against BASE: a lockfile, git:REV, or an inventory file")
	c.Flags().StringVar(&f.deltaDir, "delta-dir", "", "where --since writes the delta (default: delta/ in the output directory)")
	return c
}

func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, usageError{fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a non-negative number of seconds", v)}
	}
	return time.Unix(n, 0).UTC(), nil
}

func runBuild(c *cobra.Command, g *globalFlags, f *buildFlags, specPath string) error {
	mtime, err := sourceDateEpoch()
	if err != nil {
		return err
	}
	spec, lockPath, lock, err := loadSpecAndLock(c.Context(), specPath, f.lockPath)
	if err != nil {
		return err
	}
	var maxSize int64
	if f.maxSize != "" {
		if maxSize, err = config.ParseSize(f.maxSize); err != nil {
			return usageError{fmt.Errorf("--max-size: %w", err)}
		}
	}
	var since *bundler.Since
	if f.since != "" {
		if len(f.groups) > 0 {
			return usageError{fmt.Errorf("--since builds every group: a delta stands for a whole version (leave out --group)")}
		}
		if since, err = loadSince(c.Context(), f.since, lockPath); err != nil {
			return err
		}
	} else if f.deltaDir != "" {
		return usageError{fmt.Errorf("--delta-dir goes with --since")}
	}
	noCache := f.noCache || spec.NoCache
	switch {
	case f.noCache && f.cacheDir != "":
		return usageError{fmt.Errorf("--no-cache and --cache-dir exclude each other")}
	case noCache && since != nil:
		return usageError{fmt.Errorf("--since writes every new layer twice (the full archive and the delta): it builds from a cache (leave out --no-cache, or set cache = true)")}
	}
	session := bundler.NewSession(spec, g.registryOptions())
	defer session.Close()
	dir := f.cacheDir
	if noCache {
		// The run's own store, for manifests, configs and small blobs,
		// beside the archives (their filesystem must hold them anyway),
		// gone when the run ends; big layers never land in it.
		if dir, err = bundler.NoCacheStore(bundler.OutputDir(spec, f.output)); err != nil {
			return fmt.Errorf("%w: output directory: %w", errdefs.ErrBuild, err)
		}
		defer os.RemoveAll(dir)
	} else if dir == "" {
		if dir, err = cache.DefaultDir(); err != nil {
			return fmt.Errorf("no cache directory: %w (use --cache-dir)", err)
		}
	}
	bc, err := cache.Open(dir)
	if err != nil {
		return err
	}
	defer bc.Close()
	session.KeepIn(bc)
	if len(f.groups) == 0 && !noCache {
		// Layers start downloading as their images are resolved. Not when
		// only some groups are built: lock resolves them all.
		session.Prefetch(f.jobs, g.logger())
	}

	policy := bundler.UpdateLock
	if f.locked {
		policy = bundler.RequireLocked
	}
	rep := g.progress()
	lopts := bundler.LockOptions{Jobs: f.jobs, Logger: g.logger(), Progress: rep}
	var charts bundler.ChartArchiver
	if bundler.HasCharts(spec) {
		cf := bundler.NewChartFetcher(spec, g.registryOptions(), bc)
		defer cf.Close()
		lopts.Charts, charts = cf, cf
	}
	lock, lockRes, err := bundler.EnsureLocked(c.Context(), spec, lockPath, lock, session, policy, lopts)
	rep.Wait()
	if err != nil {
		return err
	}
	if lockRes != nil {
		fmt.Fprintf(g.out(c), "%s updated: %d resolved, %d kept, %d removed\n", lockPath, len(lockRes.Resolved), len(lockRes.Kept), len(lockRes.Removed))
	}

	outDir := bundler.OutputDir(spec, f.output)
	rep = g.progress()
	bopts := bundler.BuildOptions{
		OutputDir: outDir, Jobs: f.jobs, ModTime: mtime, Groups: f.groups, Logger: g.logger(), Progress: rep, Policy: g.policy(), MaxSize: maxSize,
		Charts: charts, NoCache: noCache,
	}
	var results []bundler.ArchiveResult
	var dr *bundler.DeltaResult
	if since != nil {
		dopts := bundler.DeltaOptions{Dir: f.deltaDir, Since: since}
		if dopts.Dir == "" {
			dopts.Dir = filepath.Join(outDir, "delta")
		}
		if dopts.Lockfile, err = os.ReadFile(lockPath); err != nil {
			return err
		}
		results, dr, err = bundler.BuildDelta(c.Context(), spec, lock, bc, session, bopts, dopts)
	} else {
		results, err = bundler.Build(c.Context(), spec, lock, bc, session, bopts)
	}
	rep.Wait()
	if err != nil {
		return err
	}
	if g.json {
		j := buildJSON{Lockfile: lockPath, LockUpdated: lockRes != nil, OutputDir: outDir, Sums: filepath.Join(outDir, bundler.SumsFile), Archives: []archiveJSON{}}
		for _, r := range results {
			j.Archives = append(j.Archives, archiveJSON{Group: r.Group, Path: r.Path, Size: r.Size, SHA256: r.SHA256, Images: r.Images, Blobs: r.Blobs, Part: r.Part, Parts: r.Parts, Duplicated: r.Duplicated})
		}
		if dr != nil {
			j.Delta = &deltaJSON{Dir: dr.Dir, Bytes: dr.Bytes, FullBytes: dr.Full, Manifest: dr.Manifest}
		}
		return g.printJSON(c, j)
	}
	printSummary(g.out(c), results)
	if dr != nil {
		printDelta(g.out(c), dr)
	}
	if u, err := cache.DiskUsage(bc.Dir()); err == nil && u.Total > cacheWarnBytes && !noCache {
		fmt.Fprintf(c.ErrOrStderr(), "note: the cache %s holds %s; \"airgap-bundle cache prune --keep %s\" removes what this lockfile does not use\n", bc.Dir(), progress.HumanBytes(u.Total), specPath)
	}
	return nil
}

// cacheWarnBytes is the cache size past which build says how to prune it.
const cacheWarnBytes = 20 << 30

// deltaJSON is build --since's delta in --json.
type deltaJSON struct {
	Dir       string          `json:"dir"`
	Bytes     int64           `json:"bytes"`      // the delta directory's files
	FullBytes int64           `json:"full-bytes"` // the full archives they stand for
	Manifest  *delta.Manifest `json:"delta"`      // delta.json
}

// printDelta says what the delta carries, per group.
func printDelta(w io.Writer, dr *bundler.DeltaResult) {
	for _, a := range dr.Manifest.Archives {
		switch {
		case a.Unchanged:
			fmt.Fprintf(w, "delta: %s unchanged since BASE: nothing to carry\n", a.Name)
		default:
			var base int64
			for _, b := range a.FromBase {
				base += b.Size
			}
			fmt.Fprintf(w, "delta: %s -> %s, %s (%s of layers left to BASE)\n", a.Name, a.Delta.Name, progress.HumanBytes(a.Delta.Size), progress.HumanBytes(base))
		}
	}
	for _, g := range dr.Manifest.RemovedGroups {
		fmt.Fprintf(w, "delta: group %q removed since BASE\n", g)
	}
	fmt.Fprintf(w, "delta in %s: %s for %s of archives; inside: airgap-bundle apply %s --base DIR -o DIR\n", dr.Dir, progress.HumanBytes(dr.Bytes), progress.HumanBytes(dr.Full), dr.Dir)
}

// printSummary is build's closing table: one row per archive.
func printSummary(w io.Writer, results []bundler.ArchiveResult) {
	if len(results) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tIMAGES\tARCHIVE\tSIZE\tSHA256\tTIME")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", r.Group, r.Images, r.Path, progress.HumanBytes(r.Size), r.SHA256, r.Duration.Round(time.Millisecond))
	}
	tw.Flush()
	// The overhead of parts: blobs written in more than one part.
	type total struct{ size, dup int64 }
	parted := map[string]*total{}
	var order []string
	for _, r := range results {
		if r.Parts == 0 {
			continue
		}
		if parted[r.Group] == nil {
			parted[r.Group] = &total{}
			order = append(order, r.Group)
		}
		parted[r.Group].size += r.Size
		parted[r.Group].dup += r.Duplicated
	}
	for _, g := range order {
		t := parted[g]
		fmt.Fprintf(w, "group %q is over its max-size: written as parts, each a complete archive; %s of blobs shared across parts is written in each (%.1f%% over one archive)\n",
			g, progress.HumanBytes(t.dup), 100*float64(t.dup)/float64(max(1, t.size-t.dup)))
	}
	fmt.Fprintf(w, "checksums in %s\n", filepath.Join(filepath.Dir(results[0].Path), bundler.SumsFile))
}

// buildJSON is the --json document of build.
type buildJSON struct {
	Lockfile    string        `json:"lockfile"`
	LockUpdated bool          `json:"lock-updated"` // build wrote the lockfile first (never with --locked)
	OutputDir   string        `json:"output-dir"`
	Sums        string        `json:"sha256sums"`      // the SHA256SUMS file, all archives in the directory
	Archives    []archiveJSON `json:"archives"`        // the groups built, in spec order
	Delta       *deltaJSON    `json:"delta,omitempty"` // with --since
}

// archiveJSON is one archive written.
type archiveJSON struct {
	Group  string `json:"group"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`   // bytes
	SHA256 string `json:"sha256"` // hex, as in SHA256SUMS
	Images int    `json:"images"` // distinct images (one image under two names counts once)
	Blobs  int    `json:"blobs"`  // configs and layers
	// Part and Parts number a part of a group over its max-size;
	// Duplicated is the bytes of blobs an earlier part holds too.
	Part       int   `json:"part,omitempty"`
	Parts      int   `json:"parts,omitempty"`
	Duplicated int64 `json:"duplicated-bytes,omitempty"`
}
