//go:build linux

package testregistry

import (
	"os/exec"
	"syscall"
)

// setProcAttrs makes the kernel kill the registry if the test binary dies
// without running its cleanups (e.g. go test -timeout panics).
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
