package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/faultproxy"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// build --no-cache: the big layer streams from the registry into the
// archive, which comes out byte-identical to a cached build; no cache is
// written and the run's store is gone afterwards. A connection dropped
// mid-layer resumes with a Range request from where the archive's copy
// stopped; a flipped byte fails the build and leaves the previous archive
// as it was.
func TestBuildNoCache(t *testing.T) {
	testregistry.Isolate(t)
	t.Setenv("SOURCE_DATE_EPOCH", "")
	reg := testregistry.Start(t, testregistry.Options{})
	push(t, reg, "", "")
	ld, _ := pushRandomLayer(t, reg, "fixtures/big:v1", 8<<20)
	bigLayer := "/blobs/" + ld.String()
	px := faultproxy.Start(t, reg.Host)
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", fmt.Sprintf(`
[registries.%[1]q]
insecure = true

[[group]]
name = "apps"
archive = "apps.tar"
platforms = ["linux/amd64"]
images = ["%[1]s/fixtures/big:v1", "%[1]s/fixtures/single:v1"]
`, px.Host))
	xdg := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", xdg)
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())

	ref := t.TempDir()
	if out, code := run(t, append(append([]string{"build"}, fast...), "--cache-dir", t.TempDir(), "--output", ref, spec)...); code != 0 {
		t.Fatalf("cached build: exit %d\n%s", code, out)
	}
	want := sha(t, filepath.Join(ref, "apps.tar"))

	gets := func() (n, ranged int) {
		for _, e := range px.Log() {
			if e.Method == "GET" && strings.HasSuffix(e.Path, bigLayer) {
				n++
				if e.Range != "" {
					ranged++
				}
			}
		}
		return n, ranged
	}
	for _, c := range []struct {
		name         string
		fault        *faultproxy.Fault
		gets, ranged int
	}{
		{"no fault", nil, 1, 0},
		{"reset mid-layer", ptr(faultproxy.ResetAfter(1 << 20)), 2, 1},
		{"body cut short", ptr(faultproxy.CutAfter(3 << 20)), 2, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			px.ClearRules()
			px.ResetCounters()
			if c.fault != nil {
				px.Add(faultproxy.Rule{Method: "GET", Path: bigLayer, When: faultproxy.Nth(1), Fault: *c.fault})
			}
			out := t.TempDir()
			stdout, code := run(t, append(append([]string{"build"}, fast...), "--locked", "--no-cache", "--verbose", "--output", out, spec)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, px.LogString())
			}
			if got := sha(t, filepath.Join(out, "apps.tar")); got != want {
				t.Error("the --no-cache archive differs from the cached build's")
			}
			if !strings.Contains(stdout, "streamed=1") {
				t.Errorf("the big layer was not streamed:\n%s", stdout)
			}
			if n, r := gets(); n != c.gets || r != c.ranged {
				t.Errorf("%d GETs of the layer (%d with Range), want %d (%d)\n%s", n, r, c.gets, c.ranged, px.LogString())
			}
			var names []string
			ents, _ := os.ReadDir(out)
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if !slices.Equal(names, []string{"SHA256SUMS", "apps.tar"}) {
				t.Errorf("output directory holds %v: the run's store stayed", names)
			}
			if _, err := os.Stat(filepath.Join(xdg, "airgap-bundle", "blobs")); err == nil {
				t.Error("--no-cache wrote a blob cache")
			}
		})
	}

	t.Run("flipped byte", func(t *testing.T) {
		out := t.TempDir()
		if o, code := run(t, append(append([]string{"build"}, fast...), "--locked", "--no-cache", "--output", out, spec)...); code != 0 {
			t.Fatalf("exit %d\n%s", code, o)
		}
		good := sha(t, filepath.Join(out, "apps.tar"))
		px.ClearRules()
		px.ResetCounters()
		px.Add(faultproxy.Rule{Method: "GET", Path: bigLayer, Fault: faultproxy.FlipAt(1000)})
		stdout, code := run(t, append(append([]string{"build"}, fast...), "--locked", "--no-cache", "--output", out, spec)...)
		if code == 0 || !strings.Contains(stdout, ld.String()) {
			t.Fatalf("a flipped byte: exit %d, want a failure naming the layer:\n%s", code, stdout)
		}
		if got := sha(t, filepath.Join(out, "apps.tar")); got != good {
			t.Error("the previous archive changed")
		}
		if ents, _ := os.ReadDir(out); len(ents) != 2 {
			t.Errorf("output directory holds %d entries after a failed build, want 2", len(ents))
		}
	})
}

func ptr[T any](v T) *T { return &v }
