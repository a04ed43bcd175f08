package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/bundler"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

type lockFlags struct {
	update   bool
	check    bool
	dryRun   bool
	lockPath string
	jobs     int
	cacheDir string
}

func newLockCmd(g *globalFlags) *cobra.Command {
	f := &lockFlags{}
	c := &cobra.Command{
		Use:   "lock SPEC [IMAGE|CHART...]",
		Short: "Resolve every image of a spec to registry digests and write the lockfile",
		Long: `lock writes SPEC's lockfile (bundle.toml -> bundle.lock, beside it). Images
already pinned are not looked up again: on an unchanged spec lock makes no
registry calls and leaves the file byte-identical. New images are resolved,
removed ones dropped.

--update re-resolves pinned images and Helm charts: all, or only the IMAGEs
named (a name without tag matches every tag of it) and the CHARTs named
(by name: a newer version its constraint allows is taken, and rendered). --check changes nothing, asks no
registry, and exits 3 when the lockfile is missing or differs from the spec
(signature records included); it does not verify the signatures the
lockfile records: build and verify do. --dry-run resolves as
usual but writes nothing, and prints how the lockfile would change, as
"airgap-bundle diff" does.`,
		Example: `  airgap-bundle lock bundle.toml
  airgap-bundle lock --update bundle.toml                  # re-resolve everything
  airgap-bundle lock --update bundle.toml calico/node      # only calico/node
  airgap-bundle lock --update bundle.toml podinfo          # only the chart podinfo
  airgap-bundle lock --update --dry-run bundle.toml        # what would change?
  airgap-bundle lock --check bundle.toml                   # in CI`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("lock: give the spec file")}
			}
			if len(args) > 1 && !f.update {
				return usageError{errors.New("lock: IMAGE and CHART arguments go with --update")}
			}
			if f.check && f.update {
				return usageError{errors.New("lock: --check and --update exclude each other")}
			}
			if f.check && f.dryRun {
				return usageError{errors.New("lock: --check and --dry-run exclude each other (--check writes nothing)")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			return runLock(c, g, f, args[0], args[1:])
		},
	}
	c.Flags().BoolVar(&f.update, "update", false, "re-resolve pinned images (all, or the IMAGEs named)")
	c.Flags().BoolVar(&f.check, "check", false, "exit 3 if the lockfile is missing or out of date; change nothing")
	c.Flags().BoolVar(&f.dryRun, "dry-run", false, "resolve as usual but write nothing; print how the lockfile would change")
	c.Flags().StringVar(&f.lockPath, "lockfile", "", "lockfile path (default: beside the spec, with a .lock extension)")
	c.Flags().IntVarP(&f.jobs, "jobs", "j", bundler.DefaultJobs, "images resolved in parallel")
	c.Flags().StringVar(&f.cacheDir, "cache-dir", "", "where charts are kept (default: $XDG_CACHE_HOME/airgap-bundle)")
	return c
}

func runLock(c *cobra.Command, g *globalFlags, f *lockFlags, specPath string, images []string) error {
	spec, lockPath, old, err := loadSpecAndLock(c.Context(), specPath, f.lockPath)
	if err != nil {
		return err
	}
	opts := bundler.LockOptions{Update: f.update, UpdateImages: images, Jobs: f.jobs, Logger: g.logger(), Progress: g.progress()}
	defer opts.Progress.Wait()

	if f.check {
		checkErr := bundler.CheckLock(spec, lockPath, old)
		if g.json {
			j := lockCheckJSON{Lockfile: lockPath, Exists: old != nil, UpToDate: checkErr == nil, Drift: []driftJSON{}}
			if old != nil {
				plan, err := bundler.NewPlan(spec, old, opts)
				if err != nil {
					return err
				}
				j.Drift = driftEntries(plan)
			}
			if err := g.printJSON(c, j); err != nil {
				return err
			}
		}
		if checkErr != nil {
			return checkErr
		}
		if len(spec.SigstoreHosts()) > 0 {
			// --check reads no registry: "up to date" says the records
			// answer the spec, not that the signatures they name verify.
			fmt.Fprintf(g.out(c), "%s is up to date (the signatures it records are verified by build and verify, not by --check)\n", lockPath)
			return nil
		}
		fmt.Fprintf(g.out(c), "%s is up to date\n", lockPath)
		return nil
	}

	session := bundler.NewSession(spec, g.registryOptions())
	defer session.Close()
	if bundler.HasCharts(spec) {
		// Charts are fetched into the blob cache: build carries them
		// from there without fetching them again.
		bc, err := openCache(f.cacheDir)
		if err != nil {
			return err
		}
		defer bc.Close()
		cf := bundler.NewChartFetcher(spec, g.registryOptions(), bc)
		defer cf.Close()
		opts.Charts = cf
	}
	res, err := bundler.Lock(c.Context(), spec, old, session, opts)
	if err != nil {
		return err
	}
	var changed bool
	if f.dryRun {
		data, err := res.Lock.Encode(filepath.Base(spec.Path))
		if err != nil {
			return err
		}
		cur, err := os.ReadFile(lockPath)
		changed = err != nil || !bytes.Equal(cur, data)
	} else if changed, err = bundler.WriteLock(spec, lockPath, res.Lock); err != nil {
		return err
	}
	diff := lockfile.Compare(old, res.Lock)
	if g.json {
		return g.printJSON(c, newLockJSON(lockPath, f.dryRun, changed, res, diff))
	}
	w := g.out(c)
	if f.dryRun {
		printDiff(w, diff)
		state := "would be unchanged"
		if changed {
			state = "would be written"
		}
		fmt.Fprintf(w, "dry run: %s %s: %d resolved, %d kept, %d removed\n", lockPath, state, len(res.Resolved), len(res.Kept), len(res.Removed))
		return nil
	}
	for _, e := range res.Resolved {
		fmt.Fprintf(w, "resolved  %s: %s%s\n", e.Group, e.Ref, trustNote(res.Lock, e))
	}
	for _, e := range res.Removed {
		fmt.Fprintf(w, "removed   %s: %s\n", e.Group, e.Ref)
	}
	state := "unchanged"
	if changed {
		state = "written"
	}
	fmt.Fprintf(w, "%s %s: %d resolved, %d kept, %d removed\n", lockPath, state, len(res.Resolved), len(res.Kept), len(res.Removed))
	return nil
}

// lockJSON is the --json document of lock (and lock --dry-run).
type lockJSON struct {
	Lockfile string `json:"lockfile"`
	DryRun   bool   `json:"dry-run"`
	// Changed: the lockfile's bytes differ (or, with --dry-run, would
	// differ) from what was there; Written: this run wrote it.
	Changed  bool            `json:"changed"`
	Written  bool            `json:"written"`
	Resolved []lockEntryJSON `json:"resolved"` // looked up in a registry
	Kept     []lockEntryJSON `json:"kept"`     // pins taken from the old lockfile
	Removed  []lockEntryJSON `json:"removed"`  // no longer in the spec
	Diff     *lockfile.Diff  `json:"diff"`     // old lockfile -> new, as "airgap-bundle diff --json"
}

// lockEntryJSON is one image of one group.
type lockEntryJSON struct {
	Group  string `json:"group"`
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// lockCheckJSON is the --json document of lock --check.
type lockCheckJSON struct {
	Lockfile string      `json:"lockfile"`
	Exists   bool        `json:"exists"`
	UpToDate bool        `json:"up-to-date"`
	Drift    []driftJSON `json:"drift"`
}

// driftJSON is one difference between a spec and its lockfile.
type driftJSON struct {
	Group    string `json:"group"`
	Image    string `json:"image"`              // as written in the spec, or the lockfile's ref
	Reason   string `json:"reason"`             // e.g. "not in the lockfile", "in the lockfile but not in the spec"
	Position string `json:"position,omitempty"` // file:line in the spec
}

func driftEntries(p *bundler.Plan) []driftJSON {
	out := []driftJSON{}
	for _, w := range p.Resolve {
		out = append(out, driftJSON{Group: w.Group.Name, Image: w.Image.Ref.Written, Reason: w.Reason, Position: w.Image.Pos.String()})
	}
	for _, r := range p.Removed {
		out = append(out, driftJSON{Group: r.Group, Image: r.Ref, Reason: "in the lockfile but not in the spec"})
	}
	return out
}

func newLockJSON(path string, dryRun, changed bool, res *bundler.LockResult, diff *lockfile.Diff) lockJSON {
	j := lockJSON{Lockfile: path, DryRun: dryRun, Changed: changed, Written: changed && !dryRun, Diff: diff}
	entries := func(list []bundler.Entry) []lockEntryJSON {
		out := make([]lockEntryJSON, len(list))
		for i, e := range list {
			out[i] = lockEntryJSON(e)
		}
		// In lockfile order, whatever the spec's.
		sort.Slice(out, func(a, b int) bool {
			if out[a].Group != out[b].Group {
				return out[a].Group < out[b].Group
			}
			return out[a].Ref < out[b].Ref
		})
		return out
	}
	j.Resolved, j.Kept, j.Removed = entries(res.Resolved), entries(res.Kept), entries(res.Removed)
	return j
}

// count renders "1 difference", "3 differences".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// trustNote says, for a resolved image, who signed what lock verified and
// how many signatures, SBOMs and attestations it carries; "" for neither.
func trustNote(l *lockfile.Lock, e bundler.Entry) string {
	g := l.Group(e.Group)
	if g == nil {
		return ""
	}
	img := g.Image(e.Ref)
	if img == nil {
		return ""
	}
	var parts []string
	if by := img.SignedBy(); len(by) > 0 {
		parts = append(parts, "signed by "+strings.Join(by, ", "))
	}
	if n := len(img.Artifacts); n > 0 {
		parts = append(parts, count(n, "artifact", "artifacts")+" carried")
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
