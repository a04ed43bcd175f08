package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airgap-bundle/airgap-bundle/internal/faultproxy"
)

// kill -9 of the real binary in the middle of a download: the rerun asks
// only for the bytes it lacks (a Range request from where the partial file
// stopped), and its archive is byte-identical to a build that was never
// interrupted.
func TestKilledBuildResumesDownload(t *testing.T) {
	w := newFaultWorld(t)
	ref := t.TempDir()
	if out, code := w.build(t, ref); code != 0 {
		t.Fatalf("fault-free build: exit %d\n%s", code, out)
	}
	want := sha(t, filepath.Join(ref, "apps.tar"))

	// The big layer trickles, so the process is killed mid-download.
	w.px.ResetCounters()
	h := w.px.Add(faultproxy.Rule{Method: "GET", Path: w.bigLayer, When: faultproxy.Nth(1), Fault: faultproxy.Slow(64 << 10)})
	cacheDir, out := t.TempDir(), t.TempDir()
	args := append([]string{"build", "--locked"}, fast...)
	args = append(args, "--stall-timeout", "30s", "--cache-dir", cacheDir, "--output", out, w.spec)
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Env = cliEnv()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(cacheDir, "tmp", strings.TrimPrefix(w.bigLayer, "/blobs/sha256:")+".partial")
	deadline := time.Now().Add(30 * time.Second)
	var got int64
	for time.Now().Before(deadline) {
		if st, err := os.Stat(partial); err == nil && st.Size() >= 128<<10 {
			got = st.Size()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if got == 0 || h.Fired() != 1 {
		t.Fatalf("no partial download to kill (partial %d bytes, fault fired %d times)\n%s\n%s", got, h.Fired(), stderr.String(), w.px.LogString())
	}
	if _, err := os.Stat(filepath.Join(out, "apps.tar")); !os.IsNotExist(err) {
		t.Errorf("the killed build left a file at the archive's path (%v)", err)
	}

	// The rerun resumes: one Range request, from at least the bytes the
	// partial held when the process died.
	w.px.ClearRules()
	w.px.ResetCounters()
	o, code := run(t, append(append([]string{"build", "--locked"}, fast...), "--cache-dir", cacheDir, "--output", out, w.spec)...)
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, o)
	}
	if sha(t, filepath.Join(out, "apps.tar")) != want {
		t.Error("the resumed build's archive differs from an uninterrupted build's")
	}
	s := w.px.Stats()
	if len(s.Ranges) != 1 || !strings.HasPrefix(s.Ranges[0], "bytes=") {
		t.Fatalf("want one Range request, got %v\n%s", s.Ranges, w.px.LogString())
	}
	var from int64
	if _, err := fmt.Sscanf(s.Ranges[0], "bytes=%d-", &from); err != nil || from < got {
		t.Errorf("resumed from %q, the partial held %d bytes", s.Ranges[0], got)
	}
	var sent int64
	for p, n := range s.BytesSent {
		if strings.HasSuffix(p, w.bigLayer) {
			sent += n
		}
	}
	if sent != w.bigSize-from {
		t.Errorf("the rerun downloaded %d bytes of the layer, want %d", sent, w.bigSize-from)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Error("the partial file is still there")
	}
	if entries, _ := os.ReadDir(out); len(entries) != 2 {
		t.Errorf("after the rerun the output directory holds %d entries, want apps.tar and SHA256SUMS", len(entries))
	}
}
