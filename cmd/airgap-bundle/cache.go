package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/bundler"
	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

func newCacheCmd(g *globalFlags) *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:   "cache",
		Short: "Show how big the blob cache is, and prune it",
		Long: `The blob cache (--cache-dir, default $XDG_CACHE_HOME/airgap-bundle) keeps
every verified blob a build fetched, so the next build downloads nothing
twice. It only grows: "cache du" says how big it is and what it holds,
"cache prune" removes what no kept lockfile uses.`,
	}
	c.PersistentFlags().StringVar(&dir, "cache-dir", "", "blob cache (default: $XDG_CACHE_HOME/airgap-bundle)")
	resolve := func() (string, error) {
		if dir != "" {
			return dir, nil
		}
		d, err := cache.DefaultDir()
		if err != nil {
			return "", fmt.Errorf("no cache directory: %w (use --cache-dir)", err)
		}
		return d, nil
	}

	du := &cobra.Command{
		Use:   "du [SPEC|LOCK...]",
		Short: "How big the cache is, by kind, and what the given lockfiles use of it",
		Example: `  airgap-bundle cache du
  airgap-bundle cache du bundle.toml other/bundle.lock`,
		RunE: func(c *cobra.Command, args []string) error {
			d, err := resolve()
			if err != nil {
				return err
			}
			u, err := cache.DiskUsage(d)
			if err != nil {
				return err
			}
			doc := cacheDUJSON{Usage: u}
			for _, a := range args {
				l, err := readKeep(a)
				if err != nil {
					return err
				}
				refs, _ := bundler.CacheReferences(d, []*lockfile.Lock{l})
				doc.Lockfiles = append(doc.Lockfiles, cacheUseJSON{Lockfile: a, Bytes: usedBytes(d, refs)})
			}
			if g.json {
				return g.printJSON(c, doc)
			}
			out := g.out(c)
			fmt.Fprintf(out, "%s: %s\n", d, progress.HumanBytes(u.Total))
			fmt.Fprintf(out, "  blobs     %6d  %s\n  partials  %6d  %s (downloads cut short, kept to resume)\n  unpacked  %6d  %s (serve's decompressed copies)\n",
				u.Blobs.Files, progress.HumanBytes(u.Blobs.Bytes), u.Partials.Files, progress.HumanBytes(u.Partials.Bytes), u.Unpacked.Files, progress.HumanBytes(u.Unpacked.Bytes))
			for _, l := range doc.Lockfiles {
				fmt.Fprintf(out, "  used by %s: %s\n", l.Lockfile, progress.HumanBytes(l.Bytes))
			}
			return nil
		},
	}

	var keep []string
	var olderThan time.Duration
	var dryRun bool
	prune := &cobra.Command{
		Use:   "prune (--keep SPEC|LOCK... | --older-than AGE)",
		Short: "Remove the blobs no kept lockfile uses (and old partial downloads and unpacked copies)",
		Long: `prune removes every blob of the cache that no lockfile given with --keep
uses (a spec stands for the lockfile beside it), with --older-than only
those written longer ago; partial downloads no run is resuming and serve's
decompressed copies go too (with --older-than, the old ones). A running
build, serve or push holds the cache: prune then refuses (exit 1) rather
than remove a blob from under it.`,
		Example: `  airgap-bundle cache prune --keep bundle.toml --keep ../other/bundle.lock
  airgap-bundle cache prune --older-than 720h --dry-run`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			if len(keep) == 0 && olderThan <= 0 {
				return usageError{errors.New("cache prune: give --keep SPEC|LOCK (what to keep) or --older-than AGE")}
			}
			d, err := resolve()
			if err != nil {
				return err
			}
			opts := cache.PruneOptions{OlderThan: olderThan, DryRun: dryRun}
			var missing []digest.Digest
			if len(keep) > 0 {
				var locks []*lockfile.Lock
				for _, k := range keep {
					l, err := readKeep(k)
					if err != nil {
						return err
					}
					locks = append(locks, l)
				}
				var refs map[digest.Digest]bool
				refs, missing = bundler.CacheReferences(d, locks)
				opts.Keep = func(dg digest.Digest) bool { return refs[dg] }
			}
			p, err := cache.Prune(d, opts)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(c, p)
			}
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			fmt.Fprintf(g.out(c), "%s: %s %d blobs (%s), %d partial downloads (%s), %d unpacked copies (%s); kept %d blobs (%s)\n", d, verb,
				p.Blobs.Files, progress.HumanBytes(p.Blobs.Bytes), p.Partials.Files, progress.HumanBytes(p.Partials.Bytes),
				p.Unpacked.Files, progress.HumanBytes(p.Unpacked.Bytes), p.Kept.Files, progress.HumanBytes(p.Kept.Bytes))
			if len(missing) > 0 {
				fmt.Fprintf(c.ErrOrStderr(), "warning: %d manifests the kept lockfiles pin are not in the cache: their layers could not be told apart and were not kept (the next build fetches them again)\n", len(missing))
			}
			return nil
		},
	}
	prune.Flags().StringArrayVar(&keep, "keep", nil, "keep what this spec's lockfile (or this lockfile) uses (repeatable)")
	prune.Flags().DurationVar(&olderThan, "older-than", 0, "remove only what was written longer ago (e.g. 720h)")
	prune.Flags().BoolVar(&dryRun, "dry-run", false, "remove nothing; say what would go")
	c.AddCommand(du, prune)
	return c
}

// readKeep reads a lockfile, or the lockfile beside a spec.
func readKeep(p string) (*lockfile.Lock, error) {
	if strings.HasSuffix(p, ".toml") {
		p = lockfile.Path(p)
	}
	l, err := lockfile.Read(p)
	if err != nil {
		return nil, usageError{fmt.Errorf("cache: %s: %w", p, err)}
	}
	return l, nil
}

// usedBytes adds up the cached blobs among refs.
func usedBytes(dir string, refs map[digest.Digest]bool) int64 {
	var n int64
	for d := range refs {
		if fi, err := os.Stat(filepath.Join(dir, "blobs", "sha256", d.Encoded())); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// cacheDUJSON is cache du's --json document.
type cacheDUJSON struct {
	cache.Usage
	Lockfiles []cacheUseJSON `json:"lockfiles,omitempty"`
}

type cacheUseJSON struct {
	Lockfile string `json:"lockfile"`
	Bytes    int64  `json:"bytes"` // of the cached blobs it uses
}
