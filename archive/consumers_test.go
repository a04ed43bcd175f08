package archive

// Consumers that run without a daemon read the archives written here:
// go-containerregistry's tarball reader (what RKE2 uses to find its runtime
// image by RepoTag in manifest.json) and OCI layout reader, containers/image's
// oci-archive and docker-archive transports in-process (the library podman and
// skopeo are built on), and the skopeo binary when it is installed.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"
	ocilayout "go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// consumerCase is one name as a consumer looks it up.
type consumerCase struct {
	full    string         // the canonical name
	repoTag string         // manifest.json RepoTag form
	refName string         // index.json ref.name
	top     []byte         // raw top blob
	first   image.Manifest // manifest.json's platform
	all     []image.Manifest
}

func consumerCases(w *world) []consumerCase {
	return []consumerCase{
		{"docker.io/rancher/mirrored-pause:3.6", "rancher/mirrored-pause:3.6", "3.6", w.blobs.data[w.pause.Digest], w.pause, []image.Manifest{w.pause}},
		{"docker.io/library/busybox:1.36", "busybox:1.36", "1.36", w.blobs.data[w.busybox.Digest], w.busybox, []image.Manifest{w.busybox}},
		{"docker.io/library/busybox:latest", "busybox:latest", "latest", w.blobs.data[w.busybox.Digest], w.busybox, []image.Manifest{w.busybox}},
		{"registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "3.9", w.indexRaw, w.arm64, []image.Manifest{w.arm64, w.amd64}},
	}
}

func writeArchiveFile(t *testing.T, w *world, c Compression) string {
	t.Helper()
	ext := map[Compression]string{None: ".tar", Gzip: ".tar.gz", Zstd: ".tar.zst"}[c]
	path := filepath.Join(t.TempDir(), "images"+ext)
	if err := os.WriteFile(path, writeArchive(t, w.images, w.blobs, Options{Compression: c, ModTime: testTime}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConsumerGGCRTarball reads manifest.json as RKE2 does: by RepoTag, with
// go-containerregistry's tarball reader.
func TestConsumerGGCRTarball(t *testing.T) {
	w := newWorld(t)
	path := writeArchiveFile(t, w, None)
	for _, tc := range consumerCases(w) {
		for _, ref := range []string{tc.repoTag, tc.full} {
			tag, err := name.NewTag(ref)
			if err != nil {
				t.Fatal(err)
			}
			img, err := tarball.ImageFromPath(path, &tag)
			if err != nil {
				t.Errorf("%s: %v", ref, err)
				continue
			}
			cfg, err := img.RawConfigFile()
			if err != nil || !bytes.Equal(cfg, w.blobs.data[tc.first.Config.Digest]) {
				t.Errorf("%s: config differs (%v)", ref, err)
			}
			layers, err := img.Layers()
			if err != nil || len(layers) != len(tc.first.Layers) {
				t.Fatalf("%s: layers %d, %v", ref, len(layers), err)
			}
			for i, l := range layers {
				if d, _ := l.Digest(); d.String() != tc.first.Layers[i].Digest.String() {
					t.Errorf("%s: layer %d digest %s, want %s", ref, i, d, tc.first.Layers[i].Digest)
				}
			}
			if err := checkLayers(img); err != nil {
				t.Errorf("%s: %v", ref, err)
			}
		}
	}
	if _, err := tarball.ImageFromPath(path, nil); err == nil {
		t.Error("a multi-image archive opened without a tag")
	}
}

// extract unpacks an uncompressed archive into a new directory.
func extract(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, e := range readTar(t, b) {
		p := filepath.Join(dir, filepath.FromSlash(e.hdr.Name))
		if e.hdr.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, e.body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestConsumerGGCRLayout reads the OCI side with go-containerregistry's
// layout package and validates every included image.
func TestConsumerGGCRLayout(t *testing.T) {
	w := newWorld(t)
	dir := extract(t, writeArchiveFile(t, w, None))
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 6 {
		t.Fatalf("%d entries", len(im.Manifests))
	}
	for _, d := range im.Manifests {
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []image.Manifest{w.arm64, w.amd64} {
				h, err := v1.NewHash(m.Digest.String())
				if err != nil {
					t.Fatal(err)
				}
				img, err := child.Image(h)
				if err != nil {
					t.Fatal(err)
				}
				if err := checkLayers(img); err != nil {
					t.Errorf("%s %s: %v", d.Annotations[AnnotationImageName], m.Digest, err)
				}
			}
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkLayers(img); err != nil {
			t.Errorf("%s: %v", d.Annotations[AnnotationImageName], err)
		}
	}
}

// TestConsumerContainersImage opens every name through containers/image's
// OCI layout transport (the library under podman and skopeo, at the version
// this module requires), by ref.name, and reads every blob back. Its
// oci-archive transport is that plus unpacking the tar; docker-archive is
// covered by TestConsumerGGCRTarball and TestConsumerSkopeo.
func TestConsumerContainersImage(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	dir := extract(t, writeArchiveFile(t, w, None))
	for _, tc := range consumerCases(w) {
		ref, err := ocilayout.NewReference(dir, tc.refName)
		if err != nil {
			t.Fatal(err)
		}
		src, err := ref.NewImageSource(ctx, &types.SystemContext{})
		if err != nil {
			t.Fatalf("oci:%s: %v", tc.refName, err)
		}
		raw, mt, err := src.GetManifest(ctx, nil)
		if err != nil || !bytes.Equal(raw, tc.top) || mt != manifest.GuessMIMEType(tc.top) {
			t.Errorf("oci:%s: top manifest differs (%s, %v)", tc.refName, mt, err)
		}
		for _, m := range tc.all {
			d := m.Digest
			raw, _, err := src.GetManifest(ctx, &d)
			if err != nil || !bytes.Equal(raw, w.blobs.data[d]) {
				t.Errorf("oci:%s: manifest %s differs (%v)", tc.refName, d, err)
			}
			for _, b := range append([]image.Descriptor{m.Config}, m.Layers...) {
				readBlob(t, ctx, src, b, w.blobs.data[b.Digest])
			}
		}
		src.Close()
	}
	// The digest-only image has no ref.name; it is reachable by position.
	ref, err := ocilayout.NewIndexReference(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	src, err := ref.NewImageSource(ctx, &types.SystemContext{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if raw, _, err := src.GetManifest(ctx, nil); err != nil || !bytes.Equal(raw, w.blobs.data[w.digestOnly.Digest]) {
		t.Errorf("oci:@5: manifest differs (%v)", err)
	}
}

func readBlob(t *testing.T, ctx context.Context, src types.ImageSource, d image.Descriptor, want []byte) {
	t.Helper()
	rc, _, err := src.GetBlob(ctx, types.BlobInfo{Digest: d.Digest, Size: d.Size}, none.NoCache)
	if err != nil {
		t.Errorf("blob %s: %v", d.Digest, err)
		return
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("blob %s differs (%v)", d.Digest, err)
	}
}

// TestConsumerSkopeo runs the skopeo binary on the archive. It is skipped
// when skopeo is not installed, unless AIRGAP_BUNDLE_REQUIRE_INTEGRATION=1.
func TestConsumerSkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Getenv("AIRGAP_BUNDLE_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("skopeo is not installed and AIRGAP_BUNDLE_REQUIRE_INTEGRATION=1")
		}
		t.Skip("skopeo is not installed")
	}
	w := newWorld(t)
	tmp := t.TempDir()
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(skopeo, args...)
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}
	for _, c := range []Compression{None, Gzip, Zstd} {
		path := writeArchiveFile(t, w, c)
		for _, tc := range consumerCases(w) {
			// skopeo 1.9 (containers/image 5.23) looks up only entries with
			// OCI media types by ref.name; newer versions also take Docker
			// schema 2 entries (TestConsumerContainersImage covers those).
			if tc.first.MediaType == image.OCIManifest {
				if got := run("inspect", "--raw", "oci-archive:"+path+":"+tc.refName); !bytes.Equal(got, tc.top) {
					t.Errorf("%s: oci-archive:%s: raw manifest differs", c, tc.refName)
				}
			}
			if c == Gzip {
				// skopeo 1.9 fails with "loading tar component
				// manifest.json: unexpected EOF" on every gzip
				// docker-archive, its own output included.
				continue
			}
			if got := run("inspect", "--config", "--raw", "docker-archive:"+path+":"+tc.repoTag); !bytes.Equal(got, w.blobs.data[tc.first.Config.Digest]) {
				t.Errorf("%s: docker-archive:%s: config differs", c, tc.repoTag)
			}
		}
		// The digest-only image is reachable by position in manifest.json.
		if c != Gzip {
			if got := run("inspect", "--config", "--raw", "docker-archive:"+path+":@3"); !bytes.Equal(got, w.blobs.data[w.digestOnly.Config.Digest]) {
				t.Errorf("%s: docker-archive @3: config differs", c)
			}
		}
	}

	// Full copies: skopeo verifies every blob's digest (and, from
	// docker-archive, every layer's DiffID).
	path := writeArchiveFile(t, w, None)
	dir := filepath.Join(tmp, "oci-copy")
	run("copy", "--insecure-policy", "oci-archive:"+path+":1.36", "dir:"+dir)
	if got, _ := os.ReadFile(filepath.Join(dir, "manifest.json")); !bytes.Equal(got, w.blobs.data[w.busybox.Digest]) {
		t.Error("oci-archive copy: manifest differs from the registry's")
	}
	for _, l := range w.busybox.Layers {
		if got, _ := os.ReadFile(filepath.Join(dir, l.Digest.Encoded())); !bytes.Equal(got, w.blobs.data[l.Digest]) {
			t.Errorf("oci-archive copy: layer %s differs", l.Digest)
		}
	}
	dir = filepath.Join(tmp, "docker-copy")
	run("copy", "--insecure-policy", "docker-archive:"+path+":rancher/mirrored-pause:3.6", "dir:"+dir)
	var m struct {
		Config struct{ Digest digest.Digest }
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err := json.Unmarshal(raw, &m); err != nil || m.Config.Digest != w.pause.Config.Digest {
		t.Errorf("docker-archive copy: config %s (%v), want %s", m.Config.Digest, err, w.pause.Config.Digest)
	}
}

// checkLayers recomputes what a loader checks: the config digest, each
// layer's digest over its stored bytes and its DiffID over the decompressed
// tar, against the config's rootfs.diff_ids.
func checkLayers(img v1.Image) error {
	cfgRaw, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	if cfgName.String() != digest.FromBytes(cfgRaw).String() {
		return fmt.Errorf("config digest %s, content %s", cfgName, digest.FromBytes(cfgRaw))
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return fmt.Errorf("%d layers, %d diff_ids", len(layers), len(cfg.RootFS.DiffIDs))
	}
	for i, l := range layers {
		want, err := l.Digest()
		if err != nil {
			return err
		}
		if got, err := digestOf(l.Compressed); err != nil || got != want.String() {
			return fmt.Errorf("layer %d: digest %s, content %s (%v)", i, want, got, err)
		}
		if got, err := digestOf(l.Uncompressed); err != nil || got != cfg.RootFS.DiffIDs[i].String() {
			return fmt.Errorf("layer %d: diff_id %s, content %s (%v)", i, cfg.RootFS.DiffIDs[i], got, err)
		}
	}
	return nil
}

func digestOf(open func() (io.ReadCloser, error)) (string, error) {
	rc, err := open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	d, err := digest.FromReader(rc)
	return d.String(), err
}
