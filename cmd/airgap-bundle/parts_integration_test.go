package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// A group over its max-size, from a real registry: build says it is
// written as parts (--json: part, parts, duplicated-bytes per archive);
// with a part gone, push and serve of the directory refuse naming it, and
// verify reports it missing by name.
func TestBuildPartsFromTheCommandLine(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	shared, err := random.Layer(300<<10, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for i := range 3 {
		own, err := random.Layer(600<<10, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := fixtures.Assemble(fixtures.ImageSpec{Platform: fixtures.LinuxAMD64, OCI: true, Layers: []fixtures.Layer{{Layer: shared}, {Layer: own}}})
		if err != nil {
			t.Fatal(err)
		}
		ref := fmt.Sprintf("%s/parts/img%d:v1", reg.Host, i)
		if _, err := fixtures.Push(context.Background(), ref, img, reg.Transport(), "", ""); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, fmt.Sprintf("%q", ref))
	}
	dir := t.TempDir()
	spec := writeFile(t, dir, "bundle.toml", fmt.Sprintf("[registries.%q]\ninsecure = true\n\n[[group]]\nname = \"big\"\narchive = \"big.tar\"\nmax-size = \"2MiB\"\nimages = [%s]\n", reg.Host, strings.Join(refs, ", ")))
	out, stderr, code := runSplit(t, "", "--json", "build", "--cache-dir", t.TempDir(), spec)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, out, stderr)
	}
	var res buildJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Archives) < 2 {
		t.Fatalf("%d archives at a 2 MiB max-size: %s", len(res.Archives), out)
	}
	var dup int64
	for i, a := range res.Archives {
		if a.Part != i+1 || a.Parts != len(res.Archives) || a.Size > 2<<20 || filepath.Base(a.Path) != fmt.Sprintf("big.part-%d-of-%d.tar", i+1, a.Parts) {
			t.Errorf("archive %d: %+v", i, a)
		}
		dup += a.Duplicated
	}
	if dup == 0 {
		t.Errorf("no duplicated bytes reported for a layer every image shares: %s", out)
	}
	text, code := run(t, "build", "--locked", "--cache-dir", t.TempDir(), spec)
	if code != 0 || !strings.Contains(text, `group "big" is over its max-size: written as parts`) {
		t.Errorf("build's summary does not say so (exit %d):\n%s", code, text)
	}

	dist := filepath.Join(dir, "dist")
	gone := filepath.Join(dist, fmt.Sprintf("big.part-2-of-%d.tar", len(res.Archives)))
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"push", dist, "--to", "127.0.0.1:1"},
		{"serve", dist, "--listen", "127.0.0.1:0"},
	} {
		if o, code := run(t, args...); code == 0 || !strings.Contains(o, "missing part") || !strings.Contains(o, filepath.Base(gone)) {
			t.Errorf("%v with a part gone: exit %d\n%s", args[0], code, o)
		}
	}
	if o, code := run(t, "verify", spec); code != exitFailure || !strings.Contains(o, filepath.Base(gone)) {
		t.Errorf("verify with a part gone: exit %d\n%s", code, o)
	}
	// One part given alone: verify reports the missing sibling by name,
	// inspect says which part it is and warns of the missing one.
	first := filepath.Join(dist, fmt.Sprintf("big.part-1-of-%d.tar", len(res.Archives)))
	if o, code := run(t, "verify", first); code != exitFailure || !strings.Contains(o, filepath.Base(gone)) {
		t.Errorf("verify of part 1 with part 2 gone: exit %d\n%s", code, o)
	}
	o, e, code := runSplit(t, "", "inspect", first)
	if code != 0 || !strings.Contains(o, fmt.Sprintf("part 1 of %d", len(res.Archives))) || !strings.Contains(e, filepath.Base(gone)) {
		t.Errorf("inspect of part 1: exit %d\n%s%s", code, o, e)
	}
}
