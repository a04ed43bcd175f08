package bundler

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/sums"
)

// SumsFile is written beside the archives, in `sha256sum -c` form (see
// package sums).
const SumsFile = sums.FileName

// BuildOptions say where and how to build.
type BuildOptions struct {
	OutputDir string    // default: the spec's output-dir
	Jobs      int       // parallel downloads; <= 0 means 4
	ModTime   time.Time // mtime of every archive entry (SOURCE_DATE_EPOCH)
	Groups    []string  // only these groups; empty means all
	Logger    *slog.Logger
	Progress  progress.Reporter // nil: none
}

// ArchiveResult describes one written archive.
type ArchiveResult struct {
	Group    string
	Path     string
	Size     int64
	SHA256   string
	Images   int
	Blobs    int
	Duration time.Duration // planning and fetching are shared; this is the writing
}

// Build writes one archive per group from the lockfile, which must match
// the spec (see NewPlan). Blobs come from the cache, fetched once when
// missing; each archive is written to a temporary file in the output
// directory and renamed into place only when complete.
func Build(ctx context.Context, spec *config.Spec, lock *lockfile.Lock, c *cache.Cache, f Fetcher, opts BuildOptions) ([]ArchiveResult, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	out := OutputDir(spec, opts.OutputDir)
	groups, err := selectGroups(spec, opts.Groups)
	if err != nil {
		return nil, err
	}
	rep := opts.Progress
	if rep == nil {
		rep = progress.New(nil, progress.Quiet)
	}
	b := &builder{spec: spec, cache: c, fetch: f, log: log, progress: rep}

	// Manifests first (small, and they say which blobs are needed).
	plans := make([]*groupPlan, len(groups))
	for i, g := range groups {
		lg := lock.Group(g.Name)
		if lg == nil {
			return nil, fmt.Errorf("%w: group %q is not in the lockfile", errdefs.ErrLockOutOfDate, g.Name)
		}
		p, err := b.planGroup(ctx, g, lg)
		if err != nil {
			return nil, err
		}
		plans[i] = p
	}

	// Then every missing blob once, in parallel.
	if err := b.fetchBlobs(ctx, plans, opts.Jobs); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("%w: output directory: %w", errdefs.ErrBuild, err)
	}
	var results []ArchiveResult
	for _, p := range plans {
		r, err := b.writeArchive(ctx, out, p, opts.ModTime)
		if err != nil {
			return results, fmt.Errorf("%w: group %q: %w", errdefs.ErrBuild, p.group.Name, err)
		}
		log.Info("wrote archive", "group", r.Group, "path", r.Path, "bytes", r.Size, "sha256", r.SHA256)
		results = append(results, r)
	}
	fresh := sums.Sums{}
	for _, r := range results {
		fresh[filepath.Base(r.Path)] = r.SHA256
	}
	if err := sums.Update(out, fresh); err != nil {
		return results, fmt.Errorf("%w: %s: %w", errdefs.ErrBuild, SumsFile, err)
	}
	return results, nil
}

func selectGroups(spec *config.Spec, names []string) ([]*config.Group, error) {
	if len(names) == 0 {
		return spec.Groups, nil
	}
	var out []*config.Group
	for _, n := range names {
		g := spec.Group(n)
		if g == nil {
			var all []string
			for _, g := range spec.Groups {
				all = append(all, g.Name)
			}
			return nil, &errdefs.Error{Class: errdefs.ErrUsage, Msg: fmt.Sprintf("no group %q in %s (groups: %s)", n, spec.Path, strings.Join(all, ", "))}
		}
		out = append(out, g)
	}
	return out, nil
}

type builder struct {
	spec     *config.Spec
	cache    *cache.Cache
	fetch    Fetcher
	log      *slog.Logger
	progress progress.Reporter
}

// blobNeed is a blob and where it can be fetched from.
type blobNeed struct {
	desc archive.Descriptor
	ref  image.Reference
	top  digest.Digest
}

type groupPlan struct {
	group  *config.Group
	images []archive.Image
	blobs  []blobNeed // configs and layers, deduplicated, in first-use order
}

// manifest returns a manifest blob from the cache, fetching it if needed.
func (b *builder) manifest(ctx context.Context, ref image.Reference, top, d digest.Digest) ([]byte, error) {
	if !b.cache.Has(d, -1) {
		blob, err := b.fetch.Manifest(ctx, ref, top, d)
		if err != nil {
			return nil, fmt.Errorf("fetching manifest %s: %w", d, err)
		}
		if err := b.cache.Put(ctx, d, int64(len(blob)), bytes.NewReader(blob)); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d, err)
		}
	}
	rc, err := b.cache.Open(d, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	blob, err := io.ReadAll(io.LimitReader(rc, image.MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(blob) > image.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s is over %d bytes", d, image.MaxManifestSize)
	}
	return blob, nil
}

func (b *builder) planGroup(ctx context.Context, g *config.Group, lg *lockfile.Group) (*groupPlan, error) {
	p := &groupPlan{group: g}
	seen := map[digest.Digest]bool{}
	byTop := map[digest.Digest]int{}
	for _, e := range lg.Images { // sorted by ref: a fixed order
		ref, err := image.ParseReference(e.Ref, "")
		if err != nil {
			return nil, err
		}
		top := digest.Digest(e.Digest)
		img, err := b.image(ctx, ref, top, &e, g.Index)
		if err != nil {
			return nil, fmt.Errorf("%w: group %q: image %q: %w", errdefs.ErrBuild, g.Name, e.Ref, err)
		}
		// One image under several names is stored once and named twice.
		if i, ok := byTop[img.Top.Digest]; ok {
			p.images[i].Names = append(p.images[i].Names, img.Names...)
			continue
		}
		byTop[img.Top.Digest] = len(p.images)
		p.images = append(p.images, img)
		for _, m := range img.Manifests {
			for _, d := range append([]archive.Descriptor{m.Config}, m.Layers...) {
				if !seen[d.Digest] {
					seen[d.Digest] = true
					p.blobs = append(p.blobs, blobNeed{desc: d, ref: ref, top: top})
				}
			}
		}
	}
	return p, nil
}

// archiveName is the name an image is stored under: name:tag, or
// name@digest for a digest-only reference.
func archiveName(ref image.Reference) string {
	if t := ref.Tag(); t != "" {
		return ref.Name() + ":" + t
	}
	return ref.Name() + "@" + ref.Digest()
}

func (b *builder) image(ctx context.Context, ref image.Reference, top digest.Digest, e *lockfile.Image, mode image.IndexMode) (archive.Image, error) {
	img := archive.Image{Names: []string{archiveName(ref)}}
	topBlob, err := b.manifest(ctx, ref, top, top)
	if err != nil {
		return img, err
	}
	img.Top = archive.Descriptor{MediaType: e.MediaType, Digest: top, Size: int64(len(topBlob))}
	if !e.IsIndex() {
		m, err := archive.ParseManifest(topBlob, e.MediaType)
		if err != nil {
			return img, err
		}
		m.Descriptor = img.Top
		img.Manifests = []archive.Manifest{m}
		return img, nil
	}
	var keep []digest.Digest
	for _, pl := range e.Platforms {
		d := digest.Digest(pl.Digest)
		blob, err := b.manifest(ctx, ref, top, d)
		if err != nil {
			return img, fmt.Errorf("platform %s: %w", pl.Platform, err)
		}
		m, err := archive.ParseManifest(blob, pl.MediaType)
		if err != nil {
			return img, fmt.Errorf("platform %s: %w", pl.Platform, err)
		}
		m.Descriptor = archive.Descriptor{MediaType: pl.MediaType, Digest: d, Size: int64(len(blob))}
		img.Manifests = append(img.Manifests, m)
		keep = append(keep, d)
	}
	if mode == image.IndexFiltered {
		filtered, err := archive.FilterIndex(topBlob, e.MediaType, keep)
		if err != nil {
			return img, err
		}
		fd := digest.FromBytes(filtered)
		if e.FilteredDigest != "" && e.FilteredDigest != fd.String() {
			return img, fmt.Errorf("filtered index is %s, the lockfile says %s", fd, e.FilteredDigest)
		}
		if err := b.cache.Put(ctx, fd, int64(len(filtered)), bytes.NewReader(filtered)); err != nil {
			return img, err
		}
		img.Top = archive.Descriptor{MediaType: e.MediaType, Digest: fd, Size: int64(len(filtered))}
	}
	return img, nil
}

func (b *builder) fetchBlobs(ctx context.Context, plans []*groupPlan, jobs int) (err error) {
	if jobs <= 0 {
		jobs = 4
	}
	seen := map[digest.Digest]bool{}
	var todo []blobNeed
	tasks := map[digest.Digest]progress.Task{} // each blob counts for the first group that needs it
	for _, p := range plans {
		var missing []blobNeed
		var bytes int64
		for _, n := range p.blobs {
			if !seen[n.desc.Digest] && !b.cache.Has(n.desc.Digest, n.desc.Size) {
				missing = append(missing, n)
				bytes += n.desc.Size
			}
			seen[n.desc.Digest] = true
		}
		if len(missing) == 0 {
			continue
		}
		task := b.progress.Task("download "+p.group.Name, bytes, progress.Bytes)
		defer func() { task.Done(err) }()
		for _, n := range missing {
			tasks[n.desc.Digest] = task
		}
		todo = append(todo, missing...)
	}
	b.log.Info("fetching blobs", "missing", len(todo), "cached", len(seen)-len(todo))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, n := range todo {
		g.Go(func() error {
			rc, err := b.fetch.Blob(gctx, n.ref, n.top, n.desc.Digest, n.desc.Size)
			if err != nil {
				return fmt.Errorf("%w: fetching %s from %s: %w", errdefs.ErrBuild, n.desc.Digest, n.ref.Name(), err)
			}
			defer rc.Close()
			if err := b.cache.Put(gctx, n.desc.Digest, n.desc.Size, progress.CountingReader{R: rc, Task: tasks[n.desc.Digest]}); err != nil {
				return fmt.Errorf("%w: blob %s from %s: %w", errdefs.ErrBuild, n.desc.Digest, n.ref.Name(), err)
			}
			b.log.Debug("fetched", "blob", n.desc.Digest, "bytes", n.desc.Size)
			return nil
		})
	}
	return g.Wait()
}

// cacheBlobs serves an archive's blobs from the cache, verified on read.
type cacheBlobs struct {
	c    *cache.Cache
	task progress.Task
}

func (cb cacheBlobs) Open(_ context.Context, d archive.Descriptor) (io.ReadCloser, error) {
	rc, err := cb.c.Open(d.Digest, d.Size)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{progress.CountingReader{R: rc, Task: cb.task}, rc}, nil
}

func (b *builder) writeArchive(ctx context.Context, outDir string, p *groupPlan, mtime time.Time) (_ ArchiveResult, err error) {
	start := time.Now()
	res := ArchiveResult{Group: p.group.Name, Path: filepath.Join(outDir, p.group.Archive), Images: len(p.images), Blobs: len(p.blobs)}
	// What the archive writer reads: each distinct blob once (a single
	// manifest is its image's top as well).
	var payload int64
	counted := map[digest.Digest]bool{}
	count := func(d archive.Descriptor) {
		if !counted[d.Digest] {
			counted[d.Digest] = true
			payload += d.Size
		}
	}
	for _, img := range p.images {
		count(img.Top)
		for _, m := range img.Manifests {
			count(m.Descriptor)
		}
	}
	for _, n := range p.blobs {
		count(n.desc)
	}
	task := b.progress.Task("write "+p.group.Archive, payload, progress.Bytes)
	defer func() { task.Done(err) }()
	comp, err := archive.CompressionFor(p.group.Archive)
	if err != nil {
		return res, err
	}
	tmp, err := atomicfile.Create(res.Path, 0o644)
	if err != nil {
		return res, err
	}
	defer tmp.Close() // removes the temporary file unless committed
	h := sha256.New()
	counter := &iox.CountingWriter{}
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, h, counter), 1<<20)
	if err := archive.Write(ctx, bw, p.images, cacheBlobs{c: b.cache, task: task}, archive.Options{Compression: comp, ModTime: mtime}); err != nil {
		return res, err
	}
	if err := bw.Flush(); err != nil {
		return res, err
	}
	if err := tmp.Commit(); err != nil {
		return res, err
	}
	res.Size = counter.N
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	res.Duration = time.Since(start)
	return res, nil
}
