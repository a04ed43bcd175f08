// Package testdir holds what tests of commands that write a directory need:
// the directory's files as a value, to compare before and after a run
// that must change nothing.
package testdir

import (
	"os"
	"path/filepath"
	"testing"
)

// Snapshot reads every regular file directly in dir: name to contents
// (subdirectories are not files of the directory's own).
func Snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}
