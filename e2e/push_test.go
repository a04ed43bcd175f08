package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.yaml.in/yaml/v3"

	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// push into a real docker-registry, then containerd 1.6 and 2.x pull the
// images under their public docker.io names through the hosts.toml mirror
// push wrote: by tag, and by the registry's original index digest. The
// registries.yaml push wrote for k3s says the same as the hosts.toml.
func TestPushThenPullThroughMirror(t *testing.T) {
	b := buildBundle(t)
	reg := testregistry.Start(t, testregistry.Options{})
	dir := t.TempDir()
	hosts, ry, mapping := filepath.Join(dir, "certs.d"), filepath.Join(dir, "registries.yaml"), filepath.Join(dir, "mapping.json")
	cmd := exec.Command(tool(t), "push", "--insecure", "--cache-dir", filepath.Join(dir, "cache"), "--to", reg.Host,
		"--partial-index", "filtered", "--hosts-dir", hosts, "--registries-yaml", ry, "--mapping", mapping,
		b.archive("multi.tar"), b.archive("single.tar"), b.archive("multi-zst.tar.zst"))
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_RUNTIME_DIR=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("airgap-bundle push: %v\n%s", err, out)
	}

	var m struct {
		Images []struct {
			Source       string
			Target       string
			TargetDigest string `json:"target-digest"`
			DigestKept   bool   `json:"digest-kept"`
		}
	}
	mb, err := os.ReadFile(mapping)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	pushed := map[string]string{} // source -> target digest
	for _, e := range m.Images {
		pushed[e.Source] = e.TargetDigest
	}
	if pushed["docker.io/fixtures/multi-docker:v1"] != b.std.DockerList.Digest || pushed["docker.io/fixtures/single:v1"] != b.std.SingleOCI.Digest {
		t.Fatalf("mapping: %s", mb)
	}
	filteredOCI := pushed["docker.io/fixtures/multi-oci:v1"]
	if filteredOCI == "" || filteredOCI == b.std.MultiOCI.Digest {
		t.Fatalf("multi-oci: %s", mb)
	}

	// crane's client (go-containerregistry) pulls what was pushed by the
	// registry's original digests: manifests byte for byte, every layer of
	// the bundled platform read and verified against its digest.
	for repo, dg := range map[string]string{"fixtures/multi-docker": b.std.DockerList.Digest, "fixtures/single": b.std.SingleOCI.Digest} {
		ref := reg.Host + "/" + repo + "@" + dg
		raw, err := crane.Manifest(ref, crane.Insecure)
		if err != nil {
			t.Fatalf("crane manifest %s: %v", ref, err)
		}
		if got := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); got != dg {
			t.Fatalf("crane manifest %s: digest %s", ref, got)
		}
		img, err := crane.Pull(ref, crane.Insecure, crane.WithPlatform(&v1.Platform{OS: "linux", Architecture: "amd64"}))
		if err != nil {
			t.Fatalf("crane pull %s: %v", ref, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err == nil {
				_, err = io.Copy(io.Discard, rc) // verified against its digest at EOF
				rc.Close()
			}
			if err != nil {
				t.Fatalf("crane pull %s: layer: %v", ref, err)
			}
		}
	}

	// The k3s registries.yaml: docker.io mirrored by the registry, as the
	// hosts.toml says.
	var k3s struct {
		Mirrors map[string]struct{ Endpoint []string }
	}
	yb, err := os.ReadFile(ry)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(yb, &k3s); err != nil {
		t.Fatal(err)
	}
	var ht struct {
		Server string
		Host   map[string]struct{ Capabilities []string }
	}
	hb, err := os.ReadFile(filepath.Join(hosts, "docker.io", "hosts.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := toml.Decode(string(hb), &ht); err != nil {
		t.Fatal(err)
	}
	ep := k3s.Mirrors["docker.io"].Endpoint
	if len(ep) != 1 || ep[0] != "http://"+reg.Host || len(ht.Host) != 1 || len(ht.Host[ep[0]].Capabilities) != 2 {
		t.Fatalf("registries.yaml and hosts.toml disagree:\n%s\n%s", yb, hb)
	}

	// Under a prefix and the source host: hosts.toml's override_path URL.
	prefixed := filepath.Join(dir, "prefixed.d")
	cmd = exec.Command(tool(t), "push", "--insecure", "--cache-dir", filepath.Join(dir, "cache"), "--to", reg.Host+"/mirror", "--to-per-host",
		"--hosts-dir", prefixed, b.archive("single.tar"))
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_RUNTIME_DIR=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("airgap-bundle push --to-per-host: %v\n%s", err, out)
	}

	for _, c := range []Containerd{Containerd16, Containerd2} {
		t.Run(c.String(), func(t *testing.T) {
			ctrLocks[c].Lock()
			defer ctrLocks[c].Unlock()
			ctrClean(t, c)
			byDigest := "docker.io/fixtures/multi-docker@" + b.std.DockerList.Digest
			ctr(t, c, append(pullArgs(c), "--hosts-dir", hosts, "--platform", "linux/arm64", byDigest)...)
			ctr(t, c, append(pullArgs(c), "--hosts-dir", hosts, "--platform", "linux/amd64", "docker.io/fixtures/single:v1")...)
			ctr(t, c, append(pullArgs(c), "--hosts-dir", hosts, "--platform", "linux/amd64", "docker.io/fixtures/multi-oci:v1")...)
			got := ctrImages(t, c)
			if got[byDigest] != b.std.DockerList.Digest {
				t.Errorf("multi-docker by its original index digest: %v", got)
			}
			if got["docker.io/fixtures/single:v1"] != b.std.SingleOCI.Digest {
				t.Errorf("single:v1 pulled as %q, registry digest %s", got["docker.io/fixtures/single:v1"], b.std.SingleOCI.Digest)
			}
			if got["docker.io/fixtures/multi-oci:v1"] != filteredOCI {
				t.Errorf("multi-oci:v1 pulled as %q, the mapping says %s", got["docker.io/fixtures/multi-oci:v1"], filteredOCI)
			}
			ctrClean(t, c)
			// Only the prefixed copy can answer: the hosts.toml points there.
			ctr(t, c, append(pullArgs(c), "--hosts-dir", prefixed, "--platform", "linux/amd64", "docker.io/fixtures/twotags:a")...)
			if got := ctrImages(t, c); got["docker.io/fixtures/twotags:a"] != b.std.TwoTags.Digest {
				t.Errorf("twotags:a through mirror/docker.io/: %v", got)
			}
			ctrClean(t, c)
		})
	}
}
