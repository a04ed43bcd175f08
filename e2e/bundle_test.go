package e2e

// The end-to-end proof of the build issue: archives built by the real
// airgap-bundle binary from a real docker-registry, loaded into real
// consumers.

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// The 20 images of examples/k3s-airgap.toml.
var k3sImages = []string{
	"rancher/local-path-provisioner:v0.0.26", "rancher/mirrored-coredns-coredns:1.10.1",
	"rancher/mirrored-library-busybox:1.36.1", "rancher/mirrored-library-traefik:2.10.7",
	"rancher/mirrored-metrics-server:v0.7.0", "rancher/mirrored-pause:3.6",
	"rancher/klipper-helm:v0.8.3-build20240228", "rancher/klipper-lb:v0.4.7", "tigera/operator:v1.34.0",
	"calico/cni:v3.28.0", "calico/ctl:v3.28.0", "calico/apiserver:v3.28.0", "calico/kube-controllers:v3.28.0",
	"calico/typha:v3.28.0", "calico/pod2daemon-flexvol:v3.28.0", "calico/node:v3.28.0",
	"calico/node-driver-registrar:v3.28.0", "calico/dikastes:v3.28.0", "calico/csi:v3.28.0",
	"squat/generic-device-plugin:latest",
}

var (
	toolOnce sync.Once
	toolBin  string
	toolErr  error
)

// tool builds the airgap-bundle binary from this checkout.
func tool(t *testing.T) string {
	t.Helper()
	toolOnce.Do(func() {
		dir, err := os.MkdirTemp("", "airgap-bundle-bin-")
		if err != nil {
			toolErr = err
			return
		}
		toolBin = filepath.Join(dir, "airgap-bundle")
		cmd := exec.Command("go", "build", "-tags", "containers_image_openpgp", "-o", toolBin, "./cmd/airgap-bundle")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			toolErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if toolErr != nil {
		t.Fatal(toolErr)
	}
	return toolBin
}

type entry struct {
	name, body string
	dir        bool
}

// layer builds a layer from tar entries, gzip or zstd compressed.
func layer(t *testing.T, zstd bool, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.dir {
			h = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if !e.dir {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	data := buf.Bytes()
	opts := []tarball.LayerOption{tarball.WithMediaType(types.OCILayer)}
	if zstd {
		opts = []tarball.LayerOption{tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd)}
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ociImage(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Cmd = []string{"/bin/true"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func pushT(t *testing.T, reg *testregistry.Registry, repoTag string, obj any) string {
	t.Helper()
	d, err := fixtures.Push(context.Background(), reg.Host+"/"+repoTag, obj, reg.Transport(), "", "")
	if err != nil {
		t.Fatalf("push %s: %v", repoTag, err)
	}
	return d
}

const e2eSpec = `
# The local registry plays the private mirror of docker.io: images keep
# their public names.
registries."docker.io" = { mirrors = ["%[1]s"] }
[registries."%[1]s"]
insecure = true

[[group]]
name = "k3s-airgap"
archive = "k3s-airgap.tar"
image-lists = ["k3s-images.txt"]

[[group]]
name = "multi"
archive = "multi.tar"
platforms = ["linux/amd64", "linux/arm64"]
images = ["fixtures/multi-oci:v1", "fixtures/multi-docker:v1"]

[[group]]
name = "single"
archive = "single.tar"
images = ["fixtures/single:v1", "fixtures/twotags:a", "fixtures/twotags:b"]

[[group]]
name = "multi-gz"
archive = "multi-gz.tar.gz"
platforms = ["linux/amd64", "linux/arm64"]
images = ["fixtures/multi-oci:v1", "fixtures/multi-docker:v1"]

[[group]]
name = "multi-zst"
archive = "multi-zst.tar.zst"
platforms = ["linux/amd64", "linux/arm64"]
images = ["fixtures/multi-oci:v1", "fixtures/multi-docker:v1"]

[[group]]
name = "every-platform"
archive = "every-platform.tar"
platforms = ["all"]
images = ["fixtures/multi-docker:v1"]

[[group]]
name = "filtered"
archive = "filtered.tar"
platforms = ["linux/amd64", "linux/arm64"]
index = "filtered"
images = ["fixtures/multi-oci:v1"]

[[group]]
name = "layers"
archive = "layers.tar.zst"
platforms = ["linux/%[2]s"]
images = ["e2e/whiteout:v1", "e2e/zstd-layer:v1"]

[[group]]
name = "zstd-layer"
archive = "zstd-layer.tar"
platforms = ["linux/%[2]s"]
images = ["e2e/zstd-layer:v1"]

# Five images of 900 KiB (a 300 KiB layer they share, 600 KiB each of
# their own) over a 2 MiB max-size: written as parts.
[[group]]
name = "parts"
archive = "parts.tar"
max-size = "2MiB"
images = ["e2e/part0:v1", "e2e/part1:v1", "e2e/part2:v1", "e2e/part3:v1", "e2e/part4:v1"]
`

type built struct {
	dir  string
	lock *lockfile.Lock
	std  *fixtures.Standard
	// registry digests of the extra images
	whiteout, zstdLayer string
	parts               map[string]string // docker.io name -> digest, of the parts group
	k3s                 map[string]string // docker.io name -> digest
}

var (
	buildOnce sync.Once
	bundle    built
	buildErr  string
)

// buildBundle pushes every fixture to a real docker-registry and builds the
// e2e spec with the real binary, once for all tests.
func buildBundle(t *testing.T) built {
	t.Helper()
	requireE2E(t)
	buildOnce.Do(func() {
		// A registry that outlives this first test: the others only read
		// the built archives.
		reg := testregistry.Start(t, testregistry.Options{})
		std, err := fixtures.PushStandard(context.Background(), reg.Host, reg.Transport(), "", "")
		if err != nil {
			buildErr = err.Error()
			return
		}
		b := built{std: std, k3s: map[string]string{}}
		b.whiteout = pushT(t, reg, "e2e/whiteout:v1", ociImage(t,
			layer(t, false, entry{name: "etc/", dir: true}, entry{name: "etc/keep", body: "keep"}, entry{name: "etc/gone", body: "bye"},
				entry{name: "data/", dir: true}, entry{name: "data/dir/", dir: true}, entry{name: "data/dir/old", body: "old"}),
			layer(t, false, entry{name: "etc/", dir: true}, entry{name: "etc/.wh.gone"},
				entry{name: "data/", dir: true}, entry{name: "data/dir/", dir: true}, entry{name: "data/dir/.wh..wh..opq"}, entry{name: "data/dir/new", body: "new"})))
		b.zstdLayer = pushT(t, reg, "e2e/zstd-layer:v1", ociImage(t, layer(t, true, entry{name: "zstd.txt", body: strings.Repeat("zstd layer ", 100)})))
		b.parts = map[string]string{}
		shared, err := random.Layer(300<<10, types.OCILayer)
		if err != nil {
			buildErr = err.Error()
			return
		}
		for i := range 5 {
			own, err := random.Layer(600<<10, types.OCILayer)
			if err != nil {
				buildErr = err.Error()
				return
			}
			img, err := fixtures.Assemble(fixtures.ImageSpec{Platform: fixtures.Platform{OS: "linux", Architecture: runtime.GOARCH}, OCI: true,
				Layers: []fixtures.Layer{{Layer: shared, CreatedBy: "shared"}, {Layer: own, CreatedBy: "own"}}})
			if err != nil {
				buildErr = err.Error()
				return
			}
			name := fmt.Sprintf("e2e/part%d:v1", i)
			b.parts["docker.io/"+name] = pushT(t, reg, name, img)
		}
		var list strings.Builder
		for _, name := range k3sImages {
			img, err := fixtures.Image(name, fixtures.LinuxAMD64, 1)
			if err != nil {
				buildErr = err.Error()
				return
			}
			b.k3s["docker.io/"+name] = pushT(t, reg, name, img)
			list.WriteString(name + "\n")
		}
		// Outlives this first test: the others read the archives. Rebuilt
		// from scratch on every run.
		b.dir = filepath.Join(e2eDir, "bundle")
		if err := os.RemoveAll(b.dir); err != nil {
			buildErr = err.Error()
			return
		}
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			buildErr = err.Error()
			return
		}
		os.WriteFile(filepath.Join(b.dir, "k3s-images.txt"), []byte(list.String()), 0o644)
		spec := filepath.Join(b.dir, "bundle.toml")
		os.WriteFile(spec, []byte(fmt.Sprintf(e2eSpec, reg.Host, runtime.GOARCH)), 0o644)
		cmd := exec.Command(tool(t), "build", "--cache-dir", filepath.Join(b.dir, "cache"), spec)
		cmd.Env = append(os.Environ(), "HOME="+b.dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Sprintf("airgap-bundle build: %v\n%s", err, out)
			return
		}
		if b.lock, err = lockfile.Read(filepath.Join(b.dir, "bundle.lock")); err != nil {
			buildErr = err.Error()
			return
		}
		bundle = b
	})
	if buildErr != "" {
		t.Fatal(buildErr)
	}
	return bundle
}

func (b built) archive(name string) string { return filepath.Join(b.dir, "dist", name) }

func familiar(full string) string {
	s := strings.TrimPrefix(full, "docker.io/")
	return strings.TrimPrefix(s, "library/")
}

// The classic workflow: 20 images under their public names, served by the
// private mirror, in one tarball; docker load prints every one.
func TestDockerLoadK3sBundle(t *testing.T) {
	b := buildBundle(t)
	loaded := dockerLoad(t, b.archive("k3s-airgap.tar"))
	for _, name := range k3sImages {
		if !slices.Contains(loaded, name) {
			t.Errorf("docker load did not print %s; printed %v", name, loaded)
		}
		dockerInspect(t, name)
	}
	if len(loaded) != len(k3sImages) {
		t.Errorf("docker load printed %d images, want %d: %v", len(loaded), len(k3sImages), loaded)
	}
	dockerRmi(t, k3sImages...)
}

func TestDockerLoadMultiPlatform(t *testing.T) {
	b := buildBundle(t)
	loaded := append(dockerLoad(t, b.archive("multi.tar")), dockerLoad(t, b.archive("single.tar"))...)
	for _, want := range []string{"fixtures/multi-oci:v1", "fixtures/multi-docker:v1", "fixtures/single:v1", "fixtures/twotags:a", "fixtures/twotags:b"} {
		if !slices.Contains(loaded, want) {
			t.Errorf("docker load: %s missing from %v", want, loaded)
		}
	}
	// manifest.json describes the group's first platform.
	if img := dockerInspect(t, "fixtures/multi-oci:v1"); img.Architecture != "amd64" {
		t.Errorf("docker sees %s/%s, want the group's first platform linux/amd64", img.Os, img.Architecture)
	}
	// One image under two names is one image to docker.
	if a, b := dockerInspect(t, "fixtures/twotags:a"), dockerInspect(t, "fixtures/twotags:b"); a.ID != b.ID {
		t.Errorf("twotags a and b are different images to docker: %s %s", a.ID, b.ID)
	}
	dockerRmi(t, "fixtures/multi-oci:v1", "fixtures/multi-docker:v1", "fixtures/single:v1", "fixtures/twotags:a", "fixtures/twotags:b")
}

// ctr import keeps the registry's index digest, on containerd 1.6 and 2.x.
func TestCtrImportKeepsDigests(t *testing.T) {
	b := buildBundle(t)
	want := map[string]map[string]string{
		"multi.tar": {
			"docker.io/fixtures/multi-oci:v1":    b.std.MultiOCI.Digest,
			"docker.io/fixtures/multi-docker:v1": b.std.DockerList.Digest,
		},
		"single.tar": {
			"docker.io/fixtures/single:v1": b.std.SingleOCI.Digest,
			"docker.io/fixtures/twotags:a": b.std.TwoTags.Digest,
			"docker.io/fixtures/twotags:b": b.std.TwoTags.Digest,
		},
	}
	for _, c := range []Containerd{Containerd16, Containerd2} {
		for archive, want := range want {
			t.Run(c.String()+"/"+archive, func(t *testing.T) {
				ctrClean(t, c)
				got := ctrImport(t, c, b.archive(archive), false)
				if len(got) != len(want) {
					t.Errorf("imported %v, want %v", got, want)
				}
				for name, d := range want {
					if got[name] != d {
						t.Errorf("%s: %s imported as %q, registry digest %s", c, name, got[name], d)
					}
				}
			})
		}
	}
}

// --all-platforms: fails on the default sparse index (measured, and
// documented in docs/archive-format.md), works when every child is present and with
// the filtered index. The OCI fixture's index also lists an attestation
// manifest, which is never bundled: only "filtered" makes it complete.
func TestCtrImportAllPlatforms(t *testing.T) {
	b := buildBundle(t)
	filtered := b.lock.Group("filtered").Image("docker.io/fixtures/multi-oci:v1").FilteredDigest
	if filtered == "" {
		t.Fatal("lockfile has no filtered-digest for the filtered group")
	}
	for _, c := range []Containerd{Containerd16, Containerd2} {
		t.Run(c.String(), func(t *testing.T) {
			ctrClean(t, c)
			_, out, err := ctrImportErr(t, c, b.archive("multi.tar"), true)
			if err == nil || !strings.Contains(out, "not found") {
				t.Errorf("--all-platforms on a sparse index: err=%v, want content not found; output:\n%s", err, out)
			}
			ctrClean(t, c)
			// Every child present (a manifest list without attestations).
			got := ctrImport(t, c, b.archive("every-platform.tar"), true)
			if got["docker.io/fixtures/multi-docker:v1"] != b.std.DockerList.Digest {
				t.Errorf("every-platform: %v, want %s", got, b.std.DockerList.Digest)
			}
			ctrClean(t, c)
			got = ctrImport(t, c, b.archive("filtered.tar"), true)
			if got["docker.io/fixtures/multi-oci:v1"] != filtered.String() {
				t.Errorf("filtered: %v, want the lockfile's filtered-digest %s", got, filtered)
			}
		})
	}
}

// k3s's own import call, on every compression k3s reads.
func TestK3sImport(t *testing.T) {
	b := buildBundle(t)
	for _, a := range []string{"multi.tar", "multi-gz.tar.gz", "multi-zst.tar.zst"} {
		t.Run(a, func(t *testing.T) {
			got := k3sImport(t, Containerd2, b.archive(a), K3sOpts{Clean: true})
			for name, d := range map[string]string{"docker.io/fixtures/multi-oci:v1": b.std.MultiOCI.Digest, "docker.io/fixtures/multi-docker:v1": b.std.DockerList.Digest} {
				if got[name] != d {
					t.Errorf("%s: %s = %q, want registry digest %s (all: %v)", a, name, got[name], d, got)
				}
			}
		})
	}
}

// Whiteouts are applied when containerd unpacks into overlayfs, and a
// zstd-compressed layer is taken by containerd.
func TestUnpackWhiteoutsAndZstdLayer(t *testing.T) {
	b := buildBundle(t)
	got := k3sImport(t, Containerd2, b.archive("layers.tar.zst"), K3sOpts{
		Clean:        true,
		Unpack:       "docker.io/e2e/whiteout:v1",
		CheckPresent: []string{"/etc/keep", "/data/dir/new"},
		CheckAbsent:  []string{"/etc/gone", "/data/dir/old", "/etc/.wh.gone"},
	})
	if got["docker.io/e2e/whiteout:v1"] != b.whiteout {
		t.Errorf("whiteout image digest %q, registry %s", got["docker.io/e2e/whiteout:v1"], b.whiteout)
	}
	got = k3sImport(t, Containerd2, b.archive("layers.tar.zst"), K3sOpts{
		Clean: true, Unpack: "docker.io/e2e/zstd-layer:v1", CheckPresent: []string{"/zstd.txt"},
	})
	if got["docker.io/e2e/zstd-layer:v1"] != b.zstdLayer {
		t.Errorf("zstd-layer digest %q, registry %s", got["docker.io/e2e/zstd-layer:v1"], b.zstdLayer)
	}
}

// What Docker 20.10 (Debian 12's docker.io) cannot load, pinned so the
// known limits in docs/archive-format.md stay true: a zstd-compressed
// layer (in a plain .tar), and a .tar.zst archive (docker load reads gzip,
// bzip2 and xz archives). A .tar.gz archive of gzip layers loads (TestDockerLoad*).
func TestDockerZstdLimits(t *testing.T) {
	b := buildBundle(t)
	for _, a := range []string{"zstd-layer.tar", "multi-zst.tar.zst"} {
		t.Run(a, func(t *testing.T) {
			out, stderr, err := run(dockerEnv(), envOr("DOCKER_BIN", "/usr/bin/docker"), "load", "-i", b.archive(a))
			if err == nil {
				t.Fatalf("docker load took %s: the packaged docker changed, update the known limits in docs/archive-format.md\n%s", a, out)
			}
			t.Logf("docker load %s fails, as docs/archive-format.md says: %s", a, strings.TrimSpace(stderr))
		})
	}
	if got := dockerLoad(t, b.archive("multi-gz.tar.gz")); !slices.Contains(got, "fixtures/multi-oci:v1") {
		t.Errorf("docker load of a .tar.gz: %v", got)
	}
	dockerRmi(t, "fixtures/multi-oci:v1", "fixtures/multi-docker:v1")
}

func TestPodmanAndSkopeo(t *testing.T) {
	b := buildBundle(t)
	loaded := podmanLoad(t, b.archive("multi.tar"))
	for _, want := range []string{"docker.io/fixtures/multi-oci:v1", "docker.io/fixtures/multi-docker:v1"} {
		if !slices.Contains(loaded, want) {
			t.Errorf("podman load: %s missing from %v", want, loaded)
		}
	}
	info := skopeoInspect(t, "docker-archive:"+b.archive("k3s-airgap.tar")+":docker.io/rancher/mirrored-pause:3.6")
	if info.Digest == "" || info.Os != "linux" || info.Architecture != "amd64" {
		t.Errorf("skopeo inspect docker-archive: %+v", info)
	}
}
