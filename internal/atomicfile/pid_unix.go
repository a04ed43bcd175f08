//go:build unix

package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// PIDAlive reports whether a process with that PID exists (on this host).
// A process of another user counts as alive.
func PIDAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
