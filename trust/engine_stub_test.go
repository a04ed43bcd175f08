//go:build !containers_image_openpgp

package trust

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
)

// A build without the policy engine (plain go install) must refuse a
// signature requirement with the way out in the message, never accept it.
func TestWithoutEngineEveryRequirementFails(t *testing.T) {
	if Available() == nil {
		t.Fatal("Available() = nil in a build without containers_image_openpgp")
	}
	m := digest.FromString("manifest")
	for _, r := range []*config.SignatureRequirement{
		{Require: config.RequireSigstoreSigned, Keys: []config.Key{{Name: "keys/cosign.pub", Path: "/nonexistent/cosign.pub", Fingerprint: "sha256:00"}}},
		{Require: config.RequireSigstoreSigned, Fulcio: &config.Fulcio{CAFile: "/nonexistent/fulcio.pem", OIDCIssuer: "https://issuer.example", SubjectEmail: "a@example.com"}},
	} {
		// No lookup, no image source: the refusal must come before any
		// registry access.
		sig, fail := verifyOne(context.Background(), nil, nil, m, false, r)
		if sig != nil || fail == nil {
			t.Fatalf("%s: verified without an engine: %+v", r, sig)
		}
		if !errors.Is(fail, errdefs.ErrSignature) || !errors.Is(fail, ErrUnavailable) {
			t.Errorf("%s: error %v is not of class ErrSignature wrapping ErrUnavailable", r, fail)
		}
		if !strings.Contains(fail.Error(), "-tags containers_image_openpgp") {
			t.Errorf("%s: %q does not say how to get a build that verifies", r, fail.Error())
		}
	}
}
