package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testdir"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// deltaBump is a version bump built against a real registry: v1's full
// archives (the site's BASE), v2's full archives and the delta of v2
// since v1. app:v2 shares two base layers with app:v1 and tool:v1, and
// one layer with other:v1 (another group, another repository): the delta
// leaves out the base layers, tool's own layer and other's layer.
type deltaBump struct {
	reg   *testregistry.Registry
	base  string // v1's archives
	dist  string // v2's archives, delta/ inside
	delta string
	// leftOut are the blobs the delta leaves out; crossRepo the one
	// BASE holds in another repository (other's layer) only.
	leftOut   []string
	crossRepo string
	// app2 is app:v2's digest in the source registry.
	app2 string
}

func newDeltaBump(t *testing.T) *deltaBump {
	t.Helper()
	testregistry.Isolate(t)
	b := &deltaBump{reg: testregistry.Start(t, testregistry.Options{})}
	ctx := context.Background()
	layersOf := func(seed string, n int) []fixtures.Layer {
		img, err := fixtures.Image(seed, fixtures.LinuxAMD64, n)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		var out []fixtures.Layer
		for i, l := range ls {
			out = append(out, fixtures.Layer{Layer: l, CreatedBy: fmt.Sprintf("%s %d", seed, i)})
		}
		return out
	}
	digestOf := func(l v1.Layer) string {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	shared, other, tool := layersOf("delta-shared", 2), layersOf("delta-other", 1), layersOf("delta-tool", 1)
	images := map[string][]fixtures.Layer{
		"app:v1":   append(slices.Clone(shared), layersOf("delta-app-1", 1)...),
		"app:v2":   append(append(slices.Clone(shared), other...), layersOf("delta-app-2", 1)...),
		"tool:v1":  append(slices.Clone(shared), tool...),
		"other:v1": other,
	}
	for repo, layers := range images {
		img, err := fixtures.Assemble(fixtures.ImageSpec{Platform: fixtures.LinuxAMD64, OCI: true, Layers: layers})
		if err != nil {
			t.Fatal(err)
		}
		dg, err := fixtures.Push(ctx, b.reg.Host+"/"+repo, img, b.reg.Transport(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		if repo == "app:v2" {
			b.app2 = dg
		}
	}
	for _, l := range []fixtures.Layer{shared[0], shared[1], tool[0], other[0]} {
		b.leftOut = append(b.leftOut, digestOf(l))
	}
	b.crossRepo = digestOf(other[0])

	dir, cacheDir := t.TempDir(), t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", deltaSpec(b.reg.Host, "app:v1"))
	if out, code := run(t, "build", "--cache-dir", cacheDir, spec); code != 0 {
		t.Fatalf("build v1: %d\n%s", code, out)
	}
	b.dist = filepath.Join(dir, "dist")
	b.base = t.TempDir()
	for n, body := range testdir.Snapshot(t, b.dist) {
		writeFile(t, b.base, n, body)
	}
	v1Lock := writeFile(t, t.TempDir(), "v1.lock", testdir.Snapshot(t, dir)["bundle.lock"])
	writeFile(t, dir, "bundle.toml", deltaSpec(b.reg.Host, "app:v2"))
	if out, code := run(t, "build", "--cache-dir", cacheDir, "--since", v1Lock, spec); code != 0 {
		t.Fatalf("build --since: %d\n%s", code, out)
	}
	b.delta = filepath.Join(b.dist, "delta")
	return b
}

// pullAll pulls ref from a registry with go-containerregistry, every blob,
// checking each against its digest, and returns the image's digest.
func pullAll(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	if _, err := img.RawConfigFile(); err != nil {
		t.Fatalf("pulling %s: config: %v", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	for _, l := range layers {
		// remote checks the digest when the body ends.
		rc, err := l.Compressed()
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if err != nil {
			t.Fatalf("pulling %s: layer: %v", ref, err)
		}
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// catalog lists a registry's repositories.
func catalog(t *testing.T, host string) []string {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var c struct{ Repositories []string }
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("catalog of %s: %v %s", host, err, body)
	}
	return c.Repositories
}

// push DELTA_DIR into a registry that holds BASE pushes only what the
// delta carries: the blobs it leaves out are found in the target (in the
// image's repository, or mounted from another), v2's images pull whole
// with their digests. Into an empty registry, every blob the delta leaves
// out is named at once and nothing is pushed.
func TestPushDelta(t *testing.T) {
	b := newDeltaBump(t)
	cache := t.TempDir()

	empty := testregistry.Start(t, testregistry.Options{})
	out, stderr, code := runSplit(t, "", "push", "--insecure", "--cache-dir", cache, "--to", empty.Host, b.delta)
	if code != exitFailure || !strings.Contains(stderr, "push BASE first") {
		t.Fatalf("push of a delta into an empty registry: exit %d\n%s%s", code, out, stderr)
	}
	for _, d := range b.leftOut {
		if !strings.Contains(stderr, "blob "+d) {
			t.Errorf("the refusal does not name %s:\n%s", d, stderr)
		}
	}
	if !strings.Contains(stderr, "core.delta.tar.zst") || !strings.Contains(stderr, b.reg.Host+"/app:v2 -> "+empty.Host+"/app") {
		t.Errorf("the refusal does not name the archive and image:\n%s", stderr)
	}
	if repos := catalog(t, empty.Host); len(repos) != 0 {
		t.Errorf("refused, but the registry now holds %v", repos)
	}

	// A delta archive away from its delta.json: its left-out layers are
	// missing blobs, and the message says why.
	alone := t.TempDir()
	writeFile(t, alone, "core.delta.tar.zst", testdir.Snapshot(t, b.delta)["core.delta.tar.zst"])
	if out, stderr, code := runSplit(t, "", "push", "--insecure", "--cache-dir", cache, "--to", empty.Host, alone); code != exitFailure || !strings.Contains(stderr, "named like a delta archive, but no delta.json beside it") {
		t.Errorf("a delta archive without delta.json: exit %d\n%s%s", code, out, stderr)
	}

	target := testregistry.Start(t, testregistry.Options{})
	pushJSONRun(t, "--insecure", "--cache-dir", cache, "--to", target.Host, b.base)
	out, stderr, code = runSplit(t, "", "--json", "push", "--insecure", "--cache-dir", cache, "--to", target.Host, b.delta)
	if code != 0 {
		t.Fatalf("push of the delta: exit %d\n%s%s", code, out, stderr)
	}
	var doc struct {
		Stats struct {
			BlobsUploaded int `json:"blobs-uploaded"`
			BlobsMounted  int `json:"blobs-mounted"`
			BlobsLeftOut  int `json:"blobs-left-out"`
			ManifestsPut  int `json:"manifests-put"`
		}
		Images []mappingEntry
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	// app:v2's own layer and config go up; other's layer is mounted into
	// app; the shared layers (in app and tool) and tool's are there.
	if s := doc.Stats; s.BlobsUploaded != 2 || s.BlobsMounted != 1 || s.BlobsLeftOut != 6 || s.ManifestsPut != 1 {
		t.Errorf("push of the delta: %+v", s)
	}
	for _, e := range doc.Images {
		if !e.DigestKept {
			t.Errorf("digest not kept: %+v", e)
		}
	}
	if got := pullAll(t, target.Host+"/app:v2"); got != b.app2 {
		t.Errorf("app:v2 pulled from the target: %s, want %s", got, b.app2)
	}
	if got, want := string(rawManifest(t, target.Host+"/app:v2", "--tls-verify=false")), string(rawManifest(t, b.reg.Host+"/app:v2", "--tls-verify=false")); got != want {
		t.Errorf("app:v2's manifest in the target:\n%s\nwant the source's\n%s", got, want)
	}
	pullAll(t, target.Host+"/tool:v1")

	// BASE's archives and the delta in one push, into an empty registry:
	// the blobs the delta leaves out come from BASE's archives.
	both := testregistry.Start(t, testregistry.Options{})
	pushJSONRun(t, "--insecure", "--cache-dir", cache, "--to", both.Host, b.base, b.delta)
	if got := pullAll(t, both.Host+"/app:v2"); got != b.app2 {
		t.Errorf("app:v2 pushed with BASE: %s, want %s", got, b.app2)
	}
	if _, err := os.Stat(filepath.Join(b.delta, "delta.json")); err != nil {
		t.Fatal(err)
	}
}

// serve BASE_DIR DELTA_DIR serves v2 whole: go-containerregistry pulls
// app:v2 by its per-host path, every blob checked, with its digest; the
// left-out layers come from BASE's archives, and serve says which from
// where. The delta alone is refused, every missing blob named.
func TestServeDelta(t *testing.T) {
	b := newDeltaBump(t)
	unpack := t.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var alone bytes.Buffer
	c := newRootCmd()
	c.SetArgs([]string{"serve", "--listen", "127.0.0.1:0", "--unpack-dir", unpack, b.delta})
	c.SetOut(&alone)
	c.SetErr(&alone)
	err := c.ExecuteContext(ctx)
	if exitCode(err) != exitFailure || !strings.Contains(fmt.Sprint(err), "serve BASE's archives with the delta") {
		t.Fatalf("serve of the delta alone: %v\n%s", err, alone.String())
	}
	for _, d := range b.leftOut {
		if !strings.Contains(err.Error(), "blob "+d) {
			t.Errorf("the refusal does not name %s: %v", d, err)
		}
	}

	url, printed, stop, done := startServeOutput(t, "--unpack-dir", unpack, b.base, b.delta)
	defer func() { stop(); <-done }()
	served := strings.TrimPrefix(url, "http://")
	perHost := strings.ReplaceAll(b.reg.Host, ":", "_")
	if got := pullAll(t, served+"/"+perHost+"/app:v2"); got != b.app2 {
		t.Errorf("app:v2 from serve: %s, want %s", got, b.app2)
	}
	if got, want := string(rawManifest(t, served+"/"+perHost+"/app:v2", "--tls-verify=false")), string(rawManifest(t, b.reg.Host+"/app:v2", "--tls-verify=false")); got != want {
		t.Errorf("app:v2's manifest from serve:\n%s\nwant the source's\n%s", got, want)
	}
	pullAll(t, served+"/"+perHost+"/tool:v1")
	pullAll(t, served+"/"+perHost+"/app:v1")
	if !strings.Contains(printed, "a delta archive ("+filepath.Join(b.delta, "delta.json")+"): it leaves out 4 blobs") ||
		!strings.Contains(printed, b.reg.Host+"/app:v2: blob "+b.crossRepo) || !strings.Contains(printed, "served from "+filepath.Join(b.base, "extra.tar")) {
		t.Errorf("serve does not say what it serves from where:\n%s", printed)
	}
}

// verify and inspect know a delta archive by the delta.json beside it:
// its left-out layers are not problems. verify DELTA_DIR checks the
// delta's files against delta.json and SHA256SUMS; with --base, that
// BASE holds every left-out layer whole and each unchanged archive as
// delta.json says, naming what is missing or damaged.
func TestVerifyAndInspectDelta(t *testing.T) {
	b := newDeltaBump(t)
	deltaArchive := filepath.Join(b.delta, "core.delta.tar.zst")

	out, code := run(t, "verify", b.delta)
	if code != 0 || !strings.Contains(out, "core.delta.tar.zst: OK (2 images, 5 blobs, 1.7 KiB, sha256 ") || !strings.Contains(out, "; a delta archive of core.tar.zst: 4 blobs (902 B) left out, that BASE holds)") ||
		!strings.Contains(out, "delta.json: OK") || !strings.Contains(out, "bundle.lock: OK") {
		t.Errorf("verify DELTA_DIR: exit %d\n%s", code, out)
	}
	if out, code := run(t, "verify", deltaArchive); code != 0 || !strings.Contains(out, "a delta archive of core.tar.zst") {
		t.Errorf("verify of the delta archive: exit %d\n%s", code, out)
	}
	out, code = run(t, "verify", "--base", b.base, b.delta)
	if code != 0 || !strings.Contains(out, "left out, each in BASE, whole") || !strings.Contains(out, "extra.tar: OK (1 image, 3 blobs, 9.0 KiB, sha256 ") || !strings.Contains(out, "; BASE's extra.tar, unchanged since BASE)") {
		t.Errorf("verify --base: exit %d\n%s", code, out)
	}
	stdout, stderr, code := runSplit(t, "", "--json", "verify", "--base", b.base, b.delta)
	var doc struct {
		OK    bool
		Delta struct {
			Dir, Base string
			Files     []struct{ Path string }
		}
		Archives []struct {
			Path  string
			OK    bool
			Delta struct {
				Kind, Of     string
				LeftOut      int   `json:"left-out"`
				LeftOutBytes int64 `json:"left-out-bytes"`
				BaseChecked  bool  `json:"base-checked"`
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != 0 {
		t.Fatalf("--json verify --base: exit %d %v\n%s%s", code, err, stdout, stderr)
	}
	if !doc.OK || doc.Delta.Dir != b.delta || doc.Delta.Base != b.base || len(doc.Delta.Files) != 2 || len(doc.Archives) != 2 ||
		doc.Archives[0].Delta.Kind != "delta" || doc.Archives[0].Delta.LeftOut != 4 || doc.Archives[0].Delta.LeftOutBytes != 902 || !doc.Archives[0].Delta.BaseChecked ||
		doc.Archives[1].Delta.Kind != "unchanged" || doc.Archives[1].Path != filepath.Join(b.base, "extra.tar") {
		t.Errorf("--json verify --base:\n%s", stdout)
	}

	// BASE without core.tar.zst, and extra.tar's copy of other's layer
	// damaged: every left-out blob is accounted for.
	broken := t.TempDir()
	files := testdir.Snapshot(t, b.base)
	writeFile(t, broken, "extra.tar", files["extra.tar"])
	c, err := archive.ReadFile(context.Background(), filepath.Join(broken, "extra.tar"), archive.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fi := c.Files["blobs/sha256/"+strings.TrimPrefix(b.crossRepo, "sha256:")]
	damaged := []byte(files["extra.tar"])
	damaged[fi.Offset+fi.Size/2] ^= 0xff
	writeFile(t, broken, "extra.tar", string(damaged))
	out, code = run(t, "verify", "--base", broken, b.delta)
	if code != exitFailure || strings.Count(out, "which the delta leaves out (BASE's group \"core\" holds it), is in no archive of BASE") != 3 ||
		!strings.Contains(out, "core.delta.tar.zst: blob "+b.crossRepo+", which the delta leaves out, is damaged in BASE: BASE's extra.tar: its copy hashes to") ||
		!strings.Contains(out, "extra.tar: BASE's copy of extra.tar (unchanged since BASE) is") {
		t.Errorf("verify --base of a broken BASE: exit %d\n%s", code, out)
	}

	// The delta's own files: bundle.lock edited, an archive delta.json
	// does not list.
	d2 := t.TempDir()
	for n, body := range testdir.Snapshot(t, b.delta) {
		writeFile(t, d2, n, body)
	}
	writeFile(t, d2, "bundle.lock", testdir.Snapshot(t, b.delta)["bundle.lock"]+"# edited\n")
	writeFile(t, d2, "old.delta.tar", files["extra.tar"])
	out, code = run(t, "verify", d2)
	if code != exitFailure || !strings.Contains(out, "bundle.lock: has sha256") || !strings.Contains(out, "bundle.lock: SHA256SUMS says") || strings.Contains(out, "bundle.lock: lockfile:") ||
		!strings.Contains(out, "old.delta.tar: is in the delta directory, but delta.json does not list it") {
		t.Errorf("verify of a damaged delta directory: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"verify", "--base", b.base, deltaArchive}, {"verify", b.delta, deltaArchive}} {
		if out, code := run(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}

	stdout, stderr, code = runSplit(t, "", "inspect", deltaArchive)
	if code != 0 || stderr != "" || !strings.Contains(stdout, "a delta archive of core.tar.zst (group \"core\", "+filepath.Join(b.delta, "delta.json")+"): it leaves out 4 layers (902 B) that BASE holds:") ||
		!strings.Contains(stdout, b.crossRepo+"  227 B  BASE's group \"extra\"") {
		t.Errorf("inspect of the delta archive: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, _, _ = runSplit(t, "", "--json", "inspect", deltaArchive)
	var ij struct {
		Problems []string
		Delta    struct {
			Of           string
			LeftOut      []struct{ Digest string } `json:"left-out"`
			LeftOutBytes int64                     `json:"left-out-bytes"`
		}
		Images []struct {
			Platforms []struct {
				Layers []struct {
					Missing bool
					LeftOut bool `json:"left-out"`
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &ij); err != nil {
		t.Fatal(err)
	}
	leftOut := 0
	for _, img := range ij.Images {
		for _, p := range img.Platforms {
			for _, l := range p.Layers {
				if l.Missing {
					t.Errorf("a layer is missing: %s", stdout)
				}
				if l.LeftOut {
					leftOut++
				}
			}
		}
	}
	if len(ij.Problems) != 0 || ij.Delta.Of != "core.tar.zst" || len(ij.Delta.LeftOut) != 4 || ij.Delta.LeftOutBytes != 902 || leftOut != 6 {
		t.Errorf("--json inspect of the delta archive (%d layers left out):\n%s", leftOut, stdout)
	}
	alone := filepath.Join(t.TempDir(), "core.delta.tar.zst")
	writeFile(t, filepath.Dir(alone), filepath.Base(alone), testdir.Snapshot(t, b.delta)["core.delta.tar.zst"])
	if _, stderr, _ := runSplit(t, "", "inspect", alone); !strings.Contains(stderr, "named like a delta archive, but no delta.json beside it lists it") {
		t.Errorf("inspect of a delta archive away from delta.json: %s", stderr)
	}
}
