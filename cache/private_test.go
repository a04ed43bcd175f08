package cache

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// deadPID is the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.Process.Pid
}

func perm(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode() & (os.ModePerm | os.ModeSetgid)
}

// Issue 8, defect 11: blobs are layers of possibly private images, so the
// cache is private to its user by default, and an existing cache made
// world-readable by an older version is tightened on open.
func TestCacheIsPrivate(t *testing.T) {
	old := t.TempDir()
	dir := filepath.Join(old, "cache")
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	for _, d := range []string{dir, fresh} {
		c, err := Open(d)
		if err != nil {
			t.Fatal(err)
		}
		content := "private layer"
		dg := digest.FromString(content)
		if err := c.Put(context.Background(), dg, int64(len(content)), strings.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		if m := perm(t, d); m != 0o700 {
			t.Errorf("%s: top directory mode %v, want 0700", d, m)
		}
		if m := perm(t, filepath.Join(d, "blobs", "sha256", dg.Encoded())); m != 0o600 {
			t.Errorf("%s: blob mode %v, want 0600", d, m)
		}
		if d == fresh {
			for _, sub := range []string{"blobs", "blobs/sha256", "tmp"} {
				if m := perm(t, filepath.Join(d, sub)); m != 0o700 {
					t.Errorf("%s: mode %v, want 0700", sub, m)
				}
			}
		}
	}
}

// A cache shared on purpose (setgid top directory) is readable by its
// group, never by others.
func TestCacheSharedWithGroup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o775|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if perm(t, dir)&os.ModeSetgid == 0 {
		t.Skip("this filesystem does not keep setgid on directories")
	}
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	content := "team layer"
	dg := digest.FromString(content)
	if err := c.Put(context.Background(), dg, int64(len(content)), strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	if m := perm(t, dir); m != 0o770|os.ModeSetgid {
		t.Errorf("top directory mode %v, want g+s 0770", m)
	}
	if m := perm(t, filepath.Join(dir, "blobs", "sha256")); m != 0o770|os.ModeSetgid {
		t.Errorf("blobs/sha256 mode %v, want g+s 0770", m)
	}
	if m := perm(t, filepath.Join(dir, "blobs", "sha256", dg.Encoded())); m != 0o640 {
		t.Errorf("blob mode %v, want 0640", m)
	}
}

// Issue 8, defect 7: a put killed half way leaves its temporary file in
// tmp/; the next Open removes it, and leaves a live process's alone.
func TestOpenRemovesStaleTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	stale := filepath.Join(tmp, ".abc.tmp-p"+strconv.Itoa(deadPID(t))+"-123")
	live := filepath.Join(tmp, ".def.tmp-p"+strconv.Itoa(os.Getppid())+"-456")
	for _, p := range []string{stale, live} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file of a dead process left: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("temporary file of a live process removed: %v", err)
	}
}
