package trust_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/signature/signer"
	"go.podman.io/image/v5/signature/sigstore"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
	"github.com/airgap-bundle/airgap-bundle/trust"
)

func isolate(t *testing.T) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
}

// A signature made by containers/image's own sigstore signer (as podman
// push --sign-by-sigstore-private-key and skopeo copy write it) with a key
// pair that containers/image generated is accepted, and one made by
// another key is refused.
func TestVerifyContainersImageSignature(t *testing.T) {
	isolate(t)
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{})
	img, err := fixtures.Image("cimage-signed", fixtures.LinuxAMD64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/cimage/app:v1"
	dg, err := fixtures.Push(ctx, ref, img, reg.Transport(), "", "")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	pass := []byte("test passphrase")
	keys, err := sigstore.GenerateKeyPair(pass)
	if err != nil {
		t.Fatal(err)
	}
	other, err := sigstore.GenerateKeyPair(pass)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"cosign.key": keys.PrivateKey, "cosign.pub": keys.PublicKey, "other.pub": other.PublicKey} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	specPath := filepath.Join(dir, "bundle.toml")
	body := fmt.Sprintf(`[registries.%[1]q]
insecure = true

[[signatures]]
scope = "%[1]s/cimage"
require = "sigstoreSigned"
key = "cosign.pub"

[[group]]
name = "good"
images = [%[2]q]

[[group]]
name = "other"
images = [%[2]q]
signatures = { require = "sigstoreSigned", key = "other.pub" }
`, reg.Host, ref)
	if err := os.WriteFile(specPath, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := config.Load(specPath)
	if err != nil {
		t.Fatal(err)
	}
	env, err := registry.New(spec, registry.Options{UserAgent: "trust-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()

	// Sign through containers/image: a copy of the image onto itself with a
	// sigstore signer; registries.d has sigstore attachments on.
	s, err := sigstore.NewSigner(sigstore.WithPrivateKeyFile(filepath.Join(dir, "cosign.key"), pass))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	iref, err := docker.ParseReference("//" + ref)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Destroy()
	if _, err := copy.Image(ctx, pc, iref, iref, &copy.Options{Signers: []*signer.Signer{s}, SourceCtx: env.Sys, DestinationCtx: env.Sys}); err != nil {
		t.Fatalf("signing with containers/image: %v", err)
	}

	good := spec.Group("good")
	e := &lockfile.Image{Ref: ref, Digest: dg, Platforms: []lockfile.Platform{{Platform: "linux/amd64", Digest: dg}}}
	v := &trust.Verifier{Sys: env.Sys}
	sigs, err := v.Verify(ctx, good.Images[0].Ref, e, spec.SignatureRequirements(good, good.Images[0].Ref))
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 1 || sigs[0].Manifest != dg || sigs[0].Key != "cosign.pub" || !strings.HasPrefix(sigs[0].Digest, "sha256:") {
		t.Fatalf("records: %+v", sigs)
	}

	bad := spec.Group("other")
	_, err = v.Verify(ctx, bad.Images[0].Ref, e, spec.SignatureRequirements(bad, bad.Images[0].Ref))
	var te *trust.Error
	if !errors.As(err, &te) || !errors.Is(err, errdefs.ErrSignature) {
		t.Fatalf("other key: %v", err)
	}
	if te.Registry != reg.Host || te.Manifest != dg || !strings.Contains(err.Error(), "key other.pub (sha256:") || !strings.Contains(err.Error(), `group "other" signatures`) {
		t.Errorf("error: %v", err)
	}
}

func TestSignatureTag(t *testing.T) {
	if got := trust.SignatureTag("sha256:abc"); got != "sha256-abc.sig" {
		t.Error(got)
	}
}
