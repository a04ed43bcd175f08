package bundler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/logs"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// downloads are one run's blob downloads into the cache. Each blob is
// fetched once, by whoever asks first: a build that locks first starts
// fetching an image's layers as soon as the image is resolved (prefetch),
// while the other images are still being resolved, and the build then
// waits for those downloads instead of starting them again.
type downloads struct {
	cache  *cache.Cache
	fetch  Fetcher
	policy registry.Policy
	log    *slog.Logger

	mu sync.Mutex
	m  map[digest.Digest]*download
	// starts is closed and replaced whenever a download's file becomes
	// known: a writer waiting to follow a blob looks again.
	starts chan struct{}

	// Prefetching runs under its own context (cancelled by stop): a few
	// workers take the queued blobs in order. A queued blob costs its
	// blobNeed, not a goroutine: 10,000 blobs queued while 300 images
	// resolve faster than their layers download were 10,000 goroutines.
	ctx    context.Context
	cancel context.CancelFunc
	qmu    sync.Mutex
	queue  []blobNeed
	qwake  *sync.Cond // signalled when the queue grows or prefetch stops
	wg     sync.WaitGroup
}

// download is one blob's fetch; err is set before done is closed. While it
// runs, path holds its first avail bytes, so a writer can follow it (see
// follower); epoch changes when those bytes may have changed under a
// follower (another file, or a shorter prefix on a retry).
type download struct {
	done chan struct{}
	err  error

	mu      sync.Mutex
	path    string
	avail   int64
	epoch   int
	changed chan struct{} // closed and replaced at every change
	onStart func()
}

// started wakes whoever waits in startsCh.
func (dl *downloads) started() {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	close(dl.starts)
	dl.starts = make(chan struct{})
}

func (dl *downloads) startsCh() <-chan struct{} {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	return dl.starts
}

func newDownload() *download {
	return &download{done: make(chan struct{}), changed: make(chan struct{})}
}

func (x *download) notify() {
	close(x.changed)
	x.changed = make(chan struct{})
}

func (x *download) started(path string, have int64) {
	x.mu.Lock()
	if path != x.path || have < x.avail {
		x.epoch++
	}
	x.path, x.avail = path, have
	x.notify()
	x.mu.Unlock()
	if x.onStart != nil {
		x.onStart()
	}
}

func (x *download) received(n int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.avail += n
	x.notify()
}

func newDownloads(c *cache.Cache, f Fetcher, policy registry.Policy, log *slog.Logger) *downloads {
	log = logs.OrDiscard(log)
	return &downloads{cache: c, fetch: f, policy: policy.WithDefaults(), log: log, m: map[digest.Digest]*download{}, starts: make(chan struct{})}
}

// state reports whether this run has put d in the cache (and so verified
// it) and whether a download of d is still running.
func (dl *downloads) state(d digest.Digest) (verified, running bool) {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	x := dl.m[d]
	if x == nil {
		return false, false
	}
	select {
	case <-x.done:
		return x.err == nil, false
	default:
		return false, true
	}
}

// get puts n in the cache: it joins a download of n already running, or
// starts one (again, if an earlier one failed). Bytes are counted into
// task as they arrive; a joined download counts its whole size when done.
func (dl *downloads) get(ctx context.Context, n blobNeed, task progress.Task) error {
	dl.mu.Lock()
	x := dl.m[n.desc.Digest]
	if x != nil {
		dl.mu.Unlock()
		select {
		case <-x.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if x.err == nil {
			task.Add(n.desc.Size)
			return nil
		}
		// A failed prefetch is not the build's failure: it tries itself,
		// with its own retries and error reporting.
		dl.mu.Lock()
		if dl.m[n.desc.Digest] != x {
			dl.mu.Unlock()
			return dl.get(ctx, n, task)
		}
	}
	x = newDownload()
	x.onStart = dl.started
	dl.m[n.desc.Digest] = x
	dl.mu.Unlock()
	x.err = dl.fetchBlob(ctx, n, x, task)
	x.mu.Lock()
	close(x.done)
	x.notify()
	x.mu.Unlock()
	return x.err
}

// fetchBlob downloads one blob into the cache, retrying transient failures
// under the policy. Each retry resumes after the bytes already received
// (kept in the cache's partial file, also across runs); a body proved
// corrupt starts over.
func (dl *downloads) fetchBlob(ctx context.Context, n blobNeed, x *download, task progress.Task) error {
	first := true
	return dl.policy.Do(ctx, "blob "+n.desc.Digest.String(), func(ctx context.Context) error {
		open := func(ctx context.Context, offset int64) (io.ReadCloser, error) {
			return dl.fetch.Blob(ctx, n.ref, n.top, n.desc.Digest, n.desc.Size, offset)
		}
		resumed, err := dl.cache.Fetch(ctx, n.desc.Digest, n.desc.Size, open, cache.FetchProgress{
			Started:  x.started,
			Received: func(k int64) { x.received(k); task.Add(k) },
		})
		if first && resumed > 0 {
			task.Add(resumed) // received by an earlier run
			dl.log.Info("resuming download", "blob", n.desc.Digest, "from", resumed, "of", n.desc.Size)
		}
		first = false
		if errors.Is(err, cache.ErrDigest) {
			// The partial was deleted: the next attempt starts over.
			return fmt.Errorf("%w: %w", registry.ErrCorruptBody, err)
		}
		if err == nil {
			dl.log.Debug("fetched", "blob", n.desc.Digest, "bytes", n.desc.Size)
		}
		return err
	})
}

// startPrefetch lets prefetch run, jobs downloads at a time, until stop.
func (dl *downloads) startPrefetch(jobs int) {
	dl.ctx, dl.cancel = context.WithCancel(context.Background())
	dl.qwake = sync.NewCond(&dl.qmu)
	for range max(1, jobs) {
		dl.wg.Add(1)
		go dl.prefetchWorker()
	}
}

// prefetch queues the configs and layers of a just-resolved image, whose
// manifests the resolution kept in the cache. It is only a head start:
// whatever goes wrong here (a manifest not kept, a failed download) the
// build meets again and reports.
func (dl *downloads) prefetch(ref image.Reference, img *lockfile.Image) {
	if dl.ctx == nil || dl.ctx.Err() != nil {
		return
	}
	top := img.Digest
	var needs []blobNeed
	for _, pl := range img.Platforms {
		blob, err := dl.cachedManifest(pl.Digest)
		if err != nil {
			dl.log.Debug("no prefetch", "image", ref.String(), "platform", pl.Platform, "reason", err)
			continue
		}
		m, err := image.ParseManifest(blob, pl.MediaType)
		if err != nil {
			continue
		}
		for _, d := range append([]image.Descriptor{m.Config}, m.Layers...) {
			if verified, running := dl.state(d.Digest); verified || running || dl.cache.Has(d.Digest, d.Size) {
				continue
			}
			needs = append(needs, blobNeed{desc: d, ref: ref, top: top})
		}
	}
	if len(needs) == 0 {
		return
	}
	dl.qmu.Lock()
	dl.queue = append(dl.queue, needs...)
	dl.qmu.Unlock()
	dl.qwake.Broadcast()
}

// prefetchWorker downloads queued blobs, one at a time, until stop.
func (dl *downloads) prefetchWorker() {
	defer dl.wg.Done()
	for {
		dl.qmu.Lock()
		for len(dl.queue) == 0 && dl.ctx.Err() == nil {
			dl.qwake.Wait()
		}
		if dl.ctx.Err() != nil {
			dl.qmu.Unlock()
			return
		}
		n := dl.queue[0]
		dl.queue[0] = blobNeed{}
		dl.queue = dl.queue[1:]
		dl.qmu.Unlock()
		if verified, running := dl.state(n.desc.Digest); verified || running {
			continue
		}
		if err := dl.get(dl.ctx, n, progress.NopTask()); err != nil && dl.ctx.Err() == nil {
			dl.log.Info("prefetch failed; the build fetches it again", "blob", n.desc.Digest, "image", n.ref.String(), "err", err)
		}
	}
}

func (dl *downloads) cachedManifest(d digest.Digest) ([]byte, error) {
	rc, err := dl.cache.Open(d, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, image.MaxManifestSize))
}

// stop cancels the prefetches still running and waits for them: their
// partial files stay in the cache, and the next run resumes them. What is
// still queued is dropped.
func (dl *downloads) stop() {
	if dl.cancel == nil {
		return
	}
	dl.qmu.Lock()
	dl.cancel()
	dl.queue = nil
	dl.qmu.Unlock()
	dl.qwake.Broadcast()
	dl.wg.Wait()
}

// errRestart says that bytes a follower already passed on may have changed
// (a retry started the download over): what it was writing must be
// written again, without following this time.
var errRestart = errors.New("a download being followed started over")

// follow returns a reader of d's download while it runs, from its first
// byte: it reads what is in the file and waits for more, and ends only
// once the whole blob is verified. It returns nil when d is not being
// downloaded, or its file is not known yet.
func (dl *downloads) follow(ctx context.Context, d digest.Digest, size int64) *follower {
	dl.mu.Lock()
	x := dl.m[d]
	dl.mu.Unlock()
	if x == nil {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	select {
	case <-x.done:
		return nil
	default:
	}
	if x.path == "" {
		return nil
	}
	f, err := os.Open(x.path)
	if err != nil {
		return nil
	}
	return &follower{ctx: ctx, x: x, f: f, epoch: x.epoch, size: size}
}

// follower reads a download's file as it grows.
type follower struct {
	ctx   context.Context
	x     *download
	f     *os.File
	epoch int
	off   int64
	size  int64
}

func (fr *follower) Read(p []byte) (int, error) {
	for {
		x := fr.x
		x.mu.Lock()
		epoch, avail, changed := x.epoch, x.avail, x.changed
		var finished bool
		select {
		case <-x.done:
			finished = true
		default:
		}
		x.mu.Unlock()
		if epoch != fr.epoch {
			return 0, errRestart
		}
		if finished && x.err != nil {
			return 0, x.err
		}
		if fr.off < avail && fr.off < fr.size {
			n, err := fr.f.ReadAt(p[:min(int64(len(p)), avail-fr.off, fr.size-fr.off)], fr.off)
			fr.off += int64(n)
			if err == io.EOF && n > 0 {
				err = nil
			}
			return n, err
		}
		if finished && fr.off >= fr.size {
			return 0, io.EOF // verified: Fetch returned nil
		}
		select {
		case <-changed:
		case <-fr.ctx.Done():
			return 0, fr.ctx.Err()
		}
	}
}

func (fr *follower) Close() error { return fr.f.Close() }
