package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/internal/faultproxy"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// faultWorld is a real registry behind a fault-injecting proxy, holding the
// standard fixtures and one image with a 512 KiB layer ("big"), and a spec
// that bundles them through the proxy.
type faultWorld struct {
	px       *faultproxy.Proxy
	spec     string
	bigRef   string
	bigLayer string // path suffix of the big layer's blob
	bigSize  int64  // its size in bytes
}

func newFaultWorld(t *testing.T) *faultWorld {
	t.Helper()
	testregistry.Isolate(t)
	t.Setenv("SOURCE_DATE_EPOCH", "")
	reg := testregistry.Start(t, testregistry.Options{})
	push(t, reg, "", "")
	ld, lsize := pushRandomLayer(t, reg, "fixtures/big:v1", 512<<10)
	px := faultproxy.Start(t, reg.Host)
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", fmt.Sprintf(`
[registries.%[1]q]
insecure = true

[[group]]
name = "apps"
archive = "apps.tar"
platforms = ["linux/amd64"]
images = ["%[1]s/fixtures/big:v1", "%[1]s/fixtures/multi-oci:v1", "%[1]s/fixtures/single:v1"]
`, px.Host))
	return &faultWorld{px: px, spec: spec, bigRef: px.Host + "/fixtures/big:v1", bigLayer: "/blobs/" + ld.String(), bigSize: lsize}
}

// fast are the flags that keep retries quick in tests.
var fast = []string{"--retry-backoff", "10ms", "--response-timeout", "2s", "--stall-timeout", "1s"}

func (w *faultWorld) build(t *testing.T, out string, extra ...string) (string, int) {
	args := append([]string{"build"}, fast...)
	args = append(args, extra...)
	args = append(args, "--cache-dir", t.TempDir(), "--output", out, w.spec)
	return run(t, args...)
}

// Every transient fault is survived, the archive comes out byte-identical
// to a fault-free build, and the request counts show how: one retry, or a
// Range resume from the byte where the body stopped.
func TestBuildSurvivesTransientFaults(t *testing.T) {
	w := newFaultWorld(t)
	// The lockfile and the reference archive, without faults.
	ref := t.TempDir()
	if out, code := w.build(t, ref); code != 0 {
		t.Fatalf("fault-free build: exit %d\n%s", code, out)
	}
	want := sha(t, filepath.Join(ref, "apps.tar"))

	cases := []struct {
		name       string
		fault      faultproxy.Fault
		gets       int  // GETs of the big layer
		ranged     bool // the second one resumes with Range
		retryAfter time.Duration
	}{
		{"503", faultproxy.Status(503), 2, false, 0},
		{"500 with retry-after", faultproxy.StatusRetryAfter(500, time.Second), 2, false, 0},
		{"408", faultproxy.Status(408), 2, false, 0},
		{"429 with retry-after", faultproxy.StatusRetryAfter(429, time.Second), 2, false, time.Second},
		{"reset mid-body", faultproxy.ResetAfter(100 << 10), 2, true, 0},
		{"body cut short", faultproxy.CutAfter(200 << 10), 2, true, 0},
		{"stalled body", faultproxy.StallAfter(300 << 10), 2, true, 0},
		{"flipped byte", faultproxy.FlipAt(1000), 2, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.px.ClearRules()
			w.px.ResetCounters()
			h := w.px.Add(faultproxy.Rule{Method: "GET", Path: w.bigLayer, When: faultproxy.Nth(1), Fault: c.fault})
			out := t.TempDir()
			start := time.Now()
			stdout, code := w.build(t, out, "--locked", "--verbose")
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, w.px.LogString())
			}
			if c.retryAfter > 0 && time.Since(start) < c.retryAfter {
				t.Errorf("retried after %s, before the registry's Retry-After of %s", time.Since(start), c.retryAfter)
			}
			if h.Fired() != 1 {
				t.Fatalf("fault fired %d times", h.Fired())
			}
			if got := sha(t, filepath.Join(out, "apps.tar")); got != want {
				t.Errorf("archive differs from the fault-free build")
			}
			s := w.px.Stats()
			gets, ranges := 0, 0
			for _, e := range w.px.Log() {
				if e.Method == "GET" && strings.HasSuffix(e.Path, w.bigLayer) {
					gets++
					if e.Range != "" {
						ranges++
					}
				}
			}
			if gets != c.gets || (ranges > 0) != c.ranged {
				t.Errorf("%d GETs of the layer (%d with Range), want %d (Range: %v); all Range requests: %v\n%s", gets, ranges, c.gets, c.ranged, s.Ranges, w.px.LogString())
			}
			if !strings.Contains(stdout, "attempt=2") {
				t.Errorf("no retry logged at --verbose:\n%s", stdout)
			}
		})
	}
}

// What must fail fails, fast, with nothing written: a refusal that is not
// transient (401), a registry that keeps failing, and one that never
// answers.
func TestBuildFailsCleanlyOnPersistentFaults(t *testing.T) {
	w := newFaultWorld(t)
	out := t.TempDir()
	if o, code := w.build(t, out); code != 0 {
		t.Fatalf("fault-free build: exit %d\n%s", code, o)
	}
	good := sha(t, filepath.Join(out, "apps.tar"))
	sums := sha(t, filepath.Join(out, "SHA256SUMS"))

	cases := []struct {
		name  string
		fault faultproxy.Fault
		want  string
		gets  int
	}{
		// Refused by the run's shared transport, then by containers/image
		// (whose error the user sees): one request each, no retries.
		{"401 midway", faultproxy.Unauthorized(), "401", 2},
		{"503 every time", faultproxy.Status(503), "gave up after 3 attempts", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.px.ClearRules()
			w.px.ResetCounters()
			w.px.Add(faultproxy.Rule{Method: "GET", Path: w.bigLayer, Fault: c.fault})
			stdout, code := w.build(t, out, "--locked", "--retries", "3")
			if code != exitFailure || !strings.Contains(stdout, c.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, exitFailure, c.want, stdout)
			}
			if got := sha(t, filepath.Join(out, "apps.tar")); got != good {
				t.Error("the previous archive changed")
			}
			if got := sha(t, filepath.Join(out, "SHA256SUMS")); got != sums {
				t.Error("SHA256SUMS changed")
			}
			if entries, _ := os.ReadDir(out); len(entries) != 2 {
				t.Errorf("output directory holds %d entries, want 2", len(entries))
			}
			gets := 0
			for _, e := range w.px.Log() {
				if e.Method == "GET" && strings.HasSuffix(e.Path, w.bigLayer) {
					gets++
				}
			}
			if gets != c.gets {
				t.Errorf("%d GETs of the layer, want %d\n%s", gets, c.gets, w.px.LogString())
			}
		})
	}
}

// lock survives a 503 on a manifest, and gives up on a registry that
// accepts connections and never answers, within its timeouts.
func TestLockRetriesAndTimesOut(t *testing.T) {
	w := newFaultWorld(t)
	h := w.px.Add(faultproxy.Rule{Method: "GET", Path: "/manifests/", When: faultproxy.First(2), Fault: faultproxy.Status(503)})
	args := append([]string{"lock"}, fast...)
	if out, code := run(t, append(args, w.spec)...); code != 0 || h.Fired() != 2 {
		t.Fatalf("lock with two 503s: exit %d, %d faults\n%s", code, h.Fired(), out)
	}

	hole := faultproxy.Blackhole(t)
	spec := writeFile(t, t.TempDir(), "bundle.toml", fmt.Sprintf(`
[registries.%[1]q]
insecure = true

[[group]]
name = "a"
images = ["%[1]s/x:1"]
`, hole))
	start := time.Now()
	out, code := run(t, "lock", "--retry-backoff", "10ms", "--retries", "2", "--response-timeout", "1s", spec)
	if code != exitFailure || !strings.Contains(out, "no response from the registry") {
		t.Fatalf("lock against a silent registry: exit %d\n%s", code, out)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s", d)
	}
}

// A cold build (no lockfile, empty cache) locks first; what the lock read
// (manifests, indexes, configs) goes into the cache, so no manifest or blob
// is requested twice.
func TestColdBuildFetchesEachDocumentOnce(t *testing.T) {
	w := newFaultWorld(t)
	w.px.ResetCounters()
	if out, code := w.build(t, t.TempDir()); code != 0 {
		t.Fatalf("cold build: exit %d\n%s", code, out)
	}
	seen := map[string]int{}
	for _, e := range w.px.Log() {
		if e.Method == "GET" && (strings.Contains(e.Path, "/manifests/") || strings.Contains(e.Path, "/blobs/")) {
			seen[e.Path]++
		}
	}
	if len(seen) == 0 {
		t.Fatal("no requests seen")
	}
	for p, n := range seen {
		if n > 1 {
			t.Errorf("GET %s %d times\n%s", p, n, w.px.LogString())
		}
	}
}

// A cold build starts downloading an image's layers as soon as the lock has
// resolved that image, while it still waits for the others: the big layer's
// download starts before a slow manifest of another image has been served.
// (Before, every download waited for the whole lock.)
func TestColdBuildDownloadsWhileLocking(t *testing.T) {
	w := newFaultWorld(t)
	w.px.ResetCounters()
	w.px.Add(faultproxy.Rule{Name: "slow manifest", Method: "GET", Path: `^/v2/fixtures/single/manifests/v1$`, When: faultproxy.Nth(1), Fault: faultproxy.Slow(1000)})
	out := t.TempDir()
	if out, code := w.build(t, out); code != 0 {
		t.Fatalf("cold build: exit %d\n%s", code, out)
	}
	var layer, slow faultproxy.Entry
	for _, e := range w.px.Log() {
		if e.Method == "GET" && strings.HasSuffix(e.Path, w.bigLayer) && layer.Seq == 0 {
			layer = e
		}
		if e.Fault == "slow manifest" {
			slow = e
		}
	}
	if layer.Seq == 0 || slow.Seq == 0 || slow.End.IsZero() {
		t.Fatalf("big layer or slow manifest request missing\n%s", w.px.LogString())
	}
	if !layer.Start.Before(slow.End) {
		t.Errorf("the big layer was requested %s after the slow manifest was served: downloads waited for the whole lock\n%s",
			layer.Start.Sub(slow.End), w.px.LogString())
	}
	// And the head start changes nothing in what is built.
	again := t.TempDir()
	if out, code := w.build(t, again, "--locked"); code != 0 {
		t.Fatalf("second build: exit %d\n%s", code, out)
	}
	if a, b := mustRead(t, filepath.Join(out, "apps.tar")), mustRead(t, filepath.Join(again, "apps.tar")); a != b {
		t.Error("archives of the cold build and of a build from the lockfile differ")
	}
}

// A writer that reaches a layer still downloading copies it as it arrives
// (from the partial file), instead of waiting for the whole: while a slowed
// layer is being served, the archive's temporary file grows.
func TestBuildWritesWhileDownloading(t *testing.T) {
	w := newFaultWorld(t)
	w.px.Add(faultproxy.Rule{Name: "slow layer", Method: "GET", Path: w.bigLayer + "$", When: faultproxy.Nth(1), Fault: faultproxy.Slow(w.bigSize / 3)})
	out := t.TempDir()
	done := make(chan int, 1)
	go func() {
		_, code := w.build(t, out)
		done <- code
	}()
	inFlight := func() bool {
		for _, e := range w.px.Log() {
			if e.Fault == "slow layer" {
				return e.End.IsZero()
			}
		}
		return false
	}
	sizes := map[int64]bool{} // archive sizes seen while the layer was still being served
	for running := true; running; {
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("build: exit %d", code)
			}
			running = false
		case <-time.After(20 * time.Millisecond):
			tmps, _ := filepath.Glob(filepath.Join(out, ".apps.tar.tmp-*"))
			if len(tmps) == 1 && inFlight() {
				if st, err := os.Stat(tmps[0]); err == nil {
					sizes[st.Size()] = true
				}
			}
		}
	}
	// Where the layer lies in the archive: without following, the archive
	// could not get past its first byte before the download ended.
	c, err := archive.ReadFile(context.Background(), filepath.Join(out, "apps.tar"), archive.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	layer := c.Files["blobs/sha256/"+strings.TrimPrefix(w.bigLayer, "/blobs/sha256:")]
	if layer == nil {
		t.Fatalf("layer %s not in the archive", w.bigLayer)
	}
	var past int
	for n := range sizes {
		if n > layer.Offset+64<<10 {
			past++
		}
	}
	if past < 2 {
		t.Errorf("while the layer was served (about 3 s), the archive got past its start (byte %d) %d times (sizes %v): the writer waited for the whole layer", layer.Offset, past, sizes)
	}
}

// pushRandomLayer pushes a linux/amd64 image of one random layer of size
// bytes to ref on reg and returns the layer's digest and size.
func pushRandomLayer(t *testing.T, reg *testregistry.Registry, ref string, size int64) (v1.Hash, int64) {
	t.Helper()
	img, err := random.Image(size, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg.OS, cfg.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := layers[0].Digest()
	lsize, _ := layers[0].Size()
	if _, err := fixtures.Push(context.Background(), reg.Host+"/"+ref, img, reg.Transport(), "", ""); err != nil {
		t.Fatal(err)
	}
	return ld, lsize
}
