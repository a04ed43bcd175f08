package bundler

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
	"github.com/airgap-bundle/airgap-bundle/resolve"
	"github.com/airgap-bundle/airgap-bundle/trust"
)

// DefaultJobs is how many requests a run makes to registries at once when
// its options say nothing: lock's resolutions, build's downloads and the
// prefetch. Measured: more than 8 gains nothing on a loopback registry.
const DefaultJobs = 8

// Session is one run's access to the registries of a spec. It is both the
// Resolver that Lock uses and the Fetcher that Build uses, so a build that
// locks first sets up registry access (and resolves credentials) once. It
// starts on first use: a lock with nothing to resolve, or a build from a
// warm cache, reads no credentials and calls no registry.
type Session struct {
	spec *config.Spec
	opts registry.Options

	keep *cache.Cache // where resolved documents go, when set
	dl   *downloads   // prefetching into keep, when set

	once      sync.Once
	env       *registry.Env
	endpoints sync.Map // repository@digest -> *registry.Endpoint
	fetch     *RegistryFetcher
	err       error
}

// NewSession returns a session for spec; nothing happens until it is used.
func NewSession(spec *config.Spec, opts registry.Options) *Session {
	return &Session{spec: spec, opts: opts}
}

// KeepIn makes every manifest, index and config a resolution reads (each
// checked against its digest) go into c: a build that locks first then
// finds them there instead of asking the registry again.
func (s *Session) KeepIn(c *cache.Cache) { s.keep = c }

// Prefetch makes every image Resolve pins start downloading its configs
// and layers into the KeepIn cache at once, jobs at a time, while other
// images are still being resolved: a Build with this session and cache
// then joins those downloads. For a build that locks first; a lock alone
// must not download layers. Close stops what is still running.
func (s *Session) Prefetch(jobs int, log *slog.Logger) {
	if s.keep == nil {
		return
	}
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	s.dl = newDownloads(s.keep, s, s.opts.Policy, log)
	s.dl.startPrefetch(jobs)
}

func (s *Session) start() error {
	s.once.Do(func() {
		env, err := registry.New(s.spec, s.opts)
		if err != nil {
			s.err = err
			return
		}
		s.env = env
		s.fetch = &RegistryFetcher{Env: env, Policy: s.opts.Policy}
	})
	return s.err
}

// Resolve implements Resolver.
func (s *Session) Resolve(ctx context.Context, ref image.Reference, want image.PlatformSet, index image.IndexMode) (*lockfile.Image, error) {
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := s.env.Check(ref.Domain()); err != nil {
		return nil, err
	}
	r := &resolve.Resolver{Sys: s.env.Sys, Policy: s.opts.Policy}
	if s.keep != nil {
		r.Keep = func(d digest.Digest, blob []byte) {
			if !s.keep.Has(d, int64(len(blob))) {
				_ = s.keep.Put(ctx, d, int64(len(blob)), bytes.NewReader(blob)) // an optimisation: a failure costs a request later
			}
		}
	}
	img, err := r.Resolve(ctx, ref, want, index)
	if err == nil && s.dl != nil {
		s.dl.prefetch(ref, img)
	}
	return img, err
}

// Verify implements Verifier, through containers/image's policy engine.
func (s *Session) Verify(ctx context.Context, ref image.Reference, e *lockfile.Image, reqs []*config.SignatureRequirement) ([]lockfile.Signature, error) {
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := s.env.Check(ref.Domain()); err != nil {
		return nil, err
	}
	v := &trust.Verifier{Sys: s.env.Sys, Locate: s.locate}
	var sigs []lockfile.Signature
	err := s.opts.Policy.Do(ctx, "verify "+ref.String(), func(ctx context.Context) (err error) {
		sigs, err = v.Verify(ctx, ref, e, reqs)
		return err
	})
	return sigs, err
}

// Attachments implements AttachmentFinder.
func (s *Session) Attachments(ctx context.Context, ref image.Reference, e *lockfile.Image) ([]lockfile.Artifact, error) {
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := s.env.Check(ref.Domain()); err != nil {
		return nil, err
	}
	f := &trust.Finder{Sys: s.env.Sys, Locate: s.locate}
	var arts []lockfile.Artifact
	err := s.opts.Policy.Do(ctx, "attachments of "+ref.String(), func(ctx context.Context) (err error) {
		arts, err = f.Attachments(ctx, ref, e)
		return err
	})
	return arts, err
}

// locate pins the lookups of an image's signatures and attachments to the
// endpoint (mirror or registry) that serves it: see registry.Endpoint.
// Verify and Attachments ask for the same image: it is located once.
func (s *Session) locate(ctx context.Context, repo reference.Named, d digest.Digest) (trust.Endpoint, error) {
	key := repo.Name() + "@" + d.String()
	if ep, ok := s.endpoints.Load(key); ok {
		return ep.(*registry.Endpoint), nil
	}
	ep, err := s.env.Endpoint(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	s.endpoints.Store(key, ep)
	return ep, nil
}

// Manifest implements Fetcher.
func (s *Session) Manifest(ctx context.Context, ref image.Reference, top, instance digest.Digest) ([]byte, error) {
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := s.env.Check(ref.Domain()); err != nil {
		return nil, err
	}
	return s.fetch.Manifest(ctx, ref, top, instance)
}

// Blob implements Fetcher.
func (s *Session) Blob(ctx context.Context, ref image.Reference, top, d digest.Digest, size, offset int64) (io.ReadCloser, error) {
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := s.env.Check(ref.Domain()); err != nil {
		return nil, err
	}
	return s.fetch.Blob(ctx, ref, top, d, size, offset)
}

// Close closes the opened repositories and removes the generated registry
// configuration, credentials included. A session that never started has
// nothing to close.
func (s *Session) Close() error {
	var errs []error
	if s.dl != nil {
		s.dl.stop()
	}
	if s.fetch != nil {
		errs = append(errs, s.fetch.Close())
	}
	if s.env != nil {
		errs = append(errs, s.env.Close())
	}
	return errors.Join(errs...)
}
