package bundler

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

const policySpec = `
[[group]]
name = "core"
images = ["busybox:1.36", "calico/node:v3.28.0"]
`

func TestEnsureLocked(t *testing.T) {
	ctx := context.Background()
	spec := loadSpec(t, policySpec)
	lockPath := lockfile.Path(spec.Path)
	r := &countingResolver{}

	// Missing lockfile, --locked: refused without a registry call.
	_, _, err := EnsureLocked(ctx, spec, lockPath, nil, r, RequireLocked, LockOptions{})
	if !errors.Is(err, errdefs.ErrLockOutOfDate) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing lockfile with RequireLocked: %v", err)
	}
	if calls := r.take(); len(calls) != 0 {
		t.Fatalf("RequireLocked resolved %v", calls)
	}
	if _, err := os.Stat(lockPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("RequireLocked wrote a lockfile")
	}

	// Missing lockfile, UpdateLock: resolved and written.
	lock, res, err := EnsureLocked(ctx, spec, lockPath, nil, r, UpdateLock, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res == nil || len(res.Resolved) != 2 || len(r.take()) != 2 {
		t.Fatalf("UpdateLock on a missing lockfile: result %+v", res)
	}
	onDisk, err := lockfile.Read(lockPath)
	if err != nil || lockBytes(t, onDisk) != lockBytes(t, lock) {
		t.Fatalf("written lockfile differs from the returned one: %v", err)
	}

	// Current lockfile: returned as is, nothing resolved, under both policies.
	for _, policy := range []LockPolicy{UpdateLock, RequireLocked} {
		got, res, err := EnsureLocked(ctx, spec, lockPath, onDisk, r, policy, LockOptions{})
		if err != nil || res != nil || got != onDisk || len(r.take()) != 0 {
			t.Fatalf("policy %d on a current lockfile: %v, %+v", policy, err, res)
		}
	}

	// A stale lockfile: one message naming the difference, for every caller.
	stale := loadSpec(t, strings.Replace(policySpec, "v3.28.0", "v3.28.1", 1))
	err = CheckLock(stale, lockPath, onDisk)
	if !errors.Is(err, errdefs.ErrLockOutOfDate) || !strings.Contains(err.Error(), "2 differences") ||
		!strings.Contains(err.Error(), "calico/node:v3.28.1") || !strings.Contains(err.Error(), `run "airgap-bundle lock`) {
		t.Fatalf("CheckLock on a stale lockfile: %v", err)
	}
	if _, _, err := EnsureLocked(ctx, stale, lockPath, onDisk, r, RequireLocked, LockOptions{}); !errors.Is(err, errdefs.ErrLockOutOfDate) {
		t.Fatalf("RequireLocked on a stale lockfile: %v", err)
	}
	if calls := r.take(); len(calls) != 0 {
		t.Fatalf("RequireLocked resolved %v", calls)
	}
}

func TestOutputDir(t *testing.T) {
	spec := loadSpec(t, policySpec)
	if got := OutputDir(spec, ""); got != filepath.Join(filepath.Dir(spec.Path), "dist") {
		t.Errorf("default output dir %q", got)
	}
	if got := OutputDir(spec, "/srv/out"); got != "/srv/out" {
		t.Errorf("override %q", got)
	}
}

// failingFetcher fails every request with err.
type failingFetcher struct{ err error }

func (f failingFetcher) Manifest(context.Context, image.Reference, digest.Digest, digest.Digest) ([]byte, error) {
	return nil, f.err
}

func (f failingFetcher) Blob(context.Context, image.Reference, digest.Digest, digest.Digest, int64, int64) (io.ReadCloser, error) {
	return nil, f.err
}

func (f failingFetcher) Close() error { return nil }

// A build error keeps its class and its cause: a caller can tell an
// interrupted build, or an authentication failure, from other failures.
func TestBuildErrorsKeepTheirCause(t *testing.T) {
	spec := loadSpec(t, policySpec)
	lock, _, err := EnsureLocked(context.Background(), spec, lockfile.Path(spec.Path), nil, &countingResolver{}, UpdateLock, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	errAuth := errors.New("unauthorized")
	for _, cause := range []error{context.Canceled, errAuth} {
		_, err := Build(context.Background(), spec, lock, c, failingFetcher{cause}, BuildOptions{OutputDir: t.TempDir()})
		if !errors.Is(err, errdefs.ErrBuild) || !errors.Is(err, cause) {
			t.Errorf("cause %v: error %v loses its class or cause", cause, err)
		}
	}
}
