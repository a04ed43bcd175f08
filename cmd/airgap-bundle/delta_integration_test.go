package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	got, want := testdir.Snapshot(t, rebuilt), testdir.Snapshot(t, dist)
	for _, name := range []string{"core.tar.zst", "extra.tar", "SHA256SUMS"} {
		if got[name] == "" || got[name] != want[name] {
			t.Errorf("apply's %s is not build's (%d vs %d bytes)", name, len(got[name]), len(want[name]))
		}
	}

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
