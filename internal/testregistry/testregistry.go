// Package testregistry runs a real registry (the Debian "docker-registry"
// package, CNCF distribution 2.8) as a child process for integration tests.
//
// It never falls back to an in-process fake: when the binary is missing the
// test is skipped, or fails when the environment variable
// AIRGAP_BUNDLE_REQUIRE_INTEGRATION=1 is set (CI sets it, so a broken install
// cannot pass silently).
//
//	reg := testregistry.Start(t, testregistry.Options{TLS: true, Users: map[string]string{"alice": "s3cret"}})
//	// push with reg.Transport(), talk to https://reg.Host
package testregistry

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
)

// RequireEnv is the environment variable that turns "docker-registry (or
// htpasswd) is not installed" from a skip into a test failure when set to "1".
const RequireEnv = "AIRGAP_BUNDLE_REQUIRE_INTEGRATION"

// DefaultBinary is where Debian's docker-registry package installs the registry.
const DefaultBinary = "/usr/bin/docker-registry"

const (
	// instanceHeader carries a per-process nonce (set through the registry's
	// http.headers config) so readiness checks cannot be fooled by another
	// server that happens to own the port.
	instanceHeader = "X-Testregistry-Instance"
	startAttempts  = 3
	readyTimeout   = 20 * time.Second
	stopGrace      = 5 * time.Second
	maxLogDump     = 64 << 10
)

// Options configures Start.
type Options struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 (IP SAN), ::1 and
	// localhost, signed by a CA generated for this registry only.
	TLS bool
	// Users, when non-empty, enables htpasswd (bcrypt) basic auth with these
	// username/password pairs. Needs the htpasswd binary (apache2-utils).
	// Distribution 2.8 accepts it without TLS too (plain-HTTP basic auth), but
	// real clients refuse to send credentials over HTTP, so use it with TLS.
	Users map[string]string
}

// Registry is a running docker-registry process.
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// CAFile is the PEM file of the CA that signed the server certificate when
	// TLS is on, else "".
	CAFile string
	// CertDir is a directory holding only "ca.crt" (a copy of CAFile) when TLS
	// is on, in the layout containers/image expects for
	// SystemContext.DockerCertPath and skopeo's --cert-dir; else "".
	CertDir string
	// Dir is the registry's private temporary directory: config.yml, storage/,
	// registry.log, certificates and htpasswd.
	Dir string
	// LogFile is the registry's combined stdout and stderr.
	LogFile string
	// TLS and Users are the options it was started with.
	TLS   bool
	Users map[string]string

	pid    int
	caPool *x509.CertPool

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has been reaped
	waitErr  error
	stopOnce *sync.Once // one per process
}

// Binary returns the path of the docker-registry binary, or an error saying
// that it is not installed.
func Binary() (string, error) {
	if p, err := exec.LookPath("docker-registry"); err == nil {
		return p, nil
	}
	if st, err := os.Stat(DefaultBinary); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return DefaultBinary, nil
	}
	return "", errors.New(`docker-registry not found on PATH nor at ` + DefaultBinary +
		` (install the Debian package "docker-registry")`)
}

// missing skips the test, or fails it when RequireEnv=1.
func missing(t testing.TB, what error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("testregistry: %v; %s=1 requires integration tests to run", what, RequireEnv)
		return
	}
	t.Skipf("testregistry: skipping integration test: %v (set %s=1 to make this a failure)", what, RequireEnv)
}

// Start starts a docker-registry on a free port of 127.0.0.1, with filesystem
// storage and deletes enabled, and waits until GET /v2/ answers. It stops the
// process when the test ends and logs the registry's output if the test failed.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		missing(t, err)
		return nil
	}

	r := &Registry{Dir: t.TempDir(), TLS: opts.TLS}
	r.LogFile = filepath.Join(r.Dir, "registry.log")
	if len(opts.Users) > 0 {
		r.Users = make(map[string]string, len(opts.Users))
		for u, p := range opts.Users {
			r.Users[u] = p
		}
	}

	var pk *pki
	if opts.TLS {
		if pk, err = newPKI(); err != nil {
			t.Fatalf("testregistry: %v", err)
		}
		r.CAFile = filepath.Join(r.Dir, "ca.pem")
		r.CertDir = filepath.Join(r.Dir, "certs.d")
		if err := os.MkdirAll(r.CertDir, 0o755); err != nil {
			t.Fatalf("testregistry: %v", err)
		}
		for path, data := range map[string][]byte{
			r.CAFile:                           pk.caPEM,
			filepath.Join(r.CertDir, "ca.crt"): pk.caPEM,
			filepath.Join(r.Dir, "server.crt"): pk.certPEM,
		} {
			if err := writeFile(path, data, 0o644); err != nil {
				t.Fatalf("testregistry: %v", err)
			}
		}
		if err := writeFile(filepath.Join(r.Dir, "server.key"), pk.keyPEM, 0o600); err != nil {
			t.Fatalf("testregistry: %v", err)
		}
		r.caPool = x509.NewCertPool()
		r.caPool.AddCert(pk.caCert)
	}
	if len(opts.Users) > 0 {
		htpasswd, err := htpasswdFile(opts.Users)
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				missing(t, err)
				return nil
			}
			t.Fatalf("testregistry: %v", err)
		}
		if err := writeFile(filepath.Join(r.Dir, "htpasswd"), htpasswd, 0o600); err != nil {
			t.Fatalf("testregistry: %v", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(r.Dir, "storage"), 0o755); err != nil {
		t.Fatalf("testregistry: %v", err)
	}

	// Registered before the process starts, and after t.TempDir's own
	// cleanup, so it runs first: the process is gone before Dir is removed.
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("testregistry: log of docker-registry at %s (pid %d):\n%s", r.Host, r.pid, r.logTail())
		}
	})

	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		retry, err := r.start(bin)
		if err == nil {
			return r
		}
		lastErr = err
		if !retry {
			break
		}
		t.Logf("testregistry: attempt %d: %v; retrying on another port", attempt, err)
	}
	t.Fatalf("testregistry: starting %s: %v\nlog:\n%s", bin, lastErr, r.logTail())
	return nil
}

// start makes one attempt on a fresh port. retry reports a port clash.
func (r *Registry) start(bin string) (retry bool, err error) {
	port, err := freePort()
	if err != nil {
		return false, err
	}
	r.Host = "127.0.0.1:" + strconv.Itoa(port)
	nonce := randomHex(16)
	cfgPath := filepath.Join(r.Dir, "config.yml")
	if err := writeFile(cfgPath, r.config(nonce), 0o644); err != nil {
		return false, err
	}

	logf, err := os.OpenFile(r.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(logf, "=== testregistry: %s serve %s (listening on %s)\n", bin, cfgPath, r.Host)

	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Dir = r.Dir
	cmd.Env = registryEnv()
	cmd.Stdin = nil
	cmd.Stdout = logf
	cmd.Stderr = logf
	setProcAttrs(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return false, fmt.Errorf("starting: %w", err)
	}
	exited := make(chan struct{})
	r.mu.Lock()
	r.cmd, r.exited, r.pid, r.waitErr, r.stopOnce = cmd, exited, cmd.Process.Pid, nil, new(sync.Once)
	r.mu.Unlock()
	go func() {
		werr := cmd.Wait()
		logf.Close()
		r.mu.Lock()
		r.waitErr = werr
		r.mu.Unlock()
		close(exited)
	}()

	if err := r.waitReady(nonce, exited); err != nil {
		r.Stop()
		log := r.logTail()
		clash := strings.Contains(log, "address already in use")
		return clash, err
	}
	return false, nil
}

// waitReady polls GET /v2/ until this process (recognised by its nonce
// header) answers 200 or 401.
func (r *Registry) waitReady(nonce string, exited <-chan struct{}) error {
	client := &http.Client{Transport: r.Transport(), Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			r.mu.Lock()
			werr := r.waitErr
			r.mu.Unlock()
			return fmt.Errorf("docker-registry exited before it was ready: %v", werr)
		default:
		}
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			switch {
			case resp.Header.Get(instanceHeader) != nonce:
				last = fmt.Errorf("GET /v2/ answered by another server (%s)", resp.Status)
			case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized:
				return nil
			default:
				last = fmt.Errorf("GET /v2/: %s", resp.Status)
			}
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v: %v", readyTimeout, last)
}

// Stop stops the registry now: SIGTERM, then SIGKILL if it has not exited
// after a few seconds. It returns once the process is gone and its port
// closed. Safe to call more than once (tests use it to simulate an outage).
func (r *Registry) Stop() {
	r.mu.Lock()
	cmd, exited, once := r.cmd, r.exited, r.stopOnce
	r.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	once.Do(func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopGrace):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
}

// PID is the process id of the registry (of the last start attempt).
func (r *Registry) PID() int { return r.pid }

// URL is "https://HOST" with TLS, else "http://HOST".
func (r *Registry) URL() string {
	if r.TLS {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// CAPool returns a pool holding only the registry's CA, or nil without TLS.
func (r *Registry) CAPool() *x509.CertPool {
	if r.caPool == nil {
		return nil
	}
	return r.caPool.Clone()
}

// Transport returns a new http.Transport that trusts the registry's CA (and
// nothing else) and never uses a proxy. It adds no credentials.
func (r *Registry) Transport() http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if r.TLS {
		tr.TLSClientConfig = &tls.Config{RootCAs: r.CAPool(), MinVersion: tls.VersionTLS12}
	}
	return tr
}

// Log returns what the registry has written to its log so far.
func (r *Registry) Log() string {
	b, _ := os.ReadFile(r.LogFile)
	return string(b)
}

func (r *Registry) logTail() string {
	b, err := os.ReadFile(r.LogFile)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > maxLogDump {
		b = append([]byte("[...]\n"), b[len(b)-maxLogDump:]...)
	}
	return string(b)
}

// config renders config.yml. Everything the Debian default config
// (/etc/docker/registry/config.yml) sets is overridden or absent here; that
// file is never read because the path is passed to "serve".
func (r *Registry) config(nonce string) []byte {
	q := strconv.Quote // a Go-quoted ASCII string is a valid YAML double-quoted scalar
	var b bytes.Buffer
	fmt.Fprintf(&b, `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
  fields:
    service: testregistry
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  net: tcp
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
    %s: [%s]
`, q(filepath.Join(r.Dir, "storage")), q(r.Host), q(randomHex(16)), instanceHeader, q(nonce))
	if r.TLS {
		fmt.Fprintf(&b, `  tls:
    certificate: %s
    key: %s
`, q(filepath.Join(r.Dir, "server.crt")), q(filepath.Join(r.Dir, "server.key")))
	}
	// No notifications endpoints, no redis, no storagedriver health check
	// (it would poll storage every 10s and can mark the registry unhealthy).
	b.WriteString(`notifications:
  endpoints: []
health:
  storagedriver:
    enabled: false
`)
	if len(r.Users) > 0 {
		fmt.Fprintf(&b, `auth:
  htpasswd:
    realm: testregistry
    path: %s
`, q(filepath.Join(r.Dir, "htpasswd")))
	}
	return b.Bytes()
}

// htpasswdFile builds an htpasswd file with bcrypt entries using
// "htpasswd -Bbn" (apache2-utils). golang.org/x/crypto is in the module graph
// but not a direct requirement with go.sum entries, so it is not imported.
func htpasswdFile(users map[string]string) ([]byte, error) {
	bin, err := exec.LookPath("htpasswd")
	if err != nil {
		return nil, fmt.Errorf("htpasswd (Debian package apache2-utils) is needed for Options.Users: %w", err)
	}
	names := make([]string, 0, len(users))
	for u := range users {
		if u == "" || strings.ContainsAny(u, ":\n") {
			return nil, fmt.Errorf("invalid htpasswd user name %q", u)
		}
		names = append(names, u)
	}
	sort.Strings(names)
	var out bytes.Buffer
	for _, u := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, "-Bbn", u, users[u])
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		line, err := cmd.Output()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("htpasswd -Bbn %s: %v: %s", u, err, strings.TrimSpace(stderr.String()))
		}
		l := strings.TrimSpace(string(line))
		if !strings.HasPrefix(l, u+":$2") {
			return nil, fmt.Errorf("htpasswd -Bbn %s: unexpected output %q", u, l)
		}
		out.WriteString(l + "\n")
	}
	return out.Bytes(), nil
}

// registryEnv is the test's environment without REGISTRY_* variables, which
// distribution would apply on top of config.yml.
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Isolate keeps the developer's own registry credentials and container
// configuration out of a test: registry.New (and containers/image) read
// the standard locations under HOME, DOCKER_CONFIG, REGISTRY_AUTH_FILE,
// XDG_RUNTIME_DIR and XDG_CONFIG_HOME for hosts a spec is silent about.
func Isolate(t testing.TB) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
}

// PushImage builds a one-layer linux/amd64 OCI image whose content
// derives from seed (fixtures.Image) and pushes it to repoTag
// ("repo/path:tag") on r, with the credentials r was started with; it
// returns the manifest digest. The start-build-push that most registry
// tests begin with.
func (r *Registry) PushImage(t testing.TB, repoTag, seed string) string {
	t.Helper()
	img, err := fixtures.Image(seed, fixtures.LinuxAMD64, 1)
	if err != nil {
		t.Fatal(err)
	}
	var user, pass string
	for u, p := range r.Users {
		user, pass = u, p
		break
	}
	dg, err := fixtures.Push(context.Background(), r.Host+"/"+repoTag, img, r.Transport(), user, pass)
	if err != nil {
		t.Fatalf("testregistry: pushing %s: %v", repoTag, err)
	}
	return dg
}
