package e2e

// Issue 17's consumers of a delta archive (NAME.delta.tar*: the group's
// archive without the layers BASE holds). Which take it alone, which need
// `airgap-bundle apply` first, and what k3s does on a node with and without
// the base: measured here, with the real binary, a real registry and the
// real consumers, and written down in docs/delta.md ("Dropping a delta on
// a k3s/RKE2 node").

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// The bump: app moves from v1 to v2, a new layer on top of v1's layers
// (two base layers every image shares, then app's own). tool is unchanged
// but in the same group, so its layers are all left out of the delta.
// Both are indexes of the host platform and a second one: k3s imports
// every platform (WithAllPlatforms), so the second platform's layers must
// be on the node too. other, in a group of its own, is unchanged: no delta.
const deltaE2ESpec = `
registries."docker.io" = { mirrors = ["%[1]s"] }
[registries."%[1]s"]
insecure = true

[[group]]
name = "core"
archive = "core.tar"
platforms = ["linux/%[2]s", "linux/%[3]s"]
images = ["airgap-e2e/delta-app:%[4]s", "airgap-e2e/delta-tool:v1"]

[[group]]
name = "edge"
archive = "edge.tar.zst"
platforms = ["linux/%[2]s", "linux/%[3]s"]
images = ["airgap-e2e/delta-app:%[4]s"]

[[group]]
name = "extra"
archive = "extra.tar.gz"
platforms = ["linux/%[2]s"]
images = ["airgap-e2e/delta-other:v1"]
`

const (
	deltaApp1  = "docker.io/airgap-e2e/delta-app:v1"
	deltaApp2  = "docker.io/airgap-e2e/delta-app:v2"
	deltaTool  = "docker.io/airgap-e2e/delta-tool:v1"
	deltaOther = "docker.io/airgap-e2e/delta-other:v1"
)

// deltaBuilt is v1's archives (what the site holds), v2's (what build
// --since wrote beside the delta) and the delta directory.
type deltaBuilt struct {
	base, dist, delta string
	// registry digests by docker.io name
	digests map[string]string
	// the full archives of each version, by file name
	archives []string
}

func (d deltaBuilt) v1(name string) string  { return filepath.Join(d.base, name) }
func (d deltaBuilt) v2(name string) string  { return filepath.Join(d.dist, name) }
func (d deltaBuilt) dlt(name string) string { return filepath.Join(d.delta, name) }

// otherArch is the index's second platform: not the host's.
func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

// deltaIndex is an index of the host platform and otherArch, each child
// the base layers of its platform then the layers of seeds (one each).
func deltaIndex(t *testing.T, oci bool, seeds ...string) v1.ImageIndex {
	t.Helper()
	var children []fixtures.Child
	for _, arch := range []string{runtime.GOARCH, otherArch()} {
		p := fixtures.Platform{OS: "linux", Architecture: arch}
		base, err := fixtures.Image("delta-e2e-base", p, 2)
		if err != nil {
			t.Fatal(err)
		}
		var layers []fixtures.Layer
		bl, _ := base.Layers()
		for i, l := range bl {
			layers = append(layers, fixtures.Layer{Layer: l, CreatedBy: fmt.Sprintf("base %d", i)})
		}
		for _, s := range seeds {
			own, err := fixtures.Image(s, p, 1)
			if err != nil {
				t.Fatal(err)
			}
			ol, _ := own.Layers()
			layers = append(layers, fixtures.Layer{Layer: ol[0], CreatedBy: s})
		}
		img, err := fixtures.Assemble(fixtures.ImageSpec{Platform: p, OCI: oci, Layers: layers, Config: v1.Config{Cmd: []string{"/bin/true"}}})
		if err != nil {
			t.Fatal(err)
		}
		children = append(children, fixtures.Child{Platform: p, Image: img})
	}
	idx, err := fixtures.IndexOf(oci, children...)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// buildDelta pushes v1 and v2 to a real registry, builds v1 with the real
// binary, keeps its archives as BASE, bumps app and runs build --since
// v1.lock: v2's full archives and the delta.
func buildDelta(t *testing.T) deltaBuilt {
	t.Helper()
	requireE2E(t)
	reg := testregistry.Start(t, testregistry.Options{})
	d := deltaBuilt{digests: map[string]string{}, archives: []string{"core.tar", "edge.tar.zst", "extra.tar.gz"}}
	for name, obj := range map[string]any{
		deltaApp1:  deltaIndex(t, true, "delta-e2e-app-1"),
		deltaApp2:  deltaIndex(t, true, "delta-e2e-app-1", "delta-e2e-app-2"),
		deltaTool:  deltaIndex(t, false, "delta-e2e-tool"),
		deltaOther: mustImage(t, "delta-e2e-other"),
	} {
		d.digests[name] = pushT(t, reg, strings.TrimPrefix(name, "docker.io/"), obj)
	}

	dir := t.TempDir()
	spec := filepath.Join(dir, "bundle.toml")
	writeSpec := func(app string) {
		if err := os.WriteFile(spec, []byte(fmt.Sprintf(deltaE2ESpec, reg.Host, runtime.GOARCH, otherArch(), app)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(tool(t), append(append([]string{"build", "--cache-dir", filepath.Join(dir, "cache")}, args...), spec)...)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("airgap-bundle build %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	writeSpec("v1")
	build()
	// what the site holds: v1's archives and SHA256SUMS, and its lockfile
	d.base = filepath.Join(dir, "site")
	if err := os.Rename(filepath.Join(dir, "dist"), d.base); err != nil {
		t.Fatal(err)
	}
	v1lock := filepath.Join(dir, "v1.lock")
	copyFile(t, filepath.Join(dir, "bundle.lock"), v1lock)

	writeSpec("v2")
	out := build("--since", v1lock)
	t.Logf("build --since v1.lock:\n%s", out)
	d.dist = filepath.Join(dir, "dist")
	d.delta = filepath.Join(d.dist, "delta")
	for _, f := range []string{"core.delta.tar", "edge.delta.tar.zst", "delta.json", "bundle.lock", "SHA256SUMS"} {
		if _, err := os.Stat(d.dlt(f)); err != nil {
			t.Fatalf("build --since wrote no %s: %v", f, err)
		}
	}
	if _, err := os.Stat(d.dlt("extra.delta.tar.gz")); err == nil {
		t.Fatal("build --since wrote a delta for the unchanged group extra")
	}
	return d
}

func mustImage(t *testing.T, seed string) v1.Image {
	t.Helper()
	img, err := fixtures.Image(seed, fixtures.Platform{OS: "linux", Architecture: runtime.GOARCH}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ctrCheck runs `ctr -n k8s.io images check` and returns, for each image
// name, its STATUS column: "complete (N/N)" or "incomplete (M/N)". ctr
// checks the host platform's content: every blob of the manifest chain.
func ctrCheck(t testing.TB, which Containerd) map[string]string {
	t.Helper()
	out := ctr(t, which, "images", "check")
	st := map[string]string{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		// REF TYPE DIGEST STATUS SIZE UNPACKED, STATUS being "complete (3/3)"
		if i == 0 || len(f) < 5 {
			continue
		}
		st[f[0]] = f[3] + " " + f[4]
	}
	return st
}

// v2Names are the images of v2's changed groups, and other (unchanged).
var v2Names = []string{deltaApp2, deltaTool, deltaOther}

// deltas are the delta archives build --since wrote: core.tar and
// edge.tar.zst changed, extra.tar.gz did not.
var deltas = []string{"core.delta.tar", "edge.delta.tar.zst"}

// checkNode runs `airgap-bundle check-node` against a containerd.
func checkNode(t *testing.T, which Containerd, d deltaBuilt) (string, error) {
	t.Helper()
	out, err := exec.Command(tool(t), "check-node", d.delta, "--address", which.Sock(), "--ctr", which.Ctr()).CombinedOutput()
	return string(out), err
}

// ctrCheckScript is docs/delta.md's check without airgap-bundle (jq, ctr,
// comm): it prints the layers the node lacks.
const ctrCheckScript = `set -e
jq -r '.archives[]."from-base"[]?.digest' delta.json | sort -u >"$TMP/need"
"$CTR" --address "$SOCK" -n k8s.io content ls -q | sort >"$TMP/have"
comm -23 "$TMP/need" "$TMP/have"`

// lacking runs ctrCheckScript in the delta directory.
func lacking(t *testing.T, which Containerd, d deltaBuilt) []string {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Log("jq is not installed: the ctr-based check of docs/delta.md is not tested")
		return nil
	}
	cmd := exec.Command("bash", "-c", ctrCheckScript)
	cmd.Dir = d.delta
	cmd.Env = append(os.Environ(), "TMP="+t.TempDir(), "CTR="+which.Ctr(), "SOCK="+which.Sock())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the ctr-based check: %v", err)
	}
	return strings.Fields(string(out))
}

// wantImages fails unless ctr's images check says each name is complete
// (or, complete false, incomplete) for the host platform, and k3s
// imported it under the registry's digest.
func wantImages(t *testing.T, which Containerd, d deltaBuilt, imported map[string]string, complete bool, names ...string) {
	t.Helper()
	st := ctrCheck(t, which)
	for _, n := range names {
		if imported != nil && imported[n] != d.digests[n] {
			t.Errorf("%s imported as %q, registry digest %s", n, imported[n], d.digests[n])
		}
		if got := st[n]; strings.HasPrefix(got, "complete") != complete || got == "" {
			t.Errorf("ctr images check: %s is %q, want complete=%v (all: %v)", n, got, complete, st)
		}
	}
}

// The facts docs/delta.md ("Dropping a delta on a k3s/RKE2 node") states,
// consumer by consumer.
func TestDeltaConsumers(t *testing.T) {
	d := buildDelta(t)
	applied := filepath.Join(t.TempDir(), "v2")
	if out, err := exec.Command(tool(t), "apply", d.delta, "--base", d.base, "-o", applied).CombinedOutput(); err != nil {
		t.Fatalf("airgap-bundle apply: %v\n%s", err, out)
	}
	for _, a := range d.archives {
		got, _ := os.ReadFile(filepath.Join(applied, a))
		want, _ := os.ReadFile(d.v2(a))
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Fatalf("apply's %s is not build's (%d vs %d bytes)", a, len(got), len(want))
		}
	}

	// The supported path: a node that imported v1's archives takes the
	// delta archives beside them; check-node says so first.
	t.Run("k3s with the base", func(t *testing.T) {
		for i, a := range d.archives {
			k3sImport(t, Containerd2, d.v1(a), K3sOpts{Clean: i == 0})
		}
		out, err := checkNode(t, Containerd2, d)
		if err != nil || !strings.Contains(out, "the node holds all 8 layers the delta leaves out") {
			t.Fatalf("check-node on a node holding v1: %v\n%s", err, out)
		}
		t.Logf("check-node on a node holding v1:\n%s", out)
		if l := lacking(t, Containerd2, d); len(l) != 0 {
			t.Errorf("the ctr-based check says the node lacks %v", l)
		}
		imported := map[string]string{}
		for _, a := range deltas {
			for n, dg := range k3sImport(t, Containerd2, d.dlt(a), K3sOpts{}) {
				imported[n] = dg
			}
		}
		wantImages(t, Containerd2, d, imported, true, deltaApp2, deltaTool)
		wantImages(t, Containerd2, d, nil, true, deltaOther, deltaApp1)
		// and the second platform's layers too (k3s imports every platform)
		k3sImport(t, Containerd2, "", K3sOpts{Unpack: deltaApp2, Platform: "linux/" + otherArch()})
	})

	// The hazard: on a node without the base, k3s's import of the delta
	// exits 0 with every image under its registry digest, and the images
	// are incomplete; nothing says so until a pod fails to start.
	// check-node says so before.
	t.Run("k3s without the base", func(t *testing.T) {
		ctrClean(t, Containerd2)
		out, err := checkNode(t, Containerd2, d)
		if exitCode(err) != 1 || !strings.Contains(out, "the node lacks 8 of the 8 layers the delta leaves out") ||
			!strings.Contains(out, "incomplete after importing core.delta.tar: "+deltaApp2) ||
			!strings.Contains(out, "incomplete after importing core.delta.tar: "+deltaTool) {
			t.Fatalf("check-node on an empty node: %v\n%s", err, out)
		}
		t.Logf("check-node on an empty node:\n%s", out)
		if l := lacking(t, Containerd2, d); len(l) != 8 && exec.Command("jq", "--version").Run() == nil {
			t.Errorf("the ctr-based check says the node lacks %v, want the 8 layers", l)
		}
		imported := map[string]string{}
		for _, a := range deltas {
			imgs, stderr, err := k3sImportErr(t, Containerd2, d.dlt(a), K3sOpts{})
			if err != nil {
				t.Fatalf("k3s import of %s on an empty node: %v (docs/delta.md says it exits 0)\n%s", a, err, stderr)
			}
			for n, dg := range imgs {
				imported[n] = dg
			}
		}
		wantImages(t, Containerd2, d, imported, false, deltaApp2, deltaTool)
		if out, err := checkNode(t, Containerd2, d); exitCode(err) != 1 {
			t.Errorf("check-node after the import: %v\n%s", err, out)
		}
		_, stderr, err := k3sImportErr(t, Containerd2, "", K3sOpts{Unpack: deltaApp2})
		if err == nil || !strings.Contains(stderr, "not found") {
			t.Errorf("unpacking an incomplete image: %v\n%s", err, stderr)
		}
	})

	// k3s imports every file of its images directory in name order, so a
	// delta dropped beside its base on a fresh node comes first
	// (core.delta.tar < core.tar): the base's import completes it.
	t.Run("k3s, delta and base in one directory", func(t *testing.T) {
		files := append(append([]string{}, d.archives...), deltas...)
		slices.Sort(files)
		for i, a := range files {
			p := d.v1(a)
			if strings.Contains(a, ".delta.") {
				p = d.dlt(a)
			}
			k3sImport(t, Containerd2, p, K3sOpts{Clean: i == 0})
		}
		wantImages(t, Containerd2, d, nil, true, v2Names...)
		if out, err := checkNode(t, Containerd2, d); err != nil {
			t.Errorf("check-node: %v\n%s", err, out)
		}
	})

	t.Run("k3s, applied archives", func(t *testing.T) {
		imported := map[string]string{}
		for i, a := range d.archives {
			for n, dg := range k3sImport(t, Containerd2, filepath.Join(applied, a), K3sOpts{Clean: i == 0}) {
				imported[n] = dg
			}
		}
		wantImages(t, Containerd2, d, imported, true, v2Names...)
		ctrClean(t, Containerd2)
	})

	docker := []string{"airgap-e2e/delta-app:v1", "airgap-e2e/delta-app:v2", "airgap-e2e/delta-tool:v1"}
	t.Run("docker load", func(t *testing.T) {
		dockerRmi(t, docker...)
		defer dockerRmi(t, docker...)
		_, stderr, err := run(dockerEnv(), envOr("DOCKER_BIN", "/usr/bin/docker"), "load", "-i", d.dlt("core.delta.tar"))
		if err == nil || !strings.Contains(stderr, "no such file or directory") {
			t.Fatalf("docker load of a delta alone: %v, want the missing layer's file not found\n%s", err, stderr)
		}
		// Measured, not promised: docker reuses the layers it holds (by
		// chain ID) before opening their files.
		dockerLoad(t, d.v1("core.tar"))
		if _, stderr, err := run(dockerEnv(), envOr("DOCKER_BIN", "/usr/bin/docker"), "load", "-i", d.dlt("core.delta.tar")); err != nil {
			t.Errorf("docker load of the delta after v1's archive: %v: docker changed, update docs/delta.md\n%s", err, stderr)
		}
		dockerRmi(t, docker...)
		loaded := dockerLoad(t, filepath.Join(applied, "core.tar"))
		if !slices.Contains(loaded, "airgap-e2e/delta-app:v2") || !slices.Contains(loaded, "airgap-e2e/delta-tool:v1") {
			t.Errorf("docker load of apply's core.tar: %v", loaded)
		}
		if img := dockerInspect(t, "airgap-e2e/delta-app:v2"); len(img.RootFS.Layers) != 4 {
			t.Errorf("app:v2 has %d layers in docker, want 4", len(img.RootFS.Layers))
		}
	})

	t.Run("podman load", func(t *testing.T) {
		rmi := func() {
			_, _, _ = run(nil, "podman", append(podmanArgs(), append([]string{"rmi", "-f", "--ignore"}, v2Names...)...)...)
		}
		rmi()
		defer rmi()
		_, stderr, err := run(nil, "podman", append(podmanArgs(), "load", "-i", d.dlt("core.delta.tar"))...)
		if err == nil || !strings.Contains(stderr, "Some layer tarfiles are missing") {
			t.Fatalf("podman load of a delta alone: %v, want missing layers\n%s", err, stderr)
		}
		// containers/image checks every layer file of manifest.json
		// before it looks at what its storage holds.
		podmanLoad(t, d.v1("core.tar"))
		if _, stderr, err := run(nil, "podman", append(podmanArgs(), "load", "-i", d.dlt("core.delta.tar"))...); err == nil {
			t.Errorf("podman load of the delta after v1's archive worked: podman changed, update docs/delta.md")
		} else if !strings.Contains(stderr, "Some layer tarfiles are missing") {
			t.Errorf("podman load of the delta after v1's archive: %v", stderr)
		}
		rmi()
		loaded := podmanLoad(t, filepath.Join(applied, "core.tar"))
		if !slices.Contains(loaded, deltaApp2) || !slices.Contains(loaded, deltaTool) {
			t.Errorf("podman load of apply's core.tar: %v", loaded)
		}
	})

	for _, c := range []Containerd{Containerd16, Containerd2} {
		t.Run("ctr import "+c.String(), func(t *testing.T) {
			_, out, err := ctrImportErr(t, c, d.dlt("core.delta.tar"), false)
			if err == nil || !strings.Contains(out, "not found") {
				t.Fatalf("ctr images import of a delta alone: %v, want content not found (unpacking)\n%s", err, out)
			}
			// Measured, not promised: ctr unpacks from the content store,
			// which holds v1's layers.
			ctrImport(t, c, d.v1("core.tar"), false)
			if _, _, err := run(nil, c.Ctr(), "--address", c.Sock(), "-n", "k8s.io", "images", "import", d.dlt("core.delta.tar")); err != nil {
				t.Errorf("ctr images import of the delta after v1's archive: %v: ctr changed, update docs/delta.md", err)
			}
			wantImages(t, c, d, nil, true, deltaApp2, deltaTool)
			got := ctrImport(t, c, filepath.Join(applied, "core.tar"), false)
			wantImages(t, c, d, got, true, deltaApp2, deltaTool)
			ctrClean(t, c)
		})
	}
}
