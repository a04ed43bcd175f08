package bundler

import (
	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// CacheReferences lists the blobs of the cache at dir that the lockfiles'
// images use: every pinned manifest, index, filtered index, config and
// signature and artefact manifest, and the layers and configs their
// manifests (read from the cache) name. A manifest the cache lacks leaves
// its layers unknown: they are listed in missing, and whoever prunes
// should know.
func CacheReferences(dir string, locks []*lockfile.Lock) (refs map[digest.Digest]bool, missing []digest.Digest) {
	refs = map[digest.Digest]bool{}
	manifest := func(d digest.Digest, mt image.MediaType) {
		refs[d] = true
		blob, err := cache.ReadSmall(dir, d, image.MaxManifestSize)
		if err != nil {
			missing = append(missing, d)
			return
		}
		m, err := image.ParseManifest(blob, mt)
		if err != nil && mt != image.DockerManifest {
			m, err = image.ParseManifest(blob, image.DockerManifest)
		}
		if err != nil {
			return
		}
		refs[m.Config.Digest] = true
		for _, l := range m.Layers {
			refs[l.Digest] = true
		}
	}
	for _, l := range locks {
		for _, g := range l.Groups {
			for _, e := range g.Images {
				refs[e.Digest] = true
				if e.FilteredDigest != "" {
					refs[e.FilteredDigest] = true
				}
				for _, p := range e.Platforms {
					refs[p.Config] = true
					manifest(p.Digest, p.MediaType)
				}
				for _, a := range e.Artifacts {
					manifest(a.Digest, a.MediaType)
				}
				for _, s := range e.Signatures {
					manifest(s.Digest, image.OCIManifest)
				}
			}
		}
	}
	return refs, missing
}
