package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/pkg/tlsclientconfig"
)

// ErrNotServed marks a blob request the shared transport could not serve
// (the registry ignored a Range request, or answered in a way only
// containers/image knows how to follow); the caller falls back to
// containers/image.
var ErrNotServed = errors.New("blob not served through the shared transport")

// OpenBlobAt returns blob d of repository repo from byte offset on (with an
// HTTP Range request when offset > 0). containers/image resumes a cut body
// only by its own heuristics, offers no ranged read in its public API, and
// opens a new HTTP transport (new connections, new TLS handshakes) for
// every repository; blob downloads are the bulk of a build, so they are
// made here instead: one keep-alive transport per registry host shared by
// every repository of the run, with the run's own mirrors, certificates
// and credentials (go-containerregistry's transport does the token dance).
// Any failure other than a transient one is reported as ErrNotServed.
func (e *Env) OpenBlobAt(ctx context.Context, repo reference.Named, d digest.Digest, offset int64) (io.ReadCloser, error) {
	sources, err := e.pullSources(repo)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotServed, err)
	}
	var errs []error
	for _, src := range sources {
		rc, err := e.openAt(ctx, src, d, offset)
		if err == nil {
			return rc, nil
		}
		if Transient(err) || errors.Is(err, context.Canceled) {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrNotServed, errors.Join(errs...))
}

func (e *Env) pullSources(repo reference.Named) ([]sysregistriesv2.PullSource, error) {
	reg, err := sysregistriesv2.FindRegistry(e.Sys, repo.Name())
	if err != nil {
		return nil, err
	}
	if reg == nil {
		return []sysregistriesv2.PullSource{{Endpoint: sysregistriesv2.Endpoint{Location: reference.Domain(repo)}, Reference: repo}}, nil
	}
	return reg.PullSourcesFromReference(repo)
}

func (e *Env) openAt(ctx context.Context, src sysregistriesv2.PullSource, d digest.Digest, offset int64) (io.ReadCloser, error) {
	host := reference.Domain(src.Reference)
	path := reference.Path(src.Reference)
	rt, err := e.transport(ctx, host, path, src.Endpoint.Insecure)
	if err != nil {
		return nil, err
	}
	schemes := []string{"https"}
	if src.Endpoint.Insecure {
		schemes = append(schemes, "http")
	}
	var lastErr error
	for _, scheme := range schemes {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/%s/blobs/%s", scheme, host, path, d), nil)
		if err != nil {
			return nil, err
		}
		if offset > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		}
		res, err := (&http.Client{Transport: rt}).Do(req)
		if err != nil {
			lastErr = err
			if Transient(err) {
				return nil, err
			}
			continue
		}
		return rangedBody(res, offset)
	}
	return nil, lastErr
}

// rangedBody checks the answer: 200 for the whole blob, 206 from exactly
// offset for the rest of it, else an error.
func rangedBody(res *http.Response, offset int64) (io.ReadCloser, error) {
	if offset == 0 && res.StatusCode == http.StatusOK {
		return res.Body, nil
	}
	if offset > 0 && res.StatusCode == http.StatusPartialContent {
		// Content-Range: bytes <start>-<end>/<size>
		cr := strings.TrimPrefix(res.Header.Get("Content-Range"), "bytes ")
		start, _, _ := strings.Cut(cr, "-")
		if n, err := strconv.ParseInt(start, 10, 64); err == nil && n == offset {
			return res.Body, nil
		}
		res.Body.Close()
		return nil, fmt.Errorf("registry answered a Range request from %d with Content-Range %q", offset, res.Header.Get("Content-Range"))
	}
	res.Body.Close()
	// "status %d" is what Transient reads for 408, 429 and 5xx.
	err := fmt.Errorf("downloading blob: status %d", res.StatusCode)
	if secs, perr := strconv.Atoi(strings.TrimSpace(res.Header.Get("Retry-After"))); perr == nil && secs > 0 {
		return nil, &RetryAfterError{Wait: time.Duration(secs) * time.Second, Err: err}
	}
	return nil, err
}

// transport returns an authenticated round tripper for one repository,
// built once per (host, repository) and shared by every resume of the run.
func (e *Env) transport(ctx context.Context, host, path string, insecure bool) (http.RoundTripper, error) {
	key := host + "/" + path
	e.mu.Lock()
	defer e.mu.Unlock()
	if rt, ok := e.transports[key]; ok {
		return rt, nil
	}
	tlsc := &tls.Config{MinVersion: tls.VersionTLS12}
	if insecure {
		tlsc.InsecureSkipVerify = true
	} else if err := tlsclientconfig.SetupCertificates(filepath.Join(e.Sys.DockerPerHostCertDirPath, host), tlsc); err != nil {
		return nil, err
	}
	baseKey := fmt.Sprintf("%s|%v", host, insecure)
	base, ok := e.bases[baseKey]
	if !ok {
		base = http.DefaultTransport.(*http.Transport).Clone()
		base.TLSClientConfig = tlsc
		// Parallel downloads from one registry reuse their connections.
		base.MaxIdleConnsPerHost = 32
		if e.bases == nil {
			e.bases = map[string]*http.Transport{}
		}
		e.bases[baseKey] = base
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, err
	}
	creds, err := config.GetCredentials(e.Sys, host)
	if err != nil {
		return nil, err
	}
	auth := authn.Anonymous
	if creds.Username != "" || creds.Password != "" || creds.IdentityToken != "" {
		auth = authn.FromConfig(authn.AuthConfig{Username: creds.Username, Password: creds.Password, IdentityToken: creds.IdentityToken})
	}
	rt, err := transport.NewWithContext(ctx, reg, auth, base, []string{reg.Repo(path).Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	if e.transports == nil {
		e.transports = map[string]http.RoundTripper{}
	}
	e.transports[key] = rt
	return rt, nil
}
