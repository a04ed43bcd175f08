package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/faultproxy"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// Issue 20: on a terminal, a build of many groups redraws only the tasks
// at work (the groups being downloaded and written, and all the archives
// together); a finished task's bar is printed once above them. It drew
// every group's two bars from start to end: with more groups than the
// terminal has rows, the running ones were cut off.
func TestProgressOfManyGroupsOnTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) is not installed")
	}
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	// Blobs come at 4 KiB/s (a config in about 50 ms, a layer in 150):
	// the groups finish one after another, as in a build of real size,
	// rather than all within one redraw of the bars.
	px := faultproxy.Start(t, reg.Host, faultproxy.WithRules(faultproxy.Rule{Method: "GET", Path: "/blobs/sha256:", Fault: faultproxy.Slow(4 << 10)}))
	const groups = 20
	var spec strings.Builder
	fmt.Fprintf(&spec, "platforms = [\"linux/amd64\"]\n\n[registries.%q]\ninsecure = true\n", px.Host)
	for i := range groups {
		reg.PushImage(t, fmt.Sprintf("many/app-%02d:v1", i), fmt.Sprintf("many-%02d", i))
		fmt.Fprintf(&spec, "\n[[group]]\nname = \"g%02d\"\narchive = \"g%02d.tar\"\nimages = [\"%s/many/app-%02d:v1\"]\n", i, i, px.Host, i)
	}
	dir := t.TempDir()
	specPath := writeFile(t, dir, "bundle.toml", spec.String())
	// Locked first: a build that locks downloads while it resolves, and
	// this one is to download as it builds.
	lock := exec.Command(cliBinary(t), "lock", specPath)
	lock.Env = cliEnv("HOME=" + dir)
	if out, err := lock.CombinedOutput(); err != nil {
		t.Fatalf("lock: %v\n%s", err, out)
	}
	// 40 rows: fewer than the 2 bars per group drawn before
	tty := exec.Command("script", "-qfec", fmt.Sprintf("stty cols 120 rows 40; %s build --jobs 2 --cache-dir %s %s", cliBinary(t), filepath.Join(dir, "cache"), specPath), "/dev/null")
	tty.Env = cliEnv("HOME=" + dir)
	screen, err := tty.CombinedOutput()
	if err != nil {
		t.Fatalf("build under a pty: %v\n%s", err, screen)
	}
	// Each redraw moves the cursor up over the lines drawn before
	// (ESC [ n A, then ESC [ J): n is the height of the redrawn area.
	most := 0
	for _, m := range regexp.MustCompile(`\x1b\[(\d+)A\x1b\[J`).FindAllSubmatch(screen, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		most = max(most, n)
	}
	// the 2 groups downloading, the 2 archives being written, all of
	// them, and the bars that finished since the last redraw (each drawn
	// once more before it leaves: a group's download and write end close
	// together): 12 leaves room for a slow redraw. Drawing every group's
	// bars, it was 40 (the whole terminal).
	if most > 12 {
		t.Errorf("a redraw covered %d lines; want at most 12 (the tasks at work) for %d groups:\n%q", most, groups, screen)
	}
	t.Logf("the most lines one redraw covered: %d", most)
	plain := regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`).ReplaceAll(screen, nil)
	for i := range groups {
		// the finished bar, printed once
		if re := regexp.MustCompile(fmt.Sprintf(`write g%02d\.tar .*done`, i)); !re.Match(plain) {
			t.Errorf("no finished bar of g%02d.tar on the terminal:\n%s", i, plain)
		}
	}
	if !bytes.Contains(plain, []byte(fmt.Sprintf("all %d archives", groups))) {
		t.Errorf("no bar of all the archives:\n%s", plain)
	}
}
