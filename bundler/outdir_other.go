//go:build !unix

package bundler

func lockOutputDir(string) (func(), error) { return func() {}, nil }

func freeSpace(string) int64 { return -1 }

func isDiskFull(error) bool { return false }
