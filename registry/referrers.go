package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/sysregistriesv2"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
)

// Endpoint is the one place, a mirror or the registry itself, that serves
// an image: the first of its pull sources (the spec's mirrors in order,
// then the registry) that has the image's manifest, as containers/image
// picks one when it pulls by digest. The image's attachments (cosign's
// tags, OCI 1.1 referrers) are looked up there and nowhere else, as
// containers/image reads sigstore signatures from the endpoint that served
// the image: a mirror without an attachment means the image has none
// there, not that another host should be asked (for docker.io behind a
// mirror inside the gap, that host cannot be reached at all).
type Endpoint struct {
	env      *Env
	host     string // host[:port] as the spec names the registry or mirror
	url      string // scheme-less base: the host requests go to (index.docker.io for docker.io)
	path     string // the repository at that host
	insecure bool

	mu     sync.Mutex
	scheme string // the one that answered, once one has
}

// String names the endpoint's repository for messages.
func (p *Endpoint) String() string { return p.host + "/" + p.path }

// Endpoint returns the endpoint that serves repo@d. A source that answers
// that it lacks the manifest, or cannot be reached, is passed over, as
// containers/image passes it over; a transient failure or a cancellation
// stops the search, so a retry asks the same sources again.
func (e *Env) Endpoint(ctx context.Context, repo reference.Named, d digest.Digest) (*Endpoint, error) {
	canonical, err := reference.WithDigest(reference.TrimNamed(repo), d)
	if err != nil {
		return nil, err
	}
	sources, err := e.pullSources(canonical)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, src := range sources {
		p, err := e.endpoint(src)
		if err != nil {
			return nil, err
		}
		found, err := p.has(ctx, d)
		switch {
		case found:
			return p, nil
		case err == nil:
			errs = append(errs, fmt.Errorf("%s: manifest %s unknown", p, d))
		case Transient(err) || ctx.Err() != nil:
			return nil, err
		default:
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	return nil, fmt.Errorf("%w: no source of %s has manifest %s: %w", errdefs.ErrRegistry, repo.Name(), d, errors.Join(errs...))
}

func (e *Env) endpoint(src sysregistriesv2.PullSource) (*Endpoint, error) {
	host := reference.Domain(src.Reference)
	var opts []name.Option
	if src.Endpoint.Insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, err
	}
	return &Endpoint{env: e, host: host, url: reg.RegistryStr(), path: reference.Path(src.Reference), insecure: src.Endpoint.Insecure}, nil
}

// has asks whether the endpoint has manifest d, with HEAD: Docker Hub
// counts a GET of a manifest against the pull rate limit, not a HEAD. A
// registry that does not answer HEAD is asked with GET.
func (p *Endpoint) has(ctx context.Context, d digest.Digest) (bool, error) {
	res, err := p.do(ctx, http.MethodHead, "manifests/"+d.String(), manifestTypes)
	if err != nil {
		return false, err
	}
	res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		_, _, found, err := p.Manifest(ctx, d.String())
		return found, err
	}
	return false, fmt.Errorf("manifest %s of %s: status %d", d, p, res.StatusCode)
}

// manifestTypes are the manifests an attachment or image can be.
var manifestTypes = strings.Join([]string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	manifest.DockerV2Schema2MediaType, manifest.DockerV2ListMediaType,
}, ", ")

// Manifest fetches the manifest tagged or digested ref (a tag, or
// sha256:<hex>) from this endpoint only. found is false when the endpoint
// answers 404: it does not have it. A manifest fetched by digest is
// checked against it.
func (p *Endpoint) Manifest(ctx context.Context, ref string) (blob []byte, mediaType string, found bool, err error) {
	res, err := p.do(ctx, http.MethodGet, "manifests/"+ref, manifestTypes)
	if err != nil {
		return nil, "", false, err
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusNotFound:
		return nil, "", false, nil
	case res.StatusCode != http.StatusOK:
		// "status %d" is what Transient reads for 408, 429 and 5xx.
		return nil, "", false, fmt.Errorf("manifest %s of %s: status %d", ref, p, res.StatusCode)
	}
	blob, err = io.ReadAll(io.LimitReader(res.Body, image.MaxManifestSize+1))
	if err != nil {
		return nil, "", false, fmt.Errorf("manifest %s of %s: %w", ref, p, err)
	}
	if len(blob) > image.MaxManifestSize {
		return nil, "", false, fmt.Errorf("manifest %s of %s: over %d bytes", ref, p, image.MaxManifestSize)
	}
	if d, err := digest.Parse(ref); err == nil && d.Algorithm().Available() && d.Algorithm().FromBytes(blob) != d {
		return nil, "", false, fmt.Errorf("manifest %s of %s: the endpoint sent content with digest %s", ref, p, d.Algorithm().FromBytes(blob))
	}
	mediaType, _, _ = strings.Cut(res.Header.Get("Content-Type"), ";")
	if mediaType = strings.TrimSpace(mediaType); !image.MediaType(mediaType).IsImage() {
		mediaType = manifest.GuessMIMEType(blob)
	}
	return blob, mediaType, true, nil
}

// Referrers asks this endpoint's OCI 1.1 referrers API for the manifests
// whose subject is d. supported is false when it has no such API (404 or
// 405, as distribution 2.8 answers): the referrers tag schema of the same
// endpoint is then the fallback, never another host. containers/image
// has no referrers API, so the request goes through the run's shared
// transport, with the run's certificates and credentials.
func (p *Endpoint) Referrers(ctx context.Context, d digest.Digest) (index []byte, supported bool, err error) {
	res, err := p.do(ctx, http.MethodGet, "referrers/"+d.String(), ocispec.MediaTypeImageIndex)
	if err != nil {
		return nil, false, err
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusOK:
	case transientStatus(res.StatusCode):
		return nil, false, fmt.Errorf("referrers of %s at %s: status %d", d, p, res.StatusCode)
	default:
		return nil, false, nil
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, image.MaxManifestSize+1))
	if err != nil || len(body) > image.MaxManifestSize {
		return nil, false, fmt.Errorf("referrers of %s at %s: body over %d bytes or unreadable: %v", d, p, image.MaxManifestSize, err)
	}
	return body, true, nil
}

// do sends method /v2/<path>/<rest>: over https, and for an insecure
// endpoint over http when https cannot be spoken; the scheme that answered
// is kept for the endpoint's later requests.
func (p *Endpoint) do(ctx context.Context, method, rest, accept string) (*http.Response, error) {
	rt, err := p.env.transport(ctx, p.host, p.path, p.insecure)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	schemes := []string{p.scheme}
	p.mu.Unlock()
	if schemes[0] == "" {
		schemes = []string{"https"}
		if p.insecure {
			schemes = append(schemes, "http")
		}
	}
	var lastErr error
	for _, scheme := range schemes {
		req, err := http.NewRequestWithContext(ctx, method, fmt.Sprintf("%s://%s/v2/%s/%s", scheme, p.url, p.path, rest), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", accept)
		res, err := (&http.Client{Transport: rt}).Do(req)
		if err != nil {
			if Transient(err) || ctx.Err() != nil {
				return nil, err
			}
			lastErr = err
			continue
		}
		p.mu.Lock()
		p.scheme = scheme
		p.mu.Unlock()
		return res, nil
	}
	return nil, lastErr
}
