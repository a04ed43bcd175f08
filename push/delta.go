package push

// Pushing a delta (push DELTA_DIR --to REG): a delta archive leaves out
// the layers BASE holds (delta.json's from-base), so it can be pushed only
// where BASE was pushed before. Before anything is sent, every blob it
// leaves out is looked for, for each image's target repository: in another
// archive of this push (pushed from there like any blob), in the
// repository itself (HEAD: nothing to send), else in another repository of
// the same registry (mounted from there: a manifest PUT needs its blobs in
// its own repository). Every blob found nowhere is a problem, all of them
// listed at once with the images that need them, and nothing is pushed.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// baseBlob is where one blob a delta leaves out comes from, for one unit.
type baseBlob struct {
	// src is set when another archive of this push holds the blob: it is
	// pushed from there like any other blob.
	src blobSource
	// present says the unit's repository holds it already.
	present bool
	// from is another repository of the target holding it: it is mounted
	// from there.
	from *name.Repository
}

// probeKey marks the HEADs of resolveFromBase, which the observer does not
// count as blobs found "already there" (it counts those it finds in the
// unit's own repository itself, once each).
type probeKey struct{}

// headResult is one blob HEAD in one repository, made once per run.
type headResult struct {
	once sync.Once
	ok   bool
	err  error
}

// missingBlob is a blob a delta leaves out that the target lacks, with
// the images (and their target repositories) that need it.
type missingBlob struct {
	c       *client
	d       image.Descriptor
	archive string
	where   string
	needers []string
	looked  int
}

// resolveFromBase decides, for each unit of a delta archive, where each
// blob the delta leaves out comes from (see baseBlob), and adds to
// problems every blob found nowhere.
func resolveFromBase(ctx context.Context, clients []*client, units []*unit, sources []*source, opts Options, policy registry.Policy, problems *[]error) error {
	var need []*unit
	for _, u := range units {
		if len(u.img.fromBase) > 0 {
			need = append(need, u)
		}
	}
	if len(need) == 0 {
		return nil
	}
	union := sourceBlobs(sources)
	candidates := candidateRepos(clients, units, sources, opts)

	var (
		heads   sync.Map // host|repo@digest -> *headResult
		mu      sync.Mutex
		missing = map[string]*missingBlob{} // target@digest
		counted = map[string]bool{}         // host|repo@digest found there
	)
	head := func(gctx context.Context, c *client, repo name.Repository, d digest.Digest) (bool, error) {
		v, _ := heads.LoadOrStore(c.target.Host+"|"+repo.String()+"@"+d.String(), &headResult{})
		h := v.(*headResult)
		h.once.Do(func() { h.ok, h.err = c.hasBlob(gctx, policy, repo, d) })
		return h.ok, h.err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Jobs)
	for _, u := range need {
		u.fromBase = map[digest.Digest]baseBlob{}
		for _, d := range u.img.fromBase {
			if s, ok := union[d.Digest]; ok && s.size == d.Size {
				mu.Lock() // the unit's earlier blobs are being looked up
				u.fromBase[d.Digest] = baseBlob{src: s}
				mu.Unlock()
				continue
			}
			g.Go(func() error {
				ok, err := head(gctx, u.c, u.repo, d.Digest)
				if err != nil {
					return fmt.Errorf("%w: blob %s in %s: %w", errdefs.ErrRegistry, d.Digest, u.repo, u.c.reach(err))
				}
				b := baseBlob{present: ok}
				looked := 0
				for _, r := range candidates[u.c] {
					if ok {
						break
					}
					if r.String() == u.repo.String() {
						continue
					}
					looked++
					found, err := head(gctx, u.c, r, d.Digest)
					if err != nil && !registry.IsAuth(err) {
						return fmt.Errorf("%w: blob %s in %s: %w", errdefs.ErrRegistry, d.Digest, r, u.c.reach(err))
					}
					// A repository this run may not read is one it could
					// not mount from either: looked for elsewhere.
					if found && err == nil {
						ok, b.from = true, &r
					}
				}
				mu.Lock()
				defer mu.Unlock()
				u.fromBase[d.Digest] = b
				if k := u.c.target.Host + "|" + u.repo.String() + "@" + d.Digest.String(); ok && !counted[k] {
					counted[k] = true
					u.c.leftOut.Add(1)
					if b.present {
						u.c.obs.existing.Add(1)
					}
				}
				if !ok {
					k := u.c.target.String() + "@" + d.Digest.String()
					m := missing[k]
					if m == nil {
						m = &missingBlob{c: u.c, d: d, archive: u.img.archive, where: u.img.src.leftOut[d.Digest].Where}
						missing[k] = m
					}
					m.needers = append(m.needers, fmt.Sprintf("%s -> %s", u.img.label, u.repo))
					m.looked = max(m.looked, looked+1)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var list []*missingBlob
	for _, m := range missing {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].archive != list[j].archive {
			return list[i].archive < list[j].archive
		}
		return list[i].d.Digest < list[j].d.Digest
	})
	for _, m := range list {
		sort.Strings(m.needers)
		*problems = append(*problems, errdefs.Errorf(errdefs.ErrRegistry, errdefs.Pos{File: m.archive},
			"blob %s (%d bytes) of %s: the delta leaves it out (BASE's %s holds it), but %s holds it in none of the %d repositories of the new version's images: push BASE first (airgap-bundle push BASE_DIR --to %s), then the delta",
			m.d.Digest, m.d.Size, strings.Join(slices.Compact(m.needers), ", "), m.where, m.c.target.Host, m.looked, m.c.target))
	}
	return nil
}

// sourceBlobs are the sound blobs of every archive of the push, by
// digest: a blob one delta leaves out may be in another archive pushed
// with it (push BASE_DIR DELTA_DIR).
func sourceBlobs(sources []*source) map[digest.Digest]blobSource {
	out := map[digest.Digest]blobSource{}
	for _, s := range sources {
		c := s.seekable.Contents
		for d, b := range c.Blobs {
			if _, ok := out[d]; ok || b.ComputedDigest != d {
				continue
			}
			if fi := c.Files[b.Path]; fi != nil {
				out[d] = blobSource{file: s.file, off: fi.Offset, size: fi.Size}
			}
		}
	}
	return out
}

// candidateRepos are, per target, the repositories a blob a delta leaves
// out is looked for in when the image's own lacks it: those of every image
// of this push, and those of every image of the new version's lockfile
// (bundle.lock in the delta directory: the images of the groups unchanged
// since BASE, which BASE's push put there), in the target's naming. The
// order is fixed, so a run HEADs the same repositories as the last.
func candidateRepos(clients []*client, units []*unit, sources []*source, opts Options) map[*client][]name.Repository {
	var refs []image.Reference
	dirs := map[string]bool{}
	for _, s := range sources {
		if s.delta == nil || dirs[s.delta.Dir] {
			continue
		}
		dirs[s.delta.Dir] = true
		p := filepath.Join(s.delta.Dir, delta.LockfileName)
		lock, err := lockfile.Read(p)
		if err != nil {
			// The delta's own images are still looked in.
			opts.Registry.Logger.Warn("push: the delta's lockfile cannot be read: blobs the delta leaves out are looked for only in the repositories of the images pushed", "lockfile", p, "error", err)
			continue
		}
		for _, g := range lock.Groups {
			for _, e := range g.Images {
				if ref, err := image.ParseReference(e.Ref, ""); err == nil {
					refs = append(refs, ref)
				}
			}
		}
	}
	out := map[*client][]name.Repository{}
	for _, c := range clients {
		seen := map[string]bool{}
		add := func(r name.Repository) {
			if !seen[r.String()] {
				seen[r.String()] = true
				out[c] = append(out[c], r)
			}
		}
		for _, u := range units {
			if u.c == c {
				add(u.repo)
			}
		}
		for _, ref := range refs {
			if r, err := name.NewRepository(c.target.Host+"/"+repoPath(c.target, ref, opts.PerHost), name.StrictValidation); err == nil {
				add(r)
			}
		}
		slices.SortFunc(out[c], func(a, b name.Repository) int { return strings.Compare(a.String(), b.String()) })
	}
	return out
}

// hasBlob reports whether repo holds blob d (HEAD), unseen by the
// observer's counts.
func (c *client) hasBlob(ctx context.Context, policy registry.Policy, repo name.Repository, d digest.Digest) (bool, error) {
	var ok bool
	err := policy.Do(ctx, "HEAD blob "+d.Encoded()[:12]+" in "+repo.String(), func(ctx context.Context) error {
		l, err := c.puller.Layer(context.WithValue(ctx, probeKey{}, true), repo.Digest(d.String()))
		if err != nil {
			return err
		}
		ok, err = partial.Exists(l)
		return err
	})
	return ok, err
}
