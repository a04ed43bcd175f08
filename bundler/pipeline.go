package bundler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// The build is one pipeline: downloads run while the archives are written.
// Each archive is still written in its fixed order (blobs by digest), so
// its bytes do not depend on the order downloads finish in; a writer that
// reaches a blob not yet in the cache waits for it. Downloads are queued
// in the order the writers need them.

// writers is how many archives are written at once: enough to keep both
// the disk and a compressor busy, few enough that their buffers (a zstd
// window is 8 MiB) keep memory flat.
const writers = 2

// gates tells writers when a blob is in the cache, and whether this process
// verified it as it arrived (then it is not hashed again on the way into
// the archive).
type gates struct {
	mu    sync.Mutex
	ready map[digest.Digest]chan struct{}
	fresh map[digest.Digest]bool
}

func (g *gates) wait(ctx context.Context, d digest.Digest) (fresh bool, err error) {
	g.mu.Lock()
	ch := g.ready[d]
	g.mu.Unlock()
	if ch == nil {
		return false, nil // a manifest or index: in the cache since planning
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fresh[d], nil
}

// channel is closed when d is in the cache; nil when d is not awaited.
func (g *gates) channel(d digest.Digest) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch, ok := g.ready[d]; ok {
		return ch
	}
	return nil
}

func (g *gates) open(d digest.Digest, fresh bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fresh[d] = fresh
	close(g.ready[d])
}

// pipeline fetches what the plans lack and writes every archive to its
// temporary file in out, at the same time. On error every temporary file
// is gone.
func (b *builder) pipeline(ctx context.Context, out string, plans []*groupPlan, mtime time.Time, jobs int) (_ []ArchiveResult, _ []*atomicfile.File, err error) {
	g := &gates{ready: map[digest.Digest]chan struct{}{}, fresh: map[digest.Digest]bool{}}
	stream := b.streamed(plans)
	var todo []blobNeed
	groups := map[digest.Digest]*groupDownload{} // each blob counts for the first group that needs it
	cached := 0
	for _, p := range plans {
		order := slices.Clone(p.blobs)
		slices.SortFunc(order, func(x, y blobNeed) int { return compareDigest(x.desc.Digest, y.desc.Digest) })
		var missing []blobNeed
		var bytes int64
		for _, n := range order {
			if _, ok := g.ready[n.desc.Digest]; ok {
				continue
			}
			g.ready[n.desc.Digest] = make(chan struct{})
			if _, ok := stream[n.desc.Digest]; ok {
				g.open(n.desc.Digest, false) // read from the registry by the writer
				continue
			}
			verified, running := b.dl.state(n.desc.Digest)
			if verified || !running && b.cache.Has(n.desc.Digest, n.desc.Size) {
				g.open(n.desc.Digest, verified)
				cached++
				continue
			}
			missing = append(missing, n)
			bytes += n.desc.Size
		}
		if len(missing) == 0 {
			continue
		}
		gd := &groupDownload{rep: b.progress, name: "download " + p.group.Name, bytes: bytes, left: len(missing)}
		defer func() { gd.end(err) }()
		for _, n := range missing {
			groups[n.desc.Digest] = gd
		}
		todo = append(todo, missing...)
	}
	// With several archives, one more task counts the bytes of them all.
	b.allWrites = progress.NopTask()
	if len(plans) > 1 {
		var total int64
		for _, p := range plans {
			total += p.payload()
		}
		all := b.progress.Task(fmt.Sprintf("all %d archives", len(plans)), total, progress.Bytes)
		defer func() { all.Done(err) }()
		b.allWrites = all
	}
	b.log.Info("fetching blobs", "missing", len(todo), "cached", cached, "streamed", len(stream))
	b.stream = stream

	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error { return b.download(ectx, todo, groups, g, jobs) })
	eg.Go(func() error {
		for _, p := range plans {
			if err := b.checkSingles(ectx, p, g); err != nil {
				return err
			}
		}
		return nil
	})
	results := make([]ArchiveResult, len(plans))
	files := make([]*atomicfile.File, len(plans))
	defer func() {
		if err != nil {
			for i, f := range files {
				if f != nil {
					f.Close()
				}
				results[i].close()
			}
		}
	}()
	// Writers start in the groups' order, a few at a time.
	slots := make(chan struct{}, writers)
	eg.Go(func() error {
		for i, p := range plans {
			select {
			case slots <- struct{}{}:
			case <-ectx.Done():
				return ectx.Err()
			}
			eg.Go(func() error {
				defer func() { <-slots }()
				r, f, err := b.writeArchive(ectx, out, p, mtime, g, true)
				if errors.Is(err, errRestart) {
					// Rare: a retry started a followed download over.
					b.log.Info("rewriting an archive: a download it was following started over", "group", p.group.Name)
					r, f, err = b.writeArchive(ectx, out, p, mtime, g, false)
				}
				if err != nil {
					if atomicfile.IsDiskFull(err) {
						err = diskFullError(out, plans, err)
					}
					return fmt.Errorf("%w: group %q: %w", errdefs.ErrBuild, p.group.Name, err)
				}
				results[i], files[i] = r, f
				return nil
			})
		}
		return nil
	})
	if err := eg.Wait(); err != nil {
		// Whichever goroutine saw a cancellation first may have returned it
		// bare (the writer launcher, a wait for a config): still a build
		// error.
		if !errors.Is(err, errdefs.ErrBuild) {
			err = fmt.Errorf("%w: %w", errdefs.ErrBuild, err)
		}
		return nil, nil, err
	}
	return results, files, nil
}

// download fetches todo, jobs at a time, in order, opening each blob's gate
// as it lands in the cache.
func (b *builder) download(ctx context.Context, todo []blobNeed, groups map[digest.Digest]*groupDownload, g *gates, jobs int) error {
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(jobs)
	for _, n := range todo {
		if ectx.Err() != nil {
			break
		}
		eg.Go(func() error {
			gd := groups[n.desc.Digest]
			if err := b.dl.get(ectx, n, gd.begin()); err != nil {
				return fmt.Errorf("%w: fetching %s from %s: %w", errdefs.ErrBuild, n.desc.Digest, n.ref.Name(), err)
			}
			g.open(n.desc.Digest, true)
			gd.landed()
			return nil
		})
	}
	return eg.Wait()
}

// groupDownload is the progress of one archive's downloads. Its task
// starts with the first of them and ends with the last: the display shows
// the groups being downloaded (todo is in the groups' order, so at most
// jobs of them at a time), not every group of the build from the start
// to the end.
type groupDownload struct {
	rep   progress.Reporter
	name  string
	bytes int64

	mu    sync.Mutex
	left  int // downloads not yet landed
	task  progress.Task
	ended bool
}

// begin returns the task, started with the group's first download.
func (gd *groupDownload) begin() progress.Task {
	gd.mu.Lock()
	defer gd.mu.Unlock()
	if gd.task == nil {
		gd.task = gd.rep.Task(gd.name, gd.bytes, progress.Bytes)
	}
	return gd.task
}

// landed counts one download in: the last one ends the task.
func (gd *groupDownload) landed() {
	gd.mu.Lock()
	defer gd.mu.Unlock()
	gd.left--
	if gd.left == 0 && gd.task != nil && !gd.ended {
		gd.ended = true
		gd.task.Done(nil)
	}
}

// end ends a task the build stopped short of finishing.
func (gd *groupDownload) end(err error) {
	gd.mu.Lock()
	defer gd.mu.Unlock()
	if gd.task != nil && !gd.ended {
		gd.ended = true
		gd.task.Done(err)
	}
}

func compareDigest(a, b digest.Digest) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cacheBlobs serves an archive's blobs from the cache as the downloads
// bring them: a blob this process verified as it arrived is read as it is;
// one from an earlier run is verified again on the way. With follow, a
// blob still downloading is read from its partial file as it grows (see
// downloads.follow), so a big layer is written while it downloads instead
// of after.
type cacheBlobs struct {
	c      *cache.Cache
	gates  *gates
	dl     *downloads
	follow bool
	task   progress.Task
	// stream are the blobs read from the registry as they are written
	// (build --no-cache; see stream.go), through fetch under policy.
	stream map[digest.Digest]blobNeed
	fetch  Fetcher
	policy registry.Policy
}

func (cb cacheBlobs) Open(ctx context.Context, d image.Descriptor) (io.ReadCloser, error) {
	if n, ok := cb.stream[d.Digest]; ok {
		return counted(newStreamReader(ctx, n, cb.fetch, cb.policy), cb.task), nil
	}
	var fresh bool
	if cb.gates != nil {
		if cb.follow {
			fr, err := cb.followOrWait(ctx, d)
			if err != nil {
				return nil, err
			}
			if fr != nil {
				return counted(fr, cb.task), nil
			}
		}
		var err error
		if fresh, err = cb.gates.wait(ctx, d.Digest); err != nil {
			return nil, err
		}
	}
	var rc io.ReadCloser
	var err error
	if fresh {
		rc, err = cb.c.OpenVerified(d.Digest)
	} else {
		rc, err = cb.c.Open(d.Digest, d.Size)
	}
	if err != nil {
		return nil, err
	}
	return counted(rc, cb.task), nil
}

// followOrWait returns a follower of d's download as soon as one runs, or
// nil once d is in the cache (or was never awaited).
func (cb cacheBlobs) followOrWait(ctx context.Context, d image.Descriptor) (*follower, error) {
	ready := cb.gates.channel(d.Digest)
	if ready == nil {
		return nil, nil
	}
	for {
		select {
		case <-ready:
			return nil, nil
		default:
		}
		starts := cb.dl.startsCh() // before looking, so that no start is missed
		if fr := cb.dl.follow(ctx, d.Digest, d.Size); fr != nil {
			return fr, nil
		}
		select {
		case <-ready:
			return nil, nil
		case <-starts:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func counted(rc io.ReadCloser, task progress.Task) io.ReadCloser {
	return struct {
		io.Reader
		io.Closer
	}{progress.CountingReader{R: rc, Task: task}, rc}
}

// streamed picks the blobs build --no-cache reads from the registry while
// it writes them: layers of streamMin bytes or more that exactly one
// archive needs and the store does not hold. A layer two archives need is
// fetched once into the run's store instead of twice from the registry;
// configs are read before writing (checkSingles), so never streamed.
func (b *builder) streamed(plans []*groupPlan) map[digest.Digest]blobNeed {
	out := map[digest.Digest]blobNeed{}
	if !b.noCache {
		return out
	}
	users := map[digest.Digest]int{}
	configs := map[digest.Digest]bool{}
	for _, p := range plans {
		for _, img := range p.images {
			for _, m := range img.Manifests {
				configs[m.Config.Digest] = true
			}
		}
		for _, n := range p.blobs {
			users[n.desc.Digest]++
		}
	}
	for _, p := range plans {
		for _, n := range p.blobs {
			d := n.desc.Digest
			if n.desc.Size >= streamMin && users[d] == 1 && !configs[d] && n.ref.Named != nil && !b.cache.Has(d, n.desc.Size) {
				out[d] = n
			}
		}
	}
	return out
}
