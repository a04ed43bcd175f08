package image

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// MediaType is a manifest, index or blob media type.
type MediaType string

// The manifest and index media types an image can have. Adding a media type
// means adding it here and to IsIndex or IsManifest; every reader and
// writer asks these methods.
const (
	OCIManifest    MediaType = ocispec.MediaTypeImageManifest
	OCIIndex       MediaType = ocispec.MediaTypeImageIndex
	DockerManifest MediaType = "application/vnd.docker.distribution.manifest.v2+json"
	DockerList     MediaType = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// IndexTypes and ManifestTypes list the media types IsIndex and IsManifest
// accept, for messages and schemas.
var (
	IndexTypes    = []MediaType{OCIIndex, DockerList}
	ManifestTypes = []MediaType{OCIManifest, DockerManifest}
)

// IsIndex reports whether m is an image index (OCI index or Docker
// manifest list).
func (m MediaType) IsIndex() bool { return m == OCIIndex || m == DockerList }

// IsManifest reports whether m is a single-platform image manifest (OCI or
// Docker schema 2).
func (m MediaType) IsManifest() bool { return m == OCIManifest || m == DockerManifest }

// IsImage reports whether m is a manifest or an index: something a
// reference can point at and the tool can bundle.
func (m MediaType) IsImage() bool { return m.IsIndex() || m.IsManifest() }

func (m MediaType) String() string { return string(m) }

// Annotations BuildKit sets on an attestation manifest's index entry.
const (
	AnnotationReferenceType = "vnd.docker.reference.type"
	AttestationManifest     = "attestation-manifest"
)

// IsAttestation reports whether an index entry is a BuildKit attestation
// manifest (annotated as one, or with platform unknown/unknown): never a
// platform of the image, whatever its media type says.
func IsAttestation(d ocispec.Descriptor) bool {
	if d.Annotations[AnnotationReferenceType] == AttestationManifest {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}
