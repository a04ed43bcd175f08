//go:build !unix

package atomicfile

// PIDAlive cannot tell on this system, so it says alive: nothing is removed.
func PIDAlive(pid int) bool { return pid > 0 }
