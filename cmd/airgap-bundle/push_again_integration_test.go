package main

import (
	"path/filepath"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/faultproxy"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// A second push of unchanged archives finds every manifest at the target
// under its name and stops there: no blob is asked about or sent, and the
// archives are read by their headers. A push that finds a manifest missing
// (here: a new prefix) does the whole work.
func TestPushAgainAsksOnlyForManifests(t *testing.T) {
	testregistry.Isolate(t)
	src := testregistry.Start(t, testregistry.Options{})
	push(t, src, "", "")
	pushBig(t, src, "fixtures/big:v1")
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", `
[registries."`+src.Host+`"]
insecure = true

[[group]]
name = "apps"
archive = "apps.tar"
images = ["`+src.Host+`/fixtures/big:v1", "`+src.Host+`/fixtures/single:v1", "`+src.Host+`/fixtures/twotags:a", "`+src.Host+`/fixtures/twotags:b"]
`)
	out := filepath.Join(dir, "dist")
	if o, code := run(t, "build", "--cache-dir", t.TempDir(), "--output", out, spec); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, o)
	}
	site := testregistry.Start(t, testregistry.Options{})
	px := faultproxy.Start(t, site.Host)
	archive := filepath.Join(out, "apps.tar")

	first := pushJSONRun(t, "--insecure", "--to", px.Host+"/site", archive)
	if first.Stats.HeadersOnly || first.Stats.BlobsUploaded == 0 || first.Stats.ManifestsPut == 0 {
		t.Fatalf("first push: %+v", first.Stats)
	}
	px.ResetCounters()
	again := pushJSONRun(t, "--insecure", "--to", px.Host+"/site", archive)
	s := px.Stats()
	if !again.Stats.HeadersOnly || again.Stats.ManifestsExisting != first.Stats.ManifestsPut || again.Stats.ManifestsPut != 0 {
		t.Errorf("second push: %+v (first %+v)", again.Stats, first.Stats)
	}
	if n := s.Count("HEAD", faultproxy.KindBlobs) + s.Count("GET", faultproxy.KindBlobs) + s.Count("POST", "uploads") + s.Count("PUT", "manifests"); n != 0 {
		t.Errorf("second push made %d blob or write requests: %s\n%s", n, s, px.LogString())
	}

	px.ResetCounters()
	elsewhere := pushJSONRun(t, "--insecure", "--to", px.Host+"/other", archive)
	if elsewhere.Stats.HeadersOnly || elsewhere.Stats.ManifestsPut == 0 {
		t.Errorf("push to a new prefix: %+v", elsewhere.Stats)
	}
}
