package bundler

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// lookups records every host name the process resolves while a test runs
// and answers none of them. The registries of these tests listen on
// 127.0.0.1, which needs no lookup: a name looked up is a request on its
// way to another host.
type lookups struct {
	mu    sync.Mutex
	names []string
}

func (l *lookups) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.names...)
}

// recordLookups replaces the process's resolver (containers/image's and
// go-containerregistry's dialers use it) until the test ends. A proxy
// from the environment would carry requests without a lookup, so the test
// is skipped when one is set.
func recordLookups(t *testing.T) *lookups {
	t.Helper()
	probe, _ := http.NewRequest(http.MethodGet, "https://registry-1.docker.io/v2/", nil)
	if u, _ := http.ProxyFromEnvironment(probe); u != nil {
		t.Skipf("a proxy is set in the environment (%s): requests would not be resolved here", u.Host)
	}
	l := &lookups{}
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		mine, theirs := net.Pipe()
		go func() {
			defer mine.Close()
			// Not a PacketConn: the resolver writes a TCP-style message,
			// a 2-byte length then the query.
			var n [2]byte
			if _, err := mine.Read(n[:]); err != nil {
				return
			}
			msg := make([]byte, binary.BigEndian.Uint16(n[:]))
			if _, err := readFull(mine, msg); err != nil {
				return
			}
			l.mu.Lock()
			l.names = append(l.names, queryName(msg))
			l.mu.Unlock()
		}()
		return theirs, nil
	}}
	t.Cleanup(func() { net.DefaultResolver = old })
	return l
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// queryName is the name a DNS query asks about (after the 12-byte header,
// length-prefixed labels).
func queryName(msg []byte) string {
	var labels []string
	for i := 12; i < len(msg) && msg[i] != 0; {
		n := int(msg[i])
		if i+1+n > len(msg) {
			break
		}
		labels = append(labels, string(msg[i+1:i+1+n]))
		i += 1 + n
	}
	return strings.Join(labels, ".")
}

// Issue 15, defect 4: with a mirror of docker.io holding a signed image,
// lock and build of a group that carries signatures talk to the mirror
// only. Distribution 2.8 answers the referrers API with 404; the lookup
// then reads the referrers tag schema from the mirror, and a cosign tag
// the mirror lacks (.att, .sbom) is absent, not a reason to ask
// docker.io.
func TestMirrorServesEveryRequestOfSignatures(t *testing.T) {
	testregistry.Isolate(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	ctx := context.Background()
	mirror := testregistry.Start(t, testregistry.Options{})
	rt := mirror.Transport()
	key, err := fixtures.NewSigner()
	if err != nil {
		t.Fatal(err)
	}
	img, err := fixtures.Image("mirrored", fixtures.LinuxAMD64, 1)
	if err != nil {
		t.Fatal(err)
	}
	at := mirror.Host + "/library/busybox"
	dg, err := fixtures.Push(ctx, at+":1.36", img, rt, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// cosign names the repository the image was signed as: docker.io's.
	sigImg, err := key.SignatureImage("docker.io/library/busybox", dg)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := fixtures.Push(ctx, at+":"+fixtures.AttachmentTag(dg, "sig"), sigImg, rt, "", "")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	raw, _ := img.RawManifest()
	subject := v1.Descriptor{MediaType: m.MediaType, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(dg, "sha256:")}, Size: int64(len(raw))}
	refImg, err := fixtures.Referrer(subject, "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`), "application/spdx+json")
	if err != nil {
		t.Fatal(err)
	}
	referrer, err := fixtures.PushReferrer(ctx, at, refImg, rt)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.pub"), key.PublicPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(dir, "bundle.toml")
	if err := os.WriteFile(specPath, []byte(`
[registries."docker.io"]
mirrors = [{ location = "`+mirror.Host+`", insecure = true }]

[[signatures]]
scope = "docker.io/library/busybox"
require = "sigstoreSigned"
key = "a.pub"

[[group]]
name = "g"
platforms = ["linux/amd64"]
images = ["busybox:1.36"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := config.Load(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if !spec.Group("g").CarrySignatures {
		t.Fatal("carry-signatures is not on for a signed group")
	}

	seen := recordLookups(t)
	sess := NewSession(spec, registry.Options{UserAgent: "mirror-test", Policy: registry.Policy{Attempts: 1}})
	defer sess.Close()
	res, err := Lock(ctx, spec, nil, sess, LockOptions{})
	if names := seen.list(); len(names) > 0 {
		t.Fatalf("lock looked up %v: requests left for another host than the mirror %s (lock error: %v)", names, mirror.Host, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	e := res.Lock.Group("g").Image("docker.io/library/busybox:1.36")
	got := map[string]string{}
	for _, a := range e.Artifacts {
		got[a.Kind] = a.Digest.String()
	}
	if e.Digest.String() != dg || got[lockfile.ArtifactSignature] != sig || got[lockfile.ArtifactReferrer] != referrer || len(got) != 2 {
		t.Fatalf("pinned %s with artifacts %v; want %s, signature %s, referrer %s", e.Digest, got, dg, sig, referrer)
	}
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := Build(ctx, spec, res.Lock, c, sess, BuildOptions{OutputDir: out}); err != nil {
		t.Fatal(err)
	}
	if names := seen.list(); len(names) > 0 {
		t.Fatalf("build looked up %v", names)
	}
	// The recorder sees lookups at all: a name that is not the mirror's.
	if _, err := net.DefaultResolver.LookupHost(ctx, "registry-1.docker.io"); err == nil || !slices.Contains(seen.list(), "registry-1.docker.io") {
		t.Fatalf("the lookup recorder saw %v (lookup error %v)", seen.list(), err)
	}
}
