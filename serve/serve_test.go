package serve

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
)

type memBlobs map[digest.Digest][]byte

func (m memBlobs) Open(_ context.Context, d image.Descriptor) (io.ReadCloser, error) {
	b, ok := m[d.Digest]
	if !ok {
		return nil, fmt.Errorf("no blob %s", d.Digest)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m memBlobs) add(b []byte) digest.Digest {
	d := digest.FromBytes(b)
	m[d] = b
	return d
}

// fixture is an archive of one 3-platform index, written in "original"
// mode with only amd64 and arm64 (arm/v7 absent).
type fixture struct {
	path     string
	index    image.Descriptor
	indexRaw []byte
	amd64    image.Manifest
	armv7    digest.Digest // listed in the index, absent from the archive
	blobs    memBlobs
}

func writeFixture(t testing.TB, dir string) *fixture {
	t.Helper()
	return writeFixtureNamed(t, dir, "docker.io/library/busybox:1.36", "registry.k8s.io/pause:3.9")
}

// writeFixtureNamed is the fixture under other names.
func writeFixtureNamed(t testing.TB, dir string, names ...string) *fixture {
	t.Helper()
	idx, err := fixtures.Index("serve", true, fixtures.LinuxAMD64, fixtures.LinuxARM64, fixtures.LinuxARMv7)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{blobs: memBlobs{}, indexRaw: raw}
	f.index = image.Descriptor{MediaType: image.OCIIndex, Digest: f.blobs.add(raw), Size: int64(len(raw))}
	var ms []image.Manifest
	for _, d := range im.Manifests {
		if d.Platform.Variant == "v7" {
			f.armv7 = digest.Digest(d.Digest.String())
			continue
		}
		child, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		mraw, _ := child.RawManifest()
		f.blobs.add(mraw)
		cfg, _ := child.RawConfigFile()
		f.blobs.add(cfg)
		layers, _ := child.Layers()
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			f.blobs.add(b)
		}
		m, err := image.ParseManifest(mraw, image.MediaType(d.MediaType))
		if err != nil {
			t.Fatal(err)
		}
		if d.Platform.Architecture == "amd64" {
			f.amd64 = m
		}
		ms = append(ms, m)
	}
	imgs := []archive.Image{{Names: names, Top: f.index, Manifests: ms}}
	var buf bytes.Buffer
	if err := archive.Write(context.Background(), &buf, imgs, f.blobs, archive.Options{}); err != nil {
		t.Fatal(err)
	}
	f.path = filepath.Join(dir, "group.tar")
	if err := os.WriteFile(f.path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func start(t *testing.T) (*fixture, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	f := writeFixture(t, dir)
	r, archives, err := Open(context.Background(), []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(archives) != 1 || archives[0].Images != 1 {
		t.Fatalf("archives: %+v", archives)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(func() { srv.Close(); r.Close() })
	return f, srv
}

func do(t *testing.T, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestServe(t *testing.T) {
	f, srv := start(t)
	base := srv.URL + "/v2/docker.io/library/busybox"

	resp, _ := do(t, "GET", srv.URL+"/v2/")
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Fatalf("/v2/: %d %v", resp.StatusCode, resp.Header)
	}

	// The index by tag and by digest: the bytes as stored.
	for _, ref := range []string{"1.36", f.index.Digest.String()} {
		resp, body := do(t, "GET", base+"/manifests/"+ref)
		if resp.StatusCode != 200 || !bytes.Equal(body, f.indexRaw) {
			t.Fatalf("manifest %s: %d %q", ref, resp.StatusCode, body)
		}
		if resp.Header.Get("Content-Type") != string(image.OCIIndex) || resp.Header.Get("Docker-Content-Digest") != f.index.Digest.String() {
			t.Errorf("manifest %s: headers %v", ref, resp.Header)
		}
	}
	// The other name serves the same image.
	if resp, _ := do(t, "GET", srv.URL+"/v2/registry.k8s.io/pause/manifests/3.9"); resp.StatusCode != 200 {
		t.Errorf("pause:3.9: %d", resp.StatusCode)
	}
	// HEAD: headers, no body.
	resp, body := do(t, "HEAD", base+"/manifests/1.36")
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != f.index.Size || resp.Header.Get("Docker-Content-Digest") != f.index.Digest.String() {
		t.Errorf("HEAD manifest: %d len %d %v", resp.StatusCode, resp.ContentLength, resp.Header)
	}
	// A child manifest by digest; the absent platform is unknown.
	resp, body = do(t, "GET", base+"/manifests/"+f.amd64.Digest.String())
	if resp.StatusCode != 200 || digest.FromBytes(body) != f.amd64.Digest || resp.Header.Get("Content-Type") != string(f.amd64.MediaType) {
		t.Errorf("amd64 manifest: %d %v", resp.StatusCode, resp.Header)
	}
	expectError(t, "GET", base+"/manifests/"+f.armv7.String(), 404, "MANIFEST_UNKNOWN")

	// Blobs: whole, HEAD, Range.
	layer := f.amd64.Layers[0]
	want := f.blobs[layer.Digest]
	resp, body = do(t, "GET", base+"/blobs/"+layer.Digest.String())
	if resp.StatusCode != 200 || !bytes.Equal(body, want) || resp.Header.Get("Docker-Content-Digest") != layer.Digest.String() {
		t.Fatalf("blob: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, body = do(t, "HEAD", base+"/blobs/"+layer.Digest.String())
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(want)) {
		t.Errorf("HEAD blob: %d len %d", resp.StatusCode, resp.ContentLength)
	}
	resp, body = do(t, "GET", base+"/blobs/"+layer.Digest.String(), "Range", "bytes=10-19")
	if resp.StatusCode != 206 || !bytes.Equal(body, want[10:20]) {
		t.Errorf("Range: %d %x, want %x", resp.StatusCode, body, want[10:20])
	}
	for _, rg := range []string{"bytes=99999999999-", "bytes=0-99999999999999999999999", "bytes=abc", "bytes=5-2"} {
		resp, _ = do(t, "GET", base+"/blobs/"+layer.Digest.String(), "Range", rg)
		if resp.StatusCode != 416 {
			t.Errorf("Range %s: %d, want 416", rg, resp.StatusCode)
		}
	}
	// The config by digest; the index itself as a blob.
	if resp, body := do(t, "GET", base+"/blobs/"+f.amd64.Config.Digest.String()); resp.StatusCode != 200 || digest.FromBytes(body) != f.amd64.Config.Digest {
		t.Errorf("config blob: %d", resp.StatusCode)
	}

	// tags/list
	resp, body = do(t, "GET", base+"/tags/list")
	var tl struct {
		Name string
		Tags []string
	}
	if err := json.Unmarshal(body, &tl); resp.StatusCode != 200 || err != nil || tl.Name != "docker.io/library/busybox" || len(tl.Tags) != 1 || tl.Tags[0] != "1.36" {
		t.Errorf("tags/list: %d %s", resp.StatusCode, body)
	}

	// Errors.
	expectError(t, "GET", base+"/manifests/9.9", 404, "MANIFEST_UNKNOWN")
	expectError(t, "GET", base+"/manifests/sha256:"+strings.Repeat("0", 64), 404, "MANIFEST_UNKNOWN")
	expectError(t, "GET", base+"/blobs/sha256:"+strings.Repeat("0", 64), 404, "BLOB_UNKNOWN")
	expectError(t, "GET", base+"/blobs/sha256:xyz", 400, "DIGEST_INVALID")
	expectError(t, "GET", base+"/blobs/"+f.armv7.String(), 404, "BLOB_UNKNOWN")
	expectError(t, "GET", srv.URL+"/v2/library/nothing/manifests/1", 404, "NAME_UNKNOWN")
	expectError(t, "GET", srv.URL+"/v2/library/nothing/tags/list", 404, "NAME_UNKNOWN")
	expectError(t, "GET", srv.URL+"/v2/docker.io/library/busybox/other", 404, "UNSUPPORTED")
	expectError(t, "GET", srv.URL+"/other", 404, "UNSUPPORTED")
	// A blob of another repository's image is not served under this one.
	expectError(t, "GET", srv.URL+"/v2/registry.k8s.io/pause/blobs/sha256:"+strings.Repeat("0", 64), 404, "BLOB_UNKNOWN")
	for _, m := range []string{"PUT", "POST", "DELETE", "PATCH"} {
		expectError(t, m, base+"/blobs/uploads/", 405, "UNSUPPORTED")
	}
	// ".." in the name, raw (the client would clean it) and escaped.
	for _, p := range []string{"/v2/docker.io/library/../library/busybox/manifests/1.36", "/v2/docker.io/%2e%2e/busybox/tags/list", "/v2/../../etc/passwd/blobs/" + layer.Digest.String()} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.URL.Opaque = p // sent as is
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func expectError(t *testing.T, method, url string, status int, code string) {
	t.Helper()
	resp, body := do(t, method, url)
	if resp.StatusCode != status {
		t.Errorf("%s %s: %d, want %d (%s)", method, url, resp.StatusCode, status, body)
		return
	}
	var e struct{ Errors []struct{ Code string } }
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != code {
		t.Errorf("%s %s: body %s, want code %s", method, url, body, code)
	}
}

// A compressed archive is refused without an unpack directory, and with
// one it is decompressed once, served from the copy (blobs byte for byte),
// found again by the next Open, and made anew when the copy is damaged.
func TestOpenCompressed(t *testing.T) {
	dir := t.TempDir()
	f := writeFixture(t, dir)
	raw, _ := os.ReadFile(f.path)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	gz := filepath.Join(t.TempDir(), "group.tar.gz")
	os.WriteFile(gz, buf.Bytes(), 0o644)
	_, _, err := Open(context.Background(), []string{gz}, Options{})
	if !errors.Is(err, archive.ErrCompressed) || !strings.Contains(err.Error(), "gunzip") {
		t.Fatalf("Open .tar.gz without an unpack directory: %v", err)
	}

	unpackDir := filepath.Join(t.TempDir(), "unpacked")
	open := func() (*Registry, Archive) {
		t.Helper()
		r, archives, err := Open(context.Background(), []string{gz}, Options{UnpackDir: unpackDir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if len(archives) != 1 || archives[0].Images != 1 || archives[0].Unpacked == "" {
			t.Fatalf("archives: %+v", archives)
		}
		return r, archives[0]
	}
	r, a := open()
	if got, _ := os.ReadFile(a.Unpacked); !bytes.Equal(got, raw) {
		t.Fatal("the unpacked copy is not the archive's tar")
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	layer := f.amd64.Layers[0]
	res, body := do(t, "GET", srv.URL+"/v2/docker.io/library/busybox/blobs/"+layer.Digest.String())
	if res.StatusCode != 200 || digest.FromBytes(body) != layer.Digest {
		t.Fatalf("layer from the unpacked copy: %d, %d bytes", res.StatusCode, len(body))
	}

	// Found again: not rewritten.
	st1, _ := os.Stat(a.Unpacked)
	_, a2 := open()
	st2, _ := os.Stat(a2.Unpacked)
	if a2.Unpacked != a.Unpacked || !st2.ModTime().Equal(st1.ModTime()) {
		t.Errorf("second Open unpacked again: %s (%v) vs %s (%v)", a2.Unpacked, st2.ModTime(), a.Unpacked, st1.ModTime())
	}

	// A damaged copy is refused and removed; the next Open makes it anew.
	damaged := bytes.Clone(raw)
	i := bytes.Index(damaged, f.blobs[layer.Digest])
	if i < 0 {
		t.Fatal("layer not found in the tar")
	}
	damaged[i] ^= 0xff
	os.WriteFile(a.Unpacked, damaged, 0o600)
	if _, _, err := Open(context.Background(), []string{gz}, Options{UnpackDir: unpackDir}); err == nil || !strings.Contains(err.Error(), "now removed") {
		t.Fatalf("Open with a damaged copy: %v", err)
	}
	if _, err := os.Stat(a.Unpacked); !os.IsNotExist(err) {
		t.Fatalf("damaged copy still there: %v", err)
	}
	_, a3 := open()
	if got, _ := os.ReadFile(a3.Unpacked); !bytes.Equal(got, raw) {
		t.Fatal("the copy made anew is not the archive's tar")
	}
}

// TestOpenSkipsBadNames: a name that is no reference is reported, not
// fatal.
func TestOpenSkipsBadNames(t *testing.T) {
	dir := t.TempDir()
	idx := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":2,"annotations":{"io.containerd.image.name":"Not::A Name"}}]}`
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range [][2]string{{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`}, {"index.json", idx}} {
		tw.WriteHeader(&tar.Header{Name: e[0], Mode: 0o644, Size: int64(len(e[1])), Typeflag: tar.TypeReg})
		io.WriteString(tw, e[1])
	}
	tw.Close()
	p := filepath.Join(dir, "bad.tar")
	os.WriteFile(p, buf.Bytes(), 0o644)
	r, archives, err := Open(context.Background(), []string{p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(archives[0].Skipped) != 1 || !strings.Contains(archives[0].Skipped[0], "Not::A Name") {
		t.Errorf("skipped: %q", archives[0].Skipped)
	}
	if len(r.Repositories()) != 0 {
		t.Errorf("repositories: %v", r.Repositories())
	}
}

// TestOpenRefusesCorruptBlob: a blob whose bytes do not hash to its name is
// never served: the archive is refused at start.
func TestOpenRefusesCorruptBlob(t *testing.T) {
	dir := t.TempDir()
	f := writeFixture(t, dir)
	raw, _ := os.ReadFile(f.path)
	layer := f.blobs[f.amd64.Layers[0].Digest]
	i := bytes.Index(raw, layer)
	if i < 0 {
		t.Fatal("layer not found in the archive")
	}
	raw[i+len(layer)/2] ^= 0xff
	os.WriteFile(f.path, raw, 0o644)
	if _, _, err := Open(context.Background(), []string{f.path}, Options{}); err == nil || !strings.Contains(err.Error(), "hashes to") {
		t.Fatalf("Open of a corrupt archive: %v", err)
	}
}

// TestBlobsPerRepository: a blob is served only under a repository whose
// images use it.
func TestBlobsPerRepository(t *testing.T) {
	dir := t.TempDir()
	f := writeFixture(t, dir)
	other, err := fixtures.Image("other", fixtures.LinuxAMD64, 1)
	if err != nil {
		t.Fatal(err)
	}
	blobs := memBlobs{}
	mraw, _ := other.RawManifest()
	blobs.add(mraw)
	cfg, _ := other.RawConfigFile()
	blobs.add(cfg)
	layers, _ := other.Layers()
	rc, _ := layers[0].Compressed()
	lb, _ := io.ReadAll(rc)
	blobs.add(lb)
	m, err := image.ParseManifest(mraw, image.OCIManifest)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	imgs := []archive.Image{{Names: []string{"quay.io/x/other:1"}, Top: m.Descriptor, Manifests: []image.Manifest{m}}}
	if err := archive.Write(context.Background(), &buf, imgs, blobs, archive.Options{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "other.tar"), buf.Bytes(), 0o644)
	r, archives, err := Open(context.Background(), []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(archives) != 2 {
		t.Fatalf("archives: %+v", archives)
	}
	srv := httptest.NewServer(r)
	defer func() { srv.Close(); r.Close() }()
	busyLayer := f.amd64.Layers[0].Digest.String()
	otherLayer := m.Layers[0].Digest.String()
	if resp, _ := do(t, "GET", srv.URL+"/v2/quay.io/x/other/blobs/"+otherLayer); resp.StatusCode != 200 {
		t.Errorf("other's layer: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", srv.URL+"/v2/quay.io/x/other/manifests/1"); resp.StatusCode != 200 {
		t.Errorf("other:1: %d", resp.StatusCode)
	}
	expectError(t, "GET", srv.URL+"/v2/quay.io/x/other/blobs/"+busyLayer, 404, "BLOB_UNKNOWN")
	expectError(t, "GET", srv.URL+"/v2/docker.io/library/busybox/blobs/"+otherLayer, 404, "BLOB_UNKNOWN")
	expectError(t, "GET", srv.URL+"/v2/docker.io/library/busybox/manifests/"+m.Digest.String(), 404, "MANIFEST_UNKNOWN")
}

// A node using serve as the mirror of docker.io asks by the path on that
// registry, naming it in ?ns= (containerd's hosts.toml mirrors do); a bare
// path is docker.io's, as docker would read it.
func TestServeAsMirror(t *testing.T) {
	f, srv := start(t)
	for _, u := range []string{
		"/v2/library/busybox/manifests/1.36?ns=docker.io",
		"/v2/library/busybox/manifests/1.36",
		"/v2/pause/manifests/3.9?ns=registry.k8s.io",
		"/v2/library/busybox/manifests/" + f.index.Digest.String() + "?ns=docker.io",
	} {
		resp, body := do(t, "GET", srv.URL+u)
		if resp.StatusCode != 200 || !bytes.Equal(body, f.indexRaw) {
			t.Errorf("%s: %d %q", u, resp.StatusCode, body)
		}
	}
	layer := f.amd64.Layers[0]
	resp, body := do(t, "GET", srv.URL+"/v2/library/busybox/blobs/"+layer.Digest.String()+"?ns=docker.io")
	if resp.StatusCode != 200 || digest.FromBytes(body) != layer.Digest {
		t.Errorf("blob through the mirror path: %d", resp.StatusCode)
	}
	// Another registry's namespace does not reach docker.io's images.
	expectError(t, "GET", srv.URL+"/v2/library/busybox/manifests/1.36?ns=quay.io", 404, "NAME_UNKNOWN")
	expectError(t, "GET", srv.URL+"/v2/pause/manifests/3.9", 404, "NAME_UNKNOWN")
}
