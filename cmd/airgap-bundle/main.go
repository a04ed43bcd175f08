// Command airgap-bundle builds air-gap image tarballs from a TOML spec.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
)

// Exit codes, documented in the README.
const (
	exitOK           = 0
	exitFailure      = 1 // resolution, build or verification failed
	exitUsage        = 2 // bad command line, spec or lockfile
	exitLockOutdated = 3 // lock --check (or build --locked) found drift
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var u usageError
		if !errors.As(err, &u) || u.err != nil {
			fmt.Fprintln(os.Stderr, "airgap-bundle:", err)
		}
	}
	os.Exit(exitCode(err))
}

func exitCode(err error) int {
	var u usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errdefs.ErrLockOutOfDate):
		return exitLockOutdated
	case errors.As(err, &u), errors.Is(err, errdefs.ErrUsage), errors.Is(err, errdefs.ErrSpec), errors.Is(err, errdefs.ErrLockfile):
		return exitUsage
	default:
		return exitFailure
	}
}

// usageError marks a bad command line.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }
