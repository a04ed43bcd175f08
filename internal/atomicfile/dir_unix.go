//go:build unix

package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// LockDir takes an exclusive flock on the output directory itself
// (no lock file is left in it), so that two runs never recover, clean or
// commit into one directory at once. The lock goes with the process, also
// on kill -9. A filesystem that refuses flock (some NFS set-ups) builds
// unlocked.
func LockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another run (build or apply) is writing to %s", dir)
		}
		return func() {}, nil
	}
	return func() { f.Close() }, nil
}

// FreeSpace is the space an unprivileged user can still write in dir, or
// -1 when it cannot be told.
func FreeSpace(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// IsDiskFull reports whether err is a full disk or an exhausted quota.
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
