package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// run executes the CLI in-process and returns stdout and the exit code; the
// error text (what main prints to stderr) is appended to out.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	c := newRootCmd()
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&out)
	err := c.ExecuteContext(context.Background())
	if err != nil {
		fmt.Fprintln(&out, "airgap-bundle:", err)
	}
	return out.String(), exitCode(err)
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func push(t *testing.T, r *testregistry.Registry, user, pass string) *fixtures.Standard {
	t.Helper()
	std, err := fixtures.PushStandard(context.Background(), r.Host, r.Transport(), user, pass)
	if err != nil {
		t.Fatalf("pushing fixtures: %v", err)
	}
	return std
}

func TestLockPlainRegistry(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	std := push(t, reg, "", "")
	dir := t.TempDir()
	h := reg.Host
	spec := writeFile(t, dir, "bundle.toml", fmt.Sprintf(`
[registries."%[1]s"]
insecure = true

[[group]]
name = "multi"
platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
images = ["%[1]s/fixtures/multi-oci:v1"]

[[group]]
name = "single"
images = ["%[1]s/fixtures/single:v1"]

[[group]]
name = "docker"
platforms = ["all"]
images = ["%[1]s/fixtures/multi-docker:v1", "%[1]s/fixtures/twotags:a", "%[1]s/fixtures/twotags:b"]
`, h))
	out, code := run(t, "lock", spec)
	if code != 0 {
		t.Fatalf("lock: exit %d\n%s", code, out)
	}
	l, err := lockfile.Read(filepath.Join(dir, "bundle.lock"))
	if err != nil {
		t.Fatal(err)
	}

	check := func(group, ref string, p fixtures.Pushed, platforms ...string) {
		t.Helper()
		e := l.Group(group).Image(ref)
		if e == nil {
			t.Fatalf("no lock entry for %s in %s", ref, group)
		}
		if e.Digest.String() != p.Digest || e.MediaType != p.MediaType {
			t.Errorf("%s: digest %s %s, registry serves %s %s", ref, e.Digest, e.MediaType, p.Digest, p.MediaType)
		}
		if want, _ := p.TotalSize(platforms...); e.Size != want {
			t.Errorf("%s: size %d, want %d", ref, e.Size, want)
		}
		if len(e.Platforms) != len(platforms) {
			t.Fatalf("%s: %d platforms, want %v", ref, len(e.Platforms), platforms)
		}
		for i, name := range platforms {
			got, want := e.Platforms[i], p.Platforms[name]
			if got.Platform != name || got.Digest.String() != want.Digest || got.Config.String() != want.Config || got.MediaType != want.MediaType || got.Size != want.Size {
				t.Errorf("%s %s: lock %+v, registry %+v", ref, name, got, want)
			}
		}
	}
	check("multi", h+"/fixtures/multi-oci:v1", std.MultiOCI, "linux/amd64", "linux/arm64", "linux/arm/v7")
	check("single", h+"/fixtures/single:v1", std.SingleOCI, "linux/amd64")
	// "all" takes the index's platforms in index order, never the attestation.
	check("docker", h+"/fixtures/multi-docker:v1", std.DockerList, "linux/amd64", "linux/arm64")
	check("docker", h+"/fixtures/twotags:a", std.TwoTags, "linux/amd64")
	check("docker", h+"/fixtures/twotags:b", std.TwoTags, "linux/amd64")

	// Second run: nothing to resolve, so no registry is needed at all.
	before, _ := os.ReadFile(filepath.Join(dir, "bundle.lock"))
	reg.Stop()
	out, code = run(t, "lock", spec)
	after, _ := os.ReadFile(filepath.Join(dir, "bundle.lock"))
	if code != 0 || !bytes.Equal(before, after) || !strings.Contains(out, "unchanged") {
		t.Fatalf("second lock with the registry down: exit %d, identical=%v\n%s", code, bytes.Equal(before, after), out)
	}
	if out, code := run(t, "lock", "--check", spec); code != 0 {
		t.Fatalf("--check on a current lock: exit %d\n%s", code, out)
	}
	// Drift: a new image is reported, exit 3, the lockfile untouched.
	writeFile(t, dir, "bundle.toml", mustRead(t, spec)+
		fmt.Sprintf("\n[[group]]\nname = \"new\"\nimages = [\"%s/fixtures/single:v1\"]\n", h))
	out, code = run(t, "lock", "--check", spec)
	if code != exitLockOutdated || !strings.Contains(out, `group "new"`) {
		t.Fatalf("--check after a change: exit %d\n%s", code, out)
	}
	if !bytes.Equal(before, []byte(mustRead(t, filepath.Join(dir, "bundle.lock")))) {
		t.Fatal("--check changed the lockfile")
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLockTLSAndAuth(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{TLS: true, Users: map[string]string{"ci": "s3cret-pw"}})
	std := push(t, reg, "ci", "s3cret-pw")
	h := reg.Host
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.pem", mustRead(t, reg.CAFile))
	authFile := writeFile(t, dir, "auth.json", fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, h, base64.StdEncoding.EncodeToString([]byte("ci:s3cret-pw"))))
	badAuthFile := writeFile(t, dir, "bad.json", fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, h, base64.StdEncoding.EncodeToString([]byte("ci:wrong"))))

	specFor := func(auth string, withCA bool) string {
		caLine := ""
		if withCA {
			caLine = fmt.Sprintf("ca-file = %q", filepath.Base(ca))
		}
		return writeFile(t, dir, "bundle.toml", fmt.Sprintf(`
[registries.%q]
%s
%s

[[group]]
name = "g"
images = ["%s/fixtures/single:v1"]
`, h, caLine, auth, h))
	}
	cases := []struct {
		name   string
		auth   string
		withCA bool
		env    map[string]string
		code   int
		want   string
	}{
		{"env credentials", `auth = { username = "ci", password-env = "REG_PASSWORD" }`, true, map[string]string{"REG_PASSWORD": "s3cret-pw"}, 0, "1 resolved"},
		{"env username and password", `auth = { username-env = "REG_USER", password-env = "REG_PASSWORD" }`, true, map[string]string{"REG_USER": "ci", "REG_PASSWORD": "s3cret-pw"}, 0, "1 resolved"},
		{"auth file", fmt.Sprintf("auth = { file = %q }", authFile), true, nil, 0, "1 resolved"},
		{"standard location", "", true, map[string]string{"REGISTRY_AUTH_FILE": authFile}, 0, "1 resolved"},
		{"wrong password", fmt.Sprintf("auth = { file = %q }", badAuthFile), true, nil, exitFailure, "hint: registry " + h + " refused the credentials"},
		{"no credentials", "", true, nil, exitFailure, "hint: registry " + h + " refused the credentials"},
		{"unset env", `auth = { username = "ci", password-env = "REG_PASSWORD_UNSET" }`, true, nil, exitFailure, "REG_PASSWORD_UNSET"},
		{"TLS verification is on by default", `auth = { username = "ci", password-env = "REG_PASSWORD" }`, false, map[string]string{"REG_PASSWORD": "s3cret-pw"}, exitFailure, "certificate signed by unknown authority\n    hint: give the registry's CA with registries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			os.Remove(filepath.Join(dir, "bundle.lock"))
			spec := specFor(c.auth, c.withCA)
			out, code := run(t, "lock", spec)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", code, c.code, c.want, out)
			}
			if strings.Contains(out, "s3cret-pw") || strings.Contains(out, "wrong") && c.name != "wrong password" {
				t.Fatalf("output shows a password:\n%s", out)
			}
			if c.code == 0 {
				l, err := lockfile.Read(filepath.Join(dir, "bundle.lock"))
				if err != nil {
					t.Fatal(err)
				}
				if got := l.Groups[0].Images[0].Digest; got.String() != std.SingleOCI.Digest {
					t.Errorf("digest %s, registry serves %s", got, std.SingleOCI.Digest)
				}
				if strings.Contains(mustRead(t, filepath.Join(dir, "bundle.lock")), "s3cret") {
					t.Error("lockfile holds a secret")
				}
			} else if _, err := os.Stat(filepath.Join(dir, "bundle.lock")); err == nil {
				t.Error("a failed lock wrote a lockfile")
			}
		})
	}
}

// A mirror answers for a registry that is down; the lock names the
// canonical image. This is also the k3s set-up: docker.io names served by a
// private registry, with docker.io itself unreachable from here.
func TestLockThroughMirror(t *testing.T) {
	testregistry.Isolate(t)
	mirror := testregistry.Start(t, testregistry.Options{})
	std := push(t, mirror, "", "")
	down := testregistry.Start(t, testregistry.Options{})
	down.Stop()
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", fmt.Sprintf(`
registries."%[1]s" = { mirrors = ["%[2]s"] }
registries."docker.io" = { mirrors = ["%[2]s"] }
[registries."%[2]s"]
insecure = true

[[group]]
name = "g"
platforms = ["linux/arm64"]
images = ["%[1]s/fixtures/multi-oci:v1", "fixtures/multi-docker:v1"]
`, down.Host, mirror.Host))
	out, code := run(t, "lock", spec)
	if code != 0 {
		t.Fatalf("lock through mirror: exit %d\n%s", code, out)
	}
	lock := mustRead(t, filepath.Join(dir, "bundle.lock"))
	l, _ := lockfile.Parse([]byte(lock), "bundle.lock")
	if e := l.Group("g").Image(down.Host + "/fixtures/multi-oci:v1"); e == nil || e.Digest.String() != std.MultiOCI.Digest || e.Platforms[0].Digest.String() != std.MultiOCI.Platforms["linux/arm64"].Digest {
		t.Errorf("mirrored entry wrong: %+v\n%s", e, lock)
	}
	if e := l.Group("g").Image("docker.io/fixtures/multi-docker:v1"); e == nil || e.Digest.String() != std.DockerList.Digest {
		t.Errorf("docker.io entry wrong: %+v\n%s", e, lock)
	}
	if strings.Contains(lock, mirror.Host) {
		t.Errorf("lockfile names the mirror:\n%s", lock)
	}
}

// Every failure comes back in one run, each at its line.
func TestLockReportsAllProblems(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	push(t, reg, "", "")
	h := reg.Host
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", fmt.Sprintf(`
[registries."%[1]s"]
insecure = true

[[group]]
name = "g"
platforms = ["linux/amd64", "linux/s390x"]
images = [
  "%[1]s/fixtures/multi-oci:v1",
  "%[1]s/fixtures/single:nope",
  "%[1]s/fixtures/absent:v1",
]
`, h))
	out, code := run(t, "lock", spec)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d\n%s", code, exitFailure, out)
	}
	for _, want := range []string{
		"3 images failed",
		spec + `:9: group "g": image "` + h + `/fixtures/multi-oci:v1": platform not available: linux/s390x (the image has linux/amd64, linux/arm64, linux/arm/v7)`,
		spec + `:10: group "g": image "` + h + `/fixtures/single:nope": `,
		spec + `:11: group "g": image "` + h + `/fixtures/absent:v1": `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bundle.lock")); err == nil {
		t.Error("a failed lock wrote a lockfile")
	}
}

// References pinned by digest (with or without a tag) resolve by digest; a
// digest the registry does not have is an error at its line.
func TestLockDigestPins(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	std := push(t, reg, "", "")
	h := reg.Host
	dir := t.TempDir()
	missing := "sha256:" + strings.Repeat("0", 64)
	spec := writeFile(t, dir, "bundle.toml", fmt.Sprintf(`
[registries."%[1]s"]
insecure = true

[[group]]
name = "g"
platforms = ["linux/arm64"]
images = [
  "%[1]s/fixtures/multi-oci:some-other-tag@%[2]s",
  "%[1]s/fixtures/multi-docker@%[3]s",
]
`, h, std.MultiOCI.Digest, std.DockerList.Digest))
	out, code := run(t, "lock", spec)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	l, _ := lockfile.Read(filepath.Join(dir, "bundle.lock"))
	g := l.Group("g")
	if e := g.Image(h + "/fixtures/multi-oci:some-other-tag@" + std.MultiOCI.Digest); e == nil || e.Digest.String() != std.MultiOCI.Digest || e.Platforms[0].Digest.String() != std.MultiOCI.Platforms["linux/arm64"].Digest {
		t.Errorf("tag+digest entry: %+v", e)
	}
	if e := g.Image(h + "/fixtures/multi-docker@" + std.DockerList.Digest); e == nil || e.Digest.String() != std.DockerList.Digest {
		t.Errorf("digest-only entry: %+v", e)
	}

	writeFile(t, dir, "bundle.toml", strings.Replace(mustRead(t, spec), std.DockerList.Digest, missing, 1))
	out, code = run(t, "lock", spec)
	if code != exitFailure || !strings.Contains(out, spec+`:10: group "g": image "`+h+`/fixtures/multi-docker@`+missing+`"`) {
		t.Fatalf("missing digest: exit %d\n%s", code, out)
	}
}
