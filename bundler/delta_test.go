package bundler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testdir"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// deltaWorld is a registry in memory with images that share layers: app
// version i is the shared base layers and a layer of its own; tool is
// the base and a layer of its own; other shares nothing.
type deltaWorld struct {
	core  string // the core group's archive name
	fetch memFetcher
	base  []fixtures.Layer
	cache *cache.Cache
	mtime time.Time
}

func newDeltaWorld(t *testing.T) *deltaWorld {
	w := &deltaWorld{core: "core.tar", fetch: memFetcher{}, mtime: time.Unix(1700000000, 0)}
	base, err := fixtures.Image("base", fixtures.LinuxAMD64, 2)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := base.Layers()
	for i, l := range ls {
		w.base = append(w.base, fixtures.Layer{Layer: l, CreatedBy: fmt.Sprintf("base %d", i)})
	}
	if w.cache, err = cache.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	return w
}

// image is the base layers and one layer from seed (or no base, alone).
func (w *deltaWorld) image(t *testing.T, seed string, onBase bool) v1.Image {
	t.Helper()
	own, err := fixtures.Image(seed, fixtures.LinuxAMD64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := own.Layers()
	var layers []fixtures.Layer
	if onBase {
		layers = append(layers, w.base...)
	}
	layers = append(layers, fixtures.Layer{Layer: ls[0], CreatedBy: seed})
	img, err := fixtures.Assemble(fixtures.ImageSpec{Platform: fixtures.LinuxAMD64, OCI: true, Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	w.fetch.addImage(t, img)
	return img
}

// version is the spec, lockfile and lockfile bytes of app:v<n>.
type version struct {
	spec      string
	lock      *lockfile.Lock
	lockBytes []byte
}

func (w *deltaWorld) version(t *testing.T, n int) version {
	t.Helper()
	app := fmt.Sprintf("registry.test/app:v%d", n)
	spec := fmt.Sprintf(`platforms = ["linux/amd64"]

[[group]]
name = "core"
archive = %q
images = [%q, "registry.test/tool:v1"]

[[group]]
name = "extra"
archive = "extra.tar.zst"
images = ["registry.test/other:v1"]
`, w.core, app)
	lock := &lockfile.Lock{Version: lockfile.Version, Groups: []lockfile.Group{
		{Name: "core", Platforms: []string{"linux/amd64"}, Index: "original", Images: []lockfile.Image{
			lockEntry(t, app, w.image(t, fmt.Sprintf("app-%d", n), true), "linux/amd64"),
			lockEntry(t, "registry.test/tool:v1", w.image(t, "tool", true), "linux/amd64"),
		}},
		{Name: "extra", Platforms: []string{"linux/amd64"}, Index: "original", Images: []lockfile.Image{
			lockEntry(t, "registry.test/other:v1", w.image(t, "other", false), "linux/amd64"),
		}},
	}}
	b, err := lock.Encode("bundle.toml")
	if err != nil {
		t.Fatal(err)
	}
	return version{spec: spec, lock: lock, lockBytes: b}
}

func (w *deltaWorld) build(t *testing.T, v version, out string) {
	t.Helper()
	if _, err := Build(context.Background(), loadSpec(t, v.spec), v.lock, w.cache, w.fetch, BuildOptions{OutputDir: out, ModTime: w.mtime}); err != nil {
		t.Fatal(err)
	}
}

func (w *deltaWorld) buildDelta(t *testing.T, v, since version, out, dir string) *DeltaResult {
	t.Helper()
	sum := sha256.Sum256(since.lockBytes)
	_, dr, err := BuildDelta(context.Background(), loadSpec(t, v.spec), v.lock, w.cache, w.fetch, BuildOptions{OutputDir: out, ModTime: w.mtime},
		DeltaOptions{Dir: dir, Lockfile: v.lockBytes, Since: &Since{Source: "v-before/bundle.lock", Lock: since.lock, LockSHA256: hex.EncodeToString(sum[:])}})
	if err != nil {
		t.Fatal(err)
	}
	return dr
}

// copyDir copies the regular files of src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for name, body := range testdir.Snapshot(t, src) {
		if err := os.WriteFile(filepath.Join(dst, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// sameArchives says whether got holds every file of want (archives,
// SHA256SUMS) byte for byte.
func sameArchives(t *testing.T, got, want string) {
	t.Helper()
	g := testdir.Snapshot(t, got)
	for name, body := range testdir.Snapshot(t, want) {
		if name == SumsFile {
			// apply's also lists the lockfile it puts beside the archives.
			for _, line := range strings.SplitAfter(body, "\n") {
				if !strings.Contains(g[name], line) {
					t.Errorf("%s: SHA256SUMS lacks %q", got, line)
				}
			}
			continue
		}
		if g[name] != body {
			t.Errorf("%s: %s differs from the full build's (%d vs %d bytes)", got, name, len(g[name]), len(body))
		}
	}
}

// A one-image bump carries only the bumped image's own layer; apply
// rebuilds both archives from BASE and the delta byte for byte as build
// wrote them, into a new directory or in place.
func TestDeltaRebuildsTheBumpByteForByte(t *testing.T) {
	w := newDeltaWorld(t)
	v1, v2 := w.version(t, 1), w.version(t, 2)
	base, full, deltaDir := t.TempDir(), t.TempDir(), t.TempDir()
	w.build(t, v1, base)
	dr := w.buildDelta(t, v2, v1, full, deltaDir)

	m := dr.Manifest
	if len(m.Archives) != 2 || m.Archives[0].Unchanged || !m.Archives[1].Unchanged || m.Archives[1].Delta != nil {
		t.Fatalf("delta.json archives: %+v", m.Archives)
	}
	core := m.Archives[0]
	if core.Delta.Name != "core.delta.tar" || len(core.FromBase) != 3 { // 2 base layers + tool's
		t.Fatalf("core: delta %+v, %d blobs from BASE", core.Delta, len(core.FromBase))
	}
	files := testdir.Snapshot(t, deltaDir)
	if _, ok := files["extra.delta.tar.zst"]; ok {
		t.Error("an unchanged group got a delta archive")
	}
	dc, err := archive.ReadFile(context.Background(), filepath.Join(deltaDir, "core.delta.tar"), archive.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fc, err := archive.ReadFile(context.Background(), filepath.Join(full, "core.tar"), archive.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range core.FromBase {
		if dc.Blobs[b.Digest] != nil || fc.Blobs[b.Digest] == nil {
			t.Errorf("blob %s from BASE: in the delta %v, in the full archive %v", b.Digest, dc.Blobs[b.Digest] != nil, fc.Blobs[b.Digest] != nil)
		}
	}
	if len(dc.Blobs) != len(fc.Blobs)-len(core.FromBase) || len(dc.Images) != len(fc.Images) {
		t.Errorf("the delta holds %d blobs and %d images, the full archive %d and %d", len(dc.Blobs), len(dc.Images), len(fc.Blobs), len(fc.Images))
	}
	if files["bundle.lock"] != string(v2.lockBytes) || files["delta.json"] == "" || !strings.Contains(files["SHA256SUMS"], "core.delta.tar") {
		t.Errorf("delta directory: %v", keys(files))
	}

	out := t.TempDir()
	applied, err := delta.Apply(context.Background(), deltaDir, delta.ApplyOptions{Base: base, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	sameArchives(t, out, full)
	if got := testdir.Snapshot(t, out)["bundle.lock"]; got != string(v2.lockBytes) {
		t.Error("apply did not put the new lockfile beside the archives")
	}
	if applied[0].FromBase == 0 || applied[0].FromDelta == 0 || !applied[1].Unchanged {
		t.Errorf("applied: %+v", applied)
	}

	inPlace := copyDir(t, base)
	if _, err := delta.Apply(context.Background(), deltaDir, delta.ApplyOptions{Base: inPlace, InPlace: true}); err != nil {
		t.Fatal(err)
	}
	sameArchives(t, inPlace, full)
	// Applied again on what it made: refused, it already holds the version.
	if _, err := delta.Apply(context.Background(), deltaDir, delta.ApplyOptions{Base: inPlace, InPlace: true}); err == nil || !strings.Contains(err.Error(), "already holds this version") {
		t.Errorf("second apply: %v", err)
	}
}

// A damaged BASE blob, a BASE that lacks the blobs (another BASE), a
// damaged delta: each is an error naming the archive and blob, and
// nothing is written.
func TestDeltaApplyRefusesWhatDoesNotBelong(t *testing.T) {
	w := newDeltaWorld(t)
	v1, v2 := w.version(t, 1), w.version(t, 2)
	base, full, deltaDir := t.TempDir(), t.TempDir(), t.TempDir()
	w.build(t, v1, base)
	dr := w.buildDelta(t, v2, v1, full, deltaDir)
	blob := dr.Manifest.Archives[0].FromBase[0]

	damaged := copyDir(t, base)
	corrupt(t, filepath.Join(damaged, "core.tar"), blob.Digest.Encoded())
	other := t.TempDir()
	w.build(t, w.version(t, 7), other) // the base layers, tool and other, not app v1 or v2
	emptyBase := t.TempDir()

	badDelta := copyDir(t, deltaDir)
	f, _ := os.OpenFile(filepath.Join(badDelta, "core.delta.tar"), os.O_WRONLY, 0)
	f.WriteAt([]byte("XX"), 2000)
	f.Close()
	// A blob the delta carries, damaged inside its bytes: apply does not
	// hash it as it reads, so the rebuilt archive's check must catch it.
	badBlob := copyDir(t, deltaDir)
	dc, err := archive.ReadFile(context.Background(), filepath.Join(deltaDir, "core.delta.tar"), archive.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var carried digest.Digest
	for d, b := range dc.Blobs {
		if carried == "" || b.Size > dc.Blobs[carried].Size || b.Size == dc.Blobs[carried].Size && d < carried {
			carried = d
		}
	}
	if carried == "" || dc.Blobs[carried].Size < 64 {
		t.Fatalf("the delta carries no blob of 64 bytes or more (%s)", carried)
	}
	corrupt(t, filepath.Join(badBlob, "core.delta.tar"), carried.Encoded())
	truncated := copyDir(t, deltaDir)
	if err := os.Truncate(filepath.Join(truncated, "core.delta.tar"), dr.Manifest.Archives[0].Delta.Size-1024); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, dir, base string
		want            []string
	}{
		{"damaged BASE blob", deltaDir, damaged, []string{"core.tar", blob.Digest.String()}},
		{"BASE without the blobs", deltaDir, emptyBase, []string{"needs blob", "it is in no archive of", "another BASE"}},
		{"damaged delta", badDelta, base, []string{"core.delta.tar is damaged"}},
		{"damaged blob in the delta", badBlob, base, []string{"core.delta.tar is damaged", "delta.json says"}},
		{"truncated delta", truncated, base, []string{"core.delta.tar is damaged", "delta.json says"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			_, err := delta.Apply(context.Background(), c.dir, delta.ApplyOptions{Base: c.base, Out: out})
			if err == nil {
				t.Fatal("applied")
			}
			for _, s := range c.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if left := testdir.Snapshot(t, out); len(left) != 0 {
				t.Errorf("a failed apply left %v", keys(left))
			}
		})
	}
	// Another version's archives (no lockfile beside them) that hold
	// every blob the delta needs do as well as BASE: the blobs decide, and
	// the result is checked whole against delta.json.
	out := t.TempDir()
	if _, err := delta.Apply(context.Background(), deltaDir, delta.ApplyOptions{Base: other, Out: out}); err != nil {
		t.Fatalf("another version holding every blob: %v", err)
	}
	sameArchives(t, out, full)
}

// corrupt flips bytes inside the blob named hex of a .tar, in place.
func corrupt(t *testing.T, archive, hex string) {
	t.Helper()
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), "blobs/sha256/"+hex)
	if i < 0 {
		t.Fatalf("no blob %s in %s", hex, archive)
	}
	data[i+512+10] ^= 0xff // 512: the header; the data follows
	if err := os.WriteFile(archive, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Ten bumps, each carried as a delta of the one before and applied in
// order to what the site has, give the archives ten full builds give.
func TestTenDeltasInOrderAreTenFullBuilds(t *testing.T) {
	w := newDeltaWorld(t)
	w.core = "core.tar.gz" // a compressed delta, rebuilt in its compression
	prev := w.version(t, 0)
	site := t.TempDir()
	w.build(t, prev, site)
	for i := 1; i <= 10; i++ {
		v := w.version(t, i)
		full, deltaDir := t.TempDir(), t.TempDir()
		w.buildDelta(t, v, prev, full, deltaDir)
		if _, err := delta.Apply(context.Background(), deltaDir, delta.ApplyOptions{Base: site, InPlace: true}); err != nil {
			t.Fatalf("bump %d: %v", i, err)
		}
		sameArchives(t, site, full)
		prev = v
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
