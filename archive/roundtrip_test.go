package archive

import (
	"bytes"
	"context"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// Write(Read(a).WriteImages()) is a again, byte for byte, for every kind of image
// the writer takes (Docker and OCI manifests, an index with absent
// children, names merged, a digest-only name, carried artifacts) and every
// compression: the model is one set of types for both directions, and
// apply rebuilds archives from it.
func TestReadWriteRoundTrip(t *testing.T) {
	w := newWorld(t)
	sig := artifactManifest(t, w.blobs, `{"critical":{}}`, ocispec.MediaTypeImageConfig)
	sbom := artifactManifest(t, w.blobs, `{"spdxVersion":"SPDX-2.3"}`, "application/vnd.oci.empty.v1+json")
	images := append(w.images[:len(w.images):len(w.images)],
		Image{Top: sig.Descriptor, Manifests: []image.Manifest{sig}, Artifact: &Artifact{Kind: "signature", Subject: w.index.Digest, Image: "registry.k8s.io/pause:3.9", Tag: "sha256-" + w.index.Digest.Encoded() + ".sig"}},
		Image{Top: sbom.Descriptor, Manifests: []image.Manifest{sbom}, Artifact: &Artifact{Kind: "referrer", Subject: w.arm64.Digest, Image: "registry.k8s.io/pause:3.9"}},
	)
	for _, c := range []Compression{None, Gzip, Zstd} {
		opts := Options{Compression: c, ModTime: time.Unix(1700000000, 0)}
		a := writeArchive(t, images, w.blobs, opts)
		got, err := Read(context.Background(), bytes.NewReader(a), ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.ModTime != opts.ModTime.UTC() {
			t.Errorf("%s: Read's ModTime %v, written %v", c, got.ModTime, opts.ModTime)
		}
		again := writeArchive(t, got.WriteImages(), w.blobs, Options{Compression: got.Compression, ModTime: got.ModTime})
		if !bytes.Equal(a, again) {
			t.Fatalf("%s: Write(Read(a).WriteImages()) differs from a (%d vs %d bytes)", c, len(again), len(a))
		}
	}
}

// An archive written with blobs omitted (a delta) reads back to the same
// images, and writing those with every blob gives the full archive, byte
// for byte: what apply does.
func TestOmittedBlobsRoundTrip(t *testing.T) {
	w := newWorld(t)
	for _, c := range []Compression{None, Zstd} {
		opts := Options{Compression: c, ModTime: time.Unix(1700000000, 0)}
		full := writeArchive(t, w.images, w.blobs, opts)
		omitted := 0
		opts.Omit = func(d digest.Digest) bool {
			for _, img := range w.images {
				for _, m := range img.Manifests {
					for _, l := range m.Layers {
						if l.Digest == d {
							omitted++
							return true
						}
					}
				}
			}
			return false
		}
		delta := writeArchive(t, w.images, w.blobs, opts)
		if omitted == 0 || len(delta) >= len(full) {
			t.Fatalf("%s: nothing omitted (%d, %d vs %d bytes)", c, omitted, len(delta), len(full))
		}
		got, err := Read(context.Background(), bytes.NewReader(delta), ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range w.pause.Layers {
			if got.Blobs[l.Digest] != nil {
				t.Fatalf("%s: layer %s is in the delta", c, l.Digest)
			}
		}
		again := writeArchive(t, got.WriteImages(), w.blobs, Options{Compression: got.Compression, ModTime: got.ModTime})
		if !bytes.Equal(full, again) {
			t.Fatalf("%s: the delta's images with every blob are not the full archive", c)
		}
	}
}
