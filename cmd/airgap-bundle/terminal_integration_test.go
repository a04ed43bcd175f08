package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// asCLIEnv, set to 1 in a child's environment, makes the test binary run
// the CLI's main instead of the tests (see TestMain). Tests that need the
// CLI as a process of its own re-execute the test binary with it rather than
// building the command with go build: nothing is compiled twice, and every
// such test in the package shares the one binary.
const asCLIEnv = "AIRGAP_BUNDLE_TEST_RUN_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(asCLIEnv) == "1" {
		if os.Getenv(stuckEnv) == "1" {
			rootCmd = stuckRootCmd
		}
		main() // exits with the CLI's exit code
	}
	os.Exit(m.Run())
}

// cliBinary returns the path of an executable that behaves as airgap-bundle
// when run with cliEnv() in its environment: this test binary.
func cliBinary(t *testing.T) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary: %v", err)
	}
	return bin
}

// cliEnv is the environment for running cliBinary as the CLI, plus extra.
func cliEnv(extra ...string) []string {
	return append(append(os.Environ(), asCLIEnv+"=1"), extra...)
}

// On a terminal, build draws progress bars; in a CI log (a pipe) it writes
// plain timestamped lines without a single control character.
func TestProgressOnTerminalAndInCI(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) is not installed")
	}
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	push(t, reg, "", "")
	bin := cliBinary(t)
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", buildSpec(reg.Host))
	env := cliEnv("HOME=" + dir)

	// A pty: script(1) runs the command on a pseudo-terminal and copies
	// what it drew. Without a terminal of its own, script's pty is 0x0, on
	// which nothing can be drawn: give it a real terminal's size. The cache
	// is cold, so every stage has work to show.
	tty := exec.Command("script", "-qfec", fmt.Sprintf("stty cols 120 rows 40; %s build --cache-dir %s %s", bin, filepath.Join(dir, "c1"), spec), "/dev/null")
	tty.Env = env
	screen, err := tty.CombinedOutput()
	if err != nil {
		t.Fatalf("build under a pty: %v\n%s", err, screen)
	}
	s := string(screen)
	// Bars, not log lines. (A build this small can end before the first
	// redraw, so the bars may be drawn once, without cursor movement.)
	for _, want := range []string{"resolve", "download multi", "write multi.tar", "[====", "GROUP", "SHA256"} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, s)
		}
	}

	// A pipe: stdout and stderr captured separately, as CI would.
	var stdout, stderr bytes.Buffer
	ci := exec.Command(bin, "build", "--cache-dir", filepath.Join(dir, "c2"), spec)
	ci.Env = env
	ci.Stdout, ci.Stderr = &stdout, &stderr
	if err := ci.Run(); err != nil {
		t.Fatalf("build in a pipe: %v\n%s", err, stderr.String())
	}
	all := stdout.String() + stderr.String()
	if strings.ContainsAny(all, "\r\x1b") {
		t.Errorf("CI output has control characters:\n%q", all)
	}
	if !strings.Contains(stderr.String(), "download multi: started") || !strings.Contains(stderr.String(), "write multi.tar: done") {
		t.Errorf("CI progress lines missing:\n%s", stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" && !strings.HasPrefix(line, "20") { // RFC 3339 timestamps
			t.Errorf("untimestamped progress line: %q", line)
		}
	}

	// --quiet: only errors, so nothing at all on success.
	var q bytes.Buffer
	quiet := exec.Command(bin, "build", "--quiet", "--cache-dir", filepath.Join(dir, "c2"), spec)
	quiet.Env = env
	quiet.Stdout, quiet.Stderr = &q, &q
	if err := quiet.Run(); err != nil || q.Len() != 0 {
		t.Errorf("--quiet printed %q (err %v)", q.String(), err)
	}
}
