//go:build !containers_image_openpgp

package trust

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"

	"github.com/airgap-bundle/airgap-bundle/config"
)

// Without the containers_image_openpgp tag, containers/image's signature
// package needs gpgme through cgo, so a plain `go install` (CGO_ENABLED=0,
// no tags) could not build at all. This build leaves the policy engine out
// instead and refuses every requirement that needs a signature: a spec that
// asks for signatures fails, it is never waved through.

type requirement struct{}

// ErrUnavailable is why this build refuses signature requirements.
var ErrUnavailable = errors.New("this airgap-bundle was built without signature verification (containers/image's policy engine needs the build tag containers_image_openpgp without cgo); install it with: CGO_ENABLED=0 go install -tags containers_image_openpgp github.com/airgap-bundle/airgap-bundle/cmd/airgap-bundle@latest")

// Available reports whether this build verifies signatures: it does not.
func Available() error { return ErrUnavailable }

func candidates(*config.SignatureRequirement, identity) ([]candidate, error) {
	return nil, ErrUnavailable
}

func allowed(context.Context, types.ImageSource, digest.Digest, bool, requirement) (bool, error) {
	return false, ErrUnavailable
}

func reason(err error) string {
	if err == nil {
		return "rejected"
	}
	return err.Error()
}
