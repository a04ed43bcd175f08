package bundler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// countingResolver invents digests from the reference and a generation, so
// a test can see which images were resolved again.
type countingResolver struct {
	mu    sync.Mutex
	calls []string
	gen   int
	fail  map[string]error
}

func (r *countingResolver) Resolve(_ context.Context, ref image.Reference, want image.PlatformSet, _ image.IndexMode) (*lockfile.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, ref.String())
	if err := r.fail[ref.String()]; err != nil {
		return nil, err
	}
	dg := func(s string) string { return digest.FromString(fmt.Sprint(s, r.gen)).String() }
	img := &lockfile.Image{Ref: ref.String(), Digest: digest.Digest(dg(ref.String())), MediaType: image.OCIIndex, Size: 100}
	for _, p := range want.Strings() {
		img.Platforms = append(img.Platforms, lockfile.Platform{Platform: p, Digest: digest.Digest(dg(ref.String() + p)), MediaType: image.OCIManifest, Config: digest.Digest(dg("c" + p)), Size: 50})
	}
	return img, nil
}

func (r *countingResolver) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	slices.Sort(c)
	return c
}

func loadSpec(t *testing.T, body string) *config.Spec {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bundle.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func lockBytes(t *testing.T, l *lockfile.Lock) string {
	b, err := l.Encode("bundle.toml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const base = `
[[group]]
name = "core"
images = ["busybox:1.36", "calico/node:v3.28.0"]

[[group]]
name = "extra"
platforms = ["linux/amd64", "linux/arm64"]
images = ["busybox:1.36"]
`

func TestLockLifecycle(t *testing.T) {
	ctx := context.Background()
	r := &countingResolver{}

	// First lock resolves each (reference, platforms) once.
	spec := loadSpec(t, base)
	res, err := Lock(ctx, spec, nil, r, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.take(); len(got) != 3 {
		t.Fatalf("first lock resolved %v, want 3 calls (busybox twice for two platform sets, calico once)", got)
	}
	first := lockBytes(t, res.Lock)

	// Unchanged spec: no calls, identical bytes.
	res, err = Lock(ctx, spec, res.Lock, r, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.take(); len(got) != 0 {
		t.Fatalf("unchanged spec resolved %v", got)
	}
	if lockBytes(t, res.Lock) != first {
		t.Fatal("unchanged spec changed the lockfile")
	}
	prev := res.Lock

	// A version bump resolves only the bumped image.
	r.gen = 1
	spec = loadSpec(t, strings.Replace(base, "calico/node:v3.28.0", "calico/node:v3.28.1", 1))
	res, err = Lock(ctx, spec, prev, r, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.take(); !slices.Equal(got, []string{"docker.io/calico/node:v3.28.1"}) {
		t.Fatalf("version bump resolved %v", got)
	}
	oldNode := prev.Group("core").Image("docker.io/calico/node:v3.28.0")
	if !slices.Equal(res.Removed, []Entry{{Group: "core", Ref: "docker.io/calico/node:v3.28.0", Digest: oldNode.Digest.String()}}) {
		t.Errorf("removed = %v", res.Removed)
	}
	if e := res.Lock.Group("core").Image("docker.io/library/busybox:1.36"); e.Digest != prev.Group("core").Image("docker.io/library/busybox:1.36").Digest {
		t.Error("untouched image got a new digest")
	}
	prev = res.Lock

	// --update NAME re-resolves every tag of that name, and nothing else.
	res, err = Lock(ctx, spec, prev, r, LockOptions{Update: true, UpdateImages: []string{"busybox"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.take(); !slices.Equal(got, []string{"docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36"}) {
		t.Fatalf("--update busybox resolved %v", got)
	}
	if res.Lock.Group("core").Image("docker.io/library/busybox:1.36").Digest == prev.Group("core").Image("docker.io/library/busybox:1.36").Digest {
		t.Error("--update kept the old digest")
	}

	// --update with no names re-resolves all.
	if _, err := Lock(ctx, spec, res.Lock, r, LockOptions{Update: true}); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); len(got) != 3 {
		t.Errorf("--update resolved %v", got)
	}

	// An image the spec does not have is a usage error.
	if _, err := Lock(ctx, spec, res.Lock, r, LockOptions{Update: true, UpdateImages: []string{"nginx"}}); err == nil || !strings.Contains(err.Error(), "no such image") {
		t.Errorf("--update nginx: %v", err)
	}

	// Changing a group's platforms re-resolves that group only.
	spec = loadSpec(t, strings.Replace(strings.Replace(base, "calico/node:v3.28.0", "calico/node:v3.28.1", 1), `"linux/amd64", "linux/arm64"`, `"linux/arm64"`, 1))
	if _, err := Lock(ctx, spec, res.Lock, r, LockOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); !slices.Equal(got, []string{"docker.io/library/busybox:1.36"}) {
		t.Errorf("platform change resolved %v", got)
	}
}

func TestPlanDrift(t *testing.T) {
	ctx := context.Background()
	r := &countingResolver{}
	res, err := Lock(ctx, loadSpec(t, base), nil, r, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		spec string
		want []string
	}{
		{"in sync", base, nil},
		{"added", strings.Replace(base, `"busybox:1.36"]`, `"busybox:1.36", "alpine"]`, 1), []string{`image "alpine": not in the lockfile`}},
		{"removed", strings.Replace(base, `"busybox:1.36", "calico/node:v3.28.0"`, `"busybox:1.36"`, 1), []string{"core: docker.io/calico/node:v3.28.0: in the lockfile but not in the spec"}},
		{"platforms", strings.Replace(base, `"linux/amd64", "linux/arm64"`, `"linux/arm64"`, 1), []string{`platforms changed from [linux/amd64, linux/arm64] to [linux/arm64]`}},
		{"new group", base + "\n[[group]]\nname = \"n\"\nimages = [\"x\"]\n", []string{`group "n": image "x": new group`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan, err := NewPlan(loadSpec(t, c.spec), res.Lock, LockOptions{})
			if err != nil {
				t.Fatal(err)
			}
			drift := plan.Drift()
			if len(drift) != len(c.want) {
				t.Fatalf("drift = %q, want %d lines", drift, len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(drift[i], w) {
					t.Errorf("drift[%d] = %q, want it to contain %q", i, drift[i], w)
				}
			}
		})
	}
}

func TestLockReportsEveryFailure(t *testing.T) {
	r := &countingResolver{fail: map[string]error{
		"docker.io/library/busybox:1.36": errors.New("manifest unknown"),
		"docker.io/calico/node:v3.28.0":  errors.New("platform not available"),
	}}
	spec := loadSpec(t, base)
	_, err := Lock(context.Background(), spec, nil, r, LockOptions{Jobs: 2})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, w := range []string{"3 images failed", `bundle.toml:4: group "core": image "busybox:1.36": manifest unknown`, `group "core": image "calico/node:v3.28.0": platform not available`, `bundle.toml:9: group "extra": image "busybox:1.36"`} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
	if !errors.Is(err, errdefs.ErrRegistry) {
		t.Error("error does not match ErrRegistry")
	}
}
