package testdir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.tar"), []byte("A"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := Snapshot(t, dir)
	if len(got) != 2 || got["a.tar"] != "A" || got["SHA256SUMS"] != "s" {
		t.Fatalf("Snapshot = %v", got)
	}
}
