package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Files a spec names are read only if they are regular files, within a
// cap: devices, FIFOs, procfs files and oversized files are errors at the
// spec's line, all reported at once, in bounded time and memory. The run
// gets a 2 GiB address-space limit and a minute, so that a regression
// fails the test instead of exhausting the machine (the old code read
// /dev/zero until the kernel killed it and blocked forever on a FIFO).
func TestHostileInputFilesAreRefused(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("# padding padding padding padding padding padding padding\n"), (17<<20)/58+1)
	if err := os.WriteFile(filepath.Join(dir, "big.yaml"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "bundle.toml")
	if err := os.WriteFile(spec, []byte(`[[signatures]]
require = "sigstoreSigned"
key = "/dev/zero"

[[group]]
name = "devices"
manifests = ["/dev/zero", "fifo.yaml", "big.yaml"]
image-lists = ["/dev/zero"]

[[group]]
name = "procfs"
manifests = ["/proc/self/*"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `ulimit -v 2097152 && exec "$0" validate "$1"`, cliBinary(t), spec)
	cmd.Env = cliEnv("TMPDIR=" + t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("validate did not end within a minute (a read blocked or ran away); stderr:\n%.2000s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("validate = %v, want exit %d; stderr:\n%.4000s", err, exitUsage, stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{
		`bundle.toml:3: signatures #1: key /dev/zero: not a regular file (a character device)`,
		`group "devices": manifest /dev/zero: not a regular file (a character device)`,
		`fifo.yaml: not a regular file (a FIFO)`,
		`big.yaml: file too large: over the 16 MiB cap`,
		`group "devices": image list /dev/zero: not a regular file (a character device)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr does not say %q", want)
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%.4000s", out)
	}
}
