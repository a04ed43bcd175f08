package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// TestPushRegistriesOnlySpec (issue 15, defect 11): inside the gap there is
// no bundle spec, only the target's TLS and credentials. push --spec takes
// a file with nothing but a registries table, checked as in a spec, and
// validate accepts it; lock and build still need a group.
func TestPushRegistriesOnlySpec(t *testing.T) {
	testregistry.Isolate(t)
	const user, pass = "pusher", "s3cret-registries-only"
	reg := testregistry.Start(t, testregistry.Options{TLS: true, Users: map[string]string{user: pass}})
	t.Setenv("PUSH_TEST_PASSWORD", pass)
	dir := t.TempDir()
	target := writeFile(t, dir, "target.toml", fmt.Sprintf(`# The target registry, nothing else.
[registries.%q]
ca-file = %q
auth = { username = %q, password-env = "PUSH_TEST_PASSWORD" }
`, reg.Host, reg.CAFile, user))
	crane := filepath.Join("testdata", "crane.tar")

	out, stderr, code := runSplit(t, "", "push", "--spec", target, "--cache-dir", t.TempDir(), "--to", reg.Host+"/gap", crane)
	if code != 0 || strings.Contains(out+stderr, pass) {
		t.Fatalf("push --spec with only registries: exit %d\n%s%s", code, out, stderr)
	}
	if got := rawManifest(t, reg.Host+"/gap/crane/two:v1", "--cert-dir", reg.CertDir, "--creds="+user+":"+pass); len(got) == 0 {
		t.Error("gap/crane/two:v1 not pushed")
	}

	if out, code := run(t, "validate", target); code != 0 || !strings.Contains(out, "registries only") || !strings.Contains(out, "push --spec") {
		t.Errorf("validate of a registries file: exit %d\n%s", code, out)
	}

	// Checked as in a spec: a wrong key is reported at its line, before
	// anything is sent.
	typo := writeFile(t, dir, "typo.toml", fmt.Sprintf("[registries.%q]\nca-file = %q\ninsecur = true\n", reg.Host, reg.CAFile))
	for _, args := range [][]string{
		{"push", "--spec", typo, "--cache-dir", t.TempDir(), "--to", reg.Host, crane},
		{"validate", typo},
	} {
		if out, code := run(t, args...); code != exitUsage || !strings.Contains(out, typo+":3:") || !strings.Contains(out, `unknown key "insecur"`) {
			t.Errorf("%s of a registries file with a typo: exit %d\n%s", args[0], code, out)
		}
	}

	// lock and build need images: the message says what a registries file
	// is for.
	if out, code := run(t, "lock", target); code != exitUsage || !strings.Contains(out, "no [[group]]") || !strings.Contains(out, "push --spec") {
		t.Errorf("lock of a registries file: exit %d\n%s", code, out)
	}

	if out, code := run(t, "push", "--help"); code != 0 || !strings.Contains(out, "only [registries.") {
		t.Errorf("push --help does not say that --spec takes a registries file:\n%s", out)
	}
}
