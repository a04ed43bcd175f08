package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// verifyGroups names every fixture under registry.test, mirrored by the test
// registry, so archives have the same bytes whatever port it got.
const verifyGroups = `
[[group]]
name = "multi"
archive = "multi.tar"
platforms = ["linux/arm64", "linux/amd64"]
images = ["registry.test/fixtures/multi-oci:v1", "registry.test/fixtures/multi-docker:v1"]

[[group]]
name = "tags"
archive = "tags.tar.zst"
images = ["registry.test/fixtures/single:v1", "registry.test/fixtures/twotags:a", "registry.test/fixtures/twotags:b"]

[[group]]
name = "filtered"
archive = "filtered.tar.gz"
platforms = ["linux/arm/v7"]
index = "filtered"
images = ["registry.test/fixtures/multi-oci:v1"]
`

func verifySpec(host string) string {
	return fmt.Sprintf(`registries."registry.test" = { mirrors = [%q] }

[registries.%q]
insecure = true
%s`, host, host, verifyGroups)
}

// builtBundle builds verifyGroups from a fresh registry: the spec path, its
// output directory and the pushed fixtures.
func builtBundle(t *testing.T) (spec, dist string, std *fixtures.Standard) {
	t.Helper()
	testregistry.Isolate(t)
	t.Setenv("SOURCE_DATE_EPOCH", "")
	reg := testregistry.Start(t, testregistry.Options{})
	std = push(t, reg, "", "")
	dir := t.TempDir()
	spec = writeFile(t, dir, "bundle.toml", verifySpec(reg.Host))
	if out, code := run(t, "build", "--cache-dir", t.TempDir(), spec); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, out)
	}
	return spec, filepath.Join(dir, "dist"), std
}

// copyDist copies an output directory, so each test changes its own.
func copyDist(t *testing.T, dist string) string {
	t.Helper()
	out := t.TempDir()
	ents, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dist, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

type tarFile struct {
	hdr  *tar.Header
	body []byte
}

// readTarFile reads every entry of an archive (.tar or .tar.zst).
func readTarFile(t *testing.T, p string) []tarFile {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".zst") {
		zr, err := zstd.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	var out []tarFile
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarFile{h, b})
	}
}

// rewriteTar rewrites the uncompressed archive p with archive/tar: change
// may edit each entry (false drops it), extra entries are appended.
func rewriteTar(t *testing.T, p string, change func(f *tarFile) bool, extra ...tarFile) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range append(readTarFile(t, p), extra...) {
		if change != nil && !change(&f) {
			continue
		}
		f.hdr.Size = int64(len(f.body))
		if f.hdr.Typeflag == tar.TypeDir {
			f.hdr.Size = 0
		}
		if err := tw.WriteHeader(f.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// resum puts the current checksum of dir/name into dir/SHA256SUMS, so that
// a test sees only the change it made.
func resum(t *testing.T, dir, name string) {
	t.Helper()
	p := filepath.Join(dir, "SHA256SUMS")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if strings.HasSuffix(l, "  "+name+"\n") {
			l = fileSHA(t, filepath.Join(dir, name)) + "  " + name + "\n"
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func blobEntry(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }

// manifestLayers reads the layer digests of a manifest blob.
func manifestLayers(t *testing.T, blob []byte) []string {
	t.Helper()
	var m struct {
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(blob, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func TestVerifyBuiltBundle(t *testing.T) {
	spec, dist, _ := builtBundle(t)
	out, code := run(t, "verify", spec)
	if code != 0 {
		t.Fatalf("verify of a fresh build: exit %d\n%s", code, out)
	}
	for _, a := range []string{"multi.tar", "tags.tar.zst", "filtered.tar.gz"} {
		want := fmt.Sprintf("%s: OK (", a)
		if !strings.Contains(out, want) || !strings.Contains(out, fileSHA(t, filepath.Join(dist, a))) {
			t.Errorf("verify output lacks %q and the sha256 of %s:\n%s", want, a, out)
		}
	}
	if !strings.Contains(out, "multi.tar: OK (2 images, 18 blobs, ") || !strings.Contains(out, "tags.tar.zst: OK (2 images, 7 blobs, ") {
		t.Errorf("verify counts:\n%s", out)
	}
	// --output and --group, as build takes them.
	moved := copyDist(t, dist)
	out, code = run(t, "verify", "--output", moved, "--group", "tags", "--group", "filtered", spec)
	if code != 0 || strings.Count(out, ": OK (") != 2 || strings.Contains(out, "multi.tar") {
		t.Errorf("verify --output --group tags --group filtered: exit %d\n%s", code, out)
	}
	// Archives on their own.
	out, code = run(t, "verify", filepath.Join(dist, "multi.tar"), filepath.Join(dist, "tags.tar.zst"), filepath.Join(dist, "filtered.tar.gz"))
	if code != 0 || strings.Count(out, ": OK (") != 3 {
		t.Errorf("verify ARCHIVE...: exit %d\n%s", code, out)
	}
	// --json: one document.
	stdout, stderr, code := runSplit(t, "", "--json", "verify", spec)
	if code != 0 || stderr != "" {
		t.Fatalf("--json verify: exit %d\n%s%s", code, stdout, stderr)
	}
	doc := oneJSON(t, stdout)
	if doc["ok"] != true || doc["problems"] != float64(0) || len(doc["archives"].([]any)) != 3 {
		t.Errorf("--json verify:\n%s", stdout)
	}
	// A spec changed since the build: the lockfile cannot describe it (exit 3).
	writeFile(t, filepath.Dir(spec), "bundle.toml", strings.Replace(mustRead(t, spec), `"registry.test/fixtures/twotags:b"`, `"registry.test/fixtures/twotags:c"`, 1))
	if out, code := run(t, "verify", spec); code != exitLockOutdated {
		t.Errorf("verify with a stale lockfile: exit %d\n%s", code, out)
	}
	// Usage errors.
	for _, args := range [][]string{{"verify"}, {"verify", spec, spec}, {"verify", "--group", "x", filepath.Join(dist, "multi.tar")}} {
		if out, code := run(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, out)
		}
	}
}

// TestVerifyCatches breaks a good bundle one way at a time (rewriting the
// tar with archive/tar) and expects exactly the line that names the break,
// and exit 1.
func TestVerifyCatches(t *testing.T) {
	spec, dist, std := builtBundle(t)
	armManifest := std.MultiOCI.Platforms["linux/arm64"].Digest
	var armLayers []string
	for _, f := range readTarFile(t, filepath.Join(dist, "multi.tar")) {
		if f.hdr.Name == blobEntry(armManifest) {
			armLayers = manifestLayers(t, f.body)
		}
	}
	if len(armLayers) != 2 {
		t.Fatalf("arm64 layers: %v", armLayers)
	}
	layer := armLayers[1]

	// verify SPEC --group multi --output DIR, after change; want is the
	// whole output.
	check := func(t *testing.T, dir string, want ...string) {
		t.Helper()
		out, code := run(t, "verify", "--group", "multi", "--output", dir, spec)
		wantOut := strings.Join(want, "\n") + "\n" + fmt.Sprintf("airgap-bundle: verification failed: %d problem", len(want))
		if len(want) > 1 {
			wantOut += "s"
		}
		wantOut += " in 1 of 1 archive\n"
		if code != exitFailure || out != wantOut {
			t.Errorf("verify: exit %d\n%s\nwant exit %d\n%s", code, out, exitFailure, wantOut)
		}
	}
	// verify ARCHIVE: internal consistency only.
	checkArchive := func(t *testing.T, dir string, want ...string) {
		t.Helper()
		out, code := run(t, "verify", filepath.Join(dir, "multi.tar"))
		if len(want) == 0 {
			if code != 0 || !strings.HasPrefix(out, "multi.tar: OK (") {
				t.Errorf("verify ARCHIVE: exit %d\n%s", code, out)
			}
			return
		}
		if code != exitFailure || !strings.HasPrefix(out, strings.Join(want, "\n")+"\n") {
			t.Errorf("verify ARCHIVE: exit %d\n%s\nwant\n%s", code, out, strings.Join(want, "\n"))
		}
	}

	t.Run("flipped byte in a layer", func(t *testing.T) {
		dir := copyDist(t, dist)
		var flipped []byte
		rewriteTar(t, filepath.Join(dir, "multi.tar"), func(f *tarFile) bool {
			if f.hdr.Name == blobEntry(layer) {
				f.body = slices.Clone(f.body)
				f.body[len(f.body)/2] ^= 0x01
				flipped = f.body
			}
			return true
		})
		resum(t, dir, "multi.tar")
		line := fmt.Sprintf("multi.tar: blob %s: content hashes to %s", layer, digest.FromBytes(flipped))
		check(t, dir, line)
		checkArchive(t, dir, line)
		// inspect still lists the archive, and warns.
		p := filepath.Join(dir, "multi.tar")
		out, stderr, code := runSplit(t, "", "inspect", p)
		if code != 0 || !strings.Contains(out, "registry.test/fixtures/multi-oci:v1") || stderr != fmt.Sprintf("warning: %s: 1 consistency problem; \"airgap-bundle verify %s\" lists them\n", p, p) {
			t.Errorf("inspect of a corrupt archive: exit %d\n%s%s", code, out, stderr)
		}
	})

	t.Run("missing blob", func(t *testing.T) {
		dir := copyDist(t, dist)
		rewriteTar(t, filepath.Join(dir, "multi.tar"), func(f *tarFile) bool { return f.hdr.Name != blobEntry(layer) })
		resum(t, dir, "multi.tar")
		line := fmt.Sprintf("multi.tar: blob %s (layer 1 of registry.test/fixtures/multi-oci:v1 linux/arm64) is missing", layer)
		check(t, dir, line)
		checkArchive(t, dir, line)
	})

	t.Run("extra image", func(t *testing.T) {
		// twotags:a, with its blobs from tags.tar.zst, added to multi.tar
		// consistently: index.json, manifest.json and blobs.
		dir := copyDist(t, dist)
		two := std.TwoTags.Platforms["linux/amd64"]
		var extra []tarFile
		var layers []string
		for _, f := range readTarFile(t, filepath.Join(dist, "tags.tar.zst")) {
			if f.hdr.Name == blobEntry(std.TwoTags.Digest) {
				layers = manifestLayers(t, f.body)
			}
			extra = append(extra, f)
		}
		want := map[string]bool{blobEntry(std.TwoTags.Digest): true, blobEntry(two.Config): true}
		for _, l := range layers {
			want[blobEntry(l)] = true
		}
		extra = slices.DeleteFunc(extra, func(f tarFile) bool { return !want[f.hdr.Name] })
		if len(extra) != 3 {
			t.Fatalf("twotags blobs: %d entries", len(extra))
		}
		rewriteTar(t, filepath.Join(dir, "multi.tar"), func(f *tarFile) bool {
			switch f.hdr.Name {
			case "index.json":
				var idx map[string]any
				json.Unmarshal(f.body, &idx)
				idx["manifests"] = append(idx["manifests"].([]any), map[string]any{
					"mediaType": std.TwoTags.MediaType, "digest": std.TwoTags.Digest, "size": std.TwoTags.Size,
					"annotations": map[string]string{"io.containerd.image.name": "registry.test/fixtures/twotags:a", "org.opencontainers.image.ref.name": "a"},
				})
				f.body, _ = json.Marshal(idx)
			case "manifest.json":
				var items []any
				json.Unmarshal(f.body, &items)
				ls := []string{}
				for _, l := range layers {
					ls = append(ls, blobEntry(l))
				}
				items = append(items, map[string]any{"Config": blobEntry(two.Config), "RepoTags": []string{"registry.test/fixtures/twotags:a"}, "Layers": ls})
				f.body, _ = json.Marshal(items)
			}
			return true
		}, extra...)
		resum(t, dir, "multi.tar")
		check(t, dir, fmt.Sprintf("multi.tar: image registry.test/fixtures/twotags:a (%s) is not in the lockfile", std.TwoTags.Digest))
		checkArchive(t, dir) // consistent on its own
	})

	t.Run("manifest.json disagrees with index.json", func(t *testing.T) {
		dir := copyDist(t, dist)
		rewriteTar(t, filepath.Join(dir, "multi.tar"), func(f *tarFile) bool {
			if f.hdr.Name == "manifest.json" {
				var items []map[string]any
				json.Unmarshal(f.body, &items)
				for _, it := range items {
					if slices.Contains(it["RepoTags"].([]any), any("registry.test/fixtures/multi-oci:v1")) {
						ls := it["Layers"].([]any)
						it["Layers"] = ls[:len(ls)-1]
					}
				}
				f.body, _ = json.Marshal(items)
			}
			return true
		})
		resum(t, dir, "multi.tar")
		line := fmt.Sprintf("multi.tar: manifest.json: registry.test/fixtures/multi-oci:v1: config and layers are not those of any platform of index.json's %s", std.MultiOCI.Digest)
		check(t, dir, line)
		checkArchive(t, dir, line)
	})

	t.Run("stale SHA256SUMS", func(t *testing.T) {
		// The same content with another mtime: a sound archive that no
		// longer matches its checksum line.
		dir := copyDist(t, dist)
		old := fileSHA(t, filepath.Join(dir, "multi.tar"))
		rewriteTar(t, filepath.Join(dir, "multi.tar"), func(f *tarFile) bool {
			if f.hdr.Name == "oci-layout" {
				f.hdr.ModTime = f.hdr.ModTime.Add(3600e9)
			}
			return true
		})
		check(t, dir, fmt.Sprintf("multi.tar: SHA256SUMS says %s, the file's sha256 is %s", old, fileSHA(t, filepath.Join(dir, "multi.tar"))))
		checkArchive(t, dir)

		// And no line at all.
		writeFile(t, dir, "SHA256SUMS", "")
		check(t, dir, "multi.tar: SHA256SUMS has no line for it")
	})
}

// inspectBoth runs inspect ARCHIVE with and without --json and compares
// both with golden files (path replaced by shown in the output).
func inspectBoth(t *testing.T, path, shown, goldenName string, json bool, repl ...string) {
	t.Helper()
	r := append([]string{path, shown}, repl...)
	out, stderr, code := runSplit(t, "", "inspect", path)
	if code != 0 || stderr != "" {
		t.Fatalf("inspect %s: exit %d\n%s%s", path, code, out, stderr)
	}
	golden(t, goldenName+".txt", normalise(out, r...))
	// Every shape is consistent on its own: no false alarms from verify.
	if out, code := run(t, "verify", path); code != 0 || !strings.HasPrefix(out, filepath.Base(path)+": OK (") {
		t.Errorf("verify %s: exit %d\n%s", path, code, out)
	}
	if !json {
		return
	}
	out, stderr, code = runSplit(t, "", "--json", "inspect", path)
	if code != 0 || stderr != "" {
		t.Fatalf("--json inspect %s: exit %d\n%s%s", path, code, out, stderr)
	}
	oneJSON(t, out)
	golden(t, goldenName+".json", normalise(out, r...))
}

// TestInspectGolden inspects archives of every shape: built by this tool
// from a real registry, saved by a real docker (a committed tarball),
// copied by skopeo (docker-archive and oci-archive) and written by
// go-containerregistry (crane's format).
func TestInspectGolden(t *testing.T) {
	t.Run("docker save", func(t *testing.T) {
		// Made by TestMakeDockerSaveFixture with Debian's dockerd 20.10.
		inspectBoth(t, filepath.Join("testdata", "docker-save.tar"), "testdata/docker-save.tar", "inspect-docker-save", true)
	})

	t.Run("crane tarball", func(t *testing.T) {
		// Made by TestMakeCraneFixture: go-containerregistry's tarball
		// (crane pull, RKE2's reader), two images sharing a layer.
		inspectBoth(t, filepath.Join("testdata", "crane.tar"), "testdata/crane.tar", "inspect-crane", true)
	})

	// The rest needs the registry.
	spec, dist, _ := builtBundle(t)
	t.Run("built", func(t *testing.T) {
		inspectBoth(t, filepath.Join(dist, "multi.tar"), "dist/multi.tar", "inspect-built-multi", true)
		inspectBoth(t, filepath.Join(dist, "tags.tar.zst"), "dist/tags.tar.zst", "inspect-built-tags", false)
		inspectBoth(t, filepath.Join(dist, "filtered.tar.gz"), "dist/filtered.tar.gz", "inspect-built-filtered", false)
	})

	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Getenv(testregistry.RequireEnv) == "1" {
			t.Fatalf("skopeo is not installed and %s=1", testregistry.RequireEnv)
		}
		t.Skip("skopeo is not installed")
	}
	host := regHostOf(t, spec)
	skopeoCopy := func(t *testing.T, args ...string) {
		t.Helper()
		cmd := exec.Command(skopeo, append([]string{"--insecure-policy", "--override-os", "linux", "--override-arch", "amd64", "copy", "--src-tls-verify=false"}, args...)...)
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir(), "CONTAINERS_REGISTRIES_CONF="+writeFile(t, t.TempDir(), "registries.conf", ""))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Run("skopeo docker-archive", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "skopeo-docker.tar")
		skopeoCopy(t, "docker://"+host+"/fixtures/multi-docker:v1", "docker-archive:"+p+":registry.test/fixtures/multi-docker:v1")
		inspectBoth(t, p, "skopeo-docker.tar", "inspect-skopeo-docker-archive", true)
	})
	t.Run("skopeo oci-archive", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "skopeo-oci.tar")
		skopeoCopy(t, "--multi-arch", "all", "docker://"+host+"/fixtures/multi-oci:v1", "oci-archive:"+p+":v1")
		inspectBoth(t, p, "skopeo-oci.tar", "inspect-skopeo-oci-archive", false, sha256Repl(t, p)...)
	})
}

// sha256Repl replaces a file's checksum in output: skopeo's oci-archive
// tars a temporary directory, with the times it wrote it. (Its
// docker-archive has fixed times.)
func sha256Repl(t *testing.T, p string) []string {
	return []string{fileSHA(t, p), "<sha256 of the file>"}
}

// regHostOf reads the test registry's host back from the spec.
func regHostOf(t *testing.T, spec string) string {
	t.Helper()
	s := mustRead(t, spec)
	_, rest, _ := strings.Cut(s, "mirrors = [\"")
	host, _, _ := strings.Cut(rest, "\"")
	if host == "" {
		t.Fatalf("no mirror host in %s", spec)
	}
	return host
}

// TestMakeCraneFixture writes testdata/crane.tar with go-containerregistry's
// tarball writer, as crane pull does. (Its manifest.json and entry order
// follow Go map order, so the file is made once and committed.)
//
//	AIRGAP_MAKE_CRANE_TARBALL=1 go test ./cmd/airgap-bundle -run TestMakeCraneFixture
func TestMakeCraneFixture(t *testing.T) {
	if os.Getenv("AIRGAP_MAKE_CRANE_TARBALL") == "" {
		t.Skip("set AIRGAP_MAKE_CRANE_TARBALL=1 to rewrite testdata/crane.tar")
	}
	one, err := fixtures.Image("shared", fixtures.LinuxAMD64, 1)
	if err != nil {
		t.Fatal(err)
	}
	two, err := fixtures.Image("shared", fixtures.LinuxAMD64, 2)
	if err != nil {
		t.Fatal(err)
	}
	t1, _ := name.NewTag("registry.test/crane/one:v1")
	t2, _ := name.NewTag("registry.test/crane/two:v1")
	if err := tarball.MultiRefWriteToFile(filepath.Join("testdata", "crane.tar"), map[name.Reference]v1.Image{t1: one, t2: two}); err != nil {
		t.Fatal(err)
	}
}

// TestMakeDockerSaveFixture writes testdata/docker-save.tar with a real
// dockerd (Debian's 20.10: classic docker save), from fixture images pushed
// to a test registry. It runs only when asked:
//
//	E2E_DIR=/tmp/verify-e2e bash e2e/daemons.sh start
//	AIRGAP_MAKE_DOCKER_SAVE=unix:///tmp/verify-e2e/docker/docker.sock \
//	  go test ./cmd/airgap-bundle -run TestMakeDockerSaveFixture
func TestMakeDockerSaveFixture(t *testing.T) {
	sock := os.Getenv("AIRGAP_MAKE_DOCKER_SAVE")
	if sock == "" {
		t.Skip("set AIRGAP_MAKE_DOCKER_SAVE=unix:///…/docker.sock to rewrite testdata/docker-save.tar")
	}
	reg := testregistry.Start(t, testregistry.Options{})
	push(t, reg, "", "")
	// Two images sharing a layer: docker save stores it once.
	for _, n := range []int{1, 2} {
		img, err := fixtures.Image("shared", fixtures.LinuxAMD64, n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fixtures.Push(context.Background(), fmt.Sprintf("%s/fixtures/shared-%d:v1", reg.Host, n), img, reg.Transport(), "", ""); err != nil {
			t.Fatal(err)
		}
	}
	docker := func(args ...string) {
		t.Helper()
		cmd := exec.Command("docker", append([]string{"-H", sock}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var names []string
	for _, src := range []string{"fixtures/single:v1", "fixtures/twotags:a", "fixtures/shared-1:v1", "fixtures/shared-2:v1"} {
		docker("pull", reg.Host+"/"+src)
		names = append(names, "registry.test/"+src)
		docker("tag", reg.Host+"/"+src, "registry.test/"+src)
	}
	docker("tag", reg.Host+"/fixtures/twotags:a", "registry.test/fixtures/twotags:b")
	names = append(names, "registry.test/fixtures/twotags:b")
	out := filepath.Join("testdata", "docker-save.tar")
	docker(append([]string{"save", "-o", out}, names...)...)
	for _, n := range names {
		docker("rmi", n)
	}
	for _, src := range []string{"fixtures/single:v1", "fixtures/twotags:a", "fixtures/shared-1:v1", "fixtures/shared-2:v1"} {
		docker("rmi", reg.Host+"/"+src)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", out, fi.Size())
}
