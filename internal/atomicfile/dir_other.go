//go:build !unix

package atomicfile

func LockDir(string) (func(), error) { return func() {}, nil }

func FreeSpace(string) int64 { return -1 }

func IsDiskFull(error) bool { return false }
