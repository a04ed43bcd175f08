package serve

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSkopeoAndCrane pull from the server with real clients: skopeo
// inspect by tag gives the index digest, skopeo copy by the index digest of
// a platform the archive holds succeeds although the index lists an absent
// one, and crane digest agrees.
func TestSkopeoAndCrane(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo is not installed")
	}
	f, srv := start(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	repo := host + "/docker.io/library/busybox"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}

	out := run(skopeo, "inspect", "--raw", "--tls-verify=false", "docker://"+repo+":1.36")
	if out != string(f.indexRaw) {
		t.Errorf("skopeo inspect --raw: %s", out)
	}
	var info struct{ Digest string }
	out = run(skopeo, "--override-arch", "amd64", "--override-os", "linux", "inspect", "--tls-verify=false", "docker://"+repo+":1.36")
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Digest != f.index.Digest.String() {
		t.Errorf("skopeo inspect: digest %q, want %s (%v)", info.Digest, f.index.Digest, err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	run(skopeo, "--insecure-policy", "--override-arch", "arm64", "--override-os", "linux", "copy", "--src-tls-verify=false",
		"docker://"+repo+"@"+f.index.Digest.String(), "oci:"+dir)
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		t.Error(err)
	}

	crane := filepath.Join(os.Getenv("HOME"), ".cache/airgap-bench/crane-v0.22.1/crane")
	if _, err := os.Stat(crane); err != nil {
		t.Log("no crane: skipped")
		return
	}
	if got := strings.TrimSpace(run(crane, "digest", "--insecure", repo+":1.36")); got != f.index.Digest.String() {
		t.Errorf("crane digest: %s, want %s", got, f.index.Digest)
	}
}

// TestSkopeoPortHost: skopeo, which cannot put a port's ":" in a
// repository path, reaches an image of 127.0.0.1:5000 by its per-host path.
func TestSkopeoPortHost(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo is not installed")
	}
	dir := t.TempDir()
	f := writeFixtureNamed(t, dir, "127.0.0.1:5000/bench/multiarch:1.0")
	r, _, err := Open(context.Background(), []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer func() { srv.Close(); r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref := "docker://" + strings.TrimPrefix(srv.URL, "http://") + "/127.0.0.1_5000/bench/multiarch:1.0"
	out, err := exec.CommandContext(ctx, skopeo, "inspect", "--raw", "--tls-verify=false", ref).CombinedOutput()
	if err != nil || string(out) != string(f.indexRaw) {
		t.Fatalf("skopeo inspect --raw %s: %v\n%s", ref, err, out)
	}
}
