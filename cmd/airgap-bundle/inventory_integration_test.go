package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/internal/faultproxy"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testdir"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/schemas"
)

// sharedImages pushes to reg images that share layers, as a version bump
// does: app:v1, app:v2 and tool:v1 are two base layers and one of their
// own; other:v1 shares nothing. It returns each layer's digest by name
// ("base0", "base1", "app-1", "app-2", "tool", "other").
func sharedImages(t *testing.T, reg *testregistry.Registry) map[string]digest.Digest {
	t.Helper()
	layers := map[string]digest.Digest{}
	base, err := fixtures.Image("base", fixtures.LinuxAMD64, 2)
	if err != nil {
		t.Fatal(err)
	}
	bls, _ := base.Layers()
	var baseLayers []fixtures.Layer
	for i, l := range bls {
		baseLayers = append(baseLayers, fixtures.Layer{Layer: l, CreatedBy: fmt.Sprintf("base %d", i)})
		d, _ := l.Digest()
		layers[fmt.Sprintf("base%d", i)] = digest.Digest(d.String())
	}
	for _, img := range []struct{ repo, seed string }{{"app:v1", "app-1"}, {"app:v2", "app-2"}, {"tool:v1", "tool"}, {"other:v1", "other"}} {
		own, err := fixtures.Image(img.seed, fixtures.LinuxAMD64, 1)
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := own.Layers()
		d, _ := ls[0].Digest()
		layers[img.seed] = digest.Digest(d.String())
		var all []fixtures.Layer
		if img.seed != "other" {
			all = append(all, baseLayers...)
		}
		all = append(all, fixtures.Layer{Layer: ls[0], CreatedBy: img.seed})
		assembled, err := fixtures.Assemble(fixtures.ImageSpec{Platform: fixtures.LinuxAMD64, OCI: true, Layers: all})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fixtures.Push(context.Background(), reg.Host+"/"+img.repo, assembled, reg.Transport(), "", ""); err != nil {
			t.Fatal(err)
		}
	}
	return layers
}

// readInventory checks an inventory file against its schema and parser.
func readInventory(t *testing.T, p string) *delta.Inventory {
	t.Helper()
	data := checkSchema(t, p, schemas.InventoryID, schemas.Inventory())
	inv, err := delta.ParseInventory(data, p)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func digestSet(inv *delta.Inventory) []digest.Digest {
	var out []digest.Digest
	for _, b := range inv.Blobs {
		out = append(out, b.Digest)
	}
	slices.Sort(out)
	return out
}

// fromBase is, per full archive of a delta, the digests it leaves to BASE,
// sorted, and where BASE holds each.
func fromBase(t *testing.T, deltaDir string) (map[string][]digest.Digest, map[digest.Digest]string) {
	t.Helper()
	m, err := delta.Read(context.Background(), deltaDir)
	if err != nil {
		t.Fatal(err)
	}
	out, where := map[string][]digest.Digest{}, map[digest.Digest]string{}
	for _, a := range m.Archives {
		out[a.Name] = []digest.Digest{}
		for _, b := range a.FromBase {
			out[a.Name] = append(out[a.Name], b.Digest)
			where[b.Digest] = b.Where
		}
		slices.Sort(out[a.Name])
	}
	return out, where
}

func sorted(ds ...digest.Digest) []digest.Digest {
	out := slices.Clone(ds)
	slices.Sort(out)
	return out
}

// A site whose state is a registry, and one whose state is a directory of
// archives, as issue 17 has them: v1 is built and pushed into the site's
// registry (under a prefix); inventory lists the registry (by the
// lockfile's images, named as push named them) and v1's archives, and
// both list the same blobs. After a bump, build --since each inventory
// leaves out exactly the layers the site holds (the shared base and the
// unchanged images' layers, not the new image's own), as --since v1.lock
// does for the changed group; the delta made against the directory's
// inventory applies onto v1's archives byte for byte.
func TestInventoryRegistryAndDirectory(t *testing.T) {
	testregistry.Isolate(t)
	src := testregistry.Start(t, testregistry.Options{})
	site := testregistry.Start(t, testregistry.Options{})
	layer := sharedImages(t, src)

	dir, cacheDir, work := t.TempDir(), t.TempDir(), t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", deltaSpec(src.Host, "app:v1"))
	regs := writeFile(t, work, "registries.toml", fmt.Sprintf("[registries.%q]\ninsecure = true\n", site.Host))
	if out, code := run(t, "build", "--cache-dir", cacheDir, spec); code != 0 {
		t.Fatalf("build v1: %d\n%s", code, out)
	}
	dist := filepath.Join(dir, "dist")
	v1 := t.TempDir() // the site's archives: v1's, kept apart
	for name, body := range testdir.Snapshot(t, dist) {
		writeFile(t, v1, name, body)
	}
	v1Lock := writeFile(t, work, "v1.lock", testdir.Snapshot(t, dir)["bundle.lock"])
	if out, code := run(t, "push", v1, "--to", site.Host+"/site", "--spec", regs); code != 0 {
		t.Fatalf("push v1 into the site's registry: %d\n%s", code, out)
	}

	// The registry, by the lockfile's images under the push prefix.
	haveReg := filepath.Join(work, "have-reg.json")
	out, code := run(t, "inventory", site.Host+"/site", "--lockfile", v1Lock, "--registries", regs, "-o", haveReg)
	if code != 0 || !strings.Contains(out, "holds 3 of the 3 pinned manifests") {
		t.Fatalf("inventory of the registry: exit %d\n%s", code, out)
	}
	reg := readInventory(t, haveReg)
	if reg.Source != "registry "+site.Host+"/site" {
		t.Errorf("registry inventory source %q", reg.Source)
	}
	for _, b := range reg.Blobs {
		if b.Where != "registry "+site.Host {
			t.Errorf("registry inventory: %s is %q", b.Digest, b.Where)
		}
	}
	// The directory: the same blobs, each with its archive.
	haveDir := filepath.Join(work, "have-dir.json")
	jsonOut, stderr, code := runSplit(t, "", "--json", "inventory", v1, "-o", haveDir)
	if code != 0 {
		t.Fatalf("inventory of the directory: exit %d\n%s", code, stderr)
	}
	if fileBody := testdir.Snapshot(t, work)["have-dir.json"]; jsonOut != fileBody {
		t.Errorf("--json prints other bytes than -o writes:\n%s\n---\n%s", jsonOut, fileBody)
	}
	dirInv := readInventory(t, haveDir)
	if !slices.Equal(digestSet(reg), digestSet(dirInv)) {
		t.Errorf("the registry and v1's archives hold the same blobs, the inventories differ:\nregistry %v\ndirectory %v", digestSet(reg), digestSet(dirInv))
	}
	for name, want := range map[string]string{"app-1": "core.tar.zst", "base0": "core.tar.zst", "other": "extra.tar"} {
		if got := dirInv.Have()[layer[name]]; got != want {
			t.Errorf("directory inventory: layer %s is in %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"base0", "base1", "app-1", "tool", "other"} {
		if _, ok := reg.Have()[layer[name]]; !ok {
			t.Errorf("registry inventory lacks layer %s", name)
		}
	}
	if _, ok := reg.Have()[layer["app-2"]]; ok {
		t.Error("registry inventory lists app:v2's layer, never pushed there")
	}

	// The names matter: without the prefix (or per host) nothing is there.
	for _, args := range [][]string{{site.Host}, {site.Host + "/site", "--to-per-host"}} {
		p := filepath.Join(work, "none.json")
		out, code := run(t, append(append([]string{"inventory"}, args...), "--lockfile", v1Lock, "--registries", regs, "-o", p)...)
		if code != 0 || !strings.Contains(out, "holds 0 of the 3") || !strings.Contains(out, "absent: "+src.Host+"/app:v1") {
			t.Errorf("inventory %v: exit %d\n%s", args, code, out)
		}
		if n := len(readInventory(t, p).Blobs); n != 0 {
			t.Errorf("inventory %v lists %d blobs", args, n)
		}
	}

	// The bump: app moves to v2 (the base layers shared, one new layer).
	writeFile(t, dir, "bundle.toml", deltaSpec(src.Host, "app:v2"))
	deltaOf := func(since string) string {
		t.Helper()
		dd := filepath.Join(t.TempDir(), "delta")
		if out, code := run(t, "build", "--cache-dir", cacheDir, "--since", since, "--delta-dir", dd, spec); code != 0 {
			t.Fatalf("build --since %s: %d\n%s", since, code, out)
		}
		return dd
	}
	regDelta, dirDelta, lockDelta := deltaOf(haveReg), deltaOf(haveDir), deltaOf(v1Lock)
	wantCore := sorted(layer["base0"], layer["base1"], layer["tool"])
	wantExtra := sorted(layer["other"])
	regFrom, regWhere := fromBase(t, regDelta)
	dirFrom, dirWhere := fromBase(t, dirDelta)
	lockFrom, _ := fromBase(t, lockDelta)
	for what, got := range map[string]map[string][]digest.Digest{"registry": regFrom, "directory": dirFrom} {
		if !slices.Equal(got["core.tar.zst"], wantCore) || !slices.Equal(got["extra.tar"], wantExtra) {
			t.Errorf("--since the %s's inventory leaves out %v, want core %v and extra %v", what, got, wantCore, wantExtra)
		}
	}
	if !slices.Equal(lockFrom["core.tar.zst"], dirFrom["core.tar.zst"]) {
		t.Errorf("core: --since v1.lock leaves out %v, --since the directory's inventory %v", lockFrom["core.tar.zst"], dirFrom["core.tar.zst"])
	}
	if regWhere[layer["tool"]] != "registry "+site.Host || dirWhere[layer["tool"]] != "core.tar.zst" {
		t.Errorf("where BASE holds tool's layer: registry %q, directory %q", regWhere[layer["tool"]], dirWhere[layer["tool"]])
	}

	checkDiffDeltaBound(t, v1Lock, filepath.Join(dir, "bundle.lock"), lockDelta)

	rebuilt := filepath.Join(t.TempDir(), "next")
	if out, code := run(t, "apply", dirDelta, "--base", v1, "-o", rebuilt); code != 0 {
		t.Fatalf("apply of the delta made against the directory's inventory: %d\n%s", code, out)
	}
	sameBuild(t, rebuilt, dist, "core.tar.zst", "extra.tar")

	// A registry that cannot be reached fails the inventory (exit 1),
	// naming it: a partial inventory would pass for a whole one.
	out, code = run(t, "--retries", "1", "inventory", "127.0.0.1:1", "--lockfile", v1Lock, "--insecure", "-o", filepath.Join(work, "x.json"))
	if code != exitFailure || !strings.Contains(out, "127.0.0.1:1") {
		t.Errorf("inventory of a closed port: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(work, "x.json")); !os.IsNotExist(err) {
		t.Errorf("a failed inventory wrote its file (%v)", err)
	}
}

// checkDiffDeltaBound checks diff OLD NEW's delta figures against the
// delta build --since OLD wrote in deltaDir: a group has a delta archive
// exactly when diff lists it; its blobs, but for the manifests and configs
// of the platforms OLD pins, weigh at most delta-bytes; those manifests
// number delta-unsized-manifests.
func checkDiffDeltaBound(t *testing.T, oldLock, newLock, deltaDir string) {
	t.Helper()
	out, stderr, code := runSplit(t, "", "--json", "diff", oldLock, newLock)
	if code != 0 {
		t.Fatalf("diff: exit %d\n%s", code, stderr)
	}
	type groupDelta struct {
		Name       string
		DeltaBytes int64 `json:"delta-bytes"`
		Unsized    int   `json:"delta-unsized-manifests"`
	}
	var d struct{ Groups []groupDelta }
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	old, err := lockfile.Read(oldLock)
	if err != nil {
		t.Fatal(err)
	}
	pinned := map[digest.Digest]bool{}  // OLD's platform manifests
	unsized := map[digest.Digest]bool{} // and their configs
	for _, g := range old.Groups {
		for _, e := range g.Images {
			for _, p := range e.Platforms {
				pinned[p.Digest], unsized[p.Digest], unsized[p.Config] = true, true, true
			}
		}
	}
	m, err := delta.Read(context.Background(), deltaDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range m.Archives {
		i := slices.IndexFunc(d.Groups, func(g groupDelta) bool { return g.Name == a.Group })
		if (i >= 0) != (a.Delta != nil) {
			t.Errorf("group %q: diff lists it %v, build --since wrote a delta archive %v", a.Group, i >= 0, a.Delta != nil)
			continue
		}
		if a.Delta == nil {
			continue
		}
		c, err := archive.ReadFile(context.Background(), filepath.Join(deltaDir, a.Delta.Name), archive.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var bytes int64
		manifests := 0
		for dg, b := range c.Blobs {
			if pinned[dg] {
				manifests++
			}
			if !unsized[dg] {
				bytes += b.Size
			}
		}
		if g := d.Groups[i]; bytes > g.DeltaBytes || manifests != g.Unsized {
			t.Errorf("group %q: the delta archive holds %d bytes of blobs whose sizes the lockfile records and %d manifests OLD pins; diff says at most %d and %d", a.Group, bytes, manifests, g.DeltaBytes, g.Unsized)
		}
	}
}

// Registry inventories are retried under the Policy: 503s and 502s on
// manifests and blobs, and a HEAD that hangs, give the same inventory as
// a clean run; a registry that keeps failing fails it (exit 1), with
// nothing written.
func TestInventoryRetriesTransientFaults(t *testing.T) {
	testregistry.Isolate(t)
	src := testregistry.Start(t, testregistry.Options{})
	site := testregistry.Start(t, testregistry.Options{})
	sharedImages(t, src)
	dir, work := t.TempDir(), t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", deltaSpec(src.Host, "app:v1"))
	if out, code := run(t, "build", "--cache-dir", t.TempDir(), spec); code != 0 {
		t.Fatalf("build: %d\n%s", code, out)
	}
	if out, code := run(t, "push", "--insecure", filepath.Join(dir, "dist"), "--to", site.Host); code != 0 {
		t.Fatalf("push: %d\n%s", code, out)
	}
	lock := filepath.Join(dir, "bundle.lock")
	clean := filepath.Join(work, "clean.json")
	if out, code := run(t, "inventory", site.Host, "--insecure", "--lockfile", lock, "-o", clean); code != 0 {
		t.Fatalf("inventory: %d\n%s", code, out)
	}

	px := faultproxy.Start(t, site.Host)
	blobs := px.Add(faultproxy.Rule{Method: "HEAD", Path: "/blobs/", When: faultproxy.First(2), Fault: faultproxy.Status(503)})
	hang := px.Add(faultproxy.Rule{Method: "HEAD", Path: "/blobs/", When: faultproxy.Nth(3), Fault: faultproxy.Hang()})
	manifests := px.Add(faultproxy.Rule{Method: "GET", Path: "/manifests/", When: faultproxy.Nth(1), Fault: faultproxy.Status(502)})
	args := []string{"--retries", "4", "--retry-backoff", "1ms", "--response-timeout", "2s", "inventory", px.Host, "--insecure", "--lockfile", lock, "-j", "2"}
	faulty := filepath.Join(work, "faulty.json")
	if out, code := run(t, append(args, "-o", faulty)...); code != 0 {
		t.Fatalf("inventory through faults: exit %d\n%s\n%s", code, out, px.LogString())
	}
	if blobs.Fired() != 2 || hang.Fired() != 1 || manifests.Fired() != 1 {
		t.Errorf("faults fired: blob HEADs %d, hang %d, manifest GETs %d\n%s", blobs.Fired(), hang.Fired(), manifests.Fired(), px.LogString())
	}
	if got, want := digestSet(readInventory(t, faulty)), digestSet(readInventory(t, clean)); len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("inventory through faults lists %v, a clean one %v", got, want)
	}

	px.ClearRules()
	px.Add(faultproxy.Rule{Method: "HEAD", Path: "/blobs/", Fault: faultproxy.Status(503)})
	failed := filepath.Join(work, "failed.json")
	args[1] = "2"
	out, code := run(t, append(args, "-o", failed)...)
	if code != exitFailure || !strings.Contains(out, "gave up after 2 attempts") || !strings.Contains(out, px.Host) {
		t.Errorf("persistent 503: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(failed); !os.IsNotExist(err) {
		t.Errorf("a failed inventory wrote its file (%v)", err)
	}
}

// A .tar is listed by its tar headers: a damaged blob is listed (apply
// finds it when it copies it), unless --hash, which leaves it out and
// says so.
func TestInventoryDirectoryHash(t *testing.T) {
	testregistry.Isolate(t)
	src := testregistry.Start(t, testregistry.Options{})
	layer := sharedImages(t, src)
	dir, cacheDir := t.TempDir(), t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", deltaSpec(src.Host, "app:v1"))
	if out, code := run(t, "build", "--cache-dir", cacheDir, spec); code != 0 {
		t.Fatalf("build: %d\n%s", code, out)
	}
	site := t.TempDir()
	tarBody := testdir.Snapshot(t, filepath.Join(dir, "dist"))["extra.tar"]
	i := strings.Index(tarBody, "blobs/sha256/"+layer["other"].Encoded())
	if i < 0 {
		t.Fatal("other's layer is not in extra.tar")
	}
	damaged := []byte(tarBody)
	damaged[i+512+20] ^= 0xff // inside the layer's bytes, past its header
	writeFile(t, site, "extra.tar", string(damaged))

	for _, c := range []struct {
		args   []string
		listed bool
		says   string
	}{
		{nil, true, "tar headers"},
		{[]string{"--hash"}, false, "hashed; 1 damaged, left out"},
	} {
		p := filepath.Join(t.TempDir(), "have.json")
		out, code := run(t, append([]string{"inventory", site, "-o", p}, c.args...)...)
		if code != 0 || !strings.Contains(out, c.says) {
			t.Errorf("inventory %v: exit %d, want it to say %q\n%s", c.args, code, c.says, out)
			continue
		}
		if _, ok := readInventory(t, p).Have()[layer["other"]]; ok != c.listed {
			t.Errorf("inventory %v: damaged layer listed %v, want %v", c.args, ok, c.listed)
		}
	}

	// One archive named alone is listed as such.
	p := filepath.Join(t.TempDir(), "one.json")
	if out, code := run(t, "inventory", filepath.Join(site, "extra.tar"), "-o", p); code != 0 {
		t.Fatalf("inventory of one archive: exit %d\n%s", code, out)
	}
	if inv := readInventory(t, p); inv.Source != "archive "+filepath.Join(site, "extra.tar") || len(inv.Blobs) == 0 {
		t.Errorf("inventory of one archive: source %q, %d blobs", inv.Source, len(inv.Blobs))
	}
	// An archive that cannot be read fails the inventory, naming it.
	writeFile(t, site, "broken.tar.gz", "not gzip at all")
	out, code := run(t, "inventory", site, "-o", p+".2")
	if code != exitFailure || !strings.Contains(out, filepath.Join(site, "broken.tar.gz")) {
		t.Errorf("inventory with an unreadable archive: exit %d\n%s", code, out)
	}
}

// Malformed inventories given to build --since are usage errors (exit 2)
// that name the file and what is wrong, before any registry is asked.
func TestInventoryMalformedIsUsage(t *testing.T) {
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", deltaSpec("registry.invalid", "app:v1"))
	good := fmt.Sprintf(`{"version": 1, "source": "directory /srv", "blobs": [{"digest": %q, "size": 3, "where": "core.tar"}]}`, digest.FromString("abc"))
	for _, c := range []struct{ name, body, says string }{
		{"bad digest", strings.Replace(good, "sha256:", "sha256:zz", 1), "is not a sha256 digest"},
		{"unknown field", strings.Replace(good, `"source"`, `"extra": 1, "source"`, 1), `unknown field "extra"`},
		{"wrong version", strings.Replace(good, `"version": 1`, `"version": 7`, 1), "inventory version 7"},
		{"negative size", strings.Replace(good, `"size": 3`, `"size": -3`, 1), "is not a sha256 digest with a size"},
		{"trailing data", good + "{}", "data after the JSON document"},
		{"truncated", good[:len(good)-10], "not an inventory"},
	} {
		p := writeFile(t, dir, strings.ReplaceAll(c.name, " ", "-")+".json", c.body)
		out, code := run(t, "build", "--cache-dir", t.TempDir(), "--since", p, spec)
		if code != exitUsage || !strings.Contains(out, p) || !strings.Contains(out, c.says) {
			t.Errorf("%s: exit %d, want %d naming %s and saying %q\n%s", c.name, code, exitUsage, p, c.says, out)
		}
	}
}

// inventory's own command line: what goes with which kind of source.
func TestInventoryUsage(t *testing.T) {
	dir := t.TempDir()
	lock := writeFile(t, dir, "bundle.lock", "version = 1\n")
	for _, args := range [][]string{
		{"inventory", dir}, // neither -o nor --json
		{"inventory", dir, "-o", "x.json", "--lockfile", lock}, // a directory takes no lockfile
		{"inventory", "registry.invalid:5000", "-o", "x.json"}, // a registry needs the images
		{"inventory", "registry.invalid:5000", "-o", "x.json", "--lockfile", lock, "--spec", "b.toml"},
		{"inventory", "registry.invalid:5000", "-o", "x.json", "--lockfile", lock, "--hash"},
		{"inventory", "https://registry.invalid", "-o", "x.json", "--lockfile", lock},
		{"inventory", "registry.invalid:5000", "-o", "x.json", "--lockfile", filepath.Join(dir, "missing.lock")},
		{"inventory", dir, "-o", filepath.Join(dir, "x.json")}, // no archive in it
	} {
		if out, code := run(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, out)
		}
	}
}
