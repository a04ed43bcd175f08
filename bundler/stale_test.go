package bundler

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/cache"
)

// Issue 8, defect 7: a build killed with -9 leaves its archive's temporary
// file in the output directory and a blob's in the cache's tmp/. The next
// build removes both. In the cache, shared by concurrent runs, the files of
// a process still running stay; the output directory is locked by the build
// that writes it, so whatever temporary file of its archives it finds there
// is a leftover.
func TestBuildRemovesStaleTemporaryFiles(t *testing.T) {
	w := buildVerifyWorld(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	dead, live := strconv.Itoa(cmd.Process.Pid), strconv.Itoa(os.Getppid())
	tmpDir := filepath.Join(w.cache.Dir(), "tmp")
	staleOut := filepath.Join(w.out, ".apps.tar.tmp-p"+dead+"-1234")
	liveBlob := filepath.Join(tmpDir, ".4567cdef.tmp-p"+live+"-5678")
	staleBlob := filepath.Join(tmpDir, ".0123abcd.tmp-p"+dead+"-1234")
	other := filepath.Join(w.out, ".notes.tmp") // not ours
	for _, p := range []string{staleOut, liveBlob, staleBlob, other} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The next run opens the cache and builds, as the CLI does.
	c, err := cache.Open(w.cache.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), w.spec, w.lock, c, w.fetch, BuildOptions{OutputDir: w.out}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{staleOut, staleBlob} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("stale temporary file %s left (%v)", p, err)
		}
	}
	for _, p := range []string{liveBlob, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}
