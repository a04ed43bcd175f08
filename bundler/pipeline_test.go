package bundler

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
)

// slowFetcher serves blobs from memory, each after a delay that grows with
// its digest: downloads finish in digest order, the order the archives need
// them, or in the reverse order, which makes a writer wait for its first
// blob until the last download.
type slowFetcher struct {
	memFetcher
	delay   func(d digest.Digest) time.Duration
	mu      sync.Mutex
	fetched []digest.Digest
}

func (f *slowFetcher) Blob(ctx context.Context, ref image.Reference, top, d digest.Digest, size, offset int64) (io.ReadCloser, error) {
	select {
	case <-time.After(f.delay(d)):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f.mu.Lock()
	f.fetched = append(f.fetched, d)
	f.mu.Unlock()
	return f.memFetcher.Blob(ctx, ref, top, d, size, offset)
}

// events records when each progress task starts and ends.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) Task(name string, _ int64, _ progress.Unit) progress.Task {
	e.add("start " + name)
	return eventTask{e, name}
}
func (e *events) Wait() {}
func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

type eventTask struct {
	e    *events
	name string
}

func (t eventTask) Add(int64)  {}
func (t eventTask) Done(error) { t.e.add("done " + t.name) }

// Downloads and writing overlap, and the archives are byte-identical
// whatever order the downloads finish in.
func TestPipelineOverlapsAndKeepsBytes(t *testing.T) {
	w := buildVerifyWorld(t)
	want := map[string]string{}
	for _, a := range []string{"apps.tar", "filtered.tar.zst", "SHA256SUMS"} {
		b, err := os.ReadFile(filepath.Join(w.out, a))
		if err != nil {
			t.Fatal(err)
		}
		want[a] = string(b)
	}
	var blobs []digest.Digest
	for d := range w.fetch {
		blobs = append(blobs, d)
	}
	slices.Sort(blobs)
	rank := func(d digest.Digest) int { return slices.Index(blobs, d) }
	orders := map[string]func(digest.Digest) time.Duration{
		"archive order": func(d digest.Digest) time.Duration { return time.Duration(rank(d)) * 15 * time.Millisecond },
		"reverse order": func(d digest.Digest) time.Duration { return time.Duration(len(blobs)-rank(d)) * 15 * time.Millisecond },
	}
	for name, delay := range orders {
		t.Run(name, func(t *testing.T) {
			f := &slowFetcher{memFetcher: w.fetch, delay: delay}
			c, err := cache.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			ev := &events{}
			if _, err := Build(context.Background(), w.spec, w.lock, c, f, BuildOptions{OutputDir: out, Jobs: 1, Progress: ev}); err != nil {
				t.Fatal(err)
			}
			for a, content := range want {
				b, err := os.ReadFile(filepath.Join(out, a))
				if err != nil || string(b) != content {
					t.Errorf("%s differs from a build with no delays (%v)", a, err)
				}
			}
			// A writer started before the downloads ended.
			firstWrite, lastDownload := -1, -1
			for i, e := range ev.log {
				if firstWrite < 0 && len(e) > 12 && e[:12] == "start write " {
					firstWrite = i
				}
				if len(e) > 14 && e[:14] == "done download " {
					lastDownload = i
				}
			}
			if firstWrite < 0 || lastDownload < 0 || firstWrite > lastDownload {
				t.Errorf("writing did not overlap downloading: %v", ev.log)
			}
		})
	}
}
