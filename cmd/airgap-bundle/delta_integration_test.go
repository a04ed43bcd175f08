package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/testdir"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/schemas"
)

func deltaSpec(h, app string) string {
	return fmt.Sprintf(`
[registries."%[1]s"]
insecure = true

[[group]]
name = "core"
archive = "core.tar.zst"
images = ["%[1]s/%[2]s", "%[1]s/tool:v1"]

[[group]]
name = "extra"
archive = "extra.tar"
images = ["%[1]s/other:v1"]
`, h, app)
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// The version bump as users do it, against a real registry: build v1 and
// commit its lockfile; bump an image; build --since git:HEAD writes the
// full archives and a delta; apply, given v1's archives and the delta,
// rebuilds v2's archives byte for byte. A BASE without the blobs is
// refused, naming them.
func TestDeltaAcrossTheGap(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	for repo, seed := range map[string]string{"app:v1": "app-1", "app:v2": "app-2", "tool:v1": "tool", "other:v1": "other"} {
		reg.PushImage(t, repo, seed)
	}
	dir, cacheDir := t.TempDir(), t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", deltaSpec(reg.Host, "app:v1"))
	git(t, dir, "init", "-q")
	if out, code := run(t, "build", "--cache-dir", cacheDir, spec); code != 0 {
		t.Fatalf("build v1: %d\n%s", code, out)
	}
	git(t, dir, "add", "bundle.toml", "bundle.lock")
	git(t, dir, "commit", "-q", "-m", "v1")
	dist := filepath.Join(dir, "dist")
	base := t.TempDir()
	for name, body := range testdir.Snapshot(t, dist) {
		writeFile(t, base, name, body)
	}

	writeFile(t, dir, "bundle.toml", deltaSpec(reg.Host, "app:v2"))
	out, code := run(t, "build", "--cache-dir", cacheDir, "--since", "git:HEAD", spec)
	if code != 0 {
		t.Fatalf("build --since: %d\n%s", code, out)
	}
	deltaDir := filepath.Join(dist, "delta")
	for _, want := range []string{"core.tar.zst -> core.delta.tar.zst", "extra.tar unchanged since BASE", "delta in " + deltaDir} {
		if !strings.Contains(out, want) {
			t.Errorf("build --since does not say %q:\n%s", want, out)
		}
	}
	files := testdir.Snapshot(t, deltaDir)
	if _, ok := files["core.delta.tar.zst"]; !ok || len(files) != 4 { // delta, delta.json, bundle.lock, SHA256SUMS
		t.Fatalf("delta directory holds %v", keys(files))
	}
	var m struct {
		Base struct{ Source string } `json:"base"`
	}
	doc := checkSchema(t, filepath.Join(deltaDir, "delta.json"), schemas.DeltaID, schemas.Delta())
	if err := json.Unmarshal(doc, &m); err != nil || m.Base.Source != "git:HEAD" {
		t.Errorf("delta.json base: %+v %v", m, err)
	}

	rebuilt := filepath.Join(t.TempDir(), "next")
	if out, code := run(t, "apply", deltaDir, "--base", base, "-o", rebuilt); code != 0 {
		t.Fatalf("apply: %d\n%s", code, out)
	}
	sameBuild(t, rebuilt, dist, "core.tar.zst", "extra.tar")
	sha256sumCheck(t, rebuilt)

	empty := t.TempDir()
	out, code = run(t, "apply", deltaDir, "--base", empty, "-o", t.TempDir())
	if code != exitFailure || !strings.Contains(out, "needs blob sha256:") || !strings.Contains(out, "is unchanged since BASE") {
		t.Errorf("apply without BASE's blobs: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"apply", deltaDir, "--base", base},
		{"apply", deltaDir, "--base", base, "-o", base},
		{"build", "--since", filepath.Join(dir, "nope.lock"), spec},
		{"build", "--delta-dir", t.TempDir(), spec},
	} {
		if out, code := run(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, out)
		}
	}
	if err := os.RemoveAll(rebuilt); err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// bigDelta builds v1 of a spec whose core group holds a 32 MiB layer, then
// v2 (app bumped) with a delta against v1's lockfile. It returns v1's
// archives (the site), v2's output directory and the delta directory.
func bigDelta(t *testing.T) (site, dist, deltaDir string) {
	t.Helper()
	testregistry.Isolate(t)
	t.Setenv("SOURCE_DATE_EPOCH", "")
	reg := testregistry.Start(t, testregistry.Options{})
	reg.PushImage(t, "app:v1", "app-1")
	reg.PushImage(t, "app:v2", "app-2")
	pushBig(t, reg, "big:v1")
	spec := func(app string) string {
		return fmt.Sprintf("[registries.%q]\ninsecure = true\n\n[[group]]\nname = \"core\"\narchive = \"core.tar\"\nimages = [\"%[1]s/%s\", \"%[1]s/big:v1\"]\n", reg.Host, app)
	}
	dir, cacheDir := t.TempDir(), t.TempDir()
	p := writeFile(t, dir, "bundle.toml", spec("app:v1"))
	if out, code := run(t, "build", "--cache-dir", cacheDir, p); code != 0 {
		t.Fatalf("build v1: %d\n%s", code, out)
	}
	dist = filepath.Join(dir, "dist")
	site = t.TempDir()
	for name, body := range testdir.Snapshot(t, dist) {
		writeFile(t, site, name, body)
	}
	v1 := writeFile(t, t.TempDir(), "v1.lock", mustRead(t, filepath.Join(dir, "bundle.lock")))
	writeFile(t, dir, "bundle.toml", spec("app:v2"))
	if out, code := run(t, "build", "--cache-dir", cacheDir, "--since", v1, p); code != 0 {
		t.Fatalf("build --since: %d\n%s", code, out)
	}
	return site, dist, filepath.Join(dist, "delta")
}

// visible is a directory's files without the hidden (temporary) ones.
func visible(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := testdir.Snapshot(t, dir)
	for name := range m {
		if strings.HasPrefix(name, ".") {
			delete(m, name)
		}
	}
	return m
}

// kill -9 of apply --in-place while it writes: the site's archives and
// SHA256SUMS are as they were; the next apply removes the leftovers and
// gives v2's archives byte for byte.
func TestApplyKilledInPlaceChangesNothing(t *testing.T) {
	site, dist, deltaDir := bigDelta(t)
	before := visible(t, site)

	stopAtTempFile(t, site, ".core.tar.tmp-", syscall.SIGKILL, cliEnv("TMPDIR="+t.TempDir()), "apply", "--quiet", deltaDir, "--base", site, "--in-place")
	sameFiles(t, "after kill -9", visible(t, site), before)

	if out, code := run(t, "apply", deltaDir, "--base", site, "--in-place"); code != 0 {
		t.Fatalf("apply after kill -9: %d\n%s", code, out)
	}
	for name := range testdir.Snapshot(t, site) {
		if strings.HasPrefix(name, ".") {
			t.Errorf("%s left behind", name)
		}
	}
	sameBuild(t, site, dist, "core.tar")
	sha256sumCheck(t, site)
}

// A full output directory: apply fails saying so, and leaves nothing.
func TestApplyDiskFull(t *testing.T) {
	site, _, deltaDir := bigDelta(t)
	out := mountTmpfs(t, "4m")
	o, code := run(t, "apply", deltaDir, "--base", site, "-o", out)
	if code != exitFailure || !strings.Contains(o, "output directory "+out+" is full") || !strings.Contains(o, "no space left on device") {
		t.Fatalf("apply into a full directory: exit %d\n%s", code, o)
	}
	if left := testdir.Snapshot(t, out); len(left) != 0 {
		t.Errorf("a failed apply left %v", keys(left))
	}
}

// sameBuild checks that apply's directory holds build's archives byte for
// byte, and SHA256SUMS lines for them as build's (and one for the lockfile
// apply puts beside them).
func sameBuild(t *testing.T, applied, built string, archives ...string) {
	t.Helper()
	got, want := testdir.Snapshot(t, applied), testdir.Snapshot(t, built)
	for _, name := range archives {
		if got[name] == "" || got[name] != want[name] {
			t.Errorf("apply's %s is not build's (%d vs %d bytes)", name, len(got[name]), len(want[name]))
		}
		for _, line := range strings.SplitAfter(want["SHA256SUMS"], "\n") {
			if strings.HasSuffix(line, "  "+name+"\n") && !strings.Contains(got["SHA256SUMS"], line) {
				t.Errorf("apply's SHA256SUMS lacks build's line %q", line)
			}
		}
	}
	if !strings.Contains(got["SHA256SUMS"], "  bundle.lock\n") || got["bundle.lock"] == "" {
		t.Error("apply did not put the new lockfile, with its SHA256SUMS line, beside the archives")
	}
}
