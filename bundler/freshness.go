package bundler

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// freshness.go: whether a lockfile pins what its spec asks for, and the
// one place every command that needs a current lockfile asks it.

// OutputDir is where a spec's archives go: override when given, else the
// spec's output-dir.
func OutputDir(spec *config.Spec, override string) string {
	if override != "" {
		return override
	}
	return spec.OutputDir
}

// CheckLock tells whether lock (read from lockPath; nil when there is no
// file) pins exactly what spec asks for. The error, of class
// errdefs.ErrLockOutOfDate, names each difference and the command that
// fixes them; every command that needs a current lockfile reports it in
// these words.
func CheckLock(spec *config.Spec, lockPath string, lock *lockfile.Lock) error {
	if lock == nil {
		return fmt.Errorf("%w: %s does not exist; run \"airgap-bundle lock %s\"", errdefs.ErrLockOutOfDate, lockPath, spec.Path)
	}
	plan, err := NewPlan(spec, lock, LockOptions{})
	if err != nil {
		return err
	}
	drift := plan.Drift()
	if len(drift) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s differs from %s (%s):\n  %s\nrun \"airgap-bundle lock %s\"",
		errdefs.ErrLockOutOfDate, lockPath, spec.Path, plural(len(drift), "difference", "differences"), strings.Join(drift, "\n  "), spec.Path)
}

// LockPolicy says what EnsureLocked does with a missing or stale lockfile.
type LockPolicy int

const (
	// UpdateLock resolves what changed and writes the lockfile, as lock does.
	UpdateLock LockPolicy = iota
	// RequireLocked refuses with CheckLock's error (build --locked).
	RequireLocked
)

// EnsureLocked returns the lockfile to build from. A current lock is
// returned as it is (result nil, no registry call). Otherwise, with
// RequireLocked it fails with CheckLock's error; with UpdateLock it locks
// through r and writes lockPath (result says what changed).
func EnsureLocked(ctx context.Context, spec *config.Spec, lockPath string, lock *lockfile.Lock, r Resolver, policy LockPolicy, opts LockOptions) (*lockfile.Lock, *LockResult, error) {
	err := CheckLock(spec, lockPath, lock)
	if err == nil {
		return lock, nil, nil
	}
	if policy == RequireLocked {
		return nil, nil, fmt.Errorf("--locked: %w", err)
	}
	res, err := Lock(ctx, spec, lock, r, opts)
	if err != nil {
		return nil, nil, err
	}
	if _, err := WriteLock(spec, lockPath, res.Lock); err != nil {
		return nil, nil, err
	}
	return res.Lock, res, nil
}

// WriteLock encodes lock for spec and writes it to lockPath unless the file
// already holds exactly those bytes.
func WriteLock(spec *config.Spec, lockPath string, lock *lockfile.Lock) (changed bool, err error) {
	data, err := lock.Encode(filepath.Base(spec.Path))
	if err != nil {
		return false, err
	}
	return lockfile.Write(lockPath, data)
}

// plural renders "1 difference", "3 differences".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
