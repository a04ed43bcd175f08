package archive

import (
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// An archive may carry, beside its images, the signatures, SBOMs and
// attestations attached to them: each is an ordinary OCI manifest with its
// blobs and its own index.json entry, which has none of the name
// annotations (io.containerd.image.name, org.opencontainers.image.ref.name)
// and is not in manifest.json, so docker load, containerd's import (k3s,
// RKE2) and podman load make no image of it. These annotations say what it
// is and what it belongs to.
const (
	AnnotationArtifactKind    = "dev.airgap-bundle.artifact.kind"    // signature, attestation, sbom, referrer
	AnnotationArtifactSubject = "dev.airgap-bundle.artifact.subject" // the manifest it is attached to
	AnnotationArtifactImage   = "dev.airgap-bundle.artifact.image"   // the image's name in this archive
	AnnotationArtifactTag     = "dev.airgap-bundle.artifact.tag"     // cosign's tag for it (sha256-<hex>.sig), if any
)

// KindChart is the kind of a Helm chart carried in an archive (its OCI
// form, as helm push stores it): it belongs to no image, so it has no
// subject, and Artifact.Image is the chart's NAME:VERSION.
const KindChart = "chart"

// ChartsDomain is the registry of the name a carried chart goes by when
// pushed or served: none of the images', so the chart is
// TARGET/PREFIX/charts/NAME:VERSION whatever the naming of images.
const ChartsDomain = "charts.airgap-bundle.invalid"

// ChartName is the name a chart artifact is pushed and served under:
// ChartsDomain/charts/NAME:TAG, the tag its version as helm push tags it
// (a tag cannot hold "+": "_" stands for it).
func (a *Artifact) ChartName() (string, error) {
	name, version, ok := strings.Cut(a.Image, ":")
	if a.Kind != KindChart || !ok || name == "" || version == "" {
		return "", fmt.Errorf("chart %q: not NAME:VERSION", a.Image)
	}
	return ChartsDomain + "/charts/" + name + ":" + strings.ReplaceAll(version, "+", "_"), nil
}

// Artifact says what an artifact entry of an archive is.
type Artifact struct {
	Kind    string
	Subject digest.Digest
	Image   string // the name of the image it belongs to
	Tag     string // "" for a referrer
}

func (a *Artifact) annotations() map[string]string {
	ann := map[string]string{
		AnnotationArtifactKind:  a.Kind,
		AnnotationArtifactImage: a.Image,
	}
	if a.Subject != "" {
		ann[AnnotationArtifactSubject] = a.Subject.String()
	}
	if a.Tag != "" {
		ann[AnnotationArtifactTag] = a.Tag
	}
	return ann
}

// artifactOf reads an index.json entry's artifact annotations; nil for an
// image.
func artifactOf(d ocispec.Descriptor) *Artifact {
	kind := d.Annotations[AnnotationArtifactKind]
	if kind == "" {
		return nil
	}
	return &Artifact{
		Kind:    kind,
		Subject: digest.Digest(d.Annotations[AnnotationArtifactSubject]),
		Image:   d.Annotations[AnnotationArtifactImage],
		Tag:     d.Annotations[AnnotationArtifactTag],
	}
}

// checkArtifact checks an artifact's shape for Write.
func checkArtifact(img Image) error {
	a := img.Artifact
	switch {
	case len(img.Names) > 0:
		return fmt.Errorf("artifact %s has names: it must stay invisible to loaders", img.Top.Digest)
	case a.Kind == "" || a.Image == "":
		return fmt.Errorf("artifact %s: kind and image are required", img.Top.Digest)
	case a.Kind == KindChart && a.Subject != "":
		return fmt.Errorf("chart %s: a chart has no subject", img.Top.Digest)
	case a.Kind != KindChart && a.Subject.Validate() != nil:
		return fmt.Errorf("artifact %s: subject %q: not a digest", img.Top.Digest, a.Subject)
	}
	return nil
}
