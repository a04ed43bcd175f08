package bundler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

const webYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: busybox:1.36
      containers:
        - name: app
          image: nginx:1.25
`

// Images from Kubernetes manifests are locked like the others, so a tag
// changed in a YAML file is drift that lock --check (exit 3) reports at the
// manifest's line, and locking again resolves only that image.
func TestManifestDrift(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "deploy", "web.yaml")
	spec := filepath.Join(dir, "bundle.toml")
	write := func(p, body string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	load := func() *config.Spec {
		t.Helper()
		s, err := config.Load(spec)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	write(spec, "[[group]]\nname = \"app\"\nmanifests = [\"deploy/*.yaml\"]\n")
	write(manifest, webYAML)
	lockPath := lockfile.Path(spec)
	r := &countingResolver{}
	lock, _, err := EnsureLocked(ctx, load(), lockPath, nil, r, UpdateLock, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.take(); strings.Join(got, " ") != "docker.io/library/busybox:1.36 docker.io/library/nginx:1.25" {
		t.Fatalf("first lock resolved %v", got)
	}
	if err := CheckLock(load(), lockPath, lock); err != nil {
		t.Fatalf("check of a current lock: %v", err)
	}

	// A tag changed in the manifest.
	write(manifest, strings.Replace(webYAML, "nginx:1.25", "nginx:1.27", 1))
	err = CheckLock(load(), lockPath, lock)
	if !errors.Is(err, errdefs.ErrLockOutOfDate) {
		t.Fatalf("check after a tag change: %v", err)
	}
	for _, w := range []string{
		manifest + `:13: group "app": image "nginx:1.27": not in the lockfile`,
		"app: docker.io/library/nginx:1.25: in the lockfile but not in the spec",
		"2 differences",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("check error lacks %q:\n%v", w, err)
		}
	}
	lock, _, err = EnsureLocked(ctx, load(), lockPath, lock, r, UpdateLock, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.take(); strings.Join(got, " ") != "docker.io/library/nginx:1.27" {
		t.Fatalf("relock resolved %v", got)
	}

	// A container added in a second file, and one removed.
	write(filepath.Join(dir, "deploy", "job.yaml"), "kind: Job\nspec:\n  template:\n    spec:\n      containers:\n      - image: alpine:3.20\n")
	write(manifest, strings.Replace(strings.Replace(webYAML, "nginx:1.25", "nginx:1.27", 1), "          image: busybox:1.36\n", "", 1))
	err = CheckLock(load(), lockPath, lock)
	if !errors.Is(err, errdefs.ErrLockOutOfDate) {
		t.Fatalf("check after adding and removing: %v", err)
	}
	for _, w := range []string{
		filepath.Join(dir, "deploy", "job.yaml") + `:6: group "app": image "alpine:3.20": not in the lockfile`,
		"app: docker.io/library/busybox:1.36: in the lockfile but not in the spec",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("check error lacks %q:\n%v", w, err)
		}
	}
}
