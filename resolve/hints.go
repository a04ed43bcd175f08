package resolve

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker"
)

// ErrAuth marks a registry that refused the credentials it was given (or
// wanted some and got none).
var ErrAuth = errors.New("authentication failed")

// ErrTLS marks a registry whose certificate could not be verified.
var ErrTLS = errors.New("TLS verification failed")

// explain adds what to do to the registry errors users meet most.
func explain(err error, host string) error {
	if err == nil {
		return nil
	}
	var unauth docker.ErrUnauthorizedForCredentials
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	msg := err.Error()
	switch {
	case errors.As(err, &unauth) || strings.Contains(msg, "authentication required") || strings.Contains(msg, "unauthorized"):
		return fmt.Errorf("%w: %w\n    hint: registry %s refused the credentials; set registries.%q.auth (password-env, file or helper), or check the ones it names", ErrAuth, err, host, host)
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%w\n    hint: registry %s speaks plain HTTP; if that is intended (a loopback or lab registry), set registries.%q.insecure = true", err, host, host)
	case errors.As(err, &unknownCA) || errors.As(err, &hostErr) || strings.Contains(msg, "certificate signed by unknown authority"):
		return fmt.Errorf("%w: %w\n    hint: give the registry's CA with registries.%q.ca-file (TLS verification stays on); insecure = true turns it off", ErrTLS, err, host)
	}
	return err
}
