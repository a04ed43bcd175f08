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

// lockShared takes f's shared lock, waiting for an exclusive holder.
func lockShared(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
}

// tryLockExclusive takes f's exclusive lock without waiting; false when
// another holds it (shared or exclusive).
func tryLockExclusive(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
