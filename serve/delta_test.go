package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/image"
)

// writeDelta writes, into a new directory, a delta archive whose
// busybox:1.36 is the fixture's amd64 manifest alone (another digest
// than the fixture's index), without its layers; with listed, a
// delta.json beside it says they are left out on purpose.
func writeDelta(t *testing.T, f *fixture, listed bool) (dir string, layers []image.Descriptor) {
	t.Helper()
	dir = t.TempDir()
	layers = f.amd64.Layers
	omit := map[digest.Digest]bool{}
	for _, l := range layers {
		omit[l.Digest] = true
	}
	imgs := []archive.Image{{Names: []string{"docker.io/library/busybox:1.36"}, Top: f.amd64.Descriptor, Manifests: []image.Manifest{f.amd64}}}
	var buf bytes.Buffer
	if err := archive.Write(context.Background(), &buf, imgs, f.blobs, archive.Options{Omit: func(d digest.Digest) bool { return omit[d] }}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "group.delta.tar"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if !listed {
		return dir, layers
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	a := delta.Archive{Group: "g", Name: "group.tar", Size: 1, SHA256: sum(nil),
		Delta: &delta.File{Name: "group.delta.tar", Size: int64(buf.Len()), SHA256: sum(buf.Bytes())}}
	for _, l := range layers {
		a.FromBase = append(a.FromBase, delta.Blob{Digest: l.Digest, Size: l.Size, Where: `group "g"`})
	}
	m := &delta.Manifest{Version: delta.Version, Base: delta.Base{Source: "v1.lock"}, LockfileSHA256: sum(nil), Archives: []delta.Archive{a}}
	doc, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, delta.FileName), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, layers
}

// serve BASE_DIR DELTA_DIR serves the union: the delta's tag (in either
// order of the arguments), its image's left-out layers from BASE's
// archive, each reported with where it is served from.
func TestServeDeltaWithBase(t *testing.T) {
	base := t.TempDir()
	f := writeFixture(t, base)
	deltaDir, layers := writeDelta(t, f, true)
	for _, order := range [][]string{{base, deltaDir}, {deltaDir, base}} {
		r, archives, err := Open(context.Background(), order, Options{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(r)
		repo := srv.URL + "/v2/docker.io/library/busybox"
		if resp, body := do(t, "GET", repo+"/manifests/1.36"); resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != f.amd64.Digest.String() {
			t.Errorf("%v: tag 1.36: %d %s %s", order, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), body)
		}
		if resp, _ := do(t, "GET", repo+"/manifests/"+f.index.Digest.String()); resp.StatusCode != 200 {
			t.Errorf("%v: BASE's index by digest: %d", order, resp.StatusCode)
		}
		for _, l := range layers {
			if resp, body := do(t, "GET", repo+"/blobs/"+l.Digest.String()); resp.StatusCode != 200 || digest.FromBytes(body) != l.Digest {
				t.Errorf("%v: left-out layer %s: %d", order, l.Digest, resp.StatusCode)
			}
		}
		var d Archive
		retagged := 0
		for _, a := range archives {
			if a.Delta != "" {
				d = a
			}
			// On the archive whose tag is not served: the second one.
			retagged += len(a.Retagged)
		}
		if d.Delta != filepath.Join(deltaDir, delta.FileName) || d.LeftOut != len(layers) || len(d.Borrowed) != len(layers) || retagged != 1 {
			t.Errorf("%v: the delta archive's report: %+v (%d tags taken over)", order, d, retagged)
		}
		for _, b := range d.Borrowed {
			if b.From != f.path || b.Image != "docker.io/library/busybox:1.36" {
				t.Errorf("%v: borrowed %+v", order, b)
			}
		}
		srv.Close()
		r.Close()
	}
}

// A blob an image needs that no archive holds stops serve, every one
// named: with the remedy for a delta served without its BASE, or
// verify for an archive that lacks it.
func TestServeRefusesMissingBlobs(t *testing.T) {
	f := writeFixture(t, t.TempDir())
	deltaDir, layers := writeDelta(t, f, true)
	_, _, err := Open(context.Background(), []string{deltaDir}, Options{})
	if err == nil || !strings.Contains(err.Error(), "serve BASE's archives with the delta") {
		t.Fatalf("a delta alone: %v", err)
	}
	for _, l := range layers {
		if !strings.Contains(err.Error(), "blob "+l.Digest.String()) {
			t.Errorf("%s is not named: %v", l.Digest, err)
		}
	}

	damaged, _ := writeDelta(t, f, false)
	if err := os.Rename(filepath.Join(damaged, "group.delta.tar"), filepath.Join(damaged, "group.tar")); err != nil {
		t.Fatal(err)
	}
	_, _, err = Open(context.Background(), []string{damaged}, Options{})
	if err == nil || !strings.Contains(err.Error(), "is missing from the archive") || !strings.Contains(err.Error(), "airgap-bundle verify") {
		t.Fatalf("an archive missing layers: %v", err)
	}
}
