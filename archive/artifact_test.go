package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// artifactManifest adds to blobs an OCI manifest as cosign writes a .sig
// or an SBOM: a config and one layer that are no image's.
func artifactManifest(t *testing.T, b *memBlobs, payload string, cfgType string) image.Manifest {
	t.Helper()
	cfg := []byte(`{}`)
	layer := []byte(payload)
	cd, ld := b.add(cfg), b.add(layer)
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: cfgType, Digest: cd, Size: int64(len(cfg))},
		Layers:    []ocispec.Descriptor{{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: ld, Size: int64(len(layer)), Annotations: map[string]string{"dev.cosignproject.cosign/signature": "MEUC"}}},
	}
	m.SchemaVersion = 2
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	md := b.add(raw)
	return image.Manifest{
		Descriptor: image.Descriptor{MediaType: image.OCIManifest, Digest: md, Size: int64(len(raw))},
		Config:     image.Descriptor{MediaType: image.MediaType(cfgType), Digest: cd, Size: int64(len(cfg))},
		Layers:     []image.Descriptor{{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: ld, Size: int64(len(layer))}},
	}
}

// Artifacts are written as ordinary OCI content with their own index.json
// entries, without names and outside manifest.json, and read back as
// artifacts of their image with no problem.
func TestWriteReadArtifacts(t *testing.T) {
	w := newWorld(t)
	sig := artifactManifest(t, w.blobs, `{"critical":{}}`, ocispec.MediaTypeImageConfig)
	sbom := artifactManifest(t, w.blobs, `{"spdxVersion":"SPDX-2.3"}`, "application/vnd.oci.empty.v1+json")
	images := append(w.images[:3:3],
		Image{Top: sig.Descriptor, Manifests: []image.Manifest{sig}, Artifact: &Artifact{Kind: "signature", Subject: w.index.Digest, Image: "registry.k8s.io/pause:3.9", Tag: "sha256-" + w.index.Digest.Encoded() + ".sig"}},
		Image{Top: sbom.Descriptor, Manifests: []image.Manifest{sbom}, Artifact: &Artifact{Kind: "referrer", Subject: w.arm64.Digest, Image: "registry.k8s.io/pause:3.9"}},
	)
	plainOut := writeArchive(t, w.images[:3], w.blobs, Options{})
	out := writeArchive(t, images, w.blobs, Options{})
	fs, plain := files(t, out), files(t, plainOut)
	if string(fs["manifest.json"]) != string(plain["manifest.json"]) || string(fs["repositories"]) != string(plain["repositories"]) {
		t.Errorf("artifacts changed manifest.json or repositories:\n%s\n%s", fs["manifest.json"], plain["manifest.json"])
	}
	var idx ocispec.Index
	if err := json.Unmarshal(fs["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	var arts []ocispec.Descriptor
	for _, d := range idx.Manifests {
		if d.Annotations[AnnotationArtifactKind] != "" {
			arts = append(arts, d)
			if d.Annotations[AnnotationImageName] != "" || d.Annotations[AnnotationRefName] != "" {
				t.Errorf("artifact entry has a name: %v", d.Annotations)
			}
		}
	}
	if len(arts) != 2 || arts[0].Digest != sig.Digest || arts[0].Annotations[AnnotationArtifactTag] == "" || arts[1].Annotations[AnnotationArtifactSubject] != w.arm64.Digest.String() {
		t.Errorf("artifact entries: %+v", arts)
	}

	c := mustRead(t, out)
	if ps := append(c.Check(), c.Strays()...); len(ps) > 0 {
		t.Fatalf("problems: %v", ps)
	}
	var got []string
	for _, img := range c.Images {
		if img.Artifact != nil {
			got = append(got, img.Artifact.Kind+" "+img.Top.Digest.String()+" of "+img.Artifact.Image+" @"+img.Artifact.Subject.String())
		}
	}
	want := []string{
		"signature " + sig.Digest.String() + " of registry.k8s.io/pause:3.9 @" + w.index.Digest.String(),
		"referrer " + sbom.Digest.String() + " of registry.k8s.io/pause:3.9 @" + w.arm64.Digest.String(),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("read artifacts:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A missing artifact blob is reported like any other.
	broken := w.blobs.clone()
	delete(broken.data, sig.Layers[0].Digest)
	if _, err := tryWrite(images, broken); err == nil {
		t.Error("wrote an archive without an artifact's layer")
	}
}

func TestWriteArtifactRefusesNames(t *testing.T) {
	w := newWorld(t)
	sig := artifactManifest(t, w.blobs, "x", ocispec.MediaTypeImageConfig)
	for _, a := range []Image{
		{Names: []string{"x:1"}, Top: sig.Descriptor, Manifests: []image.Manifest{sig}, Artifact: &Artifact{Kind: "signature", Subject: w.index.Digest, Image: "x"}},
		{Top: sig.Descriptor, Manifests: []image.Manifest{sig}, Artifact: &Artifact{Kind: "signature", Subject: digest.Digest("nope"), Image: "x"}},
		{Top: sig.Descriptor, Manifests: []image.Manifest{sig}, Artifact: &Artifact{Subject: w.index.Digest, Image: "x"}},
	} {
		if _, err := tryWrite(append(w.images[:1:1], a), w.blobs); err == nil {
			t.Errorf("accepted %+v", a.Artifact)
		}
	}
}

func tryWrite(images []Image, blobs Blobs) ([]byte, error) {
	var buf bytes.Buffer
	err := Write(context.Background(), &buf, images, blobs, Options{})
	return buf.Bytes(), err
}
func TestChartName(t *testing.T) {
	for _, c := range []struct{ image, want string }{
		{"webapp:1.2.0", "charts.airgap-bundle.invalid/charts/webapp:1.2.0"},
		{"webapp:1.2.0+build.7", "charts.airgap-bundle.invalid/charts/webapp:1.2.0_build.7"},
		{"webapp", ""},
		{":1.0", ""},
	} {
		got, err := (&Artifact{Kind: KindChart, Image: c.image}).ChartName()
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("%q: %q, %v; want %q", c.image, got, err, c.want)
		}
	}
	if _, err := (&Artifact{Kind: "signature", Image: "web:1"}).ChartName(); err == nil {
		t.Error("a signature has a chart name")
	}
}
