package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
)

// A carried cosign signature is served in its image's repository under
// cosign's tag, so "cosign verify" inside the gap finds it; its layer is
// served as a blob of that repository.
func TestServeCarriedSignature(t *testing.T) {
	dir := t.TempDir()
	f := writeFixture(t, dir)
	m, tag, rm := writeArtifacts(t, f, "docker.io/library/busybox:1.36")
	r, _, err := Open(context.Background(), []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer func() { srv.Close(); r.Close() }()

	resp, body := do(t, http.MethodGet, srv.URL+"/v2/library/busybox/manifests/"+tag, "Accept", "application/vnd.oci.image.manifest.v1+json")
	if resp.StatusCode != http.StatusOK || digest.FromBytes(body) != m.Digest {
		t.Fatalf("GET %s: %s, digest %s, want %s", tag, resp.Status, digest.FromBytes(body), m.Digest)
	}
	resp, body = do(t, http.MethodGet, srv.URL+"/v2/library/busybox/blobs/"+m.Layers[0].Digest.String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), f.index.Digest.String()) {
		t.Fatalf("GET signature layer: %s %s", resp.Status, body)
	}
	// The referrers API lists the carried referrer of the index.
	resp, body = do(t, http.MethodGet, srv.URL+"/v2/library/busybox/referrers/"+f.index.Digest.String())
	var idx struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest       digest.Digest `json:"digest"`
			ArtifactType string        `json:"artifactType"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(body, &idx); err != nil || resp.StatusCode != http.StatusOK || idx.MediaType != string(image.OCIIndex) ||
		len(idx.Manifests) != 1 || idx.Manifests[0].Digest != rm.Digest || idx.Manifests[0].ArtifactType != "application/spdx+json" {
		t.Fatalf("referrers: %s %s (%v)", resp.Status, body, err)
	}
	resp, body = do(t, http.MethodGet, srv.URL+"/v2/library/busybox/referrers/"+f.index.Digest.String()+"?artifactType=application/vnd.dev.cosign.artifact.sig.v1+json")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("OCI-Filters-Applied") != "artifactType" || !strings.Contains(string(body), `"manifests":[]`) {
		t.Errorf("filtered referrers: %s %s", resp.Status, body)
	}
	resp, body = do(t, http.MethodGet, srv.URL+"/v2/library/busybox/referrers/"+f.amd64.Digest.String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"manifests":[]`) {
		t.Errorf("no referrers: %s %s", resp.Status, body)
	}
	resp, body = do(t, http.MethodGet, srv.URL+"/v2/library/busybox/tags/list")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tag) {
		t.Errorf("tags: %s %s", resp.Status, body)
	}
}

// writeArtifacts rewrites the fixture's archive with a cosign signature of
// its index and an SPDX referrer of it, both carried for the image named
// img: the signature manifest, its cosign tag and the referrer manifest.
func writeArtifacts(t *testing.T, f *fixture, img string) (sig image.Manifest, tag string, ref image.Manifest) {
	t.Helper()
	repo, _, _ := strings.Cut(img, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	signer, err := fixtures.NewSigner()
	if err != nil {
		t.Fatal(err)
	}
	sigImg, err := signer.SignatureImage(repo, f.index.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := sigImg.RawManifest()
	cfg, _ := sigImg.RawConfigFile()
	f.blobs.add(raw)
	f.blobs.add(cfg)
	f.blobs.add(fixtures.Payload(repo, f.index.Digest.String())) // the layer
	m, err := image.ParseManifest(raw, image.OCIManifest)
	if err != nil {
		t.Fatal(err)
	}
	tag = "sha256-" + f.index.Digest.Encoded() + ".sig"
	ct, err := archive.ReadFile(context.Background(), f.path, archive.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refImg, err := fixtures.Referrer(v1.Descriptor{MediaType: "application/vnd.oci.image.index.v1+json", Digest: v1.Hash{Algorithm: "sha256", Hex: f.index.Digest.Encoded()}, Size: f.index.Size},
		"application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`), "application/spdx+json")
	if err != nil {
		t.Fatal(err)
	}
	refRaw, _ := refImg.RawManifest()
	refCfg, _ := refImg.RawConfigFile()
	f.blobs.add(refRaw)
	f.blobs.add(refCfg)
	f.blobs.add([]byte(`{"spdxVersion":"SPDX-2.3"}`))
	rm, err := image.ParseManifest(refRaw, image.OCIManifest)
	if err != nil {
		t.Fatal(err)
	}
	imgs := []archive.Image{ct.Images[0], {Top: m.Descriptor, Manifests: []image.Manifest{m},
		Artifact: &archive.Artifact{Kind: "signature", Subject: f.index.Digest, Image: img, Tag: tag}},
		{Top: rm.Descriptor, Manifests: []image.Manifest{rm}, Artifact: &archive.Artifact{Kind: "referrer", Subject: f.index.Digest, Image: img}}}
	imgs[0].Absent, imgs[0].Docker = nil, nil
	var buf bytes.Buffer
	if err := archive.Write(context.Background(), &buf, imgs, f.blobs, archive.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return m, tag, rm
}
