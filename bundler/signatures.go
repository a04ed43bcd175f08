package bundler

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/trust"
)

// checkSignatures verifies, for every image of groups that the spec
// requires signatures of, the signatures the lockfile records (see
// trust.CheckRecorded): the recorded signature manifests and their layers
// are fetched into the cache like any manifest and blob of the build,
// from the image's repository, and checked there without a registry.
// Every failure is reported, at the image's place in the spec.
func (b *builder) checkSignatures(ctx context.Context, groups []*config.Group, lock *lockfile.Lock, jobs int) error {
	var mu sync.Mutex
	var errs []error
	eg := new(errgroup.Group) // not WithContext: one failure must not hide the others
	eg.SetLimit(jobs)
	for _, g := range groups {
		lg := lock.Group(g.Name)
		for i := range lg.Images {
			e := &lg.Images[i]
			ref, err := image.ParseReference(e.Ref, "")
			if err != nil {
				return err
			}
			reqs := b.spec.SignatureRequirements(g, ref)
			if len(reqs) == 0 {
				continue
			}
			eg.Go(func() error {
				err := trust.CheckRecorded(ctx, ref, e, reqs, buildStore{b: b, ref: ref, top: e.Digest}, trust.RecordedOptions{})
				if err != nil {
					mu.Lock()
					errs = append(errs, imageError(g, e.Ref, err))
					mu.Unlock()
				}
				return nil
			})
		}
	}
	_ = eg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errdefs.List(errs, "images failed signature verification")
}

// imageError places err at the spec's line of the image ref (canonical)
// of group g.
func imageError(g *config.Group, ref string, err error) error {
	ie := &ImageError{Pos: g.Pos, Group: g.Name, Image: ref, Err: err}
	for _, img := range g.Images {
		if img.Ref.String() == ref {
			ie.Pos, ie.Image = img.Pos, img.Ref.Written
			break
		}
	}
	return ie
}

// buildStore reads what trust.CheckRecorded needs through the build's
// cache, fetching what is missing from the image's repository.
type buildStore struct {
	b   *builder
	ref image.Reference
	top digest.Digest
}

func (s buildStore) Manifest(ctx context.Context, d digest.Digest) ([]byte, error) {
	return s.b.manifest(ctx, s.ref, s.top, d)
}

func (s buildStore) Blob(ctx context.Context, d digest.Digest, size int64) ([]byte, error) {
	if !s.b.cache.Has(d, size) {
		n := blobNeed{desc: image.Descriptor{Digest: d, Size: size}, ref: s.ref, top: s.top}
		if err := s.b.dl.get(ctx, n, progress.NopTask()); err != nil {
			return nil, fmt.Errorf("fetching blob %s: %w", d, err)
		}
	}
	rc, err := s.b.cache.Open(d, size)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc) // the cache checks digest and size at the end
}
