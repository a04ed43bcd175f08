package bundler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/registry"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
	"github.com/airgap-bundle/airgap-bundle/internal/logs"
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
	Jobs      int       // parallel downloads; <= 0 means DefaultJobs
	ModTime   time.Time // mtime of every archive entry (SOURCE_DATE_EPOCH)
	Groups    []string  // only these groups; empty means all
	// MaxSize, when set, overrides every group's max-size (build
	// --max-size): a group over it is written as parts.
	MaxSize  int64
	Logger   *slog.Logger
	Progress progress.Reporter // nil: none
	// Policy retries and bounds blob downloads (the zero value: defaults).
	Policy registry.Policy
	// Charts gives the archives of the lockfile's charts (nil: a spec
	// without charts).
	Charts ChartArchiver
	// NoCache streams each big layer that one archive needs from the
	// registry straight into it (build --no-cache): c is then the run's
	// temporary store, for manifests, configs and small blobs only.
	NoCache bool
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
	// Part and Parts number a part of a group over its max-size (0 and 0
	// for a group written whole); Duplicated is the bytes of blobs an
	// earlier part of the group holds too (the parts' overhead).
	Part, Parts int
	Duplicated  int64
	// Chunks are the files an archive of one image over max-size was cut
	// into (split-oversize), in order; Path is then the joined archive,
	// which is not written: its sha256 goes to Path+".sha256".
	Chunks   []Chunk
	checksum *Chunk // the .sha256 file of a cut archive
}

// close removes the temporary files of a result's chunks (a no-op once
// committed).
func (r *ArchiveResult) close() {
	for _, c := range r.Chunks {
		c.file.Close()
	}
	if r.checksum != nil {
		r.checksum.file.Close()
	}
}

// Chunk is one file a cut archive was written as.
type Chunk struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	file   *atomicfile.File
}

// Build writes one archive per group from the lockfile, which must match
// the spec (see NewPlan). Blobs come from the cache, fetched once when
// missing. Every archive is written to a temporary file in the output
// directory first; only when all are complete are they renamed into place
// together with the new SHA256SUMS (see commitArchives). On any error,
// cancellation included, no archive and no SHA256SUMS line has changed, no
// temporary file is left, and no result is returned. A build first settles
// what a killed build left in the output directory (see tidyOutputDir).
func Build(ctx context.Context, spec *config.Spec, lock *lockfile.Lock, c *cache.Cache, f Fetcher, opts BuildOptions) ([]ArchiveResult, error) {
	results, _, _, err := build(ctx, spec, lock, c, f, opts)
	return results, err
}

// build is Build, and also returns the builder and the groups' plans (for
// a delta of the same archives).
func build(ctx context.Context, spec *config.Spec, lock *lockfile.Lock, c *cache.Cache, f Fetcher, opts BuildOptions) ([]ArchiveResult, *builder, []*groupPlan, error) {
	log := logs.OrDiscard(opts.Logger)
	out := OutputDir(spec, opts.OutputDir)
	groups, err := selectGroups(spec, opts.Groups)
	if err != nil {
		return nil, nil, nil, err
	}
	rep := opts.Progress
	if rep == nil {
		rep = progress.New(nil, progress.Quiet)
	}
	b := &builder{policy: opts.Policy.WithDefaults(), spec: spec, cache: c, fetch: f, log: log, progress: rep, noCache: opts.NoCache}
	b.dl = newDownloads(c, f, b.policy, log)
	if s, ok := f.(*Session); ok && s.dl != nil && s.dl.cache == c {
		b.dl = s.dl // join what the lock started fetching
	}

	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	// Manifests first (small, and they say which blobs are needed).
	plans, err := b.planGroups(ctx, groups, lock, jobs)
	if err != nil {
		return nil, nil, nil, err
	}
	charts, err := b.addCharts(ctx, plans, lock, opts.Charts)
	if err != nil {
		return nil, nil, nil, err
	}
	if plans, err = splitPlans(plans, opts.MaxSize); err != nil {
		return nil, nil, nil, err
	}
	// The lockfile says which signatures lock verified; it is not the
	// proof (it arrives by pull request), so they are verified again
	// before anything is written.
	if err := b.checkSignatures(ctx, groups, lock, jobs); err != nil {
		return nil, nil, nil, err
	}

	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: output directory: %w", errdefs.ErrBuild, err)
	}
	unlock, err := atomicfile.LockDir(out)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: output directory: %w", errdefs.ErrBuild, err)
	}
	defer unlock()
	if err := b.tidyOutputDir(out); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: output directory %s: %w", errdefs.ErrBuild, out, err)
	}

	// Then downloads and archives together. Every archive goes to its
	// temporary file first; only when all are complete are they committed
	// together (see commitArchives). A failure or Ctrl-C before that
	// removes the temporary files and leaves every previous archive and
	// SHA256SUMS as they were.
	results, files, err := b.pipeline(ctx, out, plans, opts.ModTime, jobs)
	if err != nil {
		return nil, nil, nil, err
	}
	defer func() {
		for _, f := range files {
			f.Close() // removes the temporary file; a no-op once committed
		}
		for i := range results {
			results[i].close()
		}
	}()
	if err := commitCharts(ctx, out, charts); err != nil {
		if atomicfile.IsDiskFull(err) {
			err = diskFullError(out, plans, err)
		}
		return nil, nil, nil, fmt.Errorf("%w: charts: %w", errdefs.ErrBuild, err)
	}
	if err := commitArchives(out, files, results); err != nil {
		if atomicfile.IsDiskFull(err) {
			err = diskFullError(out, plans, err)
		}
		return nil, nil, nil, fmt.Errorf("%w: %w", errdefs.ErrBuild, err)
	}
	if err := removeOtherForms(out, plans, results); err != nil {
		log.Warn("removing a group's archive in its former form (whole, or other parts)", "error", err)
	}
	for _, r := range results {
		log.Info("wrote archive", "group", r.Group, "path", r.Path, "bytes", r.Size, "sha256", r.SHA256)
	}
	return results, b, plans, nil
}

// NoCacheStorePrefix starts the name of a --no-cache run's store in the
// output directory.
const NoCacheStorePrefix = ".airgap-bundle-store-"

// NoCacheStore makes the store of a --no-cache run in the output
// directory out: for manifests, configs and small blobs (see stream.go),
// on the archives' filesystem. The caller removes it; a later build
// removes it if this process dies first.
func NoCacheStore(out string) (string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(out, NoCacheStorePrefix+strconv.Itoa(os.Getpid())+"-")
}

// tidyOutputDir undoes what a killed build left in the output directory (the
// caller holds its lock, so nothing else is writing there): it finishes or
// undoes an interrupted commit (sums.Recover) and removes the temporary
// files of the spec's archives and of SHA256SUMS.
func (b *builder) tidyOutputDir(out string) error {
	recovered, err := sums.Recover(out)
	if err != nil {
		return fmt.Errorf("recovering an interrupted build: %w", err)
	}
	if recovered {
		b.log.Warn("recovered from an interrupted build: SHA256SUMS rewritten from the archives present", "dir", out)
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range ents {
		// The store of a --no-cache run killed before it could remove it
		// (named for its process, which is gone).
		rest, ok := strings.CutPrefix(e.Name(), NoCacheStorePrefix)
		digits, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(digits)
		if ok && e.IsDir() && err == nil && !atomicfile.PIDAlive(pid) {
			if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
				return err
			}
			b.log.Warn("removed the store of an interrupted --no-cache build", "dir", e.Name())
		}
	}
	prefixes := []string{"." + SumsFile + ".tmp-", "." + sums.PendingName + ".tmp-"}
	for _, g := range b.spec.Groups {
		prefixes = append(prefixes, "."+filepath.Base(g.Archive)+".tmp-")
		// A part's: ".core.part-" (and ".tmp-" in the name, below).
		prefixes = append(prefixes, "."+partPrefix(filepath.Base(g.Archive)))
	}
	for _, e := range ents {
		for _, pre := range prefixes {
			if strings.HasPrefix(e.Name(), pre) && strings.Contains(e.Name(), ".tmp-") && e.Type().IsRegular() {
				if err := os.Remove(filepath.Join(out, e.Name())); err != nil {
					return err
				}
				b.log.Warn("removed a temporary file of an interrupted build", "file", e.Name())
				break
			}
		}
	}
	return nil
}

// commitArchives puts the complete, synced archives in place and makes
// SHA256SUMS list them. It takes no context on purpose: it only renames
// (milliseconds), and stopping half way is what it must not do. To survive
// a crash or kill -9 half way all the same, it follows the journal protocol
// of package sums: the new SHA256SUMS goes to sums.PendingName first, then
// the archives are renamed, then the journal becomes SHA256SUMS; the next
// build's sums.Recover settles a commit cut short. If a rename fails here,
// Recover runs at once, so SHA256SUMS agrees with whatever is in place.
func commitArchives(out string, files []*atomicfile.File, results []ArchiveResult) error {
	var set []sums.Pending
	for i, f := range files {
		r := results[i]
		what := fmt.Sprintf("group %q", r.Group)
		if len(r.Chunks) == 0 {
			set = append(set, sums.Pending{Name: filepath.Base(r.Path), SHA256: r.SHA256, What: what, File: f})
			continue
		}
		// A cut archive: its chunks, and the joined archive's checksum.
		for _, c := range append(r.Chunks, *r.checksum) {
			set = append(set, sums.Pending{Name: filepath.Base(c.Path), SHA256: c.SHA256, What: what, File: c.file})
		}
	}
	return sums.CommitSet(out, set)
}

// diskFullError says which directory is full and roughly how much room the
// build needs there: every new archive is written beside the old one, so
// the blobs of all the groups being built (compression makes the archives
// smaller) must fit in the space left.
func diskFullError(out string, plans []*groupPlan, err error) error {
	var need int64
	for _, p := range plans {
		need += p.payload()
	}
	free := "unknown"
	if n := atomicfile.FreeSpace(out); n >= 0 {
		free = progress.HumanBytes(n)
	}
	return fmt.Errorf("output directory %s is full (%s free): the new archives need up to %s there, beside the current ones, which stay until every new archive is complete: %w",
		out, free, progress.HumanBytes(need), err)
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
	// noCache streams big layers from the registry into the archive (see
	// stream.go); stream is what the pipeline chose to stream.
	noCache  bool
	stream   map[digest.Digest]blobNeed
	policy   registry.Policy
	spec     *config.Spec
	cache    *cache.Cache
	fetch    Fetcher
	log      *slog.Logger
	progress progress.Reporter
	// allWrites counts the bytes of every archive of the build (a no-op
	// task with a single archive)
	allWrites progress.Task
	dl        *downloads
}

// blobNeed is a blob and where it can be fetched from.
type blobNeed struct {
	desc image.Descriptor
	ref  image.Reference
	top  digest.Digest
}

type groupPlan struct {
	group *config.Group
	// archive is the file name: the group's archive, or one of its parts
	// (then part is its number of parts; duplicated the bytes of blobs an
	// earlier part of the group holds too).
	archive     string
	part, parts int
	duplicated  int64
	maxSize     int64 // the group's max-size (0: none), checked once written
	chunked     bool  // one image over max-size: cut into chunks once written

	images []archive.Image
	blobs  []blobNeed // configs and layers, deduplicated, in first-use order
	// singles are the single-platform images, whose platform only their
	// config says: checked against the lockfile once configs are fetched.
	singles []singleCheck
}

type singleCheck struct {
	ref      string
	config   image.Descriptor
	platform *lockfile.Platform
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

// planGroups reads the manifests of every image of every group (from the
// cache, fetching what is missing, several images at a time) and lays out
// what each archive holds.
func (b *builder) planGroups(ctx context.Context, groups []*config.Group, lock *lockfile.Lock, jobs int) ([]*groupPlan, error) {
	type job struct {
		group *config.Group
		lg    *lockfile.Group
		i     int
		img   archive.Image
		arts  []archive.Image // the image's carried artifacts
	}
	var all []*job
	for _, g := range groups {
		lg := lock.Group(g.Name)
		if lg == nil {
			return nil, fmt.Errorf("%w: group %q is not in the lockfile", errdefs.ErrLockOutOfDate, g.Name)
		}
		for i := range lg.Images {
			all = append(all, &job{group: g, lg: lg, i: i})
		}
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(jobs)
	for _, j := range all {
		eg.Go(func() error {
			e := &j.lg.Images[j.i]
			ref, err := image.ParseReference(e.Ref, "")
			if err != nil {
				return err
			}
			j.img, err = b.image(ectx, ref, e.Digest, e, j.group.Index)
			if err == nil {
				j.arts, err = b.artifacts(ectx, ref, e, j.img.Names[0])
			}
			if err != nil {
				return fmt.Errorf("%w: group %q: image %q: %w", errdefs.ErrBuild, j.group.Name, e.Ref, err)
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	var plans []*groupPlan
	var p *groupPlan
	var seen map[digest.Digest]bool
	var byTop map[digest.Digest]int
	for _, j := range all { // groups in order, images sorted by ref: a fixed order
		if p == nil || p.group != j.group {
			p = &groupPlan{group: j.group}
			plans = append(plans, p)
			seen, byTop = map[digest.Digest]bool{}, map[digest.Digest]int{}
		}
		e, img := &j.lg.Images[j.i], j.img
		ref, _ := image.ParseReference(e.Ref, "")
		// One image under several names is stored once and named twice.
		if k, ok := byTop[img.Top.Digest]; ok {
			p.images[k].Names = append(p.images[k].Names, img.Names...)
			continue
		}
		byTop[img.Top.Digest] = len(p.images)
		p.images = append(p.images, img)
		p.addArtifacts(j.arts, ref, e.Digest, seen)
		if !e.IsIndex() {
			p.singles = append(p.singles, singleCheck{ref: e.Ref, config: img.Manifests[0].Config, platform: &e.Platforms[0]})
		}
		for _, m := range img.Manifests {
			for _, d := range append([]image.Descriptor{m.Config}, m.Layers...) {
				if !seen[d.Digest] {
					seen[d.Digest] = true
					p.blobs = append(p.blobs, blobNeed{desc: d, ref: ref, top: e.Digest})
				}
			}
		}
	}
	return plans, nil
}

func (b *builder) image(ctx context.Context, ref image.Reference, top digest.Digest, e *lockfile.Image, mode image.IndexMode) (archive.Image, error) {
	img := archive.Image{Names: []string{ref.StoredName()}}
	topBlob, err := b.manifest(ctx, ref, top, top)
	if err != nil {
		return img, err
	}
	img.Top = image.Descriptor{MediaType: e.MediaType, Digest: top, Size: int64(len(topBlob))}
	if !e.IsIndex() {
		m, err := image.ParseManifest(topBlob, e.MediaType)
		if err != nil {
			return img, lockMismatch("media-type", e.MediaType, err)
		}
		if err := checkManifestAgainstLock(m, &e.Platforms[0]); err != nil {
			return img, err
		}
		if m.TotalSize() != e.Size {
			return img, lockMismatch("size", e.Size, m.TotalSize())
		}
		m.Descriptor = img.Top
		img.Manifests = []image.Manifest{m}
		return img, nil
	}
	if err := checkIndexAgainstLock(topBlob, e); err != nil {
		return img, err
	}
	var keep []digest.Digest
	for _, pl := range e.Platforms {
		d := pl.Digest
		blob, err := b.manifest(ctx, ref, top, d)
		if err != nil {
			return img, fmt.Errorf("platform %s: %w", pl.Platform, err)
		}
		m, err := image.ParseManifest(blob, pl.MediaType)
		if err != nil {
			return img, fmt.Errorf("platform %s: %w", pl.Platform, lockMismatch("media-type", pl.MediaType, err))
		}
		if err := checkManifestAgainstLock(m, &pl); err != nil {
			return img, err
		}
		m.Descriptor = image.Descriptor{MediaType: pl.MediaType, Digest: d, Size: int64(len(blob))}
		img.Manifests = append(img.Manifests, m)
		keep = append(keep, d)
	}
	if err := checkIndexSize(topBlob, e); err != nil {
		return img, err
	}
	if mode == image.IndexFiltered {
		filtered, err := image.FilterIndex(topBlob, e.MediaType, keep)
		if err != nil {
			return img, err
		}
		fd := digest.FromBytes(filtered)
		if e.FilteredDigest != "" && e.FilteredDigest != fd {
			return img, fmt.Errorf("filtered index is %s, the lockfile says %s", fd, e.FilteredDigest)
		}
		if err := b.cache.Put(ctx, fd, int64(len(filtered)), bytes.NewReader(filtered)); err != nil {
			return img, err
		}
		img.Top = image.Descriptor{MediaType: e.MediaType, Digest: fd, Size: int64(len(filtered))}
	}
	return img, nil
}

// artifacts builds the archive entries of the artifacts e pins (carried
// signatures, SBOMs and attestations), each checked against its lockfile
// entry. name is the image's name in the archive.
func (b *builder) artifacts(ctx context.Context, ref image.Reference, e *lockfile.Image, name string) ([]archive.Image, error) {
	var out []archive.Image
	for _, a := range e.Artifacts {
		d := a.Digest
		blob, err := b.manifest(ctx, ref, e.Digest, d)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", a.Kind, d, err)
		}
		m, err := image.ParseManifest(blob, a.MediaType)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", a.Kind, d, lockMismatch("artifact media-type", a.MediaType, err))
		}
		if m.TotalSize() != a.Size {
			return nil, lockMismatch("size of "+a.Kind+" "+a.Digest.String(), a.Size, m.TotalSize())
		}
		m.Descriptor = image.Descriptor{MediaType: a.MediaType, Digest: d, Size: int64(len(blob))}
		out = append(out, archive.Image{Top: m.Descriptor, Manifests: []image.Manifest{m},
			Artifact: &archive.Artifact{Kind: a.Kind, Subject: a.Subject, Image: name, Tag: a.Tag}})
	}
	return out, nil
}

// addArtifacts adds an image's artifacts after it, each once per archive,
// and their configs and layers to the blobs to fetch.
func (p *groupPlan) addArtifacts(arts []archive.Image, ref image.Reference, top digest.Digest, seen map[digest.Digest]bool) {
	for _, a := range arts {
		if seen[a.Top.Digest] {
			continue
		}
		seen[a.Top.Digest] = true
		p.images = append(p.images, a)
		m := a.Manifests[0]
		for _, d := range append([]image.Descriptor{m.Config}, m.Layers...) {
			if !seen[d.Digest] {
				seen[d.Digest] = true
				p.blobs = append(p.blobs, blobNeed{desc: d, ref: ref, top: top})
			}
		}
	}
}

// checkSingles compares each single-platform image's config with the
// platform its lockfile entry names, as soon as the config is in.
func (b *builder) checkSingles(ctx context.Context, p *groupPlan, g *gates) error {
	for _, s := range p.singles {
		if _, err := g.wait(ctx, s.config.Digest); err != nil {
			return err
		}
		rc, err := b.cache.Open(s.config.Digest, s.config.Size)
		if err != nil {
			return fmt.Errorf("%w: group %q: image %q: config: %w", errdefs.ErrBuild, p.group.Name, s.ref, err)
		}
		cfg, err := io.ReadAll(io.LimitReader(rc, image.MaxManifestSize))
		rc.Close()
		if err == nil {
			err = checkConfigPlatform(cfg, s.platform)
		}
		if err != nil {
			return fmt.Errorf("group %q: image %q: %w", p.group.Name, s.ref, err)
		}
	}
	return nil
}

// payload is what the archive writer reads for p: each distinct blob once
// (a single manifest is its image's top as well).
func (p *groupPlan) payload() int64 {
	var payload int64
	counted := map[digest.Digest]bool{}
	count := func(d image.Descriptor) {
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
	return payload
}

// writeArchive writes p's archive to a temporary file in outDir, complete
// and synced, and returns it uncommitted: the caller commits or closes it.
// On error nothing is left behind.
func (b *builder) writeArchive(ctx context.Context, outDir string, p *groupPlan, mtime time.Time, g *gates, follow bool) (_ ArchiveResult, _ *atomicfile.File, err error) {
	start := time.Now()
	name := p.archiveName()
	res := ArchiveResult{Group: p.group.Name, Path: filepath.Join(outDir, name), Blobs: len(p.blobs), Part: p.part, Parts: p.parts, Duplicated: p.duplicated}
	for _, img := range p.images {
		if img.Artifact == nil {
			res.Images++
		}
	}
	own := b.progress.Task("write "+name, p.payload(), progress.Bytes)
	defer func() { own.Done(err) }()
	task := own
	if b.allWrites != nil {
		task = progress.Also(own, b.allWrites)
	}
	comp, err := archive.CompressionFor(name)
	if err != nil {
		return res, nil, err
	}
	tmp, err := atomicfile.Create(res.Path, 0o644)
	if err != nil {
		return res, nil, err
	}
	tmp.SyncAhead() // synced at the end anyway: flush as we go
	// The archive's own sha256 (for SHA256SUMS) is computed by the writer
	// itself. Handing each piece to a hashing goroutine (a copy and a
	// channel send per 256 KiB) cost more than it saved: measured on the
	// 250 MB set, 0.99 -> 0.85 CPU-s and 1.00 -> 0.91 s wall without it.
	h := sha256.New()
	counter := &iox.CountingWriter{}
	// archive.Write buffers its output (256 KiB writes): no second buffer.
	blobs := cacheBlobs{c: b.cache, gates: g, dl: b.dl, follow: follow, task: task, stream: b.stream, fetch: b.fetch, policy: b.policy}
	err = archive.Write(ctx, io.MultiWriter(tmp, h, counter), p.images, blobs, archive.Options{Compression: comp, ModTime: mtime, BlobsVerified: true})
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		tmp.Close() // removes the temporary file
		return res, nil, err
	}
	res.Size = counter.N
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	res.Duration = time.Since(start)
	if p.chunked {
		if res.Chunks, res.checksum, err = cutIntoChunks(ctx, outDir, name, tmp.Name(), res.Size, res.SHA256, p.maxSize); err != nil {
			tmp.Close()
			return res, nil, err
		}
		return res, tmp, nil
	}
	if max := p.maxSize; max > 0 && res.Size > max {
		tmp.Close()
		return res, nil, fmt.Errorf("%s is %d bytes, over the group's max-size of %d (compression made the layers larger): write the group as .tar, or lower max-size a little", name, res.Size, max)
	}
	return res, tmp, nil
}

// archiveName is the file the plan writes.
func (p *groupPlan) archiveName() string {
	if p.archive != "" {
		return p.archive
	}
	return p.group.Archive
}
