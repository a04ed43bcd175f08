package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

const (
	smokeRef    = "docker.io/airgap-e2e/smoke:1"
	smokeFamily = "airgap-e2e/smoke:1"
)

// tarLayer builds an uncompressed layer tar; a nil content means a directory.
func tarLayer(t testing.TB, files []struct{ name, content string }) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f.content))}
		if strings.HasSuffix(f.name, "/") {
			h = &tar.Header{Name: f.name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// buildSmokeOCILayout writes a 2-layer linux/GOARCH image into an OCI layout
// dir (tag "1"): layer 1 adds /etc/hello.txt and /etc/doomed.txt, layer 2
// deletes /etc/doomed.txt with a whiteout and adds /etc/added.txt.
func buildSmokeOCILayout(t testing.TB, dir string) {
	t.Helper()
	l1 := tarLayer(t, []struct{ name, content string }{{"etc/", ""}, {"etc/hello.txt", "hello\n"}, {"etc/doomed.txt", "bye\n"}})
	l2 := tarLayer(t, []struct{ name, content string }{{"etc/", ""}, {"etc/.wh.doomed.txt", ""}, {"etc/added.txt", "added\n"}})
	// OCI media types throughout: skopeo 1.9 does not accept docker types in an oci: layout.
	oci := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	base, err := mutate.ConfigFile(oci, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Config:       v1.Config{Cmd: []string{"/bin/true"}, Labels: map[string]string{"airgap-e2e": "smoke"}},
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1"})); err != nil {
		t.Fatal(err)
	}
}

func compressFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	switch {
	case strings.HasSuffix(dst, ".gz"):
		zw := gzip.NewWriter(&buf)
		zw.Write(in)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	case strings.HasSuffix(dst, ".zst"):
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(in)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("compressFile: unknown extension %s", dst)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHarnessSmoke proves every consumer in the harness works on a known-good
// archive made by skopeo (docker-archive) from a go-containerregistry OCI layout.
func TestHarnessSmoke(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	if d := os.Getenv("E2E_DEBUG_DIR"); d != "" {
		dir = d
	}
	layoutDir := filepath.Join(dir, "oci")
	buildSmokeOCILayout(t, layoutDir)

	archive := filepath.Join(dir, "smoke.tar")
	mustRun(t, nil, "skopeo", "--insecure-policy", "copy", "--quiet",
		"oci:"+layoutDir+":1", "docker-archive:"+archive+":"+smokeRef)
	ociArchive := filepath.Join(dir, "smoke-oci.tar")
	mustRun(t, nil, "skopeo", "--insecure-policy", "copy", "--quiet",
		"oci:"+layoutDir+":1", "oci-archive:"+ociArchive+":"+smokeRef)
	compressFile(t, archive, archive+".gz")
	compressFile(t, archive, archive+".zst")

	t.Run("skopeo", func(t *testing.T) {
		info := skopeoInspect(t, "docker-archive:"+archive)
		if info.Os != "linux" || info.Architecture != runtime.GOARCH || len(info.Layers) != 2 {
			t.Fatalf("skopeo inspect: %+v", info)
		}
		if !slices.Contains(info.RepoTags, "1") && info.Labels["airgap-e2e"] != "smoke" {
			t.Fatalf("skopeo inspect: label/tag missing: %+v", info)
		}
		if raw := skopeoInspectRaw(t, "docker-archive:"+archive, true); !bytes.Contains(raw, []byte(`"airgap-e2e":"smoke"`)) {
			t.Fatalf("skopeo inspect --config --raw: %s", raw)
		}
	})

	t.Run("docker", func(t *testing.T) {
		dockerRmi(t, smokeFamily)
		loaded := dockerLoad(t, archive)
		if !slices.Contains(loaded, smokeFamily) {
			t.Fatalf("docker load reported %v, want %s", loaded, smokeFamily)
		}
		img := dockerInspect(t, smokeFamily)
		if img.Os != "linux" || img.Architecture != runtime.GOARCH || len(img.RootFS.Layers) != 2 || img.Config.Labels["airgap-e2e"] != "smoke" {
			t.Fatalf("docker image inspect: %+v", img)
		}
		// gzip-compressed archives are accepted by docker load too
		dockerRmi(t, smokeFamily)
		if loaded := dockerLoad(t, archive+".gz"); !slices.Contains(loaded, smokeFamily) {
			t.Fatalf("docker load (gz) reported %v", loaded)
		}
	})

	digests := map[string]string{}
	for _, which := range []Containerd{Containerd16, Containerd2} {
		for _, all := range []bool{false, true} {
			for _, a := range []string{archive, ociArchive} {
				imgs := ctrImport(t, which, a, all)
				d, ok := imgs[smokeRef]
				if !ok {
					t.Fatalf("%s ctr import %s (all-platforms=%v): images %v, want %s", which, filepath.Base(a), all, imgs, smokeRef)
				}
				t.Logf("%s ctr import %s all=%v: %s %s", which, filepath.Base(a), all, smokeRef, d)
				digests[which.String()+"/"+filepath.Base(a)] = d
			}
		}
	}

	t.Run("k3s", func(t *testing.T) {
		for _, a := range []string{archive, archive + ".gz", archive + ".zst", ociArchive} {
			imgs := k3sImport(t, Containerd2, a, K3sOpts{Clean: true})
			d, ok := imgs[smokeRef]
			if !ok || !strings.HasPrefix(d, "sha256:") {
				t.Fatalf("k3simport %s: %v, want %s", filepath.Base(a), imgs, smokeRef)
			}
			t.Logf("k3simport %s: %s %s", filepath.Base(a), smokeRef, d)
		}
		// k3s tags name@digest after import; ctr sees both names.
		if imgs := ctrImages(t, Containerd2); len(imgs) != 2 {
			t.Fatalf("after k3simport, ctr images ls: %v", imgs)
		}
		// unpack + whiteout check, and prove the check can fail
		k3sImport(t, Containerd2, archive+".zst", K3sOpts{Clean: true, Unpack: smokeRef,
			CheckPresent: []string{"/etc/hello.txt", "/etc/added.txt"}, CheckAbsent: []string{"/etc/doomed.txt"}})
		_, stderr, err := k3sImportErr(t, Containerd2, "", K3sOpts{Unpack: smokeRef, CheckPresent: []string{"/etc/doomed.txt"}})
		if exitCode(err) != 3 || !strings.Contains(stderr, "CHECK FAILED") {
			t.Fatalf("check-present of a whiteout-deleted file should fail with exit 3, got %v\n%s", err, stderr)
		}
		// the same through the 1.6 daemon (v2 client against a 1.6 server)
		k3sImport(t, Containerd16, archive+".gz", K3sOpts{Clean: true, Unpack: smokeRef,
			CheckPresent: []string{"/etc/hello.txt"}, CheckAbsent: []string{"/etc/doomed.txt"}})
	})

	t.Run("podman", func(t *testing.T) {
		loaded := podmanLoad(t, archive)
		if !slices.Contains(loaded, smokeRef) {
			t.Fatalf("podman load reported %v, want %s", loaded, smokeRef)
		}
		if out := podman(t, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}", smokeRef); strings.TrimSpace(out) != "linux/"+runtime.GOARCH+" 2" {
			t.Fatalf("podman image inspect: %q", out)
		}
		if loaded := podmanLoad(t, ociArchive); len(loaded) == 0 {
			t.Fatal("podman load of oci-archive loaded nothing")
		}
	})
}
