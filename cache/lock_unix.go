//go:build unix

package cache

import (
	"os"
	"syscall"
)

// tryLock takes f's exclusive lock without waiting; the kernel releases it
// when f is closed or the process dies.
func tryLock(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
