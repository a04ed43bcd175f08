package atomicfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to begin writing [off, off+n) of f to disk
// now, without waiting: the final fsync then finds most of a large file
// already written, and disk writes overlap the work that produced the data
// instead of following it.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// dataSync is fdatasync: the data and what is needed to read it back.
// A variable for tests.
var dataSync = func(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
