package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// Referrers asks the OCI 1.1 referrers API of repo's registry (or its
// mirrors, in order) for the manifests whose subject is d. It returns the
// index the registry sent, or supported == false when no source offers
// the API (a 404 or 405: then the referrers tag schema, tag
// sha256-<hex>, is the fallback). containers/image has no referrers API,
// so the request goes through the run's shared transport, with the run's
// certificates and credentials.
func (e *Env) Referrers(ctx context.Context, repo reference.Named, d digest.Digest) (index []byte, supported bool, err error) {
	sources, err := e.pullSources(repo)
	if err != nil {
		return nil, false, err
	}
	for _, src := range sources {
		host := reference.Domain(src.Reference)
		path := reference.Path(src.Reference)
		rt, err := e.transport(ctx, host, path, src.Endpoint.Insecure)
		if err != nil {
			return nil, false, err
		}
		schemes := []string{"https"}
		if src.Endpoint.Insecure {
			schemes = append(schemes, "http")
		}
		for _, scheme := range schemes {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/%s/referrers/%s", scheme, host, path, d), nil)
			if err != nil {
				return nil, false, err
			}
			req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
			res, err := (&http.Client{Transport: rt}).Do(req)
			if err != nil {
				if Transient(err) || ctx.Err() != nil {
					return nil, false, err
				}
				continue
			}
			body, rerr := io.ReadAll(io.LimitReader(res.Body, image.MaxManifestSize+1))
			res.Body.Close()
			switch {
			case res.StatusCode == http.StatusOK && rerr == nil && len(body) <= image.MaxManifestSize:
				return body, true, nil
			case res.StatusCode == http.StatusOK:
				return nil, false, fmt.Errorf("referrers of %s: body over %d bytes or unreadable: %v", d, image.MaxManifestSize, rerr)
			case transientStatus(res.StatusCode):
				return nil, false, fmt.Errorf("referrers of %s: status %d", d, res.StatusCode)
			}
		}
	}
	return nil, false, nil
}
