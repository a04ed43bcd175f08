package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// Images from registries with a port (127.0.0.1:5000, harbor.corp:8443)
// are reached two ways: by containerd's mirror form (the path on that
// registry, the registry in ?ns=host:port) and by the per-host path that
// push --to-per-host writes (127.0.0.1_5000/bench/multiarch), which any
// client can name; their cosign tags and referrers too. Names without a
// port keep their full name, which is their per-host path.
func TestServePortHosts(t *testing.T) {
	dir := t.TempDir()
	const multi = "127.0.0.1:5000/bench/multiarch:1.0"
	f := writeFixtureNamed(t, dir, multi, "harbor.corp:8443/team/app:1", "docker.io/library/busybox:1.36")
	sig, sigTag, rm := writeArtifacts(t, f, multi)
	r, archives, err := Open(context.Background(), []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer func() { srv.Close(); r.Close() }()
	if len(archives[0].Skipped) != 0 {
		t.Errorf("skipped: %q", archives[0].Skipped)
	}
	layer := f.amd64.Layers[0].Digest.String()

	for _, base := range []string{
		"/v2/127.0.0.1_5000/bench/multiarch/%s",
		"/v2/bench/multiarch/%s?ns=127.0.0.1:5000",
		"/v2/harbor.corp_8443/team/app/%s",
		"/v2/team/app/%s?ns=harbor.corp:8443",
		"/v2/docker.io/library/busybox/%s",
		"/v2/library/busybox/%s?ns=docker.io",
	} {
		get := func(what string, hdr ...string) (*http.Response, []byte) {
			return do(t, "GET", srv.URL+strings.Replace(base, "%s", what, 1), hdr...)
		}
		tag := map[bool]string{true: "1", false: "1.0"}[strings.Contains(base, "team/app")]
		if strings.Contains(base, "busybox") {
			tag = "1.36"
		}
		if resp, body := get("manifests/" + tag); resp.StatusCode != 200 || !bytes.Equal(body, f.indexRaw) {
			t.Errorf("%s: manifest %s: %d %s", base, tag, resp.StatusCode, body)
		}
		if resp, body := get("blobs/" + layer); resp.StatusCode != 200 || digest.FromBytes(body).String() != layer {
			t.Errorf("%s: layer: %d", base, resp.StatusCode)
		}
		if !strings.Contains(base, "multiarch") {
			continue
		}
		if resp, body := get("manifests/"+sigTag, "Accept", string(image.OCIManifest)); resp.StatusCode != 200 || digest.FromBytes(body) != sig.Digest {
			t.Errorf("%s: cosign tag %s: %d %s", base, sigTag, resp.StatusCode, body)
		}
		if resp, body := get("blobs/" + sig.Layers[0].Digest.String()); resp.StatusCode != 200 || !strings.Contains(string(body), f.index.Digest.String()) {
			t.Errorf("%s: signature layer: %d %s", base, resp.StatusCode, body)
		}
		resp, body := get("referrers/" + f.index.Digest.String())
		var idx struct {
			Manifests []struct{ Digest digest.Digest }
		}
		if err := json.Unmarshal(body, &idx); resp.StatusCode != 200 || err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != rm.Digest {
			t.Errorf("%s: referrers: %d %s", base, resp.StatusCode, body)
		}
		if resp, body := get("tags/list"); resp.StatusCode != 200 || !strings.Contains(string(body), `"1.0"`) || !strings.Contains(string(body), sigTag) {
			t.Errorf("%s: tags/list: %d %s", base, resp.StatusCode, body)
		}
	}
	// Another port is another registry.
	expectError(t, "GET", srv.URL+"/v2/bench/multiarch/manifests/1.0?ns=127.0.0.1:5001", 404, "NAME_UNKNOWN")
	expectError(t, "GET", srv.URL+"/v2/127.0.0.1_5001/bench/multiarch/manifests/1.0", 404, "NAME_UNKNOWN")
	expectError(t, "GET", srv.URL+"/v2/bench/multiarch/manifests/1.0", 404, "NAME_UNKNOWN")

	// go-containerregistry, the client library of crane, by the per-host
	// name: the digest it checks is the index's.
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/127.0.0.1_5000/bench/multiarch:1.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref)
	if err != nil || desc.Digest.String() != f.index.Digest.String() {
		t.Fatalf("remote.Get %s: %v, %v", ref, desc, err)
	}
	if _, err := remote.Layer(ref.Context().Digest(layer)); err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref.Context().Digest(f.amd64.Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	if layers, err := img.Layers(); err != nil || len(layers) != len(f.amd64.Layers) {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
}
