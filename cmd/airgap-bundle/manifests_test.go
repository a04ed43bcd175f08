package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/bundler"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// fakeResolver invents digests from the reference.
type fakeResolver struct{}

func (fakeResolver) Resolve(_ context.Context, ref image.Reference, want image.PlatformSet, _ image.IndexMode) (*lockfile.Image, error) {
	dg := func(s string) string { return digest.FromString(s).String() }
	img := &lockfile.Image{Ref: ref.String(), Digest: digest.Digest(dg(ref.String())), MediaType: image.OCIIndex, Size: 100}
	for _, p := range want.Strings() {
		img.Platforms = append(img.Platforms, lockfile.Platform{Platform: p, Digest: digest.Digest(dg(ref.String() + p)), MediaType: image.OCIManifest, Config: digest.Digest(dg("c" + p)), Size: 50})
	}
	return img, nil
}

// A tag changed in a Kubernetes manifest makes lock --check exit 3 and
// name the manifest's line.
func TestLockCheckManifestDrift(t *testing.T) {
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", "[[group]]\nname = \"app\"\nmanifests = [\"*.yaml\"]\n")
	pod := "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    image: nginx:1.25\n"
	manifest := writeFile(t, dir, "pod.yaml", pod)
	s, err := config.Load(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bundler.EnsureLocked(context.Background(), s, lockfile.Path(spec), nil, fakeResolver{}, bundler.UpdateLock, bundler.LockOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bundle.lock")); err != nil {
		t.Fatal(err)
	}
	if out, code := run(t, "lock", "--check", spec); code != exitOK {
		t.Fatalf("--check on a current lock: exit %d\n%s", code, out)
	}
	writeFile(t, dir, "pod.yaml", strings.Replace(pod, "nginx:1.25", "nginx:1.27", 1))
	out, code := run(t, "lock", "--check", spec)
	if code != exitLockOutdated || !strings.Contains(out, manifest+`:7: group "app": image "nginx:1.27": not in the lockfile`) {
		t.Fatalf("--check after a tag change in the manifest: exit %d\n%s", code, out)
	}
}
