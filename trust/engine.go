//go:build containers_image_openpgp

package trust

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	cimage "go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/airgap-bundle/airgap-bundle/config"
)

// The policy engine lives in containers/image's signature package, which
// compiles without cgo only with its pure-Go OpenPGP code
// (containers_image_openpgp): its GPG mechanism is gpgme otherwise, even
// though sigstore verification never uses it. engine_stub.go is the build
// without the tag.

type requirement = signature.PolicyRequirement

// Available reports whether this build verifies signatures: it does.
func Available() error { return nil }

// candidates returns the ways to satisfy r, each accepting signatures
// whose signed reference ident accepts.
func candidates(r *config.SignatureRequirement, ident identity) ([]candidate, error) {
	var rekor []signature.PRSigstoreSignedOption
	if len(r.RekorKeys) > 0 {
		// The keys as config read and checked them (within their cap), not
		// the paths again.
		datas := make([][]byte, len(r.RekorKeys))
		for i, k := range r.RekorKeys {
			datas[i] = k.Data
		}
		rekor = append(rekor, signature.PRSigstoreSignedWithRekorPublicKeyDatas(datas))
	}
	var match signature.PolicyReferenceMatch = signature.NewPRMMatchRepository()
	if ident != "" {
		exact, err := signature.NewPRMExactRepository(string(ident))
		if err != nil {
			return nil, fmt.Errorf("the image's repository: %w", err)
		}
		match = exact
	}
	signedIdentity := signature.PRSigstoreSignedWithSignedIdentity(match)
	var out []candidate
	if r.Fulcio != nil {
		f, err := signature.NewPRSigstoreSignedFulcio(
			signature.PRSigstoreSignedFulcioWithCAData(r.Fulcio.CAData),
			signature.PRSigstoreSignedFulcioWithOIDCIssuer(r.Fulcio.OIDCIssuer),
			signature.PRSigstoreSignedFulcioWithSubjectEmail(r.Fulcio.SubjectEmail))
		if err != nil {
			return nil, err
		}
		pr, err := signature.NewPRSigstoreSigned(append(rekor, signature.PRSigstoreSignedWithFulcio(f), signedIdentity)...)
		if err != nil {
			return nil, err
		}
		return []candidate{{req: pr, identity: r.Fulcio.Identity()}}, nil
	}
	for _, k := range r.Keys {
		pr, err := signature.NewPRSigstoreSigned(append(slices.Clip(rekor), signature.PRSigstoreSignedWithKeyData(k.Data), signedIdentity)...)
		if err != nil {
			return nil, err
		}
		out = append(out, candidate{req: pr, key: k})
	}
	return out, nil
}

// allowed runs containers/image's policy engine on one manifest with a
// policy that holds only req.
func allowed(ctx context.Context, src types.ImageSource, m digest.Digest, instance bool, req signature.PolicyRequirement) (bool, error) {
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{req}})
	if err != nil {
		return false, err
	}
	defer pc.Destroy() //nolint:errcheck // only releases the policy's state
	var inst *digest.Digest
	if instance {
		inst = &m
	}
	return pc.IsRunningImageAllowed(ctx, cimage.UnparsedInstance(src, inst))
}

// reason is the policy engine's answer in one line.
func reason(err error) string {
	if err == nil {
		return "rejected"
	}
	var pre signature.PolicyRequirementError
	if errors.As(err, &pre) {
		return string(pre)
	}
	return err.Error()
}
