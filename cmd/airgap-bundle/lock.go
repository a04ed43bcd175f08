package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

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
when the lockfile is missing or differs from the spec.`,
		Example: `  airgap-bundle lock bundle.toml
  airgap-bundle lock --update bundle.toml                  # re-resolve everything
  airgap-bundle lock --update bundle.toml calico/node      # only calico/node
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
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			return runLock(c, g, f, args[0], args[1:])
		},
	}
	c.Flags().BoolVar(&f.update, "update", false, "re-resolve pinned images (all, or the IMAGEs named)")
	c.Flags().BoolVar(&f.check, "check", false, "exit 3 if the lockfile is missing or out of date; change nothing")
	c.Flags().StringVar(&f.lockPath, "lockfile", "", "lockfile path (default: beside the spec, with a .lock extension)")
	c.Flags().IntVarP(&f.jobs, "jobs", "j", 4, "images resolved in parallel")
	return c
}

func runLock(c *cobra.Command, g *globalFlags, f *lockFlags, specPath string, images []string) error {
	spec, err := config.Load(specPath)
	if err != nil {
		return err
	}
	lockPath := f.lockPath
	if lockPath == "" {
		lockPath = lockfile.Path(spec.Path)
	}
	old, err := lockfile.Read(lockPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	opts := bundler.LockOptions{Update: f.update, UpdateImages: images, Jobs: f.jobs, Logger: g.logger()}

	if f.check {
		if old == nil {
			return fmt.Errorf("%w: %s does not exist; run \"airgap-bundle lock %s\"", bundler.ErrLockOutOfDate, lockPath, specPath)
		}
		plan, err := bundler.NewPlan(spec, old, opts)
		if err != nil {
			return err
		}
		if drift := plan.Drift(); len(drift) > 0 {
			return fmt.Errorf("%w: %s differs from %s in %d places:\n  %s\nrun \"airgap-bundle lock %s\"",
				bundler.ErrLockOutOfDate, lockPath, specPath, len(drift), strings.Join(drift, "\n  "), specPath)
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
	changed, err := lockfile.Write(lockPath, data)
	if err != nil {
		return err
	}
	w := g.out(c)
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

// lazyResolver sets up registry access only when an image needs it, so a
// lock with nothing to resolve reads no credentials and calls no registry.
type lazyResolver struct {
	spec *config.Spec
	opts registry.Options
	once sync.Once
	env  *registry.Env
	err  error
}

func (l *lazyResolver) Resolve(ctx context.Context, ref config.Reference, want config.PlatformSet, index string) (*lockfile.Image, error) {
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

func (l *lazyFetcher) Manifest(ctx context.Context, ref config.Reference, top, instance digest.Digest) ([]byte, error) {
	f, err := l.get()
	if err != nil {
		return nil, err
	}
	return f.Manifest(ctx, ref, top, instance)
}

func (l *lazyFetcher) Blob(ctx context.Context, ref config.Reference, top, d digest.Digest, size int64) (io.ReadCloser, error) {
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
