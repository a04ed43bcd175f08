// Package trust checks an image's signatures against a spec's signature
// requirements before lock pins it. The verdict is containers/image's own
// policy engine (signature.PolicyContext.IsRunningImageAllowed on an
// UnparsedImage of the docker transport), reading cosign's sigstore
// attachments (tag sha256-<hex>.sig) from the registry through the run's
// hermetic SystemContext; this package only chooses the requirements,
// evaluates them one key at a time to learn which key signed, and records
// the signature manifests it accepted. The engine is built in only with the
// build tag containers_image_openpgp (engine.go); without it every
// requirement that needs a signature fails (engine_stub.go).
package trust

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// SignatureTag is the tag cosign stores the signatures of manifest m
// under, in m's repository.
func SignatureTag(m digest.Digest) string {
	return m.Algorithm().String() + "-" + m.Encoded() + ".sig"
}

// Verifier checks images through one SystemContext, which must enable
// sigstore attachments for their registries (registry.New does for the
// hosts config.Spec.SigstoreHosts names).
type Verifier struct {
	Sys *types.SystemContext
	// Locate, when set, finds the endpoint that serves the image; its
	// signature tags are read there only, as containers/image reads the
	// signatures it verifies. Unset, they are read through
	// containers/image, which asks the registry after a mirror that
	// lacks one.
	Locate Locate
}

// Verify checks the pinned image e of ref against reqs and returns what
// was verified, one record per manifest and requirement. Every failure is
// reported, gathered in one error of class errdefs.ErrSignature.
func (v *Verifier) Verify(ctx context.Context, ref image.Reference, e *lockfile.Image, reqs []*config.SignatureRequirement) ([]lockfile.Signature, error) {
	var errs []error
	var sigs []lockfile.Signature
	need := false
	platforms := false
	for _, r := range reqs {
		switch {
		case r.Require == config.RequireReject:
			errs = append(errs, &Error{Image: ref.String(), Registry: ref.Domain(), Requirement: r.String(), Reason: "the policy rejects every image of this scope"})
		case r.NeedsSignatures():
			need = true
			platforms = platforms || r.VerifyPlatforms
		}
	}
	if !need || len(errs) > 0 {
		return nil, list(errs)
	}
	named, err := reference.WithDigest(reference.TrimNamed(ref.Named), e.Digest)
	if err != nil {
		return nil, err
	}
	dref, err := docker.NewReference(named)
	if err != nil {
		return nil, err
	}
	src, err := dref.NewImageSource(ctx, v.Sys)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", named, err)
	}
	defer src.Close()
	var at lookup = &sysLookup{sys: v.Sys, repo: reference.TrimNamed(ref.Named)}
	if v.Locate != nil {
		ep, err := v.Locate(ctx, reference.TrimNamed(ref.Named), e.Digest)
		if err != nil {
			return nil, err
		}
		at = endpointLookup{ep}
	}
	type target struct {
		manifest digest.Digest
		platform string // "" for the image's own digest
	}
	targets := []target{{manifest: e.Digest}}
	if platforms {
		for _, p := range e.Platforms {
			if p.Digest != e.Digest {
				targets = append(targets, target{manifest: p.Digest, platform: p.Platform})
			}
		}
	}
	for _, t := range targets {
		for _, r := range reqs {
			if !r.NeedsSignatures() || t.platform != "" && !r.VerifyPlatforms {
				continue
			}
			s, err := verifyOne(ctx, at, src, t.manifest, t.manifest != e.Digest, r)
			if err != nil {
				err.Image, err.Registry, err.Platform = ref.String(), ref.Domain(), t.platform
				errs = append(errs, err)
				continue
			}
			sigs = append(sigs, *s)
		}
	}
	if err := list(errs); err != nil {
		return nil, err
	}
	return sigs, nil
}

// candidate is one way to satisfy a requirement: one key, or the Fulcio
// identity.
type candidate struct {
	req      requirement
	key      config.Key
	identity string
}

// identity says which signed references a candidate accepts: "" any in
// the image's repository (cosign names the repository alone in its
// payload; the payload's manifest digest binds the signature to the
// image), else exactly that repository.
type identity string

// verifyOne checks manifest m (an instance of src's index when instance)
// against r: with each of r's keys in turn until one accepts, so the
// record names the key that signed.
func verifyOne(ctx context.Context, at lookup, src types.ImageSource, m digest.Digest, instance bool, r *config.SignatureRequirement) (*lockfile.Signature, *Error) {
	fail := &Error{Manifest: m.String(), Requirement: r.String()}
	cands, err := candidates(r, "")
	if err != nil {
		fail.Reason, fail.Err = "the requirement is not usable: "+err.Error(), err
		return nil, fail
	}
	before, err := signatureManifest(ctx, at, m)
	if err != nil {
		fail.Reason, fail.Err = "reading the signature manifest "+SignatureTag(m), err
		return nil, fail
	}
	if before == "" {
		fail.Reason = "no signature: the registry has no " + SignatureTag(m)
		return nil, fail
	}
	var reasons []string
	for _, c := range cands {
		ok, err := allowed(ctx, src, m, instance, c.req)
		if !ok {
			who := c.identity
			if c.key.Name != "" {
				who = "key " + c.key.Name + " (" + c.key.Fingerprint + ")"
			}
			reasons = append(reasons, who+": "+reason(err))
			if fail.Err == nil {
				fail.Err = err
			}
			continue
		}
		after, err := signatureManifest(ctx, at, m)
		if err != nil || after != before {
			fail.Reason = "the signature manifest " + SignatureTag(m) + " changed while it was verified; run lock again"
			return nil, fail
		}
		return &lockfile.Signature{Manifest: m, Digest: before, Key: c.key.Name, Fingerprint: c.key.Fingerprint, Identity: c.identity}, nil
	}
	fail.Reason = "signature " + before.String() + " not accepted: " + strings.Join(reasons, "; ")
	return nil, fail
}

// signatureManifest returns the digest of the signature manifest of m, or
// "" when there is none.
func signatureManifest(ctx context.Context, at lookup, m digest.Digest) (digest.Digest, error) {
	blob, _, found, err := at.manifest(ctx, SignatureTag(m))
	if err != nil || !found {
		return "", err
	}
	return manifest.Digest(blob)
}

// isNotFound says whether err is a registry's answer that a manifest (a
// tag) does not exist, as containers/image tells it apart internally: the
// MANIFEST_UNKNOWN code, an UNKNOWN code saying "not found" (some
// registries), or a bare 404.
func isNotFound(err error) bool {
	var ec errcode.ErrorCoder
	if errors.As(err, &ec) && ec.ErrorCode() == v2.ErrorCodeManifestUnknown {
		return true
	}
	var e errcode.Error
	if errors.As(err, &e) && e.ErrorCode() == errcode.ErrorCodeUnknown && strings.Contains(strings.ToLower(e.Message), "not found") {
		return true
	}
	// containers/image keeps its unexpected-status error type internal.
	return strings.Contains(err.Error(), "status 404") || strings.Contains(err.Error(), "manifest unknown")
}

// Error is one signature requirement an image does not meet. It is of
// class errdefs.ErrSignature and never holds a secret: keys are public and
// named by their file and fingerprint.
type Error struct {
	Image       string // canonical reference
	Registry    string
	Manifest    string // the manifest whose signature was checked
	Platform    string // its platform, when it is not the image's own digest
	Requirement string
	Reason      string
	Err         error
}

func (e *Error) Error() string {
	what := "image " + e.Image
	if e.Manifest != "" {
		what += " (" + e.Manifest
		if e.Platform != "" {
			what += ", platform " + e.Platform
		}
		what += ")"
	}
	return fmt.Sprintf("%s on registry %s: %s: %s", what, e.Registry, e.Requirement, e.Reason)
}

func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{errdefs.ErrSignature}
	}
	return []error{e.Err, errdefs.ErrSignature}
}

func list(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errdefs.List(errs, "signature problems")
}
