package registry

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/tlsclientconfig"
)

// Target is what a run needs to write to one registry (push): the
// credentials and TLS settings the run's configuration gives its host (the
// spec's registries table, else the standard credential locations), and a
// transport that bounds every request with the run's Policy. The transport
// is not authenticated: go-containerregistry's transport does the token
// dance on top of it, with Auth.
type Target struct {
	Host string
	// Registry is the host as go-containerregistry names it.
	Registry name.Registry
	Auth     authn.Authenticator
	// HasCredentials reports whether credentials were found for the host
	// (never what they are).
	HasCredentials bool
	// Insecure is the spec's insecure = true: plain HTTP, or HTTPS without
	// verification. Otherwise only verified HTTPS is allowed.
	Insecure bool
	// CAFile is the spec's ca-file of the host, "" when none.
	CAFile    string
	Transport http.RoundTripper
}

// ErrPlainHTTP marks a request over plain HTTP to a registry the run must
// reach over verified TLS. go-containerregistry makes one after any failed
// HTTPS attempt on a loopback or private address, so it says nothing about
// what the registry speaks: Reach finds the cause in the HTTPS attempt.
var ErrPlainHTTP = errors.New("plain HTTP refused")

// CheckPort refuses a host[:port] whose port is not a TCP port (1-65535):
// such a name is a typo to report as one, not a registry to try and fail
// to reach. A host without a port passes.
func CheckPort(host string) error {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.HasSuffix(host, "]") {
		return nil
	}
	p := host[i+1:]
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %s is not a TCP port (1-65535)", host, p)
	}
	return nil
}

// Target returns the settings of host (host[:port]) for writing. The host
// must have been planned for (Options.Hosts or the spec; see Check).
func (e *Env) Target(host string, p Policy) (*Target, error) {
	if err := e.Check(host); err != nil {
		return nil, err
	}
	t := &Target{Host: host}
	if e.spec != nil {
		if r, ok := e.spec.Registries[host]; ok {
			t.Insecure, t.CAFile = r.Insecure, r.CAFile
		}
	}
	opts := []name.Option{name.StrictValidation}
	if t.Insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", host, err)
	}
	t.Registry = reg
	tlsc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.Insecure {
		tlsc.InsecureSkipVerify = true
	} else if err := tlsclientconfig.SetupCertificates(filepath.Join(e.Sys.DockerPerHostCertDirPath, host), tlsc); err != nil {
		return nil, err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsc
	base.MaxIdleConnsPerHost = 32
	t.Transport = &boundedTransport{base: base, policy: p, allowHTTP: t.Insecure, host: host}

	creds, err := config.GetCredentials(e.Sys, host)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCredentials, host, err)
	}
	t.Auth = authn.Anonymous
	if creds.Username != "" || creds.Password != "" || creds.IdentityToken != "" {
		t.HasCredentials = true
		t.Auth = authn.FromConfig(authn.AuthConfig{Username: creds.Username, Password: creds.Password, IdentityToken: creds.IdentityToken})
	}
	return t, nil
}

// boundedTransport applies a Policy to each request (Policy.Watch): the
// response headers must come within ResponseTimeout, and while a request
// body is sent (an upload) or a response body read, bytes must move at
// least every StallTimeout. It refuses plain HTTP unless the host is
// insecure: go-containerregistry falls back to HTTP by itself for loopback
// and private addresses, which the run's rule (verified TLS unless the spec
// says insecure) does not allow.
type boundedTransport struct {
	base      http.RoundTripper
	policy    Policy
	allowHTTP bool
	host      string
}

func (b *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !b.allowHTTP {
		return nil, fmt.Errorf("%w: %s is reached only over verified HTTPS unless its [registries.%q] table says insecure = true", ErrPlainHTTP, b.host, b.host)
	}
	ctx, wrap, classify, stop := b.policy.Watch(req.Context())
	req = req.Clone(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		// An upload: its time goes by bytes sent, not by the response.
		req.Body = wrap(req.Body)
	}
	resp, err := b.base.RoundTrip(req)
	if err != nil {
		stop()
		return nil, classify(err)
	}
	resp.Body = WatchedBody(wrap(resp.Body), classify, stop)
	return resp, nil
}

var _ http.RoundTripper = (*boundedTransport)(nil)
