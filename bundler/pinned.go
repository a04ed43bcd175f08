package bundler

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// pinned.go: the documents a build fetched, checked against every field
// of the lockfile entry that pins them.
//
// Digests pin content, so what the registry serves for a locked digest
// cannot drift; a fetched document that disagrees with another field of the
// lockfile means the lockfile was edited or damaged. build --locked must
// not write an archive that verify would then reject, so every field is
// checked against the documents before anything is written.

// lockMismatch is a lockfile field that the fetched content contradicts.
func lockMismatch(field string, locked, actual any) error {
	return &errdefs.Error{Class: errdefs.ErrLockfile, Msg: fmt.Sprintf(
		"the lockfile's %s is %v, but the content it pins says %v: the lockfile was edited or is damaged; restore it from version control or run \"airgap-bundle lock --update\"",
		field, locked, actual)}
}

// checkIndexAgainstLock checks a locked index blob: its media type, and
// that it lists each locked platform's manifest under that platform and
// media type.
func checkIndexAgainstLock(blob []byte, e *lockfile.Image) error {
	var idx struct {
		MediaType image.MediaType      `json:"mediaType"`
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    json.RawMessage      `json:"config"`
	}
	if err := json.Unmarshal(blob, &idx); err != nil {
		return fmt.Errorf("index %s: %w", e.Digest, err)
	}
	switch {
	case idx.MediaType != "" && idx.MediaType != e.MediaType:
		return lockMismatch("media-type", e.MediaType, idx.MediaType)
	case idx.Manifests == nil || idx.Config != nil:
		return lockMismatch("media-type", e.MediaType, "an image manifest, not an index")
	}
	for _, pl := range e.Platforms {
		want, err := image.ParsePlatform(pl.Platform)
		if err != nil {
			return lockMismatch("platform", pl.Platform, err)
		}
		found := false
		for _, d := range idx.Manifests {
			if d.Digest != pl.Digest {
				continue
			}
			found = true
			if image.MediaType(d.MediaType) != pl.MediaType {
				return lockMismatch("media-type of platform "+pl.Platform, pl.MediaType, d.MediaType)
			}
			if d.Platform == nil {
				return lockMismatch("platform of "+pl.Digest.String(), pl.Platform, "an index entry without a platform")
			}
			got := image.Platform{OS: d.Platform.OS, Arch: d.Platform.Architecture, Variant: d.Platform.Variant}.Normalize()
			if got != want {
				return lockMismatch("platform of "+pl.Digest.String(), pl.Platform, got)
			}
		}
		if !found {
			return lockMismatch("digest of platform "+pl.Platform, pl.Digest, "no such entry in index "+e.Digest)
		}
	}
	return nil
}

// checkIndexSize checks an index image's total size, once its platforms
// are known to match their entries.
func checkIndexSize(blob []byte, e *lockfile.Image) error {
	size := int64(len(blob))
	for _, pl := range e.Platforms {
		size += pl.Size
	}
	if size != e.Size {
		return lockMismatch("size", e.Size, size)
	}
	return nil
}

// checkManifestAgainstLock checks one platform manifest against its entry.
func checkManifestAgainstLock(m image.Manifest, pl *lockfile.Platform) error {
	if m.Config.Digest != pl.Config {
		return lockMismatch("config of platform "+pl.Platform, pl.Config, m.Config.Digest)
	}
	if got := m.TotalSize(); got != pl.Size {
		return lockMismatch("size of platform "+pl.Platform, pl.Size, got)
	}
	return nil
}

// checkConfigPlatform checks a single-platform image's config (which
// alone says its platform) against the locked platform.
func checkConfigPlatform(cfg []byte, pl *lockfile.Platform) error {
	var c struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return fmt.Errorf("config %s: %w", pl.Config, err)
	}
	got := image.Platform{OS: c.OS, Arch: c.Architecture, Variant: c.Variant}.Normalize()
	want, err := image.ParsePlatform(pl.Platform)
	if err != nil {
		return lockMismatch("platform", pl.Platform, err)
	}
	if got != want {
		return lockMismatch("platform", pl.Platform, got)
	}
	return nil
}
