package trust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"

	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// Endpoint is the one place (a mirror or the registry itself) that serves
// an image; registry.Endpoint implements it.
type Endpoint interface {
	// Manifest fetches a manifest by tag or digest from this endpoint
	// only; found is false when it does not have it.
	Manifest(ctx context.Context, ref string) (blob []byte, mediaType string, found bool, err error)
	// Referrers asks its OCI 1.1 referrers API; supported is false when
	// it has none.
	Referrers(ctx context.Context, d digest.Digest) (index []byte, supported bool, err error)
	String() string
}

// Locate returns the endpoint that serves repo@d (registry.Env.Endpoint).
type Locate func(ctx context.Context, repo reference.Named, d digest.Digest) (Endpoint, error)

// Finder looks for the artifacts attached to an image's manifests:
// cosign's signature, attestation and SBOM tags (sha256-<hex>.sig, .att,
// .sbom) and OCI 1.1 referrers (the referrers API, else the referrers tag
// schema, tag sha256-<hex>).
type Finder struct {
	Sys *types.SystemContext
	// Locate, when set, finds the endpoint that serves the image, and
	// every lookup of its attachments goes there only, the referrers tag
	// schema included when it has no referrers API. Unset, lookups go
	// through containers/image (the registry's mirrors, then the
	// registry, for each) and referrers through the tag schema only.
	Locate Locate
}

// lookup is where one image's attachments are looked up.
type lookup interface {
	manifest(ctx context.Context, ref string) (blob []byte, mt image.MediaType, found bool, err error)
	referrers(ctx context.Context, m digest.Digest) (index []byte, supported bool, err error)
}

func (f *Finder) lookup(ctx context.Context, repo reference.Named, top digest.Digest) (lookup, error) {
	if f.Locate == nil {
		return &sysLookup{sys: f.Sys, repo: repo}, nil
	}
	ep, err := f.Locate(ctx, repo, top)
	if err != nil {
		return nil, err
	}
	return endpointLookup{ep}, nil
}

// cosignKinds are the kinds found under cosign's tags, in lockfile order.
var cosignKinds = []string{lockfile.ArtifactSignature, lockfile.ArtifactAttestation, lockfile.ArtifactSBOM}

// Attachments returns the artifacts attached to e's manifests (the image's own
// digest and each platform's), pinned by digest.
func (f *Finder) Attachments(ctx context.Context, ref image.Reference, e *lockfile.Image) ([]lockfile.Artifact, error) {
	repo := reference.TrimNamed(ref.Named)
	at, err := f.lookup(ctx, repo, e.Digest)
	if err != nil {
		return nil, err
	}
	var out []lockfile.Artifact
	seen := map[digest.Digest]bool{}
	add := func(a lockfile.Artifact) {
		if !seen[a.Digest] {
			seen[a.Digest] = true
			out = append(out, a)
		}
	}
	for _, m := range e.Manifests() {
		for _, kind := range cosignKinds {
			tag := lockfile.ArtifactTag(m, kind)
			blob, mt, found, err := at.manifest(ctx, tag)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", tag, err)
			}
			if !found {
				continue
			}
			a, err := artifactOf(blob, mt)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", tag, err)
			}
			a.Kind, a.Subject, a.Tag = kind, m, tag
			add(a)
		}
		refs, err := referrers(ctx, at, m)
		if err != nil {
			return nil, fmt.Errorf("referrers of %s: %w", m, err)
		}
		for _, d := range refs {
			if seen[d.Digest] {
				continue
			}
			blob, mt, found, err := at.manifest(ctx, d.Digest.String())
			switch {
			case err != nil:
				return nil, fmt.Errorf("referrer %s of %s: %w", d.Digest, m, err)
			case !found:
				return nil, fmt.Errorf("referrer %s of %s: listed, but the registry does not have it", d.Digest, m)
			case digest.FromBytes(blob) != d.Digest:
				return nil, fmt.Errorf("referrer %s of %s: the registry sent a manifest with digest %s", d.Digest, m, digest.FromBytes(blob))
			}
			a, err := artifactOf(blob, mt)
			if err != nil {
				return nil, fmt.Errorf("referrer %s of %s: %w", d.Digest, m, err)
			}
			a.Kind, a.Subject, a.ArtifactType = lockfile.ArtifactReferrer, m, d.ArtifactType
			add(a)
		}
	}
	return out, nil
}

// referrers lists the manifests whose subject is m: from the referrers
// API, else from the referrers tag schema of the same place.
func referrers(ctx context.Context, at lookup, m digest.Digest) ([]ocispec.Descriptor, error) {
	idx, ok, err := at.referrers(ctx, m)
	if err != nil {
		return nil, err
	}
	if ok {
		return ParseReferrers(idx)
	}
	blob, mt, found, err := at.manifest(ctx, m.Algorithm().String()+"-"+m.Encoded())
	if err != nil || !found {
		return nil, err
	}
	if !mt.IsIndex() {
		return nil, nil // a tag of that name that is not the schema's index
	}
	return ParseReferrers(blob)
}

// ParseReferrers reads a referrers index (from the API or the tag schema)
// and returns its image manifests: sha256 digests, positive sizes; nested
// indexes and other media types are left out.
func ParseReferrers(blob []byte) ([]ocispec.Descriptor, error) {
	var idx struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Manifests     []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(blob, &idx); err != nil {
		return nil, fmt.Errorf("referrers index: %w", err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != "" && idx.MediaType != ocispec.MediaTypeImageIndex {
		return nil, fmt.Errorf("referrers index: schemaVersion %d, mediaType %q: not an OCI image index", idx.SchemaVersion, idx.MediaType)
	}
	var out []ocispec.Descriptor
	for _, d := range idx.Manifests {
		if !image.MediaType(d.MediaType).IsManifest() || d.Digest.Validate() != nil || d.Digest.Algorithm() != digest.SHA256 || d.Size <= 0 || d.Size > image.MaxManifestSize {
			continue
		}
		if slices.ContainsFunc(out, func(o ocispec.Descriptor) bool { return o.Digest == d.Digest }) {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// artifactOf pins an attached manifest: its digest, media type and size
// with its config and layers.
func artifactOf(blob []byte, mt image.MediaType) (lockfile.Artifact, error) {
	m, err := image.ParseManifest(blob, mt)
	if err != nil {
		return lockfile.Artifact{}, err
	}
	return lockfile.Artifact{Digest: digest.FromBytes(blob), MediaType: mt, Size: m.TotalSize()}, nil
}

// endpointLookup asks the one endpoint that serves the image.
type endpointLookup struct{ ep Endpoint }

func (l endpointLookup) manifest(ctx context.Context, ref string) ([]byte, image.MediaType, bool, error) {
	blob, t, found, err := l.ep.Manifest(ctx, ref)
	if err != nil || !found {
		return nil, "", false, err
	}
	mt := image.MediaType(t)
	if !mt.IsImage() {
		return nil, "", false, fmt.Errorf("%s at %s: media type %q is not a manifest or index", ref, l.ep, t)
	}
	return blob, mt, true, nil
}

func (l endpointLookup) referrers(ctx context.Context, m digest.Digest) ([]byte, bool, error) {
	return l.ep.Referrers(ctx, m)
}

// sysLookup asks through containers/image, which tries the registry's
// mirrors and then the registry for each manifest; it has no referrers
// API.
type sysLookup struct {
	sys  *types.SystemContext
	repo reference.Named
}

func (l *sysLookup) referrers(context.Context, digest.Digest) ([]byte, bool, error) {
	return nil, false, nil
}

// manifest fetches the manifest ref (a tag or a digest); found is false
// when the registry does not have it.
func (l *sysLookup) manifest(ctx context.Context, ref string) (blob []byte, mt image.MediaType, found bool, err error) {
	var named reference.Named
	if d, derr := digest.Parse(ref); derr == nil {
		named, err = reference.WithDigest(l.repo, d)
	} else {
		named, err = reference.WithTag(l.repo, ref)
	}
	if err != nil {
		return nil, "", false, err
	}
	dref, err := docker.NewReference(named)
	if err != nil {
		return nil, "", false, err
	}
	src, err := dref.NewImageSource(ctx, l.sys)
	if err != nil {
		if isNotFound(err) {
			return nil, "", false, nil
		}
		return nil, "", false, err
	}
	defer src.Close()
	blob, t, err := src.GetManifest(ctx, nil)
	if err != nil {
		if isNotFound(err) {
			return nil, "", false, nil
		}
		return nil, "", false, err
	}
	if len(blob) > image.MaxManifestSize {
		return nil, "", false, errors.New("manifest too large")
	}
	mt = image.MediaType(t)
	if !mt.IsImage() {
		return nil, "", false, fmt.Errorf("media type %q is not a manifest or index", t)
	}
	return blob, mt, true, nil
}
