package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// memBlobs is an in-memory Blobs that counts opens and can serve wrong
// content for a digest.
type memBlobs struct {
	mu    sync.Mutex
	data  map[digest.Digest][]byte
	bad   map[digest.Digest][]byte // served instead of data
	opens map[digest.Digest]int
}

func newMemBlobs() *memBlobs {
	return &memBlobs{data: map[digest.Digest][]byte{}, bad: map[digest.Digest][]byte{}, opens: map[digest.Digest]int{}}
}

func (m *memBlobs) add(b []byte) digest.Digest {
	d := digest.FromBytes(b)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[d] = b
	return d
}

func (m *memBlobs) Open(_ context.Context, d image.Descriptor) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opens[d.Digest]++
	if b, ok := m.bad[d.Digest]; ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	b, ok := m.data[d.Digest]
	if !ok {
		return nil, fmt.Errorf("no blob %s", d.Digest)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// clone returns a copy of m's blobs with fresh open counts.
func (m *memBlobs) clone() *memBlobs {
	c := newMemBlobs()
	for k, v := range m.data {
		c.data[k] = v
	}
	return c
}

// withBad returns a copy of m that serves content for d instead of the real
// blob.
func (m *memBlobs) withBad(d digest.Digest, content []byte) *memBlobs {
	c := m.clone()
	c.bad[d] = content
	return c
}

// gzTar is a deterministic gzip-compressed tar holding files.
func gzTar(t testing.TB, files ...string) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for i := 0; i+1 < len(files); i += 2 {
		body := []byte(files[i+1])
		hdr := &tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz.Bytes()
}

// testLayer is a layer whose compressed bytes are blob, as given.
func testLayer(t testing.TB, blob []byte, mt types.MediaType) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob)), nil
	}, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage builds an image of the given manifest type and platform from
// layers, registers every blob in blobs and returns the image and its
// Manifest as ParseManifest reads it.
func testImage(t testing.TB, blobs *memBlobs, oci bool, arch string, layers ...v1.Layer) (v1.Image, image.Manifest) {
	t.Helper()
	img := empty.Image
	mt, cmt := types.DockerManifestSchema2, types.DockerConfigJSON
	if oci {
		mt, cmt = types.OCIManifestSchema1, types.OCIConfigJSON
	}
	img = mutate.MediaType(img, mt)
	img = mutate.ConfigMediaType(img, cmt)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Config.Cmd = []string{"/bin/" + arch}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	blobs.add(raw)
	blobs.add(rawCfg)
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		blobs.add(b)
	}
	m, err := image.ParseManifest(raw, image.MediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return img, m
}

// testIndex builds an OCI index (or Docker list) of images with platforms,
// registers it in blobs and returns its raw bytes and descriptor.
func testIndex(t testing.TB, blobs *memBlobs, oci bool, imgs []v1.Image, archs []string) ([]byte, image.Descriptor) {
	t.Helper()
	mt := types.DockerManifestList
	if oci {
		mt = types.OCIImageIndex
	}
	idx := mutate.IndexMediaType(empty.Index, mt)
	for i, img := range imgs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				Platform:    &v1.Platform{OS: "linux", Architecture: archs[i]},
				Annotations: map[string]string{"test.arch": archs[i]},
			},
		})
	}
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	d := blobs.add(raw)
	return raw, image.Descriptor{MediaType: image.MediaType(mt), Digest: d, Size: int64(len(raw))}
}

// world is the set of test images.
type world struct {
	blobs *memBlobs

	pause, busybox, digestOnly image.Manifest // single-manifest images
	amd64, arm64, s390x        image.Manifest // children of the index
	index                      image.Descriptor
	indexRaw                   []byte

	images []Image
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{blobs: newMemBlobs()}
	b := w.blobs
	base := testLayer(t, gzTar(t, "etc/base", "base layer"), types.DockerLayer)
	pauseL := testLayer(t, gzTar(t, "pause", "pause binary"), types.DockerLayer)
	extra := testLayer(t, gzTar(t, "usr/bin/y", "y tool"), types.DockerLayer)
	shared := testLayer(t, gzTar(t, "lib/libc.so", "shared libc"), types.OCILayer)
	bb := testLayer(t, gzTar(t, "bin/busybox", "busybox"), types.OCILayer)
	a64 := testLayer(t, gzTar(t, "pause", "amd64 pause"), types.OCILayer)
	arm := testLayer(t, gzTar(t, "pause", "arm64 pause"), types.OCILayer)
	s390 := testLayer(t, gzTar(t, "pause", "s390x pause"), types.OCILayer)

	_, w.pause = testImage(t, b, false, "amd64", base, pauseL)
	_, w.busybox = testImage(t, b, true, "amd64", shared, bb)
	_, w.digestOnly = testImage(t, b, false, "amd64", base, extra)
	imgAMD, amd := testImage(t, b, true, "amd64", shared, a64)
	imgARM, armM := testImage(t, b, true, "arm64", shared, arm)
	imgS390, s390M := testImage(t, b, true, "s390x", s390)
	w.amd64, w.arm64, w.s390x = amd, armM, s390M
	w.indexRaw, w.index = testIndex(t, b, true, []v1.Image{imgAMD, imgARM, imgS390}, []string{"amd64", "arm64", "s390x"})
	// The s390x child is not part of the archive ("original" index mode).
	for _, d := range []digest.Digest{s390M.Digest, s390M.Config.Digest, s390M.Layers[0].Digest} {
		delete(b.data, d)
	}

	w.images = []Image{
		{Names: []string{"docker.io/rancher/mirrored-pause:3.6"}, Top: w.pause.Descriptor, Manifests: []image.Manifest{w.pause}},
		{Names: []string{"docker.io/library/busybox:1.36", "busybox"}, Top: w.busybox.Descriptor, Manifests: []image.Manifest{w.busybox}},
		// Platform order arm64, amd64: manifest.json describes arm64.
		{Names: []string{"registry.k8s.io/pause:3.9"}, Top: w.index, Manifests: []image.Manifest{w.arm64, w.amd64}},
		{Names: []string{"quay.io/x/y@" + w.digestOnly.Digest.String()}, Top: w.digestOnly.Descriptor, Manifests: []image.Manifest{w.digestOnly}},
		// The pause image again under its digest name: merged with the first.
		{Names: []string{"docker.io/rancher/mirrored-pause@" + w.pause.Digest.String()}, Top: w.pause.Descriptor, Manifests: []image.Manifest{w.pause}},
	}
	return w
}

// randomBytes is n pseudo-random (incompressible) bytes from seed.
func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}
