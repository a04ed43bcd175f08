package main

import (
	"bytes"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testdir"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// bigGroup is a fourth group, written last, whose 32 MiB layer makes its
// archive slow enough to stop a build while it is being written.
const bigGroup = `
[[group]]
name = "big"
archive = "big.tar"
images = ["registry.test/fixtures/big:v1"]
`

// bigBundle pushes the standard fixtures and the big image and returns a
// spec of verifyGroups plus bigGroup, and a warm cache for it.
func bigBundle(t *testing.T) (spec, cacheDir string) {
	t.Helper()
	testregistry.Isolate(t)
	t.Setenv("SOURCE_DATE_EPOCH", "")
	reg := testregistry.Start(t, testregistry.Options{})
	push(t, reg, "", "")
	pushBig(t, reg, "fixtures/big:v1")
	dir := t.TempDir()
	spec = writeFile(t, dir, "bundle.toml", verifySpec(reg.Host)+bigGroup)
	cacheDir = t.TempDir()
	return spec, cacheDir
}

// sameFiles reports the files of want that got lacks or holds differently,
// and the files got has in excess.
func sameFiles(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for name, body := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s: %s is gone", what, name)
		} else if g != body {
			t.Errorf("%s: %s changed", what, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: %s appeared", what, name)
		}
	}
}

// sha256sumCheck runs sha256sum -c SHA256SUMS in dir, and checks that it
// lists every archive of the directory.
func sha256sumCheck(t *testing.T, dir string) {
	t.Helper()
	c := exec.Command("sha256sum", "-c", "--strict", "SHA256SUMS")
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c SHA256SUMS in %s: %v\n%s", dir, err, out)
	}
	sums := testdir.Snapshot(t, dir)["SHA256SUMS"]
	for name := range testdir.Snapshot(t, dir) {
		if name != "SHA256SUMS" && !strings.HasPrefix(name, ".") && !strings.Contains(sums, "  "+name+"\n") {
			t.Errorf("SHA256SUMS does not list %s", name)
		}
	}
}

// startBuildAndStop runs the real binary's build into dist, waits until the
// big archive's temporary file appears (the other three are written by then,
// not yet committed) and sends sig. It returns the exit status and stderr.
func startBuildAndStop(t *testing.T, spec, cacheDir, dist string, sig syscall.Signal, env ...string) (*os.ProcessState, string) {
	t.Helper()
	return stopAtTempFile(t, dist, ".big.tar.tmp-", sig, cliEnv(env...), "build", "--quiet", "--cache-dir", cacheDir, "--output", dist, spec)
}

// stopAtTempFile runs the real binary with args, waits until a file whose
// name starts with prefix appears in dir (a temporary file being
// written), and sends sig. It returns the exit status and stderr.
func stopAtTempFile(t *testing.T, dir, prefix string, sig syscall.Signal, env []string, args ...string) (*os.ProcessState, string) {
	t.Helper()
	var stderr bytes.Buffer
	c := exec.Command(cliBinary(t), args...)
	c.Env = env
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { c.Wait(); close(exited) }()
	deadline := time.After(2 * time.Minute)
	for seen := false; !seen; {
		select {
		case <-exited:
			t.Fatalf("%s ended before a file %s* was seen in %s: %v\n%s", args[0], prefix, dir, c.ProcessState, stderr.String())
		case <-deadline:
			c.Process.Kill()
			t.Fatalf("no file %s* in %s after 2 minutes", prefix, dir)
		default:
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			seen = seen || strings.HasPrefix(e.Name(), prefix)
		}
		if !seen {
			time.Sleep(time.Millisecond)
		}
	}
	if err := c.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-exited
	return c.ProcessState, stderr.String()
}

// Issue 8, defect 5: Ctrl-C while the last of four groups is being written
// (the first three complete) exits non-zero and changes nothing: every
// archive and SHA256SUMS byte-identical, no temporary file left.
func TestBuildInterruptedChangesNothing(t *testing.T) {
	spec, cacheDir := bigBundle(t)
	dist := filepath.Join(filepath.Dir(spec), "dist")
	if out, code := run(t, "build", "--cache-dir", cacheDir, spec); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, out)
	}
	before := testdir.Snapshot(t, dist)

	// A new SOURCE_DATE_EPOCH: every archive would change.
	st, stderr := startBuildAndStop(t, spec, cacheDir, dist, syscall.SIGINT, "SOURCE_DATE_EPOCH=3600")
	if st.ExitCode() != 130 {
		t.Errorf("interrupted build: %v, want exit 130 (SIGINT)\n%s", st, stderr)
	}
	if !strings.Contains(stderr, "context canceled") {
		t.Errorf("stderr does not say the build was interrupted:\n%s", stderr)
	}
	sameFiles(t, "after Ctrl-C", testdir.Snapshot(t, dist), before)
	sha256sumCheck(t, dist)
}

// kill -9 while writing: no archive path changed, SHA256SUMS agrees with
// every archive, and the next build's output is byte-identical to a clean
// build's (the temporary files the killed build left are removed).
func TestBuildKilledThenRerun(t *testing.T) {
	spec, cacheDir := bigBundle(t)
	dist := filepath.Join(filepath.Dir(spec), "dist")
	if out, code := run(t, "build", "--cache-dir", cacheDir, spec); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, out)
	}
	before := testdir.Snapshot(t, dist)

	st, stderr := startBuildAndStop(t, spec, cacheDir, dist, syscall.SIGKILL, "SOURCE_DATE_EPOCH=3600")
	if st.Success() {
		t.Fatalf("killed build succeeded\n%s", stderr)
	}
	after := testdir.Snapshot(t, dist)
	for name := range before {
		if after[name] != before[name] {
			t.Errorf("after kill -9: %s changed", name)
		}
	}
	sha256sumCheck(t, dist)

	t.Setenv("SOURCE_DATE_EPOCH", "3600")
	if out, code := run(t, "build", "--cache-dir", cacheDir, spec); code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}
	clean := t.TempDir()
	if out, code := run(t, "build", "--cache-dir", cacheDir, "--output", clean, spec); code != 0 {
		t.Fatalf("clean build: exit %d\n%s", code, out)
	}
	sameFiles(t, "rerun against a clean build", testdir.Snapshot(t, dist), testdir.Snapshot(t, clean))
}

// mountTmpfs mounts a tmpfs of size at a new directory, unmounted when the
// test ends; it skips the test when that is not possible.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (a full disk)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs at %s: %v %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// A full output directory: the old build stays, the error names the
// directory and the space needed, no temporary file is left.
func TestBuildOutputDiskFull(t *testing.T) {
	spec, cacheDir := bigBundle(t)
	dist := mountTmpfs(t, "2m")
	small := writeFile(t, filepath.Dir(spec), "small.toml", strings.TrimSuffix(mustRead(t, spec), bigGroup))
	if out, code := run(t, "build", "--cache-dir", cacheDir, "--output", dist, small); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, out)
	}
	before := testdir.Snapshot(t, dist)

	t.Setenv("SOURCE_DATE_EPOCH", "3600")
	out, code := run(t, "build", "--cache-dir", cacheDir, "--output", dist, spec)
	if code != 1 {
		t.Fatalf("build into a full directory: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"output directory " + dist + " is full", "free", "need up to 32.", "no space left on device"} {
		if !strings.Contains(out, want) {
			t.Errorf("error lacks %q:\n%s", want, out)
		}
	}
	sameFiles(t, "after a full disk", testdir.Snapshot(t, dist), before)
	sha256sumCheck(t, dist)
}

// A full cache: the build fails cleanly, with no archive written and no
// entry in the cache that is not its digest's content.
func TestBuildCacheDiskFull(t *testing.T) {
	spec, _ := bigBundle(t)
	cacheDir := mountTmpfs(t, "2m")
	dist := t.TempDir()
	out, code := run(t, "build", "--cache-dir", cacheDir, "--output", dist, spec)
	if code != 1 {
		t.Fatalf("build with a full cache: exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "no space left on device") {
		t.Errorf("error does not say the disk is full:\n%s", out)
	}
	if files := testdir.Snapshot(t, dist); len(files) != 0 {
		t.Errorf("output directory holds %v", slices.Sorted(maps.Keys(files)))
	}
	if tmp, _ := os.ReadDir(filepath.Join(cacheDir, "tmp")); len(tmp) != 0 {
		t.Errorf("cache temporary files left: %v", tmp)
	}
	blobs, _ := filepath.Glob(filepath.Join(cacheDir, "blobs", "sha256", "*"))
	for _, b := range blobs {
		if got := fileSHA(t, b); got != filepath.Base(b) {
			t.Errorf("cache entry %s holds sha256 %s", b, got)
		}
	}
}

// pushBig pushes ref: an image with a 32 MiB random layer, big enough that
// a build is still writing when a test kills or interrupts it.
func pushBig(t *testing.T, reg *testregistry.Registry, ref string) {
	t.Helper()
	base, err := fixtures.Image("big", fixtures.LinuxAMD64, 1)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := random.Layer(32<<20, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	big, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.Push(context.Background(), reg.Host+"/"+ref, big, reg.Transport(), "", ""); err != nil {
		t.Fatal(err)
	}
}
