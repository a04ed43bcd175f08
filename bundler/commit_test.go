package bundler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/internal/testdir"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/sums"
)

const threeGroups = `
platforms = ["linux/amd64"]

[[group]]
name = "one"
archive = "one.tar"
images = ["registry.test/one:v1"]

[[group]]
name = "two"
archive = "two.tar.zst"
images = ["registry.test/two:v1"]

[[group]]
name = "three"
archive = "three.tar.gz"
images = ["registry.test/three:v1"]
`

type threeWorld struct {
	spec  *config.Spec
	lock  *lockfile.Lock
	fetch memFetcher
	third digest.Digest // a layer only group "three" has
}

func newThreeWorld(t *testing.T) *threeWorld {
	t.Helper()
	w := &threeWorld{spec: loadSpec(t, threeGroups), fetch: memFetcher{}, lock: &lockfile.Lock{Version: lockfile.Version}}
	for _, name := range []string{"one", "two", "three"} {
		img, err := fixtures.Image(name, fixtures.LinuxAMD64, 2)
		if err != nil {
			t.Fatal(err)
		}
		w.fetch.addImage(t, img)
		w.lock.Groups = append(w.lock.Groups, lockfile.Group{Name: name, Platforms: []string{"linux/amd64"}, Index: "original",
			Images: []lockfile.Image{lockEntry(t, "registry.test/"+name+":v1", img, "linux/amd64")}})
		if name == "three" {
			layers, _ := img.Layers()
			d, _ := layers[0].Digest()
			w.third = digest.Digest(d.String())
		}
	}
	if plan, err := NewPlan(w.spec, w.lock, LockOptions{}); err != nil || len(plan.Drift()) > 0 {
		t.Fatalf("test lockfile drifts from the spec: %v %v", err, plan.Drift())
	}
	return w
}

func (w *threeWorld) build(ctx context.Context, t *testing.T, c *cache.Cache, out string, mtime time.Time, rep progress.Reporter, groups ...string) error {
	t.Helper()
	if c == nil {
		var err error
		if c, err = cache.Open(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Build(ctx, w.spec, w.lock, c, w.fetch, BuildOptions{OutputDir: out, ModTime: mtime, Progress: rep, Groups: groups})
	return err
}

// checkSumsAgree is sha256sum -c SHA256SUMS, plus: every archive is listed.
func checkSumsAgree(t *testing.T, dir string, archives ...string) {
	t.Helper()
	s, err := sums.Read(filepath.Join(dir, SumsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range archives {
		if _, ok := s[a]; !ok {
			t.Errorf("SHA256SUMS lacks %s", a)
		}
	}
	for name, sum := range s {
		b, err := os.ReadFile(filepath.Join(dir, name))
		h := sha256.Sum256(b)
		if err != nil || hex.EncodeToString(h[:]) != sum {
			t.Errorf("SHA256SUMS: %s: FAILED (%v)", name, err)
		}
	}
}

// hookReporter calls on when a task starts.
type hookReporter struct{ on func(name string) }

func (h hookReporter) Task(name string, total int64, unit progress.Unit) progress.Task {
	h.on(name)
	return nopTask{}
}
func (hookReporter) Wait() {}

type nopTask struct{}

func (nopTask) Add(int64)  {}
func (nopTask) Done(error) {}

// Issue 8, defect 5: a build stopped while writing its third group (Ctrl-C,
// or a blob that turns out bad) changes nothing in the output directory:
// the previous three archives and SHA256SUMS stay byte-identical, and no
// temporary file is left.
func TestStoppedBuildChangesNothing(t *testing.T) {
	cases := []struct {
		name  string
		cause error
		stop  func(c *cache.Cache, w *threeWorld, cancel context.CancelFunc)
	}{
		{"ctrl-c during the third group", context.Canceled, func(_ *cache.Cache, _ *threeWorld, cancel context.CancelFunc) { cancel() }},
		{"bad blob in the third group", cache.ErrDigest, func(c *cache.Cache, w *threeWorld, _ context.CancelFunc) {
			p := filepath.Join(c.Dir(), "blobs", "sha256", w.third.Encoded())
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0xff
			os.WriteFile(p, b, 0o644)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newThreeWorld(t)
			out := t.TempDir()
			// The cache of an earlier run: what it holds is verified again
			// when read (a blob this run downloaded itself is not).
			c, err := cache.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := w.build(context.Background(), t, c, out, time.Unix(0, 0), nil); err != nil {
				t.Fatal(err)
			}
			before := testdir.Snapshot(t, out)

			// A new SOURCE_DATE_EPOCH: every archive would change.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			var written []string
			rep := hookReporter{on: func(name string) {
				mu.Lock()
				defer mu.Unlock()
				if strings.HasPrefix(name, "write ") {
					written = append(written, name)
					if name == "write three.tar.gz" {
						tc.stop(c, w, cancel)
					}
				}
			}}
			err = w.build(ctx, t, c, out, time.Unix(3600, 0), rep)
			if !errors.Is(err, errdefs.ErrBuild) || !errors.Is(err, tc.cause) {
				t.Fatalf("build error %v: want ErrBuild and %v", err, tc.cause)
			}
			if len(written) != 3 {
				t.Fatalf("wrote %v: the stop did not come during the third group", written)
			}
			after := testdir.Snapshot(t, out)
			if !maps.Equal(before, after) {
				t.Errorf("output directory changed: before %v, after %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
				for name := range before {
					if before[name] != after[name] {
						t.Errorf("%s changed", name)
					}
				}
			}
			checkSumsAgree(t, out, "one.tar", "two.tar.zst", "three.tar.gz")

			// And the next good build replaces all three.
			if err := w.build(context.Background(), t, nil, out, time.Unix(3600, 0), nil); err != nil {
				t.Fatal(err)
			}
			checkSumsAgree(t, out, "one.tar", "two.tar.zst", "three.tar.gz")
			if now := testdir.Snapshot(t, out); now["one.tar"] == before["one.tar"] || len(now) != 4 {
				t.Errorf("rebuild: %v", slices.Sorted(maps.Keys(now)))
			}
		})
	}
}

// A commit cut short (kill -9, power loss) after renaming one of two new
// archives, with the journal written and a temporary file left: the next
// build, even of another group only, settles SHA256SUMS from the files
// present, removes the journal and the temporary file, and a full rebuild
// is then byte-identical to a clean build.
func TestBuildRecoversInterruptedCommit(t *testing.T) {
	w := newThreeWorld(t)
	clean := t.TempDir() // what a clean build at mtime 3600 writes
	if err := w.build(context.Background(), t, nil, clean, time.Unix(3600, 0), nil); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := w.build(context.Background(), t, nil, out, time.Unix(0, 0), nil); err != nil {
		t.Fatal(err)
	}
	// The crash: journal written, two.tar.zst renamed, three.tar.gz not.
	newSums, err := sums.Read(filepath.Join(clean, SumsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := sums.WritePending(out, newSums); err != nil {
		t.Fatal(err)
	}
	cleanFiles := testdir.Snapshot(t, clean)
	for name, body := range map[string]string{"two.tar.zst": cleanFiles["two.tar.zst"], ".three.tar.gz.tmp-42": cleanFiles["three.tar.gz"][:100]} {
		if err := os.WriteFile(filepath.Join(out, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The next build builds group one only.
	if err := w.build(context.Background(), t, nil, out, time.Unix(0, 0), nil, "one"); err != nil {
		t.Fatal(err)
	}
	checkSumsAgree(t, out, "one.tar", "two.tar.zst", "three.tar.gz")
	got := testdir.Snapshot(t, out)
	if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, []string{"SHA256SUMS", "one.tar", "three.tar.gz", "two.tar.zst"}) {
		t.Errorf("output directory holds %v", names)
	}

	// A full rebuild: byte-identical to the clean build.
	if err := w.build(context.Background(), t, nil, out, time.Unix(3600, 0), nil); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(testdir.Snapshot(t, out), cleanFiles) {
		t.Error("rebuild after recovery differs from a clean build")
	}
}
