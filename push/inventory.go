package push

// What a push target already holds of a lockfile's images: the inventory a
// site whose state is a registry carries out, so that build --since leaves
// out what the registry has. The names are push's (repoPath): the
// repositories push --to would have put the images in.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// InventoryOptions say which registry to list and how to reach it.
type InventoryOptions struct {
	// Target is the registry and prefix the images were pushed under.
	Target Target
	// PerHost is push's --to-per-host: each source registry's
	// repositories under a component of its own.
	PerHost bool
	// Jobs bounds the requests in flight (default DefaultJobs).
	Jobs int
	// Spec gives the target's TLS settings and credentials (its
	// registries table); nil: verified TLS and the standard credential
	// locations.
	Spec *config.Spec
	// Insecure allows plain HTTP or unverified TLS, as push's --insecure.
	Insecure bool
	// Registry carries the user agent, logger and the retry Policy.
	Registry registry.Options
}

// InventoryResult is what Inventory found.
type InventoryResult struct {
	Inventory *delta.Inventory
	// Manifests counts the pinned manifests and indexes looked for, one
	// per repository; Absent are those the registry does not hold.
	Manifests int
	Absent    []AbsentManifest
}

// AbsentManifest is a pinned manifest the registry does not hold: the
// image was not pushed there (or not under these names), so nothing of it
// is listed beyond the blobs other images share.
type AbsentManifest struct {
	Ref        string        `json:"ref"`
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
}

// wanted is one pinned document in one repository of the target.
type wanted struct {
	ref   string
	repo  name.Repository
	d     digest.Digest
	mt    image.MediaType
	index bool
	// found, size and m are filled when the registry holds it.
	found bool
	size  int64
	m     image.Manifest
}

// Inventory lists the blobs the target holds of the images lock pins, in
// the repositories push would have named them: every pinned manifest
// (each platform's, fetched by digest and checked against it), every
// pinned index (HEAD), and each config and layer those manifests list
// (HEAD in a repository that lists it). An image whose manifest is absent
// contributes nothing: without its manifest its layers are unknown. Every
// request is bounded and retried by the Policy, Jobs at a time; a
// registry that refuses or fails a request (other than "not found") fails
// the whole inventory, because a partial one would look like a complete
// one. Carried signatures, SBOMs and attestations are not listed: deltas
// carry them whole.
func Inventory(ctx context.Context, lock *lockfile.Lock, opts InventoryOptions) (*InventoryResult, error) {
	// No archive is read: a TempDir of its own keeps withDefaults from
	// opening the cache for one.
	popts, err := Options{Targets: []Target{opts.Target}, PerHost: opts.PerHost, Jobs: opts.Jobs, Spec: opts.Spec, Insecure: opts.Insecure, Registry: opts.Registry, TempDir: "-"}.withDefaults()
	if err != nil {
		return nil, err
	}
	policy := popts.Registry.Policy
	want, err := inventoryPlan(lock, opts.Target, opts.PerHost)
	if err != nil {
		return nil, err
	}
	env, clients, err := connect(ctx, popts)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	c := clients[0]

	// 1. The manifests and indexes, each by digest in its repository.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(popts.Jobs)
	for _, w := range want {
		g.Go(func() error {
			if err := c.lookManifest(gctx, policy, w); err != nil {
				return fmt.Errorf("%w: %s@%s (%s): %w", errdefs.ErrRegistry, w.repo, w.d, w.ref, c.reach(err))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	// 2. The blobs those manifests list, each HEADed in the repositories
	// that list it until one holds it.
	type blobWant struct {
		size  int64
		repos []name.Repository
	}
	blobs := map[digest.Digest]*blobWant{}
	res := &InventoryResult{Inventory: &delta.Inventory{Version: delta.InventoryVersion, Source: "registry " + opts.Target.String(), Blobs: []delta.Blob{}}}
	where := "registry " + opts.Target.Host
	held := map[digest.Digest]int64{}
	for _, w := range want {
		res.Manifests++
		if !w.found {
			res.Absent = append(res.Absent, AbsentManifest{Ref: w.ref, Repository: w.repo.String(), Digest: w.d})
			continue
		}
		held[w.d] = w.size
		if w.index {
			continue
		}
		for _, d := range append([]image.Descriptor{w.m.Config}, w.m.Layers...) {
			b := blobs[d.Digest]
			if b == nil {
				b = &blobWant{size: d.Size}
				blobs[d.Digest] = b
			}
			if !containsRepo(b.repos, w.repo) {
				b.repos = append(b.repos, w.repo)
			}
		}
	}
	var mu sync.Mutex
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(popts.Jobs)
	for d, b := range blobs {
		g.Go(func() error {
			for _, repo := range b.repos {
				ok, err := c.hasBlob(gctx, policy, repo, d)
				if err != nil {
					return fmt.Errorf("%w: blob %s in %s: %w", errdefs.ErrRegistry, d, repo, c.reach(err))
				}
				if ok {
					mu.Lock()
					held[d] = b.size
					mu.Unlock()
					return nil
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for d, size := range held {
		if d.Algorithm() != digest.SHA256 {
			continue // inventories (and apply) speak sha256 only
		}
		res.Inventory.Blobs = append(res.Inventory.Blobs, delta.Blob{Digest: d, Size: size, Where: where})
	}
	sort.Slice(res.Inventory.Blobs, func(i, j int) bool { return res.Inventory.Blobs[i].Digest < res.Inventory.Blobs[j].Digest })
	sort.Slice(res.Absent, func(i, j int) bool {
		a, b := res.Absent[i], res.Absent[j]
		return a.Repository+"@"+a.Digest.String() < b.Repository+"@"+b.Digest.String()
	})
	return res, nil
}

// inventoryPlan lists every pinned document of lock once per repository
// of t it goes to: each image's index (and filtered index: an archive
// built with index = "filtered" pushed that one) and each platform's
// manifest.
func inventoryPlan(lock *lockfile.Lock, t Target, perHost bool) ([]*wanted, error) {
	var out []*wanted
	seen := map[string]bool{}
	add := func(w *wanted) {
		if k := w.repo.String() + "@" + w.d.String(); !seen[k] {
			seen[k] = true
			out = append(out, w)
		}
	}
	for _, g := range lock.Groups {
		for _, e := range g.Images {
			ref, err := image.ParseReference(e.Ref, "")
			if err != nil {
				return nil, fmt.Errorf("%w: group %q: %w", errdefs.ErrLockfile, g.Name, err)
			}
			rp := repoPath(t, ref, perHost)
			repo, err := name.NewRepository(t.Host+"/"+rp, name.StrictValidation)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: target repository %s/%s: %w", errdefs.ErrUsage, e.Ref, t.Host, rp, err)
			}
			if e.IsIndex() {
				add(&wanted{ref: e.Ref, repo: repo, d: e.Digest, mt: e.MediaType, index: true})
				if e.FilteredDigest != "" {
					add(&wanted{ref: e.Ref, repo: repo, d: e.FilteredDigest, mt: e.MediaType, index: true})
				}
			}
			for _, p := range e.Platforms {
				add(&wanted{ref: e.Ref, repo: repo, d: p.Digest, mt: p.MediaType})
			}
		}
	}
	return out, nil
}

func containsRepo(repos []name.Repository, r name.Repository) bool {
	for _, x := range repos {
		if x.String() == r.String() {
			return true
		}
	}
	return false
}

// lookManifest finds w in its repository: an index by HEAD (its children
// are pinned on their own), a manifest by GET, its bytes checked against
// the pinned digest and read for its config and layers.
func (c *client) lookManifest(ctx context.Context, policy registry.Policy, w *wanted) error {
	ref := w.repo.Digest(w.d.String())
	if w.index {
		return policy.Do(ctx, "HEAD "+ref.String(), func(ctx context.Context) error {
			desc, err := c.puller.Head(ctx, ref)
			if isNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if desc.Digest.String() != w.d.String() {
				return fmt.Errorf("the registry answers with %s", desc.Digest)
			}
			w.found, w.size = true, desc.Size
			return nil
		})
	}
	return policy.Do(ctx, "GET "+ref.String(), func(ctx context.Context) error {
		desc, err := c.puller.Get(ctx, ref)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if got := digest.FromBytes(desc.Manifest); got != w.d {
			return fmt.Errorf("the registry serves a manifest with digest %s", got)
		}
		m, err := image.ParseManifest(desc.Manifest, w.mt)
		if err != nil {
			return err
		}
		w.found, w.size, w.m = true, int64(len(desc.Manifest)), m
		return nil
	})
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == 404
}

// String is the manifest as a line: its reference and where it was looked
// for.
func (a AbsentManifest) String() string {
	return a.Ref + " (" + a.Repository + "@" + a.Digest.String() + ")"
}
