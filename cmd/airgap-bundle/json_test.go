package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/bundler"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// go test ./cmd/airgap-bundle -run 'Golden|JSON|DryRun' -update rewrites
// testdata/golden/ from the current output.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func updateGolden() bool { return *update }

// golden compares got with testdata/golden/name, or rewrites the file
// under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if updateGolden() {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/airgap-bundle -run '%s' -update creates it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("output differs from %s (if the change is intended, go test ./cmd/airgap-bundle -run '%s' -update rewrites it)\n--- want\n%s--- got\n%s", p, t.Name(), want, got)
	}
}

// runSplit runs the CLI in-process with stdout and stderr apart, as a
// script piping --json output sees them; the error (what main prints) goes
// to stderr.
func runSplit(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	c := newRootCmd()
	c.SetArgs(args)
	c.SetIn(strings.NewReader(stdin))
	c.SetOut(&out)
	c.SetErr(&errb)
	err := c.ExecuteContext(context.Background())
	if err != nil {
		fmt.Fprintln(&errb, "airgap-bundle:", err)
	}
	return out.String(), errb.String(), exitCode(err)
}

// oneJSON checks that s is exactly one JSON object and decodes it.
func oneJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, s)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON document:\n%s", s)
	}
	return v
}

// normalise replaces a test's temporary paths (and the registry's port,
// should it ever show) with placeholders, so output can be compared with a
// golden file.
func normalise(s string, repl ...string) string {
	return strings.NewReplacer(repl...).Replace(s)
}

// mirroredSpec names every fixture under registry.test, a registry that
// does not exist, mirrored by the test registry: lockfiles and archives
// then hold the same names (and so the same bytes) whatever port the
// registry got.
func mirroredSpec(host string, groups string) string {
	return fmt.Sprintf(`registries."registry.test" = { mirrors = [%q] }

[registries.%q]
insecure = true
%s`, host, host, groups)
}

const jsonGroups = `
[[group]]
name = "apps"
archive = "apps.tar.zst"
platforms = ["linux/amd64", "linux/arm64"]
images = ["registry.test/fixtures/multi-oci:v1", "registry.test/fixtures/multi-docker:v1"]

[[group]]
name = "tags"
archive = "tags.tar"
images = ["registry.test/fixtures/single:v1", "registry.test/fixtures/twotags:a", "registry.test/fixtures/twotags:b"]
`

func TestLockJSON(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	push(t, reg, "", "")
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", mirroredSpec(reg.Host, jsonGroups))
	repl := []string{dir, "$DIR", reg.Host, "$REGISTRY"}

	out, stderr, code := runSplit(t, "", "--json", "lock", spec)
	if code != 0 {
		t.Fatalf("lock --json: exit %d\n%s%s", code, out, stderr)
	}
	v := oneJSON(t, out)
	if v["written"] != true || v["lockfile"] != filepath.Join(dir, "bundle.lock") {
		t.Errorf("lock --json: written=%v lockfile=%v", v["written"], v["lockfile"])
	}
	golden(t, "lock.json", normalise(out, repl...))

	// Nothing to resolve: unchanged, everything kept, an empty diff.
	out, stderr, code = runSplit(t, "", "--json", "lock", spec)
	if code != 0 {
		t.Fatalf("second lock --json: exit %d\n%s%s", code, out, stderr)
	}
	oneJSON(t, out)
	golden(t, "lock-unchanged.json", normalise(out, repl...))

	out, stderr, code = runSplit(t, "", "--json", "lock", "--check", spec)
	if code != 0 {
		t.Fatalf("lock --check --json: exit %d\n%s%s", code, out, stderr)
	}
	if v := oneJSON(t, out); v["up-to-date"] != true || len(v["drift"].([]any)) != 0 {
		t.Errorf("lock --check --json on a current lockfile: %s", out)
	}

	// Drift: the JSON document lists it, the exit code is still 3 and the
	// error still goes to stderr.
	writeFile(t, dir, "bundle.toml", mirroredSpec(reg.Host, strings.Replace(jsonGroups, `"registry.test/fixtures/twotags:b"`, `"registry.test/fixtures/multi-oci:v1"`, 1)))
	out, stderr, code = runSplit(t, "", "--json", "lock", "--check", spec)
	if code != exitLockOutdated || !strings.Contains(stderr, "differs from") {
		t.Fatalf("lock --check --json with drift: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	oneJSON(t, out)
	golden(t, "lock-check.json", normalise(out, repl...))

	// A missing lockfile: exists false, exit 3.
	out, _, code = runSplit(t, "", "--json", "lock", "--check", "--lockfile", filepath.Join(dir, "none.lock"), spec)
	if v := oneJSON(t, out); code != exitLockOutdated || v["exists"] != false || v["up-to-date"] != false {
		t.Errorf("lock --check --json without a lockfile: exit %d\n%s", code, out)
	}

	// A failed lock prints no JSON document, only the error on stderr.
	writeFile(t, dir, "bundle.toml", mirroredSpec(reg.Host, jsonGroups+"\n[[group]]\nname = \"bad\"\nimages = [\"registry.test/fixtures/absent:v1\"]\n"))
	out, stderr, code = runSplit(t, "", "--json", "lock", spec)
	if code != exitFailure || out != "" || !strings.Contains(stderr, "absent:v1") {
		t.Errorf("failed lock --json: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}

func TestBuildJSON(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	push(t, reg, "", "")
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", mirroredSpec(reg.Host, jsonGroups))
	t.Setenv("SOURCE_DATE_EPOCH", "")
	repl := []string{dir, "$DIR", reg.Host, "$REGISTRY"}

	out, stderr, code := runSplit(t, "", "--json", "build", "--cache-dir", t.TempDir(), spec)
	if code != 0 {
		t.Fatalf("build --json: exit %d\n%s%s", code, out, stderr)
	}
	var res buildJSON
	oneJSON(t, out)
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	// The document describes the files on disk, whatever the golden says.
	if !res.LockUpdated || len(res.Archives) != 2 || res.Sums != filepath.Join(dir, "dist", bundler.SumsFile) {
		t.Fatalf("build --json: %s", out)
	}
	sums := mustRead(t, res.Sums)
	for _, a := range res.Archives {
		st, err := os.Stat(a.Path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != a.Size || sha(t, a.Path) != a.SHA256 {
			t.Errorf("%s: JSON says %d bytes, sha256 %s; the file has %d, %s", a.Path, a.Size, a.SHA256, st.Size(), sha(t, a.Path))
		}
		if !strings.Contains(sums, a.SHA256+"  "+filepath.Base(a.Path)+"\n") {
			t.Errorf("%s lacks %s", res.Sums, a.Path)
		}
	}
	golden(t, "build.json", normalise(out, repl...))

	// --locked from the lockfile just written, one group: lock-updated is
	// false and only that archive is listed.
	out, stderr, code = runSplit(t, "", "--json", "build", "--locked", "--group", "tags", "--cache-dir", t.TempDir(), spec)
	if code != 0 {
		t.Fatalf("build --json --locked --group tags: exit %d\n%s%s", code, out, stderr)
	}
	oneJSON(t, out)
	golden(t, "build-locked-group.json", normalise(out, repl...))

	// A refused build prints no JSON document.
	writeFile(t, dir, "bundle.toml", mirroredSpec(reg.Host, jsonGroups+"\n[[group]]\nname = \"more\"\nimages = [\"registry.test/fixtures/single:v1\"]\n"))
	out, stderr, code = runSplit(t, "", "--json", "build", "--locked", "--cache-dir", t.TempDir(), spec)
	if code != exitLockOutdated || out != "" || !strings.Contains(stderr, "--locked") {
		t.Errorf("build --json --locked with a stale lockfile: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}
