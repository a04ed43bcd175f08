package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// Two hand-written lockfiles: a Calico bump (a moved tag and a re-pushed
// one), arm64 added to k3s-core, an index mode change, a new and a removed
// group.
var (
	diffOld = filepath.Join("testdata", "golden", "diff-old.lock")
	diffNew = filepath.Join("testdata", "golden", "diff-new.lock")
)

func TestDiffGolden(t *testing.T) {
	out, stderr, code := runSplit(t, "", "diff", diffOld, diffNew)
	if code != 0 || stderr != "" {
		t.Fatalf("diff: exit %d (a diff is a report: want 0)\n%s%s", code, out, stderr)
	}
	golden(t, "diff.txt", out)
	for _, want := range []string{
		"  ~ docker.io/calico/node:v3.28.0 -> v3.28.1  sha256:",
		"  - docker.io/calico/pod2daemon-flexvol:v3.28.0\n",
		"  platforms: linux/amd64 -> linux/amd64, linux/arm64\n",
		"5 groups changed: 3 added, 2 removed, 6 updated; a rebuild downloads at most ",
		"  delta (build --since): at most 31.1 MiB, plus the manifests and configs of 2 platforms the old lockfile pins\n",
		"; a delta carries at most 472.7 MiB, plus the manifests and configs of 7 platforms the old lockfile pins\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q", want)
		}
	}

	out, stderr, code = runSplit(t, "", "--json", "diff", diffOld, diffNew)
	if code != 0 || stderr != "" {
		t.Fatalf("diff --json: exit %d\n%s%s", code, out, stderr)
	}
	oneJSON(t, out)
	golden(t, "diff.json", out)
	var got diffJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	oldLock, _ := lockfile.Read(diffOld)
	newLock, _ := lockfile.Read(diffNew)
	want := lockfile.Compare(oldLock, newLock)
	if got.Old != diffOld || got.New != diffNew || got.Diff == nil || got.DownloadBytes != want.DownloadBytes || len(got.Groups) != len(want.Groups) {
		t.Errorf("diff --json does not carry the computed diff:\n%s", out)
	}
	// The delta figures are new keys beside the old ones: a group's, and
	// their sum (each group's delta archive stands alone); a removed group
	// has none.
	var sum int64
	for _, g := range got.Groups {
		sum += g.DeltaBytes
		if g.Change == lockfile.Removed && (g.DeltaBytes != 0 || g.DeltaUnsizedManifests != 0) {
			t.Errorf("removed group %q has a delta: %+v", g.Name, g)
		}
	}
	if got.DeltaBytes == 0 || got.DeltaBytes != sum || got.DeltaBytes != want.DeltaBytes || got.DeltaUnsizedManifests != 7 {
		t.Errorf("diff --json delta: %d bytes (groups sum to %d), %d unsized manifests", got.DeltaBytes, sum, got.DeltaUnsizedManifests)
	}

	// Reversed: what was added is removed, and nothing new is downloaded
	// for removals.
	out, _, _ = runSplit(t, "", "diff", diffNew, diffOld)
	if !strings.Contains(out, "  ~ docker.io/calico/node:v3.28.1 -> v3.28.0  ") || !strings.Contains(out, "  - docker.io/calico/csi:v3.28.1\n") {
		t.Errorf("reversed diff:\n%s", out)
	}
}

func TestDiffExitCodesAndInputs(t *testing.T) {
	dir := t.TempDir()
	empty := writeFile(t, dir, "empty.lock", "")
	corrupt := writeFile(t, dir, "corrupt.lock", "version = 1\n[[group]]\nname = \"g\"\nbogus = 1\n")
	newBody := mustRead(t, diffNew)
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		out   string // in stdout
		err   string // in stderr
	}{
		{"differences are not an error", "", []string{"diff", diffOld, diffNew}, 0, "5 groups changed", ""},
		{"--exit-code: differences exit 1", "", []string{"diff", "--exit-code", diffOld, diffNew}, 1, "5 groups changed", "the lockfiles differ"},
		{"--exit-code: no differences exit 0", "", []string{"diff", "--exit-code", diffNew, diffNew}, 0, "no differences\n", ""},
		{"--exit-code with --json", "", []string{"--json", "diff", "--exit-code", diffOld, diffNew}, 1, `"groups-changed": 5`, "the lockfiles differ"},
		{"--quiet prints nothing, --exit-code still tells", "", []string{"-q", "diff", "--exit-code", diffOld, diffNew}, 1, "", "the lockfiles differ"},
		{"old from standard input", newBody, []string{"diff", "--exit-code", "-", diffNew}, 0, "no differences\n", ""},
		{"new from standard input", newBody, []string{"diff", diffOld, "-"}, 0, "5 groups changed", ""},
		{"an empty file is no lockfile", "", []string{"diff", empty, diffOld}, 0, "4 groups changed: 9 added, 0 removed, 0 updated", ""},
		{"a missing file is a usage error", "", []string{"diff", filepath.Join(dir, "nope.lock"), diffNew}, exitUsage, "", "no such file"},
		{"a corrupt lockfile is exit 2 at its line", "", []string{"diff", corrupt, diffNew}, exitUsage, "", corrupt + `:4: unknown key "group.bogus"`},
		{"both from standard input", "", []string{"diff", "-", "-"}, exitUsage, "", "only one of OLD and NEW"},
		{"one argument", "", []string{"diff", diffOld}, exitUsage, "", "accepts 2 arg(s)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, code := runSplit(t, c.stdin, c.args...)
			if code != c.code || !strings.Contains(out, c.out) || !strings.Contains(stderr, c.err) || (c.out == "" && out != "") {
				t.Errorf("exit %d (want %d)\nstdout (want %q):\n%s\nstderr (want %q):\n%s", code, c.code, c.out, out, c.err, stderr)
			}
		})
	}
}

// lock --dry-run and lock --update --dry-run resolve against a real
// registry, write nothing, and print the diff "airgap-bundle diff" prints
// once the lockfile is written.
func TestLockDryRun(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	push(t, reg, "", "")
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", mirroredSpec(reg.Host, jsonGroups))
	lockPath := filepath.Join(dir, "bundle.lock")
	repl := []string{dir, "$DIR", reg.Host, "$REGISTRY"}

	// No lockfile yet: everything would be added, nothing is written.
	out, stderr, code := runSplit(t, "", "lock", "--dry-run", spec)
	if code != 0 {
		t.Fatalf("lock --dry-run: exit %d\n%s%s", code, out, stderr)
	}
	if _, err := os.Stat(lockPath); err == nil {
		t.Fatal("lock --dry-run wrote a lockfile")
	}
	golden(t, "lock-dry-run-new.txt", normalise(out, repl...))

	if out, code := run(t, "lock", spec); code != 0 {
		t.Fatalf("lock: exit %d\n%s", code, out)
	}
	before := mustRead(t, lockPath)
	writeFile(t, dir, "before.lock", before)

	// Nothing to do.
	out, _, code = runSplit(t, "", "lock", "--dry-run", spec)
	if code != 0 || out != "no differences\ndry run: "+lockPath+" would be unchanged: 0 resolved, 5 kept, 0 removed\n" {
		t.Errorf("lock --dry-run on a current lockfile: exit %d\n%s", code, out)
	}

	// A version bump in the spec (single:v1 -> v2, a new image), and
	// twotags:a re-pushed with new content (a moving tag).
	ctx := context.Background()
	v2, err := fixtures.Image("single-v2", fixtures.LinuxAMD64, 2)
	if err != nil {
		t.Fatal(err)
	}
	moved, err := fixtures.Image("twotags-moved", fixtures.LinuxAMD64, 1)
	if err != nil {
		t.Fatal(err)
	}
	for ref, img := range map[string]any{"fixtures/single:v2": v2, "fixtures/twotags:a": moved} {
		if _, err := fixtures.Push(ctx, reg.Host+"/"+ref, img, reg.Transport(), "", ""); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, dir, "bundle.toml", mirroredSpec(reg.Host, strings.Replace(jsonGroups, "fixtures/single:v1", "fixtures/single:v2", 1)))

	// Plain --dry-run: only the spec change; the pinned twotags:a stays.
	out, stderr, code = runSplit(t, "", "lock", "--dry-run", spec)
	if code != 0 {
		t.Fatalf("lock --dry-run after a bump: exit %d\n%s%s", code, out, stderr)
	}
	golden(t, "lock-dry-run.txt", normalise(out, repl...))
	if !strings.Contains(out, "~ registry.test/fixtures/single:v1 -> v2  sha256:") || strings.Contains(out, "twotags") {
		t.Errorf("lock --dry-run after a bump:\n%s", out)
	}

	// --update --dry-run: the moved tag shows too.
	out, stderr, code = runSplit(t, "", "lock", "--update", "--dry-run", spec)
	if code != 0 {
		t.Fatalf("lock --update --dry-run: exit %d\n%s%s", code, out, stderr)
	}
	golden(t, "lock-update-dry-run.txt", normalise(out, repl...))
	if !strings.Contains(out, "~ registry.test/fixtures/twotags:a  sha256:") || !strings.Contains(out, "would be written: 5 resolved, 0 kept, 1 removed") {
		t.Errorf("lock --update --dry-run:\n%s", out)
	}
	dryText := out

	jsonOut, stderr, code := runSplit(t, "", "--json", "lock", "--update", "--dry-run", spec)
	if code != 0 {
		t.Fatalf("lock --json --update --dry-run: exit %d\n%s%s", code, jsonOut, stderr)
	}
	if v := oneJSON(t, jsonOut); v["dry-run"] != true || v["written"] != false || v["changed"] != true {
		t.Errorf("lock --json --update --dry-run: %s", jsonOut)
	}
	golden(t, "lock-update-dry-run.json", normalise(jsonOut, repl...))

	if got := mustRead(t, lockPath); got != before {
		t.Fatal("a dry run changed the lockfile")
	}

	// The real thing writes what the dry run showed: diff of the old and the
	// new lockfile prints the same.
	if out, code := run(t, "lock", "--update", spec); code != 0 {
		t.Fatalf("lock --update: exit %d\n%s", code, out)
	}
	out, _, code = runSplit(t, "", "diff", filepath.Join(dir, "before.lock"), lockPath)
	if code != 0 || !strings.HasPrefix(dryText, out) {
		t.Errorf("diff after lock --update differs from the dry run:\n--- dry run\n%s--- diff\n%s", dryText, out)
	}

	if out, code := run(t, "lock", "--check", "--dry-run", spec); code != exitUsage {
		t.Errorf("--check --dry-run: exit %d\n%s", code, out)
	}
}
