package registry

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.podman.io/image/v5/docker"
)

// TestReach: each cause is found behind the refused plain-HTTP fallback
// go-containerregistry joins to it, and said with its remedy; anything
// else is left as it is.
func TestReach(t *testing.T) {
	const host = "reg.example:5000"
	fallback := fmt.Errorf("%w: reg.example:5000 is reached only over verified HTTPS", ErrPlainHTTP)
	get := func(err error) error {
		return errors.Join(&url.Error{Op: "Get", URL: "https://" + host + "/v2/", Err: err}, &url.Error{Op: "Get", URL: "http://" + host + "/v2/", Err: fallback})
	}
	cert := &x509.Certificate{DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Issuer: pkix.Name{CommonName: "Lab CA"}}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, c := range []struct {
		name string
		err  error
		kind ReachKind
		want []string
	}{
		{"refused", get(refused), ReachRefused, []string{host + ": connection refused", "nothing listens"}},
		{"no such host", get(&net.DNSError{Err: "no such host", Name: "reg.example", IsNotFound: true}), ReachNoSuchHost, []string{"no such host reg.example"}},
		{"name", get(x509.HostnameError{Certificate: cert, Host: "reg.example"}), ReachTLSName, []string{"certificate not valid for reg.example (valid for: localhost, 127.0.0.1)", "reissued with reg.example"}},
		{"no SANs", get(x509.HostnameError{Certificate: &x509.Certificate{Subject: pkix.Name{CommonName: "reg.example"}}, Host: "reg.example"}), ReachTLSName, []string{`its common name "reg.example" is not used`}},
		{"authority", get(x509.UnknownAuthorityError{Cert: cert}), ReachTLSAuthority, []string{`unknown authority (issuer "Lab CA")`, `ca-file in a [registries."reg.example:5000"] table`}},
		{"expired", get(x509.CertificateInvalidError{Cert: cert, Reason: x509.Expired}), ReachTLSInvalid, []string{"certificate not usable", "renewed"}},
		{"plain HTTP", get(errors.New("http: server gave HTTP response to HTTPS client")), ReachPlainHTTP, []string{host + ": answers over plain HTTP", `[registries."reg.example:5000"] with insecure = true`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Reach(host, c.err)
			var re *ReachError
			if !errors.As(err, &re) || re.Kind != c.kind {
				t.Fatalf("Reach = %v, want kind %d", err, c.kind)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "plain HTTP refused") || (c.kind != ReachPlainHTTP && strings.Contains(err.Error(), "insecure")) {
				t.Errorf("the fallback's words in %q", err)
			}
			if !errors.Is(err, c.err) || Reach(host, err) != err {
				t.Errorf("the cause is lost, or classified twice: %v", err)
			}
		})
	}
	other := get(errors.New("remote error: tls: handshake failure"))
	if Reach(host, other) != other || Reach(host, nil) != nil {
		t.Error("an error that is not a reach failure was changed")
	}
}

func TestCheckPort(t *testing.T) {
	for _, ok := range []string{"reg.example", "reg.example:5000", "127.0.0.1:1", "[::1]:65535", "[::1]"} {
		if err := CheckPort(ok); err != nil {
			t.Errorf("CheckPort(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:99999", "reg.example:0", "reg.example:", "[::1]:65536"} {
		if err := CheckPort(bad); err == nil || !strings.Contains(err.Error(), "1-65535") {
			t.Errorf("CheckPort(%q): %v", bad, err)
		}
	}
}

// Unreachable gives lock's one-line reason for every way a registry can
// fail to answer at all, and nothing for failures of one image.
func TestUnreachable(t *testing.T) {
	const host = "reg.example:5000"
	cert := &x509.Certificate{DNSNames: []string{"localhost"}}
	for _, c := range []struct {
		name   string
		err    error
		reason string // "" for not a host failure
		tls    bool
	}{
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "connection refused", false},
		{"no such host", &net.DNSError{Err: "no such host", Name: "reg.example", IsNotFound: true}, "no such host", false},
		{"DNS timeout", &net.DNSError{Err: "i/o timeout", Name: "reg.example", IsTimeout: true}, "DNS timeout", false},
		{"no route", os.NewSyscallError("connect", syscall.EHOSTUNREACH), "no route to host", false},
		{"reset", os.NewSyscallError("read", syscall.ECONNRESET), "connection reset", false},
		{"deadline", fmt.Errorf("pinging: %w", context.DeadlineExceeded), "timeout", false},
		{"unknown CA", x509.UnknownAuthorityError{Cert: cert}, "TLS verification failed", true},
		{"wrong name", x509.HostnameError{Certificate: cert, Host: "reg.example"}, "TLS verification failed", true},
		{"plain HTTP", errors.New("http: server gave HTTP response to HTTPS client"), "not a TLS server", false},
		{"handshake", &net.OpError{Op: "remote error", Err: errors.New("tls: handshake failure")}, "TLS handshake failed", false},
		{"other dial", &net.OpError{Op: "dial", Err: errors.New("socket: too many open files")}, "cannot connect", false},
		{"manifest unknown", errors.New("manifest unknown"), "", false},
		{"cancelled", context.Canceled, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			reason, ok := Unreachable(host, c.err)
			if reason != c.reason || ok != (c.reason != "") {
				t.Fatalf("Unreachable = %q, %v; want %q", reason, ok, c.reason)
			}
			if got := errors.Is(Reach(host, c.err), ErrTLS); got != c.tls {
				t.Errorf("errors.Is(Reach(...), ErrTLS) = %v, want %v", got, c.tls)
			}
		})
	}
}

func TestIsAuth(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{docker.ErrUnauthorizedForCredentials{Err: errors.New("401")}, true},
		{&transport.Error{StatusCode: http.StatusUnauthorized}, true},
		{errors.New("reading manifest 1.0: authentication required"), true},
		{fmt.Errorf("x: %w", ErrAuth), true},
		{&transport.Error{StatusCode: http.StatusNotFound}, false},
		{errors.New("manifest unknown"), false},
		{nil, false},
	} {
		if got := IsAuth(c.err); got != c.want {
			t.Errorf("IsAuth(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
