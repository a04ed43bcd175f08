package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// TestServeImageOfPortRegistry: an image of a registry with a port (the
// test registry, 127.0.0.1:PORT), built with its carried cosign
// signature, is served by the per-host path (127.0.0.1_PORT/...) to
// skopeo, by containerd's mirror form (?ns=127.0.0.1:PORT) to plain HTTP,
// and push --to-per-host puts it at the same path in another registry.
func TestServeImageOfPortRegistry(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	ctx := context.Background()
	idx, err := fixtures.Index("serve-port", true, fixtures.LinuxAMD64, fixtures.LinuxARM64)
	if err != nil {
		t.Fatal(err)
	}
	dg, err := fixtures.Push(ctx, reg.Host+"/bench/multiarch:1.0", idx, reg.Transport(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := fixtures.NewSigner()
	if err != nil {
		t.Fatal(err)
	}
	sigDg, err := signer.PushSignature(ctx, reg.Host+"/bench/multiarch", dg, reg.Transport())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "key.pub", string(signer.PublicPEM))
	spec := writeFile(t, dir, "bundle.toml", fmt.Sprintf(`
[registries.%[1]q]
insecure = true

[[signatures]]
scope = "%[1]s/bench"
require = "sigstoreSigned"
key = "key.pub"

[[group]]
name = "bench"
archive = "bench.tar"
platforms = ["linux/amd64", "linux/arm64"]
images = ["%[1]s/bench/multiarch:1.0"]
`, reg.Host))
	if out, code := run(t, "build", "--cache-dir", t.TempDir(), spec); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, out)
	}
	srcRaw := rawManifest(t, reg.Host+"/bench/multiarch:1.0", "--tls-verify=false")

	url, cancel, done := startServe(t, filepath.Join(dir, "dist"))
	defer func() { cancel(); <-done }()
	served := strings.TrimPrefix(url, "http://")
	perHost := strings.ReplaceAll(reg.Host, ":", "_") + "/bench/multiarch"
	if got := rawManifest(t, served+"/"+perHost+":1.0", "--tls-verify=false"); string(got) != string(srcRaw) {
		t.Errorf("skopeo by the per-host path: %s, want the registry's %s", got, srcRaw)
	}
	sigTag := "sha256-" + strings.TrimPrefix(dg, "sha256:") + ".sig"
	if got := sha256Digest(rawManifest(t, served+"/"+perHost+":"+sigTag, "--tls-verify=false")); got != sigDg {
		t.Errorf("cosign tag by the per-host path: %s, want %s", got, sigDg)
	}
	for _, u := range []string{
		"/v2/bench/multiarch/manifests/1.0?ns=" + reg.Host,
		"/v2/bench/multiarch/manifests/" + dg + "?ns=" + reg.Host,
		"/v2/bench/multiarch/manifests/" + sigTag + "?ns=" + reg.Host,
	} {
		resp, err := http.Get(url + u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || (!strings.Contains(u, ".sig") && resp.Header.Get("Docker-Content-Digest") != dg) {
			t.Errorf("GET %s: %s %s", u, resp.Status, resp.Header.Get("Docker-Content-Digest"))
		}
	}

	// push --to-per-host writes the path serve answers.
	reg2 := testregistry.Start(t, testregistry.Options{})
	mapping := filepath.Join(t.TempDir(), "mapping.json")
	pushJSONRun(t, "--to", reg2.Host, "--to-per-host", "--insecure", "--cache-dir", t.TempDir(), "--mapping", mapping, filepath.Join(dir, "dist", "bench.tar"))
	if e := checkMapping(t, mapping).entry(t, reg2.Host+"/"+perHost+":1.0"); e.TargetDigest != dg {
		t.Errorf("pushed per host: %+v", e)
	}
	if got := rawManifest(t, reg2.Host+"/"+perHost+":1.0", "--tls-verify=false"); string(got) != string(srcRaw) {
		t.Errorf("pushed per host: %s", got)
	}
}
