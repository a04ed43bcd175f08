package registry

// The one place that says what a registry error is: Reach (the registry
// could not be talked to at all, and why), IsAuth (it refused the
// credentials) and Transient (it may go away on its own, so a request is
// retried). lock, build, push, serve's clients and trust all ask these.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/docker/distribution/registry/api/errcode"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.podman.io/image/v5/docker"
)

// Why a registry could not be talked to at all. The words a transport
// error comes in mislead: go-containerregistry tries plain HTTP after any
// HTTPS failure on loopback and private addresses, and joins both errors,
// so a closed port or a certificate problem used to read as "answers only
// over HTTP". Reach looks through that to the cause.

// ReachKind is why a registry could not be reached.
type ReachKind int

const (
	// ReachRefused: nothing listens on the host's port.
	ReachRefused ReachKind = iota + 1
	// ReachNoSuchHost: the name does not resolve.
	ReachNoSuchHost
	// ReachNoRoute: no route to the host or its network.
	ReachNoRoute
	// ReachTLSName: the certificate is not valid for the name used.
	ReachTLSName
	// ReachTLSAuthority: the certificate is signed by a CA the run does
	// not trust.
	ReachTLSAuthority
	// ReachTLSInvalid: the certificate is expired, not yet valid or
	// otherwise unusable.
	ReachTLSInvalid
	// ReachPlainHTTP: the host answered an HTTPS request in plain HTTP
	// (or in anything but TLS).
	ReachPlainHTTP
)

// ReachError is a registry that could not be reached, said in the words a
// user acts on: what happened (Detail) and what to do (Hint). Err is the
// transport's error, kept for errors.Is and errors.As but not printed: its
// text is the misleading part.
type ReachError struct {
	Kind   ReachKind
	Host   string // host[:port] as the run named it
	Detail string
	Hint   string
	Err    error
}

func (e *ReachError) Error() string { return e.Host + ": " + e.Detail + "; " + e.Hint }

func (e *ReachError) Unwrap() error { return e.Err }

// Is makes every certificate failure an ErrTLS.
func (e *ReachError) Is(target error) bool {
	return target == ErrTLS && (e.Kind == ReachTLSName || e.Kind == ReachTLSAuthority || e.Kind == ReachTLSInvalid)
}

// Reason is the cause in a few words, for a line that stands for many
// failed requests ("registry X is unreachable (connection refused)").
func (e *ReachError) Reason() string {
	switch e.Kind {
	case ReachRefused:
		return "connection refused"
	case ReachNoSuchHost:
		return "no such host"
	case ReachNoRoute:
		return "no route to host"
	case ReachTLSName, ReachTLSAuthority, ReachTLSInvalid:
		return ErrTLS.Error()
	case ReachPlainHTTP:
		return "not a TLS server"
	}
	return e.Detail
}

// ErrTLS is the class of a registry whose certificate could not be
// verified (unknown authority, wrong name, expired).
var ErrTLS = errors.New("TLS verification failed")

// ErrAuth is the class of a registry that refused the credentials it was
// given, or wanted some and got none.
var ErrAuth = errors.New("authentication failed")

// IsAuth says whether err is a registry refusing the credentials (or the
// lack of them): containers/image's typed error, a 401 or the words
// registries answer with.
func IsAuth(err error) bool {
	if err == nil {
		return false
	}
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.Is(err, ErrAuth) || errors.As(err, &unauth) {
		return true
	}
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "authentication required") || strings.Contains(msg, "unauthorized")
}

// Unreachable says whether err means the registry at host could not be
// talked to at all (a cause Reach finds) or stopped answering (a reset
// connection, a timeout), and why in a few words. lock reports such a
// registry once, for all its images, instead of once per image.
func Unreachable(host string, err error) (reason string, ok bool) {
	var re *ReachError
	if errors.As(Reach(host, err), &re) {
		return re.Reason(), true
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsTimeout:
		return "DNS timeout", true
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset", true
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return "timeout", true
	case errors.As(err, &opErr):
		if strings.Contains(opErr.Error(), "tls:") || strings.Contains(opErr.Error(), "handshake") {
			return "TLS handshake failed", true
		}
		if opErr.Op == "dial" {
			return "cannot connect", true
		}
	}
	return "", false
}

// Reach returns err as a *ReachError when it is a failure to reach the
// registry at host (host[:port]) at all, and err unchanged otherwise (nil
// included). A refused plain-HTTP fallback (ErrPlainHTTP) is never the
// cause by itself: the HTTPS attempt beside it is.
func Reach(host string, err error) error {
	if err == nil {
		return nil
	}
	var re *ReachError
	if errors.As(err, &re) {
		return err
	}
	name := host
	if h, _, splitErr := net.SplitHostPort(host); splitErr == nil {
		name = h
	}
	name = strings.Trim(name, "[]")
	r := &ReachError{Host: host, Err: err}
	var (
		dnsErr    *net.DNSError
		hostErr   x509.HostnameError
		unknownCA x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		recErr    tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		r.Kind, r.Detail = ReachRefused, "connection refused"
		r.Hint = "nothing listens on that port: check the host and port, and that the registry is running"
	case errors.As(err, &dnsErr) && !dnsErr.IsTimeout:
		r.Kind, r.Detail = ReachNoSuchHost, "no such host "+dnsErr.Name
		r.Hint = "check the name (DNS, /etc/hosts)"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		r.Kind, r.Detail = ReachNoRoute, "no route to host"
		r.Hint = "check the address and the network between here and the registry"
	case errors.As(err, &hostErr):
		r.Kind = ReachTLSName
		r.Detail = fmt.Sprintf("certificate not valid for %s (valid for: %s)", name, certNames(hostErr.Certificate))
		r.Hint = fmt.Sprintf("reach the registry by one of those names, or have its certificate reissued with %s among its subject alternative names", name)
	case errors.As(err, &unknownCA):
		r.Kind = ReachTLSAuthority
		r.Detail = "certificate signed by an unknown authority"
		if c := unknownCA.Cert; c != nil && c.Issuer.CommonName != "" {
			r.Detail += fmt.Sprintf(" (issuer %q)", c.Issuer.CommonName)
		}
		r.Hint = fmt.Sprintf("give the PEM of the CA that signed it as ca-file in a [registries.%q] table of the spec", host)
	case errors.As(err, &invalid):
		r.Kind, r.Detail = ReachTLSInvalid, "certificate not usable: "+invalid.Error()
		r.Hint = "have the registry's certificate renewed (and check this machine's clock)"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"), errors.As(err, &recErr):
		r.Kind = ReachPlainHTTP
		r.Detail = "answers over plain HTTP, not HTTPS"
		r.Hint = fmt.Sprintf("if that is intended (a lab or loopback registry), declare [registries.%q] with insecure = true", host)
	default:
		return err
	}
	return r
}

// certNames lists the names a certificate is valid for: its DNS names, IP
// addresses and URIs, in that order.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "unknown"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	for _, u := range c.URIs {
		names = append(names, u.String())
	}
	if len(names) == 0 {
		return fmt.Sprintf("no names: it has no subject alternative names, and its common name %q is not used", c.Subject.CommonName)
	}
	return strings.Join(names, ", ")
}

// Transient reports whether err may go away on its own: a timeout or stall,
// a reset connection, a body cut short, HTTP 408, 429 or 5xx. Refused
// connections, unknown hosts, authentication failures, missing manifests
// and blobs, and cancellation are not.
func Transient(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrResponseTimeout), errors.Is(err, ErrStalled), errors.Is(err, ErrCorruptBody):
		return true // our own timeouts cancel the request: checked before Canceled
	case errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, docker.ErrTooManyRequests), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	// Errors of other HTTP clients (chart repositories) say it themselves.
	var says interface{ Transient() bool }
	if errors.As(err, &says) {
		return says.Transient()
	}
	var status docker.UnexpectedHTTPStatusError
	if errors.As(err, &status) {
		return transientStatus(status.StatusCode)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return transientStatus(te.StatusCode)
	}
	var ec errcode.Error
	if errors.As(err, &ec) {
		if ec.Code == errcode.ErrorCodeUnavailable || ec.Code == errcode.ErrorCodeTooManyRequests {
			return true
		}
		return transientStatus(ec.Code.Descriptor().HTTPStatusCode)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// A refused connection, an unknown host or an unreachable network is
	// a wrong address far more often than a passing fault: it fails at
	// once (and lock reports it once per registry).
	// containers/image reports an HTTP status it has no type for only in
	// its message ("StatusCode: 503, ...").
	msg := err.Error()
	for _, code := range []int{408, 429, 500, 502, 503, 504} {
		if strings.Contains(msg, fmt.Sprintf("StatusCode: %d", code)) || strings.Contains(msg, fmt.Sprintf("status %d", code)) {
			return true
		}
	}
	return false
}

func transientStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}
