package archive

import (
	"fmt"

	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// The archive model is one set of types for both directions: Write takes
// the Images that Read returns. Fields marked "read only" are filled by Read
// and ignored by Write, which derives everything it writes from the
// descriptors.

// Image is one image of an archive.
type Image struct {
	// Names are the image's names, each either tagged
	// ("docker.io/library/busybox:1.36") or digest-only
	// ("docker.io/x/y@sha256:…"). A short name is normalised as docker does
	// ("busybox" is docker.io/library/busybox:latest). A name with both a
	// tag and a digest is refused: pass "repo:tag" and "repo@digest" as two
	// names if both are wanted. A digest-only name is written as given even
	// when Top has another digest (a filtered index), so containerd finds
	// the image under the digest it was pinned by.
	//
	// Read gives them as the archive writes them: io.containerd.image.name
	// (else org.opencontainers.image.ref.name) of index.json entries, or
	// the RepoTags of a Docker archive.
	Names []string
	// Top is what the names point at and what index.json lists: the
	// registry's own manifest, or its (original or filtered) index. Zero in
	// a Docker archive, which has no index.json.
	Top image.Descriptor
	// Manifests are the platform manifests the archive includes, in the
	// group's platform order (as read: in index order, attestations
	// included). manifest.json describes Manifests[0]. For a
	// single-manifest image, Manifests has one element whose Descriptor
	// equals Top. For an index, only the manifests listed here (and their
	// blobs) are written; children of other platforms are absent.
	Manifests []image.Manifest

	// Absent are the children an index lists that are not in the archive
	// (other platforms, in "original" index mode): Descriptor, Platform and
	// Attestation only. Read only.
	Absent []image.Manifest
	// Inner are the indexes below Top the archive holds (an index of
	// indexes). Read only.
	Inner []image.Descriptor
	// Docker is the manifest.json entry that describes the image, nil when
	// none does. Read only.
	Docker *DockerLink
	// Artifact, when set, makes this a signature, SBOM or attestation
	// carried for an image: Names are empty, and index.json lists it under
	// artifact annotations only (see AnnotationArtifactKind).
	Artifact *Artifact
}

// DockerLink ties an image to its manifest.json entry.
type DockerLink struct {
	Entry int // index in Contents.DockerManifest
	// Manifest is the index in Image.Manifests of the platform whose
	// config and layers the entry lists; nil when they are none of them.
	Manifest *int
}

// Label names the image in messages: its first name, else its top digest,
// else its manifest.json entry.
func (img Image) Label() string {
	switch {
	case img.Artifact != nil && len(img.Names) == 0:
		return fmt.Sprintf("%s %s of %s", img.Artifact.Kind, img.Top.Digest, img.Artifact.Image)
	case len(img.Names) > 0:
		return img.Names[0]
	case img.Top == (image.Descriptor{}) && img.Docker != nil:
		return fmt.Sprintf("manifest.json entry %d", img.Docker.Entry)
	}
	return img.Top.Digest.String()
}

// eachDescriptor calls f for the top, and each manifest, config and layer.
func (img Image) eachDescriptor(f func(image.Descriptor)) {
	if img.Top.Digest != "" {
		f(img.Top)
	}
	for _, m := range img.Manifests {
		if m.Digest != "" {
			f(m.Descriptor)
		}
		f(m.Config)
		for _, l := range m.Layers {
			f(l)
		}
	}
}

// References is every digest img references (top, manifests, configs,
// layers), present in the archive or not.
func (img Image) References() map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	img.eachDescriptor(func(d image.Descriptor) {
		if d.Digest != "" {
			out[d.Digest] = true
		}
	})
	return out
}

// manifestLabel names m's platform in messages: "linux/amd64", or the
// manifest digest when the platform is unknown.
func manifestLabel(m image.Manifest) string {
	switch {
	case m.Platform != "":
		return m.Platform
	case m.Digest != "":
		return "manifest " + m.Digest.String()
	}
	return "config " + m.Config.Digest.String()
}
