package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// containerd 1.6 and 2.x pull from `airgap-bundle serve` through a
// hosts.toml mirror of docker.io, as a k3s or containerd node inside the gap
// would: images keep their public names and their registry digests, and
// the original index (with some platforms absent) is pulled by digest for a
// platform the archive holds.
//
// The .tar.zst archive is decompressed once into --unpack-dir and served
// from there, with the same result.
func TestServeAsContainerdMirror(t *testing.T) {
	b := buildBundle(t)
	for _, a := range []string{"multi.tar", "multi-zst.tar.zst"} {
		t.Run(a, func(t *testing.T) { serveAsMirror(t, b, a) })
	}
}

func serveAsMirror(t *testing.T, b built, archive string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := exec.Command(tool(t), "serve", b.archive(archive), "--listen", addr, "--unpack-dir", t.TempDir())
	out, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	if err != nil {
		t.Fatal(err)
	}
	srv.Stdout, srv.Stderr = out, out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(out.Name())
			t.Logf("serve log:\n%s", log)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	hosts := filepath.Join(t.TempDir(), "certs.d")
	os.MkdirAll(filepath.Join(hosts, "docker.io"), 0o755)
	os.WriteFile(filepath.Join(hosts, "docker.io", "hosts.toml"), []byte(fmt.Sprintf(`server = "https://registry-1.docker.io"
[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, addr)), 0o644)

	for _, c := range []Containerd{Containerd16, Containerd2} {
		t.Run(c.String(), func(t *testing.T) {
			ctrLocks[c].Lock()
			defer ctrLocks[c].Unlock()
			ctrClean(t, c)
			ctr(t, c, append(pullArgs(c), "--hosts-dir", hosts, "--platform", "linux/amd64", "docker.io/fixtures/multi-oci:v1")...)
			ctr(t, c, append(pullArgs(c), "--hosts-dir", hosts, "--platform", "linux/arm64", "docker.io/fixtures/multi-docker@"+b.std.DockerList.Digest)...)
			got := ctrImages(t, c)
			if got["docker.io/fixtures/multi-oci:v1"] != b.std.MultiOCI.Digest {
				t.Errorf("multi-oci pulled as %q, registry digest %s (all: %v)", got["docker.io/fixtures/multi-oci:v1"], b.std.MultiOCI.Digest, got)
			}
			if got["docker.io/fixtures/multi-docker@"+b.std.DockerList.Digest] != b.std.DockerList.Digest {
				t.Errorf("multi-docker by index digest: %v", got)
			}
			ctrClean(t, c)
		})
	}
}

// pullArgs is `images pull` for that ctr. ctr 2.x fetches the manifests
// of every platform an index lists ("metadata") unless told to skip them,
// and fails on the first one the archive does not hold; --skip-metadata
// pulls by platform only, as the CRI plugin (kubelet, k3s) does.
func pullArgs(c Containerd) []string {
	if c == Containerd2 {
		return []string{"images", "pull", "--skip-metadata"}
	}
	return []string{"images", "pull"}
}
