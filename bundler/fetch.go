package bundler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"

	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/registry"
	"github.com/airgap-bundle/airgap-bundle/resolve"
)

// Fetcher reads manifests and blobs by digest from the repository of an
// image. The content is verified by the cache, not here.
type Fetcher interface {
	Manifest(ctx context.Context, ref image.Reference, top, instance digest.Digest) ([]byte, error)
	// Blob opens a config or layer from byte offset on (0: the whole blob).
	Blob(ctx context.Context, ref image.Reference, top digest.Digest, d digest.Digest, size, offset int64) (io.ReadCloser, error)
	Close() error
}

// RegistryFetcher fetches through containers/image. Each repository is
// opened once, by the locked top-level digest (so mirrors that serve only
// digests answer too), and only when something is missing from the cache:
// a warm-cache build makes no registry calls. Every request is bounded by
// the Policy's response and stall timeouts; manifests are retried here,
// blobs by the caller (which keeps what was received).
type RegistryFetcher struct {
	Env    *registry.Env
	Policy registry.Policy

	mu   sync.Mutex
	srcs map[string]*openSource
}

// openSource is one repository, opened at most once at a time.
type openSource struct {
	mu  sync.Mutex
	src types.ImageSource
}

func (f *RegistryFetcher) source(ctx context.Context, ref image.Reference, top digest.Digest) (types.ImageSource, error) {
	key := ref.Name() + "@" + top.String()
	f.mu.Lock()
	if f.srcs == nil {
		f.srcs = map[string]*openSource{}
	}
	entry, ok := f.srcs[key]
	if !ok {
		entry = &openSource{}
		f.srcs[key] = entry
	}
	f.mu.Unlock()
	entry.mu.Lock()
	defer entry.mu.Unlock()
	if entry.src != nil {
		return entry.src, nil
	}
	byDigest, err := image.ParseReference(key, "")
	if err != nil {
		return nil, err
	}
	// Opening pings the registry: bounded like any request, and a failure
	// is not remembered, so a retry opens it again.
	reqCtx, _, classify, stop := f.Policy.Watch(ctx)
	src, err := resolve.Source(reqCtx, f.Env.Sys, byDigest)
	stop()
	if err != nil {
		return nil, classify(err)
	}
	entry.src = src
	return src, nil
}

// Manifest returns the top-level manifest (instance == top) or a child.
func (f *RegistryFetcher) Manifest(ctx context.Context, ref image.Reference, top, instance digest.Digest) ([]byte, error) {
	var blob []byte
	err := f.Policy.Do(ctx, "manifest "+instance.String(), func(ctx context.Context) error {
		src, err := f.source(ctx, ref, top)
		if err != nil {
			return err
		}
		var inst *digest.Digest
		if instance != top {
			inst = &instance
		}
		reqCtx, _, classify, stop := f.Policy.Watch(ctx)
		defer stop()
		blob, _, err = src.GetManifest(reqCtx, inst)
		return classify(err)
	})
	return blob, err
}

// Blob opens a config or layer from offset on: through the run's shared
// transport (with a Range request when offset > 0, see
// registry.Env.OpenBlobAt), else through containers/image from the start,
// skipping what the caller already has.
func (f *RegistryFetcher) Blob(ctx context.Context, ref image.Reference, top digest.Digest, d digest.Digest, size, offset int64) (io.ReadCloser, error) {
	reqCtx, wrap, classify, stop := f.Policy.Watch(ctx)
	rc, err := f.Env.OpenBlobAt(reqCtx, ref.Named, d, offset)
	switch {
	case err == nil:
		return registry.WatchedBody(wrap(rc), classify, stop), nil
	case !errors.Is(err, registry.ErrNotServed):
		stop()
		return nil, classify(err)
	}
	f.Policy.WithDefaults().Logger.Info("blob through containers/image", "blob", d, "offset", offset, "reason", err)
	src, err := f.source(reqCtx, ref, top)
	if err != nil {
		stop()
		return nil, err
	}
	rc, _, err = src.GetBlob(reqCtx, types.BlobInfo{Digest: d, Size: size}, none.NoCache)
	if err != nil {
		stop()
		return nil, classify(err)
	}
	body := registry.WatchedBody(wrap(rc), classify, stop)
	if offset > 0 {
		if _, err := io.CopyN(io.Discard, body, offset); err != nil {
			body.Close()
			return nil, fmt.Errorf("skipping to byte %d: %w", offset, err)
		}
	}
	return body, nil
}

// Close closes every opened repository.
func (f *RegistryFetcher) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, entry := range f.srcs {
		if entry.src == nil {
			continue
		}
		if err := entry.src.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing image source: %w", err))
		}
	}
	f.srcs = nil
	return errors.Join(errs...)
}
