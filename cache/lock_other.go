//go:build !unix

package cache

import "os"

// tryLock never locks here: without flock, two processes could both write
// one partial file, so each download goes to a private temporary file and
// a partial download is not resumed by another run.
func tryLock(*os.File) bool { return false }

// lockShared does nothing without flock: prune is not guarded there.
func lockShared(*os.File) error { return nil }

// tryLockExclusive always succeeds without flock.
func tryLockExclusive(*os.File) bool { return true }
