package bundler

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"

	"github.com/airgap-bundle/airgap-bundle/resolve"
)

// Fetcher reads manifests and blobs by digest from the repository of an
// image. The content is verified by the cache, not here.
type Fetcher interface {
	Manifest(ctx context.Context, ref image.Reference, top, instance digest.Digest) ([]byte, error)
	Blob(ctx context.Context, ref image.Reference, top digest.Digest, d digest.Digest, size int64) (io.ReadCloser, error)
	Close() error
}

// RegistryFetcher fetches through containers/image. Each repository is
// opened once, by the locked top-level digest (so mirrors that serve only
// digests answer too), and only when something is missing from the cache:
// a warm-cache build makes no registry calls.
type RegistryFetcher struct {
	Sys *types.SystemContext

	mu   sync.Mutex
	srcs map[string]*lazySource
}

type lazySource struct {
	once sync.Once
	src  types.ImageSource
	err  error
}

func (f *RegistryFetcher) source(ctx context.Context, ref image.Reference, top digest.Digest) (types.ImageSource, error) {
	key := ref.Name() + "@" + top.String()
	f.mu.Lock()
	if f.srcs == nil {
		f.srcs = map[string]*lazySource{}
	}
	ls, ok := f.srcs[key]
	if !ok {
		ls = &lazySource{}
		f.srcs[key] = ls
	}
	f.mu.Unlock()
	ls.once.Do(func() {
		byDigest, err := image.ParseReference(ref.Name()+"@"+top.String(), "")
		if err != nil {
			ls.err = err
			return
		}
		// On error containers/image can return a typed nil: keep none.
		if src, err := resolve.Source(ctx, f.Sys, byDigest); err != nil {
			ls.err = err
		} else {
			ls.src = src
		}
	})
	return ls.src, ls.err
}

// Manifest returns the top-level manifest (instance == top) or a child.
func (f *RegistryFetcher) Manifest(ctx context.Context, ref image.Reference, top, instance digest.Digest) ([]byte, error) {
	src, err := f.source(ctx, ref, top)
	if err != nil {
		return nil, err
	}
	var inst *digest.Digest
	if instance != top {
		inst = &instance
	}
	b, _, err := src.GetManifest(ctx, inst)
	return b, err
}

// Blob opens a config or layer.
func (f *RegistryFetcher) Blob(ctx context.Context, ref image.Reference, top digest.Digest, d digest.Digest, size int64) (io.ReadCloser, error) {
	src, err := f.source(ctx, ref, top)
	if err != nil {
		return nil, err
	}
	rc, _, err := src.GetBlob(ctx, types.BlobInfo{Digest: d, Size: size}, none.NoCache)
	return rc, err
}

// Close closes every opened repository.
func (f *RegistryFetcher) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var first error
	for _, ls := range f.srcs {
		if ls.src != nil {
			if err := ls.src.Close(); err != nil && first == nil {
				first = fmt.Errorf("closing image source: %w", err)
			}
		}
	}
	f.srcs = nil
	return first
}
