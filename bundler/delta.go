package bundler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/sums"
)

// Since is the BASE a delta is made against: what the site already holds.
type Since struct {
	// Source names it for delta.json: a lockfile path, git:REV, or an
	// inventory file.
	Source string
	// Lock is BASE's lockfile; its images' layers are what the site
	// holds. Nil for an inventory.
	Lock *lockfile.Lock
	// LockSHA256 is the sha256 of BASE's lockfile file ("" for an
	// inventory).
	LockSHA256 string
	// Have are blobs the site holds beyond Lock's (an inventory's), each
	// with where, for messages.
	Have map[digest.Digest]string
}

// DeltaOptions ask Build for a delta beside the full archives.
type DeltaOptions struct {
	// Dir receives the delta: delta archives, delta.json, the new
	// lockfile and SHA256SUMS.
	Dir   string
	Since *Since
	// Lockfile is the new lockfile's bytes, as written beside the spec.
	Lockfile []byte
}

// DeltaResult is what a delta build wrote.
type DeltaResult struct {
	Dir      string
	Manifest *delta.Manifest
	// Bytes is the size of the delta directory's files; Full the size of
	// the full archives it stands for.
	Bytes, Full int64
}

// BuildDelta is Build, and then the delta of the new archives against
// opts.Since in opts.Dir (see writeDelta). The full archives are committed
// first: they are right whatever happens to the delta, and the next BASE.
func BuildDelta(ctx context.Context, spec *config.Spec, lock *lockfile.Lock, c *cache.Cache, f Fetcher, bopts BuildOptions, opts DeltaOptions) ([]ArchiveResult, *DeltaResult, error) {
	if len(bopts.Groups) > 0 {
		return nil, nil, &errdefs.Error{Class: errdefs.ErrUsage, Msg: "a delta stands for every archive of a version: build --since builds every group (leave out --group)"}
	}
	if opts.Since == nil || opts.Dir == "" {
		return nil, nil, &errdefs.Error{Class: errdefs.ErrUsage, Msg: "a delta needs a BASE (--since) and a directory"}
	}
	results, b, plans, err := build(ctx, spec, lock, c, f, bopts)
	if err != nil {
		return nil, nil, err
	}
	dr, err := b.writeDelta(ctx, lock, plans, results, bopts.ModTime, &opts)
	if err != nil {
		return results, nil, err
	}
	return results, dr, nil
}

// baseHave lists the layers BASE's images hold, each with the BASE group
// that holds it: manifests from the cache (fetched when missing, by
// digest). Configs, manifests and indexes are never left out of a delta,
// so only layers count.
func (b *builder) baseHave(ctx context.Context, s *Since) (map[digest.Digest]string, error) {
	have := map[digest.Digest]string{}
	for d, where := range s.Have {
		have[d] = where
	}
	if s.Lock == nil {
		return have, nil
	}
	for _, g := range s.Lock.Groups {
		for i := range g.Images {
			e := &g.Images[i]
			ref, err := image.ParseReference(e.Ref, "")
			if err != nil {
				return nil, fmt.Errorf("BASE %s: %w", s.Source, err)
			}
			for _, p := range e.Platforms {
				blob, err := b.manifest(ctx, ref, e.Digest, p.Digest)
				if err != nil {
					return nil, fmt.Errorf("BASE %s: image %s: %w", s.Source, e.Ref, err)
				}
				m, err := image.ParseManifest(blob, p.MediaType)
				if err != nil {
					return nil, fmt.Errorf("BASE %s: image %s: manifest %s: %w", s.Source, e.Ref, p.Digest, err)
				}
				for _, l := range m.Layers {
					if _, ok := have[l.Digest]; !ok {
						have[l.Digest] = fmt.Sprintf("group %q", g.Name)
					}
				}
			}
		}
	}
	return have, nil
}

// writeDelta writes the delta of a build into opts.Dir: for each group
// whose lockfile entries changed since BASE, its archive without the
// layers BASE holds; delta.json with every full archive's size and sha256
// (known from writing them); the new lockfile; SHA256SUMS over them. They
// go to temporary files first and are put in place as one set.
func (b *builder) writeDelta(ctx context.Context, lock *lockfile.Lock, plans []*groupPlan, results []ArchiveResult, mtime time.Time, opts *DeltaOptions) (*DeltaResult, error) {
	have, err := b.baseHave(ctx, opts.Since)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errdefs.ErrBuild, err)
	}
	sum := sha256.Sum256(opts.Lockfile)
	m := &delta.Manifest{
		Version:        delta.Version,
		Base:           delta.Base{Source: opts.Since.Source, LockfileSHA256: opts.Since.LockSHA256},
		LockfileSHA256: hex.EncodeToString(sum[:]),
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: delta directory: %w", errdefs.ErrBuild, err)
	}
	unlock, err := atomicfile.LockDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("%w: delta directory: %w", errdefs.ErrBuild, err)
	}
	defer unlock()
	if _, err := sums.Recover(opts.Dir); err != nil {
		return nil, fmt.Errorf("%w: delta directory %s: %w", errdefs.ErrBuild, opts.Dir, err)
	}
	var set []sums.Pending
	var temps []*atomicfile.File
	defer func() {
		for _, f := range temps {
			f.Close()
		}
	}()
	res := &DeltaResult{Dir: opts.Dir, Manifest: m}
	for i, p := range plans {
		r := results[i]
		a := delta.Archive{Group: r.Group, Name: filepath.Base(r.Path), Size: r.Size, SHA256: r.SHA256}
		res.Full += r.Size
		if old := baseGroup(opts.Since.Lock, r.Group); old != nil && lock.Group(r.Group) != nil && reflect.DeepEqual(*old, *lock.Group(r.Group)) {
			a.Unchanged = true
			m.Archives = append(m.Archives, a)
			continue
		}
		f, tmp, fromBase, err := b.writeDeltaArchive(ctx, opts.Dir, a.Name, p, have, mtime)
		if tmp != nil {
			temps = append(temps, tmp)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: group %q: delta archive: %w", errdefs.ErrBuild, r.Group, err)
		}
		a.Delta, a.FromBase = f, fromBase
		res.Bytes += f.Size
		m.Archives = append(m.Archives, a)
		set = append(set, sums.Pending{Name: f.Name, SHA256: f.SHA256, What: fmt.Sprintf("group %q", r.Group), File: tmp})
	}
	if opts.Since.Lock != nil {
		for _, g := range opts.Since.Lock.Groups {
			if lock.Group(g.Name) == nil {
				m.RemovedGroups = append(m.RemovedGroups, g.Name)
			}
		}
	}
	doc, err := m.Encode()
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{delta.FileName, doc}, {delta.LockfileName, opts.Lockfile}} {
		tmp, err := atomicfile.Create(filepath.Join(opts.Dir, f.name), 0o644)
		if err != nil {
			return nil, err
		}
		temps = append(temps, tmp)
		if _, err := tmp.Write(f.data); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errdefs.ErrBuild, f.name, err)
		}
		s := sha256.Sum256(f.data)
		set = append(set, sums.Pending{Name: f.name, SHA256: hex.EncodeToString(s[:]), What: "the delta", File: tmp})
		res.Bytes += int64(len(f.data))
	}
	old, _ := delta.Read(ctx, opts.Dir)
	if err := sums.CommitSet(opts.Dir, set); err != nil {
		return nil, fmt.Errorf("%w: %w", errdefs.ErrBuild, err)
	}
	removeStaleDeltas(opts.Dir, old, m)
	return res, nil
}

// removeStaleDeltas removes the delta archives an earlier delta in dir
// had and this one has not, and their SHA256SUMS lines.
func removeStaleDeltas(dir string, old, now *delta.Manifest) {
	if old == nil {
		return
	}
	keep := map[string]bool{}
	for _, a := range now.Archives {
		if a.Delta != nil {
			keep[a.Delta.Name] = true
		}
	}
	removed := false
	for _, a := range old.Archives {
		if a.Delta != nil && !keep[a.Delta.Name] {
			removed = os.Remove(filepath.Join(dir, a.Delta.Name)) == nil || removed
		}
	}
	if removed {
		sums.Update(dir, sums.Sums{}) //nolint:errcheck // only drops the removed files' lines
	}
}

func baseGroup(l *lockfile.Lock, name string) *lockfile.Group {
	if l == nil {
		return nil
	}
	return l.Group(name)
}

// writeDeltaArchive writes one group's archive with the layers BASE holds
// left out, from the cache, in the full archive's compression and entry
// time; it returns the file, its temporary file and the blobs left out.
func (b *builder) writeDeltaArchive(ctx context.Context, dir, full string, p *groupPlan, have map[digest.Digest]string, mtime time.Time) (*delta.File, *atomicfile.File, []delta.Blob, error) {
	layers := map[digest.Digest]int64{}
	for _, img := range p.images {
		if img.Artifact != nil {
			continue // carried artefacts travel whole
		}
		for _, m := range img.Manifests {
			for _, l := range m.Layers {
				layers[l.Digest] = l.Size
			}
		}
	}
	var fromBase []delta.Blob
	for d, size := range layers {
		if where, ok := have[d]; ok {
			fromBase = append(fromBase, delta.Blob{Digest: d, Size: size, Where: where})
		}
	}
	comp, err := archive.CompressionFor(full)
	if err != nil {
		return nil, nil, nil, err
	}
	f := &delta.File{Name: delta.DeltaName(full)}
	tmp, err := atomicfile.Create(filepath.Join(dir, f.Name), 0o644)
	if err != nil {
		return nil, nil, nil, err
	}
	h := sha256.New()
	counter := &iox.CountingWriter{}
	omit := func(d digest.Digest) bool {
		_, layer := layers[d]
		_, held := have[d]
		return layer && held
	}
	err = archive.Write(ctx, io.MultiWriter(tmp, h, counter), p.images, cachedBlobs{b.cache}, archive.Options{Compression: comp, ModTime: mtime, Omit: omit})
	if err != nil {
		return nil, tmp, nil, err
	}
	f.Size, f.SHA256 = counter.N, hex.EncodeToString(h.Sum(nil))
	return f, tmp, fromBase, nil
}

// cachedBlobs reads blobs from the cache, which holds every blob of a
// build once the build is done; Write checks each as it copies.
type cachedBlobs struct{ c *cache.Cache }

func (cb cachedBlobs) Open(_ context.Context, d image.Descriptor) (io.ReadCloser, error) {
	return cb.c.Open(d.Digest, d.Size)
}
