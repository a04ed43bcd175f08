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

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// ReferrersAPI asks a registry's OCI 1.1 referrers API (registry.Env
// implements it); supported is false when the registry has none.
type ReferrersAPI interface {
	Referrers(ctx context.Context, repo reference.Named, d digest.Digest) (index []byte, supported bool, err error)
}

// Finder looks for the artifacts attached to an image's manifests:
// cosign's signature, attestation and SBOM tags (sha256-<hex>.sig, .att,
// .sbom) and OCI 1.1 referrers (the referrers API, else the referrers tag
// schema, tag sha256-<hex>).
type Finder struct {
	Sys       *types.SystemContext
	Referrers ReferrersAPI // nil: the tag schema only
}

// cosignKinds are the kinds found under cosign's tags, in lockfile order.
var cosignKinds = []string{lockfile.ArtifactSignature, lockfile.ArtifactAttestation, lockfile.ArtifactSBOM}

// Attachments returns the artifacts attached to e's manifests (the image's own
// digest and each platform's), pinned by digest.
func (f *Finder) Attachments(ctx context.Context, ref image.Reference, e *lockfile.Image) ([]lockfile.Artifact, error) {
	repo := reference.TrimNamed(ref.Named)
	var out []lockfile.Artifact
	seen := map[string]bool{}
	add := func(a lockfile.Artifact) {
		if !seen[a.Digest] {
			seen[a.Digest] = true
			out = append(out, a)
		}
	}
	for _, m := range e.Manifests() {
		for _, kind := range cosignKinds {
			tag := lockfile.ArtifactTag(m, kind)
			named, err := reference.WithTag(repo, tag)
			if err != nil {
				return nil, err
			}
			blob, mt, found, err := f.manifest(ctx, named)
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
		refs, err := f.referrers(ctx, repo, digest.Digest(m))
		if err != nil {
			return nil, fmt.Errorf("referrers of %s: %w", m, err)
		}
		for _, d := range refs {
			if seen[d.Digest.String()] {
				continue
			}
			named, err := reference.WithDigest(repo, d.Digest)
			if err != nil {
				return nil, err
			}
			blob, mt, found, err := f.manifest(ctx, named)
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

// referrers lists the manifests whose subject is m.
func (f *Finder) referrers(ctx context.Context, repo reference.Named, m digest.Digest) ([]ocispec.Descriptor, error) {
	if f.Referrers != nil {
		idx, ok, err := f.Referrers.Referrers(ctx, repo, m)
		if err != nil {
			return nil, err
		}
		if ok {
			return ParseReferrers(idx)
		}
	}
	named, err := reference.WithTag(repo, m.Algorithm().String()+"-"+m.Encoded())
	if err != nil {
		return nil, err
	}
	blob, mt, found, err := f.manifest(ctx, named)
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
	m, err := archive.ParseManifest(blob, mt)
	if err != nil {
		return lockfile.Artifact{}, err
	}
	return lockfile.Artifact{Digest: digest.FromBytes(blob).String(), MediaType: mt, Size: m.TotalSize()}, nil
}

// manifest fetches the manifest named (by tag or digest); found is false
// when the registry does not have it.
func (f *Finder) manifest(ctx context.Context, named reference.Named) (blob []byte, mt image.MediaType, found bool, err error) {
	dref, err := docker.NewReference(named)
	if err != nil {
		return nil, "", false, err
	}
	src, err := dref.NewImageSource(ctx, f.Sys)
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
