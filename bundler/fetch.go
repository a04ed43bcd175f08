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
// opened by the locked top-level digest (so mirrors that serve only
// digests answer too), and only when something is missing from the cache:
// a warm-cache build makes no registry calls. Every request is bounded by
// the Policy's response and stall timeouts; manifests are retried here,
// blobs by the caller (which keeps what was received).
//
// containers/image gives every opened repository an HTTP transport of its
// own, whose connections stay open until the repository is closed. So at
// most MaxOpen repositories are open at once: opening one more closes the
// one least recently used that nothing is reading from (it is opened
// again, with one more ping, if it is needed again). Without the bound, a
// build of 300 images held 300 idle connections, one file descriptor
// each, until it ended.
type RegistryFetcher struct {
	Env    *registry.Env
	Policy registry.Policy
	// MaxOpen bounds the repositories open at once; <= 0 means
	// DefaultMaxOpenSources. More are open only while more are in use.
	MaxOpen int

	mu   sync.Mutex
	srcs map[string]*openSource
	tick uint64 // use counter, for least recently used
}

// DefaultMaxOpenSources is RegistryFetcher's default MaxOpen: twice the
// default parallelism, so that a build's parallel manifest reads (one
// repository per image, DefaultJobs at a time) never close each other's.
const DefaultMaxOpenSources = 2 * DefaultJobs

// openSource is one repository, opened at most once at a time. users and
// last are guarded by the fetcher's mu; mu is held while opening.
type openSource struct {
	mu    sync.Mutex
	src   types.ImageSource
	users int
	last  uint64
}

// source returns ref's repository, opened, and a release to call once
// done with it (after a GetBlob: once its body is closed).
func (f *RegistryFetcher) source(ctx context.Context, ref image.Reference, top digest.Digest) (types.ImageSource, func(), error) {
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
	entry.users++
	f.tick++
	entry.last = f.tick
	f.mu.Unlock()
	var once sync.Once
	release := func() {
		once.Do(func() {
			f.mu.Lock()
			entry.users--
			f.mu.Unlock()
		})
	}
	src, opened, err := f.open(ctx, entry, key)
	if err != nil {
		release()
		return nil, nil, err
	}
	if opened {
		f.evict()
	}
	return src, release, nil
}

// open opens entry's repository unless it is open already.
func (f *RegistryFetcher) open(ctx context.Context, entry *openSource, key string) (_ types.ImageSource, opened bool, _ error) {
	entry.mu.Lock()
	defer entry.mu.Unlock()
	if entry.src != nil {
		return entry.src, false, nil
	}
	byDigest, err := image.ParseReference(key, "")
	if err != nil {
		return nil, false, err
	}
	// Opening pings the registry: bounded like any request, and a failure
	// is not remembered, so a retry opens it again.
	reqCtx, _, classify, stop := f.Policy.Watch(ctx)
	src, err := resolve.Source(reqCtx, f.Env.Sys, byDigest)
	stop()
	if err != nil {
		return nil, false, classify(err)
	}
	entry.src = src
	return src, true, nil
}

// evict closes the least recently used repositories nothing is reading
// from while more than MaxOpen are open.
func (f *RegistryFetcher) evict() {
	max := f.MaxOpen
	if max <= 0 {
		max = DefaultMaxOpenSources
	}
	var closing []types.ImageSource
	f.mu.Lock()
	for {
		open := 0
		var victim string
		var oldest *openSource
		for k, e := range f.srcs {
			// users == 0: nobody holds it, nor opens it (entry.mu is
			// taken only by a holder), so its src may be read here.
			if e.users > 0 {
				open++
				continue
			}
			if e.src == nil {
				delete(f.srcs, k) // a failed open: nothing to close
				continue
			}
			open++
			if oldest == nil || e.last < oldest.last {
				victim, oldest = k, e
			}
		}
		if open <= max || oldest == nil {
			break
		}
		delete(f.srcs, victim)
		closing = append(closing, oldest.src)
	}
	f.mu.Unlock()
	for _, src := range closing {
		if err := src.Close(); err != nil {
			f.Policy.WithDefaults().Logger.Debug("closing an image source", "error", err)
		}
	}
}

// Manifest returns the top-level manifest (instance == top) or a child.
func (f *RegistryFetcher) Manifest(ctx context.Context, ref image.Reference, top, instance digest.Digest) ([]byte, error) {
	var blob []byte
	err := f.Policy.Do(ctx, "manifest "+instance.String(), func(ctx context.Context) error {
		src, release, err := f.source(ctx, ref, top)
		if err != nil {
			return err
		}
		defer release()
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
	src, release, err := f.source(reqCtx, ref, top)
	if err != nil {
		stop()
		return nil, err
	}
	rc, _, err = src.GetBlob(reqCtx, types.BlobInfo{Digest: d, Size: size}, none.NoCache)
	if err != nil {
		release()
		stop()
		return nil, classify(err)
	}
	// the repository stays open (not evicted) until the body is closed
	body := registry.WatchedBody(wrap(releasing{rc, release}), classify, stop)
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

// releasing calls release once the body is closed.
type releasing struct {
	io.ReadCloser
	release func()
}

func (r releasing) Close() error {
	err := r.ReadCloser.Close()
	r.release()
	return err
}
