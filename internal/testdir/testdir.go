// Package testdir holds what tests of commands that write a directory need:
// the directory's files as a value, to compare before and after a run
// that must change nothing.
package testdir

import (
	"os"
	"path/filepath"
	"testing"
)

// Snapshot reads every file directly in dir: name to contents.
func Snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}
