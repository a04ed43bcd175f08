package archive

import (
	"fmt"

	"go.podman.io/image/v5/docker/reference"
)

// imageName is one image name in the forms the archive files need.
type imageName struct {
	full    string // io.containerd.image.name: "docker.io/library/busybox:1.36", "docker.io/x/y@sha256:…"
	tag     string // org.opencontainers.image.ref.name; "" for a digest-only name
	repo    string // familiar repository: "busybox", "registry.k8s.io/pause"
	repoTag string // manifest.json RepoTags: "busybox:1.36"; "" for a digest-only name
}

// parseName normalises a name as docker and containerd do (a short name is
// on docker.io, "library/" for official images, ":latest" when there is
// neither tag nor digest) and derives the forms written to the archive.
// RepoTags are fully qualified (docker.io/library/busybox:1.36), unlike
// docker save's familiar form: docker load and go-containerregistry's
// tarball reader (RKE2's lookup) normalise either form the same way, but
// podman load prefixes a familiar name with localhost/. The repositories
// file keeps the familiar form moby writes; only legacy readers use it.
func parseName(s string) (imageName, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return imageName{}, fmt.Errorf("image name %q: %w", s, err)
	}
	named = reference.TagNameOnly(named)
	tagged, isTagged := named.(reference.NamedTagged)
	_, isDigested := named.(reference.Digested)
	switch {
	case isTagged && isDigested:
		return imageName{}, fmt.Errorf("image name %q has both a tag and a digest: pass %s:%s and %s@%s as two names",
			s, named.Name(), tagged.Tag(), named.Name(), named.(reference.Digested).Digest())
	case isTagged:
		return imageName{
			full:    named.String(),
			tag:     tagged.Tag(),
			repo:    reference.FamiliarName(named),
			repoTag: named.String(),
		}, nil
	case isDigested:
		return imageName{full: named.String(), repo: reference.FamiliarName(named)}, nil
	}
	// TagNameOnly leaves every name tagged or digested.
	return imageName{}, fmt.Errorf("image name %q: neither tag nor digest", s)
}
