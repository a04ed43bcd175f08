package testregistry_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

const manifestAccept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

func TestRegistry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts testregistry.Options
	}{
		// The plain case also proves the Debian default config
		// (/etc/docker/registry/config.yml, which enables htpasswd auth) is not read.
		{name: "plain", opts: testregistry.Options{}},
		{name: "tls", opts: testregistry.Options{TLS: true}},
		{name: "tls+auth", opts: testregistry.Options{TLS: true, Users: map[string]string{"alice": "wonder land:1", "bob": "builder"}}},
		// distribution 2.8 does basic auth over plain HTTP too.
		{name: "plain+auth", opts: testregistry.Options{Users: map[string]string{"alice": "wonderland"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()

			reg := testregistry.Start(t, tc.opts)
			checkLayout(t, reg, tc.opts)

			var user, pass string
			for u, p := range tc.opts.Users {
				user, pass = u, p
				break
			}
			rt := reg.Transport()

			// Push a fixture and read it back with plain net/http.
			img, err := fixtures.Image("testregistry-"+tc.name, fixtures.LinuxAMD64, 2)
			if err != nil {
				t.Fatal(err)
			}
			ref := reg.Host + "/it/app:v1"
			digest, err := fixtures.Push(ctx, ref, img, rt, user, pass)
			if err != nil {
				t.Fatalf("Push(%s): %v", ref, err)
			}
			if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(digest) {
				t.Fatalf("Push returned digest %q", digest)
			}
			resp, body := get(t, rt, reg.URL()+"/v2/it/app/manifests/v1", user, pass)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET manifest: %s: %s", resp.Status, body)
			}
			if got := resp.Header.Get("Docker-Content-Digest"); got != digest {
				t.Errorf("Docker-Content-Digest = %q, want %q", got, digest)
			}
			if sum := sha256.Sum256(body); "sha256:"+hex.EncodeToString(sum[:]) != digest {
				t.Errorf("manifest body hashes to sha256:%x, want %s", sum, digest)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/vnd.oci.image.manifest.v1+json" {
				t.Errorf("Content-Type = %q", got)
			}

			// Credentials.
			if len(tc.opts.Users) == 0 {
				if resp, body := get(t, rt, reg.URL()+"/v2/", "", ""); resp.StatusCode != http.StatusOK {
					t.Errorf("GET /v2/ without credentials on an open registry: %s: %s", resp.Status, body)
				}
			} else {
				resp, _ := get(t, rt, reg.URL()+"/v2/", "", "")
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("GET /v2/ without credentials: %s, want 401", resp.Status)
				}
				if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Basic ") {
					t.Errorf("WWW-Authenticate = %q, want a Basic challenge", ch)
				}
				for u, p := range tc.opts.Users {
					if resp, _ := get(t, rt, reg.URL()+"/v2/it/app/manifests/v1", u, p+"x"); resp.StatusCode != http.StatusUnauthorized {
						t.Errorf("wrong password for %s: %s, want 401", u, resp.Status)
					}
					if resp, _ := get(t, rt, reg.URL()+"/v2/it/app/manifests/v1", u+"x", p); resp.StatusCode != http.StatusUnauthorized {
						t.Errorf("unknown user %sx: %s, want 401", u, resp.Status)
					}
					if resp, body := get(t, rt, reg.URL()+"/v2/it/app/manifests/v1", u, p); resp.StatusCode != http.StatusOK {
						t.Errorf("right password for %s: %s, want 200: %s", u, resp.Status, body)
					}
				}
				if _, err := fixtures.Push(ctx, reg.Host+"/it/app:denied", img, rt, user, pass+"x"); err == nil {
					t.Errorf("Push with a wrong password succeeded")
				}
			}

			// Stop: the process is gone and the port refuses connections.
			pid := reg.PID()
			start := time.Now()
			reg.Stop()
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("Stop took %v; SIGTERM should be enough", d)
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process %d still exists after Stop (kill -0: %v)", pid, err)
			}
			conn, err := net.DialTimeout("tcp", reg.Host, 2*time.Second)
			if err == nil {
				conn.Close()
				t.Fatalf("%s still accepts connections after Stop", reg.Host)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("dial after Stop: %v, want connection refused", err)
			}
			reg.Stop() // idempotent
		})
	}
}

func checkLayout(t *testing.T, reg *testregistry.Registry, opts testregistry.Options) {
	t.Helper()
	if !regexp.MustCompile(`^127\.0\.0\.1:[0-9]+$`).MatchString(reg.Host) {
		t.Errorf("Host = %q", reg.Host)
	}
	for _, f := range []string{"config.yml", "registry.log", "storage"} {
		if _, err := os.Stat(reg.Dir + "/" + f); err != nil {
			t.Errorf("Dir: %v", err)
		}
	}
	if !opts.TLS {
		if reg.CAFile != "" || reg.CAPool() != nil || !strings.HasPrefix(reg.URL(), "http://") {
			t.Errorf("plain registry: CAFile=%q CAPool=%v URL=%s", reg.CAFile, reg.CAPool(), reg.URL())
		}
		return
	}
	if !strings.HasPrefix(reg.URL(), "https://") {
		t.Errorf("URL = %s", reg.URL())
	}
	pemBytes, err := os.ReadFile(reg.CAFile)
	if err != nil {
		t.Fatalf("CAFile: %v", err)
	}
	if crt, err := os.ReadFile(reg.CertDir + "/ca.crt"); err != nil || string(crt) != string(pemBytes) {
		t.Errorf("CertDir/ca.crt: %v (same as CAFile: %v)", err, string(crt) == string(pemBytes))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("CAFile %s holds no PEM certificate", reg.CAFile)
	}
	// The CA in CAFile (not only Transport) must verify the server.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig(pool)}}
	resp, err := client.Get(reg.URL() + "/v2/")
	if err != nil {
		t.Fatalf("GET /v2/ trusting CAFile: %v", err)
	}
	resp.Body.Close()
	// Without the CA, verification must fail: the TLS is real.
	_, err = (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}).Get(reg.URL() + "/v2/")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("GET /v2/ with system roots only: %v, want x509.UnknownAuthorityError", err)
	}
}

func get(t *testing.T, rt http.RoundTripper, url, user, pass string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", manifestAccept)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := (&http.Client{Transport: rt, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, body
}

func tlsConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
