//go:build !linux

package atomicfile

import "os"

func startWriteback(*os.File, int64, int64) {}

var dataSync = func(f *os.File) error { return f.Sync() }
