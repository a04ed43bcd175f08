package bundler

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testdir"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// partsWorld is a group of five images, each a 300 KiB layer they share
// and a 600 KiB layer of its own (random: incompressible).
func partsWorld(t *testing.T, archiveName string, extra ...string) (string, *lockfile.Lock, memFetcher) {
	t.Helper()
	fetch := memFetcher{}
	shared, err := random.Layer(300<<10, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	lock := &lockfile.Lock{Version: lockfile.Version}
	lg := lockfile.Group{Name: "big", Platforms: []string{"linux/amd64"}, Index: "original"}
	var refs []string
	for i := range 5 {
		own, err := random.Layer(600<<10, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := fixtures.Assemble(fixtures.ImageSpec{Platform: fixtures.LinuxAMD64, OCI: true, Layers: []fixtures.Layer{{Layer: shared, CreatedBy: "shared"}, {Layer: own, CreatedBy: fmt.Sprint(i)}}})
		if err != nil {
			t.Fatal(err)
		}
		fetch.addImage(t, img)
		ref := fmt.Sprintf("registry.test/img%d:v1", i)
		refs = append(refs, fmt.Sprintf("%q", ref))
		lg.Images = append(lg.Images, lockEntry(t, ref, img, "linux/amd64"))
	}
	lock.Groups = append(lock.Groups, lg)
	lock.Sort()
	spec := fmt.Sprintf("[[group]]\nname = \"big\"\narchive = %q\nimages = [%s]\n%s", archiveName, strings.Join(refs, ", "), strings.Join(extra, "\n"))
	return spec, lock, fetch
}

// Over its max-size a group is written as parts, each at most max-size,
// each a complete archive that reads without a problem; together they
// hold every image once, and a layer shared across parts is counted as
// their overhead. The same lock gives the same parts, byte for byte.
func TestGroupOverMaxSizeIsWrittenAsParts(t *testing.T) {
	for _, name := range []string{"big.tar", "big.tar.zst"} {
		t.Run(name, func(t *testing.T) {
			spec, lock, fetch := partsWorld(t, name)
			const max = 2 << 20
			c, err := cache.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			var dirs []string
			var results []ArchiveResult
			for range 2 {
				out := t.TempDir()
				results, err = Build(context.Background(), loadSpec(t, spec), lock, c, fetch, BuildOptions{OutputDir: out, MaxSize: max})
				if err != nil {
					t.Fatal(err)
				}
				dirs = append(dirs, out)
			}
			if len(results) < 2 {
				t.Fatalf("%d archives for 4.5 MiB at a 2 MiB max-size", len(results))
			}
			images := map[string]int{}
			var duplicated int64
			for i, r := range results {
				if r.Part != i+1 || r.Parts != len(results) || filepath.Base(r.Path) != PartName(name, i+1, len(results)) {
					t.Errorf("archive %d: %s, part %d of %d", i, r.Path, r.Part, r.Parts)
				}
				if r.Size > max {
					t.Errorf("%s is %d bytes, over %d", r.Path, r.Size, max)
				}
				duplicated += r.Duplicated
				ac, err := archive.ReadFile(context.Background(), r.Path, archive.ReadOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if probs := ac.Check(); len(probs) > 0 {
					t.Errorf("%s is not a complete archive: %v", r.Path, probs)
				}
				for _, img := range ac.Images {
					for _, n := range img.Names {
						images[n]++
					}
				}
			}
			if len(images) != 5 {
				t.Errorf("the parts hold %d images, want 5: %v", len(images), images)
			}
			for n, k := range images {
				if k != 1 {
					t.Errorf("%s is in %d parts", n, k)
				}
			}
			if duplicated == 0 {
				t.Error("no overhead reported: the shared layer is in every part")
			}
			a, b := testdir.Snapshot(t, dirs[0]), testdir.Snapshot(t, dirs[1])
			for n, body := range a {
				if b[n] != body {
					t.Errorf("%s differs between two builds of the same lock", n)
				}
			}
			sums := a["SHA256SUMS"]
			for _, r := range results {
				if !strings.Contains(sums, "  "+filepath.Base(r.Path)+"\n") {
					t.Errorf("SHA256SUMS does not list %s", filepath.Base(r.Path))
				}
			}

			// Built again without a max-size: one archive, and the parts go.
			if _, err := Build(context.Background(), loadSpec(t, spec), lock, c, fetch, BuildOptions{OutputDir: dirs[0]}); err != nil {
				t.Fatal(err)
			}
			left := testdir.Snapshot(t, dirs[0])
			if _, ok := left[name]; !ok || len(left) != 2 || strings.Contains(left["SHA256SUMS"], ".part-") {
				t.Errorf("after a build without max-size: %v", keys(left))
			}
		})
	}
}

// An image larger than max-size is named with its size and the limit,
// every such image at once, and nothing is written.
func TestImagesOverMaxSizeAreNamed(t *testing.T) {
	spec, lock, fetch := partsWorld(t, "big.tar")
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	_, err = Build(context.Background(), loadSpec(t, spec), lock, c, fetch, BuildOptions{OutputDir: out, MaxSize: 800 << 10})
	if !errors.Is(err, errdefs.ErrSpec) {
		t.Fatalf("err = %v, want a spec error", err)
	}
	for i := range 5 {
		if !strings.Contains(err.Error(), fmt.Sprintf("image registry.test/img%d:v1 is ", i)) {
			t.Errorf("image %d is not named: %v", i, err)
		}
	}
	if !strings.Contains(err.Error(), "over the group's max-size of 800.0 KiB") {
		t.Errorf("the limit is not said: %v", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("a refused build wrote %v", left)
	}
}

func TestPartNames(t *testing.T) {
	for _, c := range []struct{ archive, want string }{
		{"core.tar", "core.part-2-of-3.tar"},
		{"core.tar.zst", "core.part-2-of-3.tar.zst"},
		{"k3s.v1.28.tgz", "k3s.v1.28.part-2-of-3.tgz"},
	} {
		if got := PartName(c.archive, 2, 3); got != c.want {
			t.Errorf("PartName(%s) = %s, want %s", c.archive, got, c.want)
		}
		if !isPartOf(c.want, c.archive) || !isPartOf(c.archive, c.archive) || isPartOf("other.part-1-of-2.tar", c.archive) {
			t.Errorf("isPartOf(%s) wrong", c.archive)
		}
	}
}

// verify takes a group's parts as a set: each part checked against the
// images it holds, a missing part reported by its name, and its images
// as in no part.
func TestVerifyParts(t *testing.T) {
	spec, lock, fetch := partsWorld(t, "big.tar.gz")
	s := loadSpec(t, spec)
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	results, err := Build(context.Background(), s, lock, c, fetch, BuildOptions{OutputDir: out, MaxSize: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	reports, err := Verify(context.Background(), s, lock, VerifyOptions{OutputDir: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != len(results) {
		t.Fatalf("%d reports for %d parts", len(reports), len(results))
	}
	for _, r := range reports {
		if !r.OK() {
			t.Errorf("%s: %v", r.Name, r.Problems)
		}
	}
	gone := results[1]
	ac, err := archive.ReadFile(context.Background(), gone.Path, archive.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone.Path); err != nil {
		t.Fatal(err)
	}
	reports, err = Verify(context.Background(), s, lock, VerifyOptions{OutputDir: out})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string][]archive.ProblemKind{}
	missing := map[string]bool{}
	for _, r := range reports {
		for _, p := range r.Problems {
			kinds[r.Name] = append(kinds[r.Name], p.Kind)
			if p.Kind == KindImageMissing {
				missing[p.Image] = true
			}
		}
	}
	if k := kinds[filepath.Base(gone.Path)]; len(k) != 1 || k[0] != KindArchiveMissing {
		t.Errorf("the missing part %s: %v", filepath.Base(gone.Path), kinds)
	}
	for _, img := range ac.Images {
		for _, n := range img.Names {
			if !missing[n] {
				t.Errorf("%s, only in the missing part, is not reported missing: %v", n, kinds)
			}
		}
	}
}

// A delta of a group written as parts is a delta per part; apply rebuilds
// every part byte for byte.
func TestDeltaOfParts(t *testing.T) {
	spec, lock1, fetch := partsWorld(t, "big.tar")
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const max = 2 << 20
	base := t.TempDir()
	if _, err := Build(context.Background(), loadSpec(t, spec), lock1, c, fetch, BuildOptions{OutputDir: base, MaxSize: max}); err != nil {
		t.Fatal(err)
	}
	// v2: img4 is rebuilt with a new layer of its own.
	own, err := random.Layer(600<<10, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := fixtures.Assemble(fixtures.ImageSpec{Platform: fixtures.LinuxAMD64, OCI: true, Layers: []fixtures.Layer{{Layer: own, CreatedBy: "v2"}}})
	if err != nil {
		t.Fatal(err)
	}
	fetch.addImage(t, img)
	lock2 := &lockfile.Lock{Version: lockfile.Version, Groups: []lockfile.Group{lock1.Groups[0]}}
	lock2.Groups[0].Images = append([]lockfile.Image(nil), lock1.Groups[0].Images...)
	for i, e := range lock2.Groups[0].Images {
		if e.Ref == "registry.test/img4:v1" {
			lock2.Groups[0].Images[i] = lockEntry(t, e.Ref, img, "linux/amd64")
		}
	}
	b1, _ := lock1.Encode("bundle.toml")
	b2, _ := lock2.Encode("bundle.toml")
	full, deltaDir := t.TempDir(), t.TempDir()
	results, dr, err := BuildDelta(context.Background(), loadSpec(t, spec), lock2, c, fetch, BuildOptions{OutputDir: full, MaxSize: max},
		DeltaOptions{Dir: deltaDir, Lockfile: b2, Since: &Since{Source: "v1", Lock: lock1, LockSHA256: fmt.Sprintf("%x", sha256Sum(b1))}})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 2 || len(dr.Manifest.Archives) != len(results) {
		t.Fatalf("%d parts, %d in delta.json", len(results), len(dr.Manifest.Archives))
	}
	for _, a := range dr.Manifest.Archives {
		if a.Delta == nil || !strings.Contains(a.Delta.Name, ".part-") {
			t.Errorf("part %s: delta %+v", a.Name, a.Delta)
		}
	}
	out := t.TempDir()
	if _, err := delta.Apply(context.Background(), deltaDir, delta.ApplyOptions{Base: base, Out: out}); err != nil {
		t.Fatal(err)
	}
	sameArchives(t, out, full)
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// With split-oversize, an image over max-size is a part of its own cut
// into chunks of at most max-size, with a .sha256 of the whole; join
// makes the archive again, and verify reads the chunks joined.
func TestSplitOversizeCutsIntoChunks(t *testing.T) {
	spec, lock, fetch := partsWorld(t, "big.tar", `max-size = "2MiB"`, "split-oversize = true")
	s := loadSpec(t, spec)
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	const max = 700 << 10 // every 900 KiB image is over it
	results, err := Build(context.Background(), s, lock, c, fetch, BuildOptions{OutputDir: out, MaxSize: max})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 5 {
		t.Fatalf("%d parts for five oversize images", len(results))
	}
	files := testdir.Snapshot(t, out)
	for _, r := range results {
		if len(r.Chunks) != 2 {
			t.Fatalf("%s: %d chunks", r.Path, len(r.Chunks))
		}
		for _, ch := range r.Chunks {
			if ch.Size > max || !strings.Contains(files[SumsFile], ch.SHA256+"  "+filepath.Base(ch.Path)+"\n") {
				t.Errorf("%s: %d bytes, listed %v", ch.Path, ch.Size, strings.Contains(files[SumsFile], filepath.Base(ch.Path)))
			}
		}
		if _, ok := files[filepath.Base(r.Path)]; ok {
			t.Errorf("%s: the whole archive was written beside its chunks", r.Path)
		}
		if files[filepath.Base(r.Path)+".sha256"] != r.SHA256+"  "+filepath.Base(r.Path)+"\n" {
			t.Errorf("%s.sha256: %q", r.Path, files[filepath.Base(r.Path)+".sha256"])
		}
	}
	reports, err := Verify(context.Background(), s, lock, VerifyOptions{OutputDir: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		if !r.OK() || r.Chunks != 2 {
			t.Errorf("%s (%d chunks): %v", r.Name, r.Chunks, r.Problems)
		}
	}
	// Joined, a part is a complete archive with the sha256 build gave it.
	first := results[0]
	sum, err := archive.Join(context.Background(), first.Path)
	if err != nil || sum != first.SHA256 {
		t.Fatalf("join: %s, %v; want %s", sum, err, first.SHA256)
	}
	ac, err := archive.ReadFile(context.Background(), first.Path, archive.ReadOptions{})
	if err != nil || len(ac.Check()) > 0 || len(ac.Images) != 1 {
		t.Fatalf("the joined part: %v %v", err, ac.Check())
	}
	os.Remove(first.Path)
	// A chunk gone: verify names it.
	gone := results[1].Chunks[1].Path
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	reports, err = Verify(context.Background(), s, lock, VerifyOptions{OutputDir: out})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range reports {
		for _, p := range r.Problems {
			found = found || p.Kind == KindArchiveMissing && strings.Contains(p.Detail, filepath.Base(gone))
		}
	}
	if !found {
		t.Errorf("a missing chunk is not named: %+v", reports)
	}
	// Without split-oversize the same build is refused.
	spec2, _, _ := partsWorld(t, "big.tar")
	if _, err := Build(context.Background(), loadSpec(t, spec2), lock, c, fetch, BuildOptions{OutputDir: t.TempDir(), MaxSize: max}); !errors.Is(err, errdefs.ErrSpec) || !strings.Contains(err.Error(), "split-oversize = true") {
		t.Errorf("oversize without split-oversize: %v", err)
	}
}
