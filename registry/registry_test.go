package registry

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/sysregistriesv2"

	"github.com/airgap-bundle/airgap-bundle/config"
)

func loadSpec(t *testing.T, body string) *config.Spec {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "bundle.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The generated registries.conf is read back by containers/image itself:
// mirrors in order, pull-from-mirror, insecure inherited from a mirror
// host's own entry.
func TestEnvIsHermetic(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("REG_PW", "pw-from-env")
	s := loadSpec(t, `
registries."docker.io" = { mirrors = ["mirror.example.com/hub", { location = "m2.example.com:5000", pull-from-mirror = "digest-only" }] }
[registries."mirror.example.com"]
insecure = true
ca-file = "ca.pem"
auth = { username = "ci", password-env = "REG_PW" }

[[group]]
name = "g"
images = ["busybox"]
`)
	env, err := New(s, Options{UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(env.Sys.AuthFilePath)
	t.Cleanup(func() { env.Close() })

	reg, err := sysregistriesv2.FindRegistry(env.Sys, "docker.io/library/busybox:latest")
	if err != nil || reg == nil {
		t.Fatalf("FindRegistry: %v %v", reg, err)
	}
	named, _ := reference.ParseNormalizedNamed("docker.io/library/busybox:latest")
	srcs, err := reg.PullSourcesFromReference(named)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range srcs {
		got = append(got, s.Endpoint.Location)
		if s.Endpoint.Location == "mirror.example.com/hub" && !s.Endpoint.Insecure {
			t.Error("mirror did not inherit insecure from its host's entry")
		}
	}
	// The digest-only mirror is skipped for a tag pull.
	if len(got) != 2 || got[0] != "mirror.example.com/hub" || got[1] != "docker.io" {
		t.Errorf("pull sources for a tag = %v", got)
	}
	if _, err := os.Stat(filepath.Join(env.Sys.DockerPerHostCertDirPath, "mirror.example.com", "ca.crt")); err != nil {
		t.Errorf("CA not placed: %v", err)
	}

	st, err := os.Stat(env.Sys.AuthFilePath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("auth file: %v %v", st, err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("private dir mode %v", st.Mode().Perm())
	}
	var auth struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	b, _ := os.ReadFile(env.Sys.AuthFilePath)
	if err := json.Unmarshal(b, &auth); err != nil || auth.Auths["mirror.example.com"]["auth"] == "" {
		t.Errorf("auth file lacks the env credentials: %v", err)
	}
	env.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Close left %s behind", dir)
	}
}

// A bare-host key applies to that host only: other ports of the host the
// run contacts get explicit default entries (TLS verified), and a port the
// run was not set up for is refused rather than given the key's settings.
func TestBareHostKeyIsExact(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", "")
	s := loadSpec(t, `
registries."127.0.0.1" = { insecure = true, mirrors = ["mirror.example.com"] }

[[group]]
name = "g"
images = ["127.0.0.1:6102/app:v1", "127.0.0.1/other:v1"]
`)
	env, err := New(s, Options{Hosts: []string{"127.0.0.1:7000"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	for host, insecure := range map[string]bool{"127.0.0.1": true, "127.0.0.1:6102": false, "127.0.0.1:7000": false} {
		reg, err := sysregistriesv2.FindRegistry(env.Sys, host+"/app:v1")
		if err != nil || reg == nil {
			t.Fatalf("FindRegistry(%s): %v %v", host, reg, err)
		}
		if reg.Insecure != insecure || (host != "127.0.0.1" && len(reg.Mirrors) != 0) {
			t.Errorf("%s: insecure = %v, mirrors %v; want insecure = %v and no mirrors", host, reg.Insecure, reg.Mirrors, insecure)
		}
	}
	for host, ok := range map[string]bool{"127.0.0.1": true, "127.0.0.1:6102": true, "127.0.0.1:7000": true, "127.0.0.1:9999": false, "example.com:9999": true} {
		if err := env.Check(host); (err == nil) != ok {
			t.Errorf("Check(%s) = %v, want ok = %v", host, err, ok)
		}
	}
}
