package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/bundler"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
	"github.com/airgap-bundle/airgap-bundle/resolve"
)

type lockFlags struct {
	update   bool
	check    bool
	dryRun   bool
	lockPath string
	jobs     int
}

func newLockCmd(g *globalFlags) *cobra.Command {
	f := &lockFlags{}
	c := &cobra.Command{
		Use:   "lock SPEC [IMAGE...]",
		Short: "Resolve every image of a spec to registry digests and write the lockfile",
		Long: `lock writes SPEC's lockfile (bundle.toml -> bundle.lock, beside it). Images
already pinned are not looked up again: on an unchanged spec lock makes no
registry calls and leaves the file byte-identical. New images are resolved,
removed ones dropped.

--update re-resolves pinned images: all, or only the IMAGEs named (a name
without tag matches every tag of it). --check changes nothing and exits 3
when the lockfile is missing or differs from the spec. --dry-run resolves as
usual but writes nothing, and prints how the lockfile would change, as
"airgap-bundle diff" does.`,
		Example: `  airgap-bundle lock bundle.toml
  airgap-bundle lock --update bundle.toml                  # re-resolve everything
  airgap-bundle lock --update bundle.toml calico/node      # only calico/node
  airgap-bundle lock --update --dry-run bundle.toml        # what would change?
  airgap-bundle lock --check bundle.toml                   # in CI`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("lock: give the spec file")}
			}
			if len(args) > 1 && !f.update {
				return usageError{errors.New("lock: IMAGE arguments go with --update")}
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
	c.Flags().IntVarP(&f.jobs, "jobs", "j", 4, "images resolved in parallel")
	return c
}

func runLock(c *cobra.Command, g *globalFlags, f *lockFlags, specPath string, images []string) error {
	spec, lockPath, old, err := loadSpecAndLock(specPath, f.lockPath)
	if err != nil {
		return err
	}
	opts := bundler.LockOptions{Update: f.update, UpdateImages: images, Jobs: f.jobs, Logger: g.logger(), Progress: g.progress()}
	defer opts.Progress.Wait()

	if f.check {
		if old == nil {
			if g.json {
				if err := g.printJSON(c, lockCheckJSON{Lockfile: lockPath, Drift: []driftJSON{}}); err != nil {
					return err
				}
			}
			return fmt.Errorf("%w: %s does not exist; run \"airgap-bundle lock %s\"", bundler.ErrLockOutOfDate, lockPath, specPath)
		}
		plan, err := bundler.NewPlan(spec, old, opts)
		if err != nil {
			return err
		}
		drift := plan.Drift()
		if g.json {
			if err := g.printJSON(c, lockCheckJSON{Lockfile: lockPath, Exists: true, UpToDate: len(drift) == 0, Drift: driftEntries(plan)}); err != nil {
				return err
			}
		}
		if len(drift) > 0 {
			return fmt.Errorf("%w: %s differs from %s (%s):\n  %s\nrun \"airgap-bundle lock %s\"",
				bundler.ErrLockOutOfDate, lockPath, specPath, count(len(drift), "difference", "differences"), strings.Join(drift, "\n  "), specPath)
		}
		fmt.Fprintf(g.out(c), "%s is up to date\n", lockPath)
		return nil
	}

	r := &lazyResolver{spec: spec, opts: registry.Options{UserAgent: userAgent(), Logger: g.logger()}}
	defer r.Close()
	res, err := bundler.Lock(c.Context(), spec, old, r, opts)
	if err != nil {
		return err
	}
	data, err := res.Lock.Encode(filepath.Base(spec.Path))
	if err != nil {
		return err
	}
	var changed bool
	if f.dryRun {
		cur, err := os.ReadFile(lockPath)
		changed = err != nil || !bytes.Equal(cur, data)
	} else if changed, err = lockfile.Write(lockPath, data); err != nil {
		return err
	}
	diff := lockfile.Compare(old, res.Lock)
	if g.json {
		return g.printJSON(c, newLockJSON(lockPath, f.dryRun, changed, old, res, diff))
	}
	w := g.out(c)
	if f.dryRun {
		printDiff(w, diff)
		state := "would be unchanged"
		if changed {
			state = "would be written"
		}
		fmt.Fprintf(w, "dry run: %s %s: %d resolved, %d kept, %d removed\n", lockPath, state, len(res.Resolved), res.Reused, len(res.Removed))
		return nil
	}
	for _, s := range res.Resolved {
		fmt.Fprintf(w, "resolved  %s\n", s)
	}
	for _, s := range res.Removed {
		fmt.Fprintf(w, "removed   %s\n", s)
	}
	state := "unchanged"
	if changed {
		state = "written"
	}
	fmt.Fprintf(w, "%s %s: %d resolved, %d kept, %d removed\n", lockPath, state, len(res.Resolved), res.Reused, len(res.Removed))
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
		group, ref, _ := strings.Cut(r, ": ")
		out = append(out, driftJSON{Group: group, Image: ref, Reason: "in the lockfile but not in the spec"})
	}
	return out
}

func newLockJSON(path string, dryRun, changed bool, old *lockfile.Lock, res *bundler.LockResult, diff *lockfile.Diff) lockJSON {
	j := lockJSON{Lockfile: path, DryRun: dryRun, Changed: changed, Written: changed && !dryRun,
		Resolved: []lockEntryJSON{}, Kept: []lockEntryJSON{}, Removed: []lockEntryJSON{}, Diff: diff}
	entry := func(l *lockfile.Lock, s string) lockEntryJSON {
		group, ref, _ := strings.Cut(s, ": ")
		e := lockEntryJSON{Group: group, Ref: ref}
		if l != nil {
			if lg := l.Group(group); lg != nil {
				if img := lg.Image(ref); img != nil {
					e.Digest = img.Digest
				}
			}
		}
		return e
	}
	resolved := map[string]bool{}
	for _, s := range res.Resolved {
		resolved[s] = true
		j.Resolved = append(j.Resolved, entry(res.Lock, s))
	}
	for _, lg := range res.Lock.Groups {
		for _, img := range lg.Images {
			if !resolved[lg.Name+": "+img.Ref] {
				j.Kept = append(j.Kept, lockEntryJSON{Group: lg.Name, Ref: img.Ref, Digest: img.Digest})
			}
		}
	}
	for _, s := range res.Removed {
		j.Removed = append(j.Removed, entry(old, s))
	}
	// In lockfile order, whatever the spec's.
	for _, list := range [][]lockEntryJSON{j.Resolved, j.Kept, j.Removed} {
		sort.Slice(list, func(a, b int) bool {
			if list[a].Group != list[b].Group {
				return list[a].Group < list[b].Group
			}
			return list[a].Ref < list[b].Ref
		})
	}
	return j
}

// lazyResolver sets up registry access only when an image needs it, so a
// lock with nothing to resolve reads no credentials and calls no registry.
type lazyResolver struct {
	spec *config.Spec
	opts registry.Options
	once sync.Once
	env  *registry.Env
	err  error
}

func (l *lazyResolver) Resolve(ctx context.Context, ref image.Reference, want image.PlatformSet, index image.IndexMode) (*lockfile.Image, error) {
	l.once.Do(func() { l.env, l.err = registry.New(l.spec, l.opts) })
	if l.err != nil {
		return nil, l.err
	}
	return (&resolve.Resolver{Sys: l.env.Sys}).Resolve(ctx, ref, want, index)
}

func (l *lazyResolver) Close() { l.env.Close() }

// lazyFetcher opens registry access only when the cache lacks something.
type lazyFetcher struct {
	open func() (*registry.Env, error)
	once sync.Once
	f    *bundler.RegistryFetcher
	err  error
}

func (l *lazyFetcher) get() (*bundler.RegistryFetcher, error) {
	l.once.Do(func() {
		env, err := l.open()
		if err != nil {
			l.err = err
			return
		}
		l.f = &bundler.RegistryFetcher{Sys: env.Sys}
	})
	return l.f, l.err
}

func (l *lazyFetcher) Manifest(ctx context.Context, ref image.Reference, top, instance digest.Digest) ([]byte, error) {
	f, err := l.get()
	if err != nil {
		return nil, err
	}
	return f.Manifest(ctx, ref, top, instance)
}

func (l *lazyFetcher) Blob(ctx context.Context, ref image.Reference, top, d digest.Digest, size int64) (io.ReadCloser, error) {
	f, err := l.get()
	if err != nil {
		return nil, err
	}
	return f.Blob(ctx, ref, top, d, size)
}

func (l *lazyFetcher) Close() error {
	if l.f != nil {
		return l.f.Close()
	}
	return nil
}

// count renders "1 difference", "3 differences".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
