package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// A signed image with its signature, an attestation, an SBOM and an OCI
// referrer carried in the archive: lock verifies the signature with the
// key, inspect lists the four artifacts, and docker load, ctr import
// (containerd 1.6 and 2.x), k3s's import and podman load each take the
// image and make no other image of the archive.
func TestSignedBundleLoadsWithoutExtraImages(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{})
	rt := reg.Transport()
	plat := fixtures.Platform{OS: "linux", Architecture: runtime.GOARCH}
	idx, err := fixtures.Index("e2e-signed", true, plat)
	if err != nil {
		t.Fatal(err)
	}
	repo := reg.Host + "/signed/app"
	top := pushT(t, reg, "signed/app:v1", idx)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := fixtures.NewSigner()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.PushSignature(ctx, repo, top, rt); err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.PushAttachment(ctx, repo, top, "att", rt, fixtures.Attachment{MediaType: fixtures.DSSEType, Data: []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.PushAttachment(ctx, repo, top, "sbom", rt, fixtures.Attachment{MediaType: fixtures.SPDXType, Data: []byte(`{"spdxVersion":"SPDX-2.3"}`)}); err != nil {
		t.Fatal(err)
	}
	ref, err := fixtures.Referrer(im.Manifests[0], "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3","name":"platform"}`), "application/spdx+json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.PushReferrer(ctx, repo, ref, rt); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cosign.pub"), signer.PublicPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "bundle.toml")
	name := repo + ":v1"
	body := fmt.Sprintf(`[registries.%[1]q]
insecure = true

[[signatures]]
scope = %[2]q
require = "sigstoreSigned"
key = "cosign.pub"

[[group]]
name = "signed"
platforms = ["linux/%[3]s"]
images = [%[4]q]
`, reg.Host, repo, runtime.GOARCH, name)
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool(t), "build", "--cache-dir", filepath.Join(dir, "cache"), spec)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_RUNTIME_DIR=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("airgap-bundle build: %v\n%s", err, out)
	}
	archive := filepath.Join(dir, "dist", "signed.tar")

	cmd = exec.Command(tool(t), "--json", "inspect", archive)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	var doc struct {
		Images []struct {
			Names     []string `json:"names"`
			Artifacts []struct {
				Kind    string `json:"kind"`
				Subject string `json:"subject"`
			} `json:"artifacts"`
		} `json:"images"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, a := range doc.Images[0].Artifacts {
		kinds = append(kinds, a.Kind)
	}
	slices.Sort(kinds)
	if len(doc.Images) != 1 || len(doc.Problems) > 0 || strings.Join(kinds, ",") != "attestation,referrer,sbom,signature" {
		t.Fatalf("inspect:\n%s", out)
	}

	if loaded := dockerLoad(t, archive); len(loaded) != 1 || loaded[0] != name {
		t.Errorf("docker load: %v, want only %s", loaded, name)
	}
	dockerRmi(t, name)
	for _, c := range []Containerd{Containerd16, Containerd2} {
		got := ctrImport(t, c, archive, true)
		if len(got) != 1 || got[name] != top {
			t.Errorf("ctr import (%s): %v, want only %s = %s", c, got, name, top)
		}
	}
	if got := k3sImport(t, Containerd2, archive, K3sOpts{Clean: true}); len(got) != 1 || got[name] != top {
		t.Errorf("k3s import: %v, want only %s = %s", got, name, top)
	}
	if loaded := podmanLoad(t, archive); len(loaded) != 1 || loaded[0] != name {
		t.Errorf("podman load: %v, want only %s", loaded, name)
	}
}
