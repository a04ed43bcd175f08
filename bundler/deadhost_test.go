package bundler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// contactCounter counts the resolutions that reach the registry session.
type contactCounter struct {
	r     Resolver
	calls atomic.Int64
}

func (c *contactCounter) Resolve(ctx context.Context, ref image.Reference, want image.PlatformSet, index image.IndexMode) (*lockfile.Image, error) {
	c.calls.Add(1)
	return c.r.Resolve(ctx, ref, want, index)
}

// Issue 8, defect 10: thousands of images on a closed port give one line
// for the host, with the count and the first image's place, and the host is
// not contacted once per image.
func TestLockDeadHostIsOneLine(t *testing.T) {
	testregistry.Isolate(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())

	var b strings.Builder
	b.WriteString("platforms = [\"linux/amd64\"]\n")
	for i, g := range []struct {
		name string
		n    int
	}{{"a", 1500}, {"b", 500}} {
		fmt.Fprintf(&b, "\n[[group]]\nname = %q\nimages = [\n", g.name)
		for k := range g.n {
			fmt.Fprintf(&b, "  \"127.0.0.1:1/app/img%d-%d:v1\",\n", i, k)
		}
		b.WriteString("]\n")
	}
	spec := loadSpec(t, b.String())
	sess := NewSession(spec, registry.Options{UserAgent: "lock-test"})
	defer sess.Close()
	r := &contactCounter{r: sess}

	start := time.Now()
	_, err := Lock(context.Background(), spec, nil, r, LockOptions{Jobs: 4})
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Lock succeeded against a closed port")
	}
	msg := err.Error()
	want := `/bundle.toml:6: registry 127.0.0.1:1 is unreachable (connection refused): 2000 images of groups "a", "b" not resolved`
	if !strings.HasSuffix(msg, want) || strings.Contains(msg, "\n") {
		t.Errorf("error:\n%.2000s\nwant one line:\n%s", msg, want)
	}
	if !errors.Is(err, errdefs.ErrRegistry) {
		t.Error("error does not match ErrRegistry")
	}
	if n := r.calls.Load(); n > 4 {
		t.Errorf("the dead host was contacted for %d images; want at most one per parallel job (4)", n)
	}
	t.Logf("2000 images on a closed port: %v, %d contacts", elapsed, r.calls.Load())
}

// Other failures stay one per image, beside the host's line.
func TestLockGroupsOnlyConnectionFailures(t *testing.T) {
	refused := fmt.Errorf("pinging container registry: %w", &netOpErr)
	r := &countingResolver{fail: map[string]error{
		"docker.io/library/busybox:1.36": errors.New("manifest unknown"),
		"quay.io/calico/node:v3.28.0":    refused,
	}}
	spec := loadSpec(t, strings.Replace(base, `"calico/node:v3.28.0"`, `"quay.io/calico/node:v3.28.0"`, 1))
	_, err := Lock(context.Background(), spec, nil, r, LockOptions{Jobs: 1})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, w := range []string{`image "busybox:1.36": manifest unknown`, `bundle.toml:4: registry quay.io is unreachable (connection refused): 1 image of group "core" not resolved`, `bundle.toml:9: group "extra": image "busybox:1.36": manifest unknown`} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
}

var netOpErr = net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}

// Behind a mirror, a registry's connection failure is only the last of the
// endpoints tried (the mirror may have said "manifest unknown"): per image.
func TestLockMirroredRegistryStaysPerImage(t *testing.T) {
	refused := fmt.Errorf("(Mirrors also failed: manifest unknown): %w", &netOpErr)
	r := &countingResolver{fail: map[string]error{
		"quay.io/calico/node:v3.28.0": refused,
		"quay.io/calico/cni:v3.28.0":  refused,
	}}
	spec := loadSpec(t, `registries."quay.io" = { mirrors = ["mirror.example.com"] }

[[group]]
name = "core"
images = ["quay.io/calico/node:v3.28.0", "quay.io/calico/cni:v3.28.0"]
`)
	_, err := Lock(context.Background(), spec, nil, r, LockOptions{Jobs: 1})
	if err == nil || strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), `image "quay.io/calico/cni:v3.28.0"`) {
		t.Errorf("error = %v; want one line per image", err)
	}
	if len(r.take()) != 2 {
		t.Error("an image behind a mirror was not tried")
	}
}
