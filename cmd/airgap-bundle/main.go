// Command airgap-bundle builds air-gap image tarballs from a TOML spec.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"sync/atomic"
	"syscall"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
)

// Exit codes, documented in the README.
const (
	exitOK           = 0
	exitFailure      = 1 // resolution, build or verification failed
	exitUsage        = 2 // bad command line, spec or lockfile
	exitLockOutdated = 3 // lock --check (or build --locked) found drift
	exitSIGINT       = 130
	exitSIGTERM      = 143
)

// rootCmd builds the command main runs; tests swap it for one that ignores
// cancellation.
var rootCmd = newRootCmd

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	interrupted := onSignals(cancel)
	err := rootCmd().ExecuteContext(ctx)
	code := exitCode(err)
	if c := interrupted.Load(); c != 0 {
		code = int(c)
	}
	printError(os.Stderr, err)
	os.Exit(code)
}

// printError writes err as the run's last word, without containers/image's
// retry statistics, which mean nothing to a user.
func printError(w io.Writer, err error) {
	if err == nil {
		return
	}
	var u usageError
	if errors.As(err, &u) && u.err == nil {
		return
	}
	fmt.Fprintln(w, "airgap-bundle:", heuristicRE.ReplaceAllString(err.Error(), ""))
}

// heuristicRE matches what containers/image's docker/body_reader.go wraps
// a broken blob download in: "(heuristic tuning data: total 3 @12.000 ms,
// last retry 2 @10.000 ms, last progress @ 9.000 ms): ".
var heuristicRE = regexp.MustCompile(`\(heuristic tuning data: [^)]*\):? ?`)

// onSignals makes SIGINT and SIGTERM behave as shells expect. The first
// cancels ctx (through cancel), so the command stops and removes its
// temporary files, and records the exit code (130 for SIGINT, 143 for
// SIGTERM) for main to use once the command returns. A second signal exits
// at once with the first one's code, for a run that does not stop.
func onSignals(cancel context.CancelFunc) *atomic.Int32 {
	var code atomic.Int32
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		code.Store(int32(signalExitCode(s)))
		fmt.Fprintf(os.Stderr, "airgap-bundle: %v: stopping (send it again to exit now)\n", s)
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "airgap-bundle: exiting without cleaning up")
		os.Exit(int(code.Load()))
	}()
	return &code
}

func signalExitCode(s os.Signal) int {
	if s == syscall.SIGTERM {
		return exitSIGTERM
	}
	return exitSIGINT
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
