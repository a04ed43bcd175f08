// Package resolve asks a registry what an image reference points to: the
// top-level manifest or index digest and, for each requested platform, the
// manifest, config and compressed size. It reads manifests and small config
// blobs only; layers are never downloaded here.
package resolve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/registry"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"

	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// Limits on documents read from a registry: manifests and configs are small,
// and a registry that sends more is broken or hostile. Manifests are bounded
// by image.MaxManifestSize.
const maxConfigBytes = 8 << 20

// ErrPlatform marks a requested platform that an image does not have.
var ErrPlatform = errors.New("platform not available")

// Resolver resolves references through one SystemContext.
type Resolver struct {
	Sys *types.SystemContext
	// Policy retries a resolution that fails transiently and bounds each
	// of its requests (the zero value: defaults).
	Policy registry.Policy
	// Keep, when set, receives every manifest, index and config read,
	// once checked against its digest: a build that locks first keeps them
	// in its cache instead of fetching them again.
	Keep func(d digest.Digest, blob []byte)
}

func (r *Resolver) keep(d digest.Digest, blob []byte) {
	if r.Keep != nil {
		r.Keep(d, blob)
	}
}

// call runs one request under the policy's response timeout.
func (r *Resolver) call(ctx context.Context, f func(context.Context) error) error {
	reqCtx, _, classify, stop := r.Policy.Watch(ctx)
	defer stop()
	return classify(f(reqCtx))
}

// Source opens the image behind ref. A reference with both tag and digest is
// pulled by digest: the digest is the pin, the tag only names the image.
func Source(ctx context.Context, sys *types.SystemContext, ref image.Reference) (types.ImageSource, error) {
	named := ref.Named
	if d := ref.Digest(); d != "" {
		dg, err := reference.WithDigest(reference.TrimNamed(named), digest.Digest(d))
		if err != nil {
			return nil, err
		}
		named = dg
	}
	dref, err := docker.NewReference(named)
	if err != nil {
		return nil, err
	}
	src, err := dref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err // never a typed nil
	}
	return src, nil
}

// Resolve returns the lock entry for ref with the platforms want asks for.
// A transient failure (a 503, a reset, a timeout) retries the whole
// resolution: it reads only small documents.
func (r *Resolver) Resolve(ctx context.Context, ref image.Reference, want image.PlatformSet, index image.IndexMode) (*lockfile.Image, error) {
	var img *lockfile.Image
	err := r.Policy.Do(ctx, "resolve "+ref.String(), func(ctx context.Context) error {
		var err error
		img, err = r.resolve(ctx, ref, want, index)
		return err
	})
	return img, explain(err, ref.Domain())
}

func (r *Resolver) resolve(ctx context.Context, ref image.Reference, want image.PlatformSet, index image.IndexMode) (*lockfile.Image, error) {
	var src types.ImageSource
	if err := r.call(ctx, func(ctx context.Context) (err error) {
		src, err = Source(ctx, r.Sys, ref)
		return err
	}); err != nil {
		return nil, err
	}
	defer src.Close()
	var top []byte
	var mt image.MediaType
	if err := r.call(ctx, func(ctx context.Context) (err error) {
		top, mt, err = getManifest(ctx, src, nil)
		return err
	}); err != nil {
		return nil, err
	}
	dg := digest.FromBytes(top)
	if pin := ref.Digest(); pin != "" && pin != dg.String() {
		return nil, fmt.Errorf("registry sent a manifest with digest %s, not the pinned %s", dg, pin)
	}
	r.keep(dg, top)
	img := &lockfile.Image{Ref: ref.String(), Digest: dg, MediaType: mt}
	if mt.IsIndex() {
		list, err := manifest.ListFromBlob(top, string(mt))
		if err != nil {
			return nil, fmt.Errorf("parsing index %s: %w", dg, err)
		}
		chosen, err := choose(list, want)
		if err != nil {
			return nil, err
		}
		img.Size = int64(len(top))
		for _, c := range chosen {
			var blob []byte
			var cmt image.MediaType
			err := r.call(ctx, func(ctx context.Context) (err error) {
				blob, cmt, err = getManifest(ctx, src, &c.digest)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("platform %s: %w", c.platform, err)
			}
			if got := digest.FromBytes(blob); got != c.digest {
				return nil, fmt.Errorf("platform %s: registry sent manifest %s for %s", c.platform, got, c.digest)
			}
			r.keep(c.digest, blob)
			p, err := platformEntry(blob, cmt)
			if err != nil {
				return nil, fmt.Errorf("platform %s: %w", c.platform, err)
			}
			p.Platform = c.platform.String()
			p.Digest = c.digest
			img.Platforms = append(img.Platforms, p)
			img.Size += p.Size
		}
		if index == image.IndexFiltered {
			keep := make([]digest.Digest, len(chosen))
			for i, c := range chosen {
				keep[i] = c.digest
			}
			filtered, err := image.FilterIndex(top, mt, keep)
			if err != nil {
				return nil, fmt.Errorf("filtering index: %w", err)
			}
			img.FilteredDigest = digest.FromBytes(filtered)
		}
		return img, nil
	}
	p, err := platformEntry(top, mt)
	if err != nil {
		return nil, err
	}
	m, _ := manifest.FromBlob(top, string(mt)) // parsed once already by platformEntry
	var plat image.Platform
	err = r.call(ctx, func(ctx context.Context) (err error) {
		plat, err = configPlatform(ctx, src, m.ConfigInfo(), r.keep)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !want.All {
		var missing []string
		for _, w := range want.List {
			if w != plat {
				missing = append(missing, w.String())
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: %s (a single-platform image; it has only %s)", ErrPlatform, strings.Join(missing, ", "), plat)
		}
	}
	p.Platform = plat.String()
	p.Digest = dg
	img.Platforms = []lockfile.Platform{p}
	img.Size = p.Size
	return img, nil
}

func getManifest(ctx context.Context, src types.ImageSource, instance *digest.Digest) ([]byte, image.MediaType, error) {
	blob, raw, err := src.GetManifest(ctx, instance)
	if err != nil {
		return nil, "", err
	}
	if len(blob) > image.MaxManifestSize {
		return nil, "", fmt.Errorf("manifest is %d bytes, over the %d limit", len(blob), image.MaxManifestSize)
	}
	if raw == "" {
		raw = manifest.GuessMIMEType(blob)
	}
	mt := image.MediaType(manifest.NormalizedMIMEType(raw))
	if !mt.IsImage() {
		return nil, "", fmt.Errorf("unsupported manifest type %q (schema 1 and artifacts cannot be bundled; push the image again with a current client)", mt)
	}
	return blob, mt, nil
}

// platformEntry fills everything of a platform's entry but its name and
// digest.
func platformEntry(blob []byte, mt image.MediaType) (lockfile.Platform, error) {
	if !mt.IsManifest() {
		return lockfile.Platform{}, fmt.Errorf("index entry is %q, not an image manifest", mt)
	}
	m, err := manifest.FromBlob(blob, string(mt))
	if err != nil {
		return lockfile.Platform{}, fmt.Errorf("parsing manifest: %w", err)
	}
	cfg := m.ConfigInfo()
	size := int64(len(blob)) + cfg.Size
	for _, l := range m.LayerInfos() {
		if l.Size < 0 {
			return lockfile.Platform{}, fmt.Errorf("layer %s has no size", l.Digest)
		}
		size += l.Size
	}
	return lockfile.Platform{MediaType: mt, Config: cfg.Digest, Size: size}, nil
}

// configPlatform reads a single manifest's platform from its config blob,
// checking the blob against its digest: containers/image does not.
func configPlatform(ctx context.Context, src types.ImageSource, cfg types.BlobInfo, keep func(digest.Digest, []byte)) (image.Platform, error) {
	if cfg.Size > maxConfigBytes {
		return image.Platform{}, fmt.Errorf("config %s is %d bytes, over the %d limit", cfg.Digest, cfg.Size, maxConfigBytes)
	}
	rc, _, err := src.GetBlob(ctx, cfg, none.NoCache)
	if err != nil {
		return image.Platform{}, fmt.Errorf("reading config %s: %w", cfg.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxConfigBytes+1))
	if err != nil {
		return image.Platform{}, fmt.Errorf("reading config %s: %w", cfg.Digest, err)
	}
	if got := digest.FromBytes(b); got != cfg.Digest {
		return image.Platform{}, fmt.Errorf("config %s: registry sent content with digest %s", cfg.Digest, got)
	}
	keep(cfg.Digest, b)
	var c struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return image.Platform{}, fmt.Errorf("parsing config %s: %w", cfg.Digest, err)
	}
	if c.OS == "" || c.Architecture == "" {
		return image.Platform{}, fmt.Errorf("config %s names no os/architecture", cfg.Digest)
	}
	return image.Platform{OS: c.OS, Arch: c.Architecture, Variant: c.Variant}.Normalize(), nil
}

type choice struct {
	platform image.Platform
	digest   digest.Digest
}

// choose picks the index entries a group asks for. Attestations and
// unknown/unknown entries are never platforms.
func choose(list manifest.List, want image.PlatformSet) ([]choice, error) {
	var have []choice
	for _, d := range list.Instances() {
		inst, err := list.Instance(d)
		if err != nil {
			return nil, err
		}
		p := inst.ReadOnly.Platform
		if p == nil || p.OS == "" || p.Architecture == "" || p.OS == "unknown" || p.Architecture == "unknown" {
			continue
		}
		if image.IsAttestation(ocispec.Descriptor{Platform: p, Annotations: inst.ReadOnly.Annotations}) {
			continue
		}
		if !image.MediaType(manifest.NormalizedMIMEType(inst.MediaType)).IsManifest() {
			continue
		}
		cp := image.Platform{OS: p.OS, Arch: p.Architecture, Variant: p.Variant}.Normalize()
		if slices.ContainsFunc(have, func(c choice) bool { return c.platform == cp }) {
			continue // the first entry for a platform is the one clients pick
		}
		have = append(have, choice{platform: cp, digest: d})
	}
	if want.All {
		if len(have) == 0 {
			return nil, fmt.Errorf("%w: the index lists no image platforms", ErrPlatform)
		}
		return have, nil
	}
	var out []choice
	var missing []string
	for _, w := range want.List {
		d, err := list.ChooseInstance(&types.SystemContext{OSChoice: w.OS, ArchitectureChoice: w.Arch, VariantChoice: w.Variant})
		if err != nil || !slices.ContainsFunc(have, func(c choice) bool { return c.digest == d }) {
			missing = append(missing, w.String())
			continue
		}
		out = append(out, choice{platform: w, digest: d})
	}
	if len(missing) > 0 {
		names := make([]string, len(have))
		for i, c := range have {
			names[i] = c.platform.String()
		}
		return nil, fmt.Errorf("%w: %s (the image has %s)", ErrPlatform, strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	return out, nil
}
