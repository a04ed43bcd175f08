//go:build containers_image_openpgp

package trust_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
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

// A signature made by containers/image's own sigstore signer (as podman
// push --sign-by-sigstore-private-key and skopeo copy write it) with a key
// pair that containers/image generated is accepted, and one made by
// another key is refused.
func TestVerifyContainersImageSignature(t *testing.T) {
	testregistry.Isolate(t)
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{})
	ref := reg.Host + "/cimage/app:v1"
	dg := reg.PushImage(t, "cimage/app:v1", "cimage-signed")

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
	e := &lockfile.Image{Ref: ref, Digest: digest.Digest(dg), Platforms: []lockfile.Platform{{Platform: "linux/amd64", Digest: digest.Digest(dg)}}}
	v := &trust.Verifier{Sys: env.Sys}
	sigs, err := v.Verify(ctx, good.Images[0].Ref, e, spec.SignatureRequirements(good, good.Images[0].Ref))
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 1 || sigs[0].Manifest.String() != dg || sigs[0].Key != "cosign.pub" || !strings.HasPrefix(sigs[0].Digest.String(), "sha256:") {
		t.Fatalf("records: %+v", sigs)
	}
	// What was recorded verifies again offline, from the stored content.
	e.Signatures = sigs
	if err := trust.CheckRecorded(ctx, good.Images[0].Ref, e, spec.SignatureRequirements(good, good.Images[0].Ref), regStore{t, reg, []string{"cimage/app"}}, trust.RecordedOptions{TempDir: t.TempDir()}); err != nil {
		t.Fatalf("recorded signature, offline: %v", err)
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

// A keyless (Fulcio + Rekor) requirement is handed to containers/image as
// such: an image without signatures is refused for the identity, naming
// it, and no key is tried.
func TestVerifyFulcioRequirementUnsigned(t *testing.T) {
	testregistry.Isolate(t)
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{})
	ref := reg.Host + "/keyless/app:v1"
	dg := reg.PushImage(t, "keyless/app:v1", "fulcio-unsigned")
	dir := t.TempDir()
	rekor, err := fixtures.NewSigner()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"fulcio.pem": testCA(t), "rekor.pub": rekor.PublicPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	specPath := filepath.Join(dir, "bundle.toml")
	body := fmt.Sprintf(`[registries.%[1]q]
insecure = true

[[group]]
name = "keyless"
images = [%[2]q]
signatures = { require = "sigstoreSigned", fulcio-ca = "fulcio.pem", oidc-issuer = "https://issuer.example.com", subject-email = "rel@example.com", rekor-key = "rekor.pub" }
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
	g := spec.Group("keyless")
	e := &lockfile.Image{Ref: ref, Digest: digest.Digest(dg), Platforms: []lockfile.Platform{{Platform: "linux/amd64", Digest: digest.Digest(dg)}}}
	_, err = (&trust.Verifier{Sys: env.Sys}).Verify(ctx, g.Images[0].Ref, e, spec.SignatureRequirements(g, g.Images[0].Ref))
	if !errors.Is(err, errdefs.ErrSignature) || !strings.Contains(err.Error(), "by Fulcio CA fulcio.pem for issuer=https://issuer.example.com subject=rel@example.com") || !strings.Contains(err.Error(), "no signature") {
		t.Fatalf("keyless, unsigned: %v", err)
	}
	// Signed with a plain key, no certificate: containers/image's Fulcio
	// evaluation refuses it.
	if _, err := rekor.PushSignature(ctx, reg.Host+"/keyless/app", dg, reg.Transport()); err != nil {
		t.Fatal(err)
	}
	_, err = (&trust.Verifier{Sys: env.Sys}).Verify(ctx, g.Images[0].Ref, e, spec.SignatureRequirements(g, g.Images[0].Ref))
	if !errors.Is(err, errdefs.ErrSignature) || !strings.Contains(err.Error(), "not accepted: issuer=https://issuer.example.com subject=rel@example.com: ") {
		t.Fatalf("keyless, signed with a key: %v", err)
	}
	if strings.Contains(err.Error(), "loading Fulcio CA") {
		t.Errorf("the CA was not read: %v", err)
	}
	t.Logf("containers/image: %v", err)
}

// testCA is a self-signed CA certificate, PEM, standing in for Fulcio's.
func testCA(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test fulcio"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Keyless, offline: a signature whose certificate chains to the spec's
// Fulcio CA, names the required issuer and e-mail, and whose Rekor bundle
// verifies with the spec's Rekor key is accepted and recorded by identity;
// one for another e-mail is refused.
func TestVerifyKeyless(t *testing.T) {
	testregistry.Isolate(t)
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{})
	kl, err := fixtures.NewKeyless()
	if err != nil {
		t.Fatal(err)
	}
	good, other := reg.PushImage(t, "keyless/good:v1", "kl-good"), reg.PushImage(t, "keyless/other:v1", "kl-other")
	const issuer = "https://issuer.example.com"
	if _, err := kl.PushSignature(ctx, reg.Host+"/keyless/good", good, "rel@example.com", issuer, reg.Transport()); err != nil {
		t.Fatal(err)
	}
	if _, err := kl.PushSignature(ctx, reg.Host+"/keyless/other", other, "mallory@example.com", issuer, reg.Transport()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"fulcio.pem": kl.CAPEM, "rekor.pub": kl.RekorPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	specPath := filepath.Join(dir, "bundle.toml")
	body := fmt.Sprintf(`[registries.%[1]q]
insecure = true

[[signatures]]
scope = "%[1]s/keyless"
require = "sigstoreSigned"
fulcio-ca = "fulcio.pem"
oidc-issuer = %[2]q
subject-email = "rel@example.com"
rekor-key = "rekor.pub"

[[group]]
name = "g"
images = ["%[1]s/keyless/good:v1", "%[1]s/keyless/other:v1"]
`, reg.Host, issuer)
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
	g := spec.Group("g")
	v := &trust.Verifier{Sys: env.Sys}
	entry := func(dg string) *lockfile.Image {
		return &lockfile.Image{Digest: digest.Digest(dg), Platforms: []lockfile.Platform{{Platform: "linux/amd64", Digest: digest.Digest(dg)}}}
	}
	sigs, err := v.Verify(ctx, g.Images[0].Ref, entry(good), spec.SignatureRequirements(g, g.Images[0].Ref))
	if err != nil {
		t.Fatalf("keyless signature refused: %v", err)
	}
	if len(sigs) != 1 || sigs[0].Identity != "issuer="+issuer+" subject=rel@example.com" || sigs[0].Key != "" || sigs[0].Manifest.String() != good {
		t.Errorf("records: %+v", sigs)
	}
	_, err = v.Verify(ctx, g.Images[1].Ref, entry(other), spec.SignatureRequirements(g, g.Images[1].Ref))
	if !errors.Is(err, errdefs.ErrSignature) || !strings.Contains(err.Error(), "mallory@example.com") {
		t.Fatalf("another e-mail: %v", err)
	}

	// Offline, from the stored content: the record verifies again; the
	// same record moved onto the other image does not, and neither does
	// the other image's own signature recorded under the required
	// identity.
	st := regStore{t, reg, []string{"keyless/good", "keyless/other"}}
	opts := trust.RecordedOptions{TempDir: t.TempDir()}
	e := entry(good)
	e.Signatures = sigs
	if err := trust.CheckRecorded(ctx, g.Images[0].Ref, e, spec.SignatureRequirements(g, g.Images[0].Ref), st, opts); err != nil {
		t.Fatalf("recorded keyless signature, offline: %v", err)
	}
	moved := entry(other)
	moved.Signatures = []lockfile.Signature{{Manifest: digest.Digest(other), Digest: sigs[0].Digest, Identity: sigs[0].Identity}}
	err = trust.CheckRecorded(ctx, g.Images[1].Ref, moved, spec.SignatureRequirements(g, g.Images[1].Ref), st, opts)
	if !errors.Is(err, errdefs.ErrSignature) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("a record moved to another image: %v", err)
	}
	otherSig := regStore{t, reg, []string{"keyless/other"}}.tag("keyless/other", trust.SignatureTag(digest.Digest(other)))
	moved.Signatures[0].Digest = digest.Digest(otherSig)
	err = trust.CheckRecorded(ctx, g.Images[1].Ref, moved, spec.SignatureRequirements(g, g.Images[1].Ref), st, opts)
	if !errors.Is(err, errdefs.ErrSignature) || !strings.Contains(err.Error(), "mallory@example.com") {
		t.Fatalf("another e-mail, offline: %v", err)
	}
}

// regStore reads manifests and blobs straight from a test registry, from
// the first of repos that has them, checked against their digests: the
// content a build's cache would hold.
type regStore struct {
	t     *testing.T
	reg   *testregistry.Registry
	repos []string
}

func (s regStore) get(path string) ([]byte, int) {
	req, _ := http.NewRequest(http.MethodGet, s.reg.URL()+"/v2/"+path, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
	res, err := s.reg.Transport().RoundTrip(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return b, res.StatusCode
}

func (s regStore) fetch(kind string, d digest.Digest) ([]byte, error) {
	for _, r := range s.repos {
		if b, code := s.get(r + "/" + kind + "/" + d.String()); code == http.StatusOK {
			if digest.FromBytes(b) != d {
				return nil, fmt.Errorf("%s: wrong content", d)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s: not found", d)
}

// tag returns the digest of the manifest tagged tag in repo.
func (s regStore) tag(repo, tag string) string {
	b, code := s.get(repo + "/manifests/" + tag)
	if code != http.StatusOK {
		s.t.Fatalf("%s:%s: status %d", repo, tag, code)
	}
	return digest.FromBytes(b).String()
}

func (s regStore) Manifest(_ context.Context, d digest.Digest) ([]byte, error) {
	return s.fetch("manifests", d)
}

func (s regStore) Blob(_ context.Context, d digest.Digest, size int64) ([]byte, error) {
	b, err := s.fetch("blobs", d)
	if err == nil && int64(len(b)) != size {
		return nil, fmt.Errorf("%s: %d bytes, want %d", d, len(b), size)
	}
	return b, err
}
