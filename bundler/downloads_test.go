package bundler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// A follower passes on what the download has written, waits for more, and
// ends only when the download has finished and been verified; when the
// download starts over or fails, it says so instead.
func TestFollower(t *testing.T) {
	d := digest.FromString("blob")
	setup := func(t *testing.T) (*downloads, *download, *os.File) {
		t.Helper()
		f, err := os.Create(filepath.Join(t.TempDir(), "partial"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		x := newDownload()
		dl := &downloads{m: map[digest.Digest]*download{d: x}, starts: make(chan struct{})}
		return dl, x, f
	}
	read := func(t *testing.T, r io.Reader, n int) (string, error) {
		t.Helper()
		got := make(chan struct {
			s   string
			err error
		}, 1)
		go func() {
			b := make([]byte, n)
			k, err := r.Read(b)
			got <- struct {
				s   string
				err error
			}{string(b[:k]), err}
		}()
		select {
		case g := <-got:
			return g.s, g.err
		case <-time.After(5 * time.Second):
			t.Fatal("Read blocked")
		}
		return "", nil
	}

	t.Run("streams then ends when verified", func(t *testing.T) {
		dl, x, f := setup(t)
		if fr := dl.follow(context.Background(), d, 10); fr != nil {
			t.Fatal("followed a download whose file is not known yet")
		}
		f.WriteString("hello")
		x.started(f.Name(), 5) // resumed: 5 bytes there
		fr := dl.follow(context.Background(), d, 10)
		if fr == nil {
			t.Fatal("no follower")
		}
		defer fr.Close()
		if s, err := read(t, fr, 100); s != "hello" || err != nil {
			t.Fatalf("first read %q, %v", s, err)
		}
		// Nothing more yet: Read waits, and returns once bytes arrive.
		done := make(chan string, 1)
		go func() { b := make([]byte, 100); n, _ := fr.Read(b); done <- string(b[:n]) }()
		select {
		case s := <-done:
			t.Fatalf("Read returned %q before any byte arrived", s)
		case <-time.After(50 * time.Millisecond):
		}
		f.WriteString("world")
		x.received(5)
		if s := <-done; s != "world" {
			t.Fatalf("second read %q", s)
		}
		// All bytes in, not yet verified: still waiting.
		go func() { _, err := fr.Read(make([]byte, 1)); done <- errString(err) }()
		select {
		case s := <-done:
			t.Fatalf("Read ended (%s) before the download was verified", s)
		case <-time.After(50 * time.Millisecond):
		}
		x.mu.Lock()
		close(x.done)
		x.notify()
		x.mu.Unlock()
		if s := <-done; s != io.EOF.Error() {
			t.Fatalf("after verification: %s, want EOF", s)
		}
	})

	t.Run("restart", func(t *testing.T) {
		dl, x, f := setup(t)
		f.WriteString("bad")
		x.started(f.Name(), 3)
		fr := dl.follow(context.Background(), d, 10)
		if s, err := read(t, fr, 100); s != "bad" || err != nil {
			t.Fatalf("read %q, %v", s, err)
		}
		x.started(f.Name(), 0) // the partial was proved wrong and begun anew
		if _, err := read(t, fr, 100); !errors.Is(err, errRestart) {
			t.Fatalf("after a restart: %v, want errRestart", err)
		}
	})

	t.Run("failure", func(t *testing.T) {
		dl, x, f := setup(t)
		x.started(f.Name(), 0)
		fr := dl.follow(context.Background(), d, 10)
		boom := errors.New("registry gone")
		x.mu.Lock()
		x.err = boom
		close(x.done)
		x.notify()
		x.mu.Unlock()
		if _, err := read(t, fr, 100); !errors.Is(err, boom) {
			t.Fatalf("after a failed download: %v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		dl, x, f := setup(t)
		x.started(f.Name(), 0)
		ctx, cancel := context.WithCancel(context.Background())
		fr := dl.follow(ctx, d, 10)
		cancel()
		if _, err := read(t, fr, 100); !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v", err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// blockingFetcher's blobs never come: a download waits until cancelled.
type blockingFetcher struct{ memFetcher }

func (blockingFetcher) Blob(ctx context.Context, _ image.Reference, _, _ digest.Digest, _, _ int64) (io.ReadCloser, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// Issue 20: a build that locks first queues the layers of every image it
// has resolved for download; images resolve much faster than their layers
// download, so nearly every blob of the set waits. A waiting blob costs
// its description, not a goroutine (10,000 blobs were 10,000 goroutines).
func TestPrefetchQueuesWithoutAGoroutinePerBlob(t *testing.T) {
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dl := newDownloads(c, blockingFetcher{memFetcher{}}, registry.Policy{}, nil)
	const jobs, images, layers = 4, 20, 50
	dl.startPrefetch(jobs)
	before := runtime.NumGoroutine()
	ref, err := image.ParseReference("registry.test/app:v1", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range images {
		img, err := fixtures.Image(fmt.Sprintf("prefetch-%d", i), fixtures.LinuxAMD64, layers)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := img.RawManifest()
		d := digest.FromBytes(raw)
		if err := c.Put(context.Background(), d, int64(len(raw)), bytes.NewReader(raw)); err != nil {
			t.Fatal(err)
		}
		mt, _ := img.MediaType()
		dl.prefetch(ref, &lockfile.Image{Ref: ref.String(), Digest: d, MediaType: image.MediaType(mt),
			Platforms: []lockfile.Platform{{Platform: "linux/amd64", Digest: d, MediaType: image.MediaType(mt)}}})
	}
	// the workers have taken their first blobs, and wait on them
	deadline := time.Now().Add(5 * time.Second)
	for running := 0; running < jobs && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		running = 0
		dl.mu.Lock()
		running = len(dl.m)
		dl.mu.Unlock()
	}
	if extra := runtime.NumGoroutine() - before; extra > 2*jobs {
		t.Errorf("%d blobs queued for %d workers: %d goroutines more than before; want at most %d (what a download in flight needs)",
			images*(layers+1), jobs, extra, 2*jobs)
	}
	dl.stop() // cancels the downloads in flight, drops the queue
	dl.mu.Lock()
	started := len(dl.m)
	dl.mu.Unlock()
	if started > jobs {
		t.Errorf("%d downloads started by %d workers whose downloads never end", started, jobs)
	}
}
