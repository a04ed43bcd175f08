package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// Why a registry could not be talked to at all. The words a transport
// error comes in mislead: go-containerregistry tries plain HTTP after any
// HTTPS failure on loopback and private addresses, and joins both errors,
// so a closed port or a certificate problem used to read as "answers only
// over HTTP". Reach looks through that to the cause, and is meant to be the
// one place that tells these causes apart (bundler's connectionFailure and
// resolve's explain are to become its callers).

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
	case errors.As(err, &dnsErr):
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
