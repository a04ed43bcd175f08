package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

func buildSpec(h string) string {
	return fmt.Sprintf(`
[registries."%[1]s"]
insecure = true

[[group]]
name = "multi"
archive = "multi.tar"
platforms = ["linux/arm64", "linux/amd64"]
images = ["%[1]s/fixtures/multi-oci:v1", "%[1]s/fixtures/multi-docker:v1"]

[[group]]
name = "single"
archive = "single.tar.zst"
images = ["%[1]s/fixtures/single:v1", "%[1]s/fixtures/twotags:a", "%[1]s/fixtures/twotags:b"]

[[group]]
name = "filtered"
archive = "filtered.tar.gz"
platforms = ["linux/arm/v7"]
index = "filtered"
images = ["%[1]s/fixtures/multi-oci:v1"]
`, h)
}

func sha(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tarEntries lists an archive's entries (decompressing .tar.zst).
func tarEntries(t *testing.T, p string) map[string][]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".zst") {
		zr, err := zstd.NewReader(f, zstd.WithDecoderMaxWindow(32<<20))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir {
			t.Errorf("%s: entry %s has type %c", p, h.Name, h.Typeflag)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(h.ModTime.Truncate(0)) {
			t.Errorf("%s: entry %s: owner %d/%d %q/%q", p, h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
	return out
}

func TestBuildAgainstRealRegistry(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	std := push(t, reg, "", "")
	h := reg.Host
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", buildSpec(h))
	cacheA, cacheB := t.TempDir(), t.TempDir()
	dist := filepath.Join(dir, "dist")

	out, code := run(t, "build", "--cache-dir", cacheA, spec)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, out)
	}
	archives := []string{"multi.tar", "single.tar.zst", "filtered.tar.gz"}
	first := map[string]string{}
	for _, a := range archives {
		first[a] = sha(t, filepath.Join(dist, a))
		if !strings.Contains(out, first[a]) {
			t.Errorf("build output does not print the sha256 of %s:\n%s", a, out)
		}
	}

	// SHA256SUMS checks with sha256sum -c.
	cmd := exec.Command("sha256sum", "-c", "SHA256SUMS")
	cmd.Dir = dist
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, b)
	}

	// The archive's shape: registry digests kept, each blob once, names.
	e := tarEntries(t, filepath.Join(dist, "multi.tar"))
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			MediaType   string            `json:"mediaType"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(e["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range idx.Manifests {
		got[m.Annotations["io.containerd.image.name"]] = m.Digest
	}
	want := map[string]string{h + "/fixtures/multi-oci:v1": std.MultiOCI.Digest, h + "/fixtures/multi-docker:v1": std.DockerList.Digest}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("index.json names -> digests = %v, want %v", got, want)
	}
	for _, p := range []string{"linux/arm64", "linux/amd64"} {
		if _, ok := e["blobs/sha256/"+strings.TrimPrefix(std.MultiOCI.Platforms[p].Digest, "sha256:")]; !ok {
			t.Errorf("multi.tar lacks the %s manifest", p)
		}
	}
	if _, ok := e["blobs/sha256/"+strings.TrimPrefix(std.MultiOCI.Platforms["linux/arm/v7"].Digest, "sha256:")]; ok {
		t.Error("multi.tar holds the arm/v7 manifest the group did not ask for")
	}
	for name, b := range e {
		if strings.HasPrefix(name, "blobs/sha256/") && len(name) == len("blobs/sha256/")+64 {
			s := sha256.Sum256(b)
			if hex.EncodeToString(s[:]) != strings.TrimPrefix(name, "blobs/sha256/") {
				t.Errorf("%s does not hash to its name", name)
			}
		}
	}
	var dm []struct{ Config, RepoTags any }
	if err := json.Unmarshal(e["manifest.json"], &dm); err != nil || len(dm) != 2 {
		t.Errorf("manifest.json: %v %s", err, e["manifest.json"])
	}
	// Two tags of one image: stored once, named twice.
	s := tarEntries(t, filepath.Join(dist, "single.tar.zst"))
	if err := json.Unmarshal(s["manifest.json"], &dm); err != nil || len(dm) != 2 {
		t.Errorf("single manifest.json should have 2 entries (single, twotags a+b): %v %s", err, s["manifest.json"])
	}
	if !bytes.Contains(s["manifest.json"], []byte("fixtures/twotags:a")) || !bytes.Contains(s["manifest.json"], []byte("fixtures/twotags:b")) {
		t.Errorf("twotags RepoTags missing: %s", s["manifest.json"])
	}

	// The filtered index is recorded in the lockfile and is what the archive holds.
	l, err := lockfile.Read(filepath.Join(dir, "bundle.lock"))
	if err != nil {
		t.Fatal(err)
	}
	fe := l.Group("filtered").Image(h + "/fixtures/multi-oci:v1")
	if fe.FilteredDigest == "" || fe.FilteredDigest == fe.Digest || fe.Digest.String() != std.MultiOCI.Digest {
		t.Errorf("filtered entry: %+v", fe)
	}

	// Reproducible: a cold cache elsewhere, and then a warm one, give the same bytes.
	for _, c := range []string{cacheB, cacheB} {
		if out, code := run(t, "build", "--locked", "--cache-dir", c, spec); code != 0 {
			t.Fatalf("rebuild: exit %d\n%s", code, out)
		}
		for _, a := range archives {
			if got := sha(t, filepath.Join(dist, a)); got != first[a] {
				t.Errorf("%s: sha256 %s, first build %s", a, got, first[a])
			}
		}
	}

	// Warm cache: the registry is not needed at all.
	reg.Stop()
	if out, code := run(t, "build", "--locked", "--cache-dir", cacheB, spec); code != 0 {
		t.Fatalf("warm build with the registry down: exit %d\n%s", code, out)
	}

	// A failing build (registry down, cold cache) leaves the previous good
	// archives untouched and no partial files.
	out, code = run(t, "build", "--locked", "--cache-dir", t.TempDir(), spec)
	if code != exitFailure {
		t.Fatalf("build with registry down and cold cache: exit %d\n%s", code, out)
	}
	for _, a := range archives {
		if got := sha(t, filepath.Join(dist, a)); got != first[a] {
			t.Errorf("failed build changed %s", a)
		}
	}
	names, _ := os.ReadDir(dist)
	var list []string
	for _, n := range names {
		list = append(list, n.Name())
	}
	sort.Strings(list)
	if strings.Join(list, " ") != "SHA256SUMS filtered.tar.gz multi.tar single.tar.zst" {
		t.Errorf("output dir after a failed build: %v", list)
	}

	// --locked refuses a stale lockfile with exit 3.
	writeFile(t, dir, "bundle.toml", buildSpec(h)+"\n[[group]]\nname = \"more\"\nimages = [\""+h+"/fixtures/single:v1\"]\n")
	if out, code := run(t, "build", "--locked", "--cache-dir", cacheB, spec); code != exitLockOutdated {
		t.Fatalf("--locked with a stale lock: exit %d\n%s", code, out)
	}
}
