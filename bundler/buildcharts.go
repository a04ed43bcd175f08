package bundler

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/chart"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/sums"
)

// buildcharts.go: build carries each pinned chart twice: as its .tgz in
// the output directory's charts/ (with a SHA256SUMS of its own there),
// ready for k3s's static charts directory or helm install; and in its OCI
// form (as helm push stores it) in its group's archive, an index.json
// entry that loaders ignore, from which push and serve give it to
// helm install oci://… inside the gap.

// ChartsDir is the output directory's subdirectory for chart archives:
// apart from the image archives, so a glob of the output directory into
// k3s's agent/images/ never hands it a chart.
const ChartsDir = lockfile.ChartsDir

// ChartArchiver gives build a pinned chart's archive and OCI form (see
// ChartFetcher).
type ChartArchiver interface {
	Archive(ctx context.Context, c *config.Chart, l *lockfile.Chart) (string, error)
	OCI(ctx context.Context, c *config.Chart, l *lockfile.Chart) (manifest, config []byte, err error)
}

// chartFile is a chart's .tgz to put in charts/.
type chartFile struct {
	name   string // NAME-VERSION.tgz
	src    string // the cached archive
	sha256 string
}

// addCharts adds every group's charts to the group's (first) plan, their
// blobs in the cache, and returns the files for charts/.
func (b *builder) addCharts(ctx context.Context, plans []*groupPlan, lock *lockfile.Lock, src ChartArchiver) ([]chartFile, error) {
	var files []chartFile
	var errs []error
	done := map[*config.Group]bool{}
	for _, p := range plans {
		g := p.group
		lg := lock.Group(g.Name)
		if done[g] || lg == nil || len(lg.Charts) == 0 {
			continue
		}
		done[g] = true
		for i := range lg.Charts {
			l := &lg.Charts[i]
			img, f, err := b.chartEntry(ctx, g, l, src)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: group %q: chart %s %s: %w", errdefs.ErrBuild, g.Name, l.Source, l.Version, err))
				continue
			}
			p.images = append(p.images, img)
			m := img.Manifests[0]
			for _, d := range append([]image.Descriptor{m.Config}, m.Layers...) {
				p.blobs = append(p.blobs, blobNeed{desc: d})
			}
			files = append(files, f)
		}
	}
	return files, errdefs.List(errs, "charts failed")
}

func (b *builder) chartEntry(ctx context.Context, g *config.Group, l *lockfile.Chart, src ChartArchiver) (archive.Image, chartFile, error) {
	var c *config.Chart
	for _, sc := range g.Charts {
		if sc.Source() == l.Source {
			c = sc
		}
	}
	if c == nil {
		return archive.Image{}, chartFile{}, fmt.Errorf("%w: not in the spec", errdefs.ErrLockOutOfDate)
	}
	if src == nil {
		return archive.Image{}, chartFile{}, fmt.Errorf("this run cannot fetch charts")
	}
	path, err := src.Archive(ctx, c, l)
	if err != nil {
		return archive.Image{}, chartFile{}, err
	}
	var manifest, cfg []byte
	if c.OCI != "" {
		// The registry's own manifest: its digest is what the lock pins.
		manifest, cfg, err = src.OCI(ctx, c, l)
	} else {
		var meta *chart.Metadata
		if meta, err = chart.ReadMetadata(path); err == nil {
			manifest, cfg, err = meta.Manifest(l.Archive, l.Size)
		}
	}
	if err != nil {
		return archive.Image{}, chartFile{}, err
	}
	md := digest.FromBytes(manifest)
	if c.OCI != "" && md != l.Digest {
		return archive.Image{}, chartFile{}, lockMismatch("chart manifest digest", l.Digest, md)
	}
	for _, blob := range [][]byte{manifest, cfg} {
		d := digest.FromBytes(blob)
		if !b.cache.Has(d, int64(len(blob))) {
			if err := b.cache.Put(ctx, d, int64(len(blob)), bytes.NewReader(blob)); err != nil {
				return archive.Image{}, chartFile{}, err
			}
		}
	}
	desc := image.Descriptor{MediaType: image.OCIManifest, Digest: md, Size: int64(len(manifest))}
	m, err := image.ParseManifest(manifest, desc.MediaType)
	if err != nil {
		return archive.Image{}, chartFile{}, err
	}
	m.Descriptor = desc
	img := archive.Image{Top: desc, Manifests: []image.Manifest{m},
		Artifact: &archive.Artifact{Kind: archive.KindChart, Image: l.ArtifactName()}}
	return img, chartFile{name: l.FileName(), src: path, sha256: l.Archive.Encoded()}, nil
}

// commitCharts copies the charts' archives into out/charts/ and commits
// them with their SHA256SUMS there, as one set (package sums). It runs
// just before the archives' own commit: a failure between the two leaves
// the new charts beside the old archives, and the next build settles it.
func commitCharts(ctx context.Context, out string, files []chartFile) error {
	if len(files) == 0 {
		return nil
	}
	dir := filepath.Join(out, ChartsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var set []sums.Pending
	var opened []*atomicfile.File
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	for _, cf := range files {
		f, err := atomicfile.Create(filepath.Join(dir, cf.name), 0o644)
		if err != nil {
			return err
		}
		opened = append(opened, f)
		in, err := os.Open(cf.src)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, iox.ContextReader(ctx, in))
		in.Close()
		if err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		set = append(set, sums.Pending{Name: cf.name, SHA256: cf.sha256, What: "chart " + cf.name, File: f})
	}
	return sums.CommitSet(dir, set)
}
