package resolve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// Issue 8, defect 1: settings under a bare host key ("127.0.0.1") apply to
// that host[:port] only. A TLS registry on another port of the same host,
// without an entry of its own, keeps TLS verification on and gets no
// credentials: containers/image's registries.conf prefix matching would
// otherwise hand it the bare key's insecure = true.
func TestBareHostKeyDoesNotLeakToOtherPorts(t *testing.T) {
	plain, _ := plainRegistry(t) // isolates HOME, XDG_*, REGISTRY_AUTH_FILE
	tlsReg := testregistry.Start(t, testregistry.Options{TLS: true, Users: map[string]string{"ci": "s3cret-pw"}})
	std, err := fixtures.PushStandard(context.Background(), tlsReg.Host, tlsReg.Transport(), "ci", "s3cret-pw")
	if err != nil {
		t.Fatal(err)
	}
	plainPort := strings.TrimPrefix(plain.Host, "127.0.0.1")
	if plainPort == plain.Host {
		t.Fatalf("plain registry host %s is not on 127.0.0.1", plain.Host)
	}
	// The same credentials the TLS registry accepts: a leak would succeed.
	t.Setenv("REG_PASSWORD", "s3cret-pw")
	body := fmt.Sprintf(`registries."127.0.0.1" = { insecure = true, auth = { username = "ci", password-env = "REG_PASSWORD" } }

[[group]]
name = "g"
images = [%q]
`, std.SingleOCI.Ref(tlsReg.Host))
	path := filepath.Join(t.TempDir(), "bundle.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env, err := registry.New(s, registry.Options{UserAgent: "resolve-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	if b, err := os.ReadFile(env.Sys.AuthFilePath); err == nil && strings.Contains(string(b), tlsReg.Host) {
		t.Errorf("auth file has an entry for %s, which the spec does not declare", tlsReg.Host)
	}

	logBefore := len(tlsReg.Log())
	_, err = (&Resolver{Sys: env.Sys}).Resolve(context.Background(), ref(t, std.SingleOCI.Ref(tlsReg.Host)), platforms(t, "linux/amd64"), image.IndexOriginal)
	if !errors.Is(err, registry.ErrTLS) || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("resolving from %s (no entry) = %v; want a TLS verification failure (unknown authority)", tlsReg.Host, err)
	}
	// The registry never saw a request, let alone credentials.
	if log := tlsReg.Log()[logBefore:]; strings.Contains(log, "http.request") || strings.Contains(log, "auth") {
		t.Errorf("the TLS registry without an entry was contacted past the handshake:\n%s", log)
	}
}
