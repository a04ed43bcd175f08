package delta

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/sums"
)

// extractCharts writes, after apply committed the archives, each chart the
// new lockfile pins as charts/NAME-VERSION.tgz with its charts/SHA256SUMS,
// as build does: the chart's .tgz is its OCI form's layer in its group's
// archive, so the delta carries no file for it. Each is checked against
// the lockfile's digest before the set is committed.
func extractCharts(ctx context.Context, out string, lock []byte, m *Manifest, tmpDir string) error {
	l, err := lockfile.Parse(lock, LockfileName)
	if err != nil {
		return err
	}
	var set []sums.Pending
	opened := map[string]*atomicfile.File{} // by file name
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	dir := filepath.Join(out, lockfile.ChartsDir)
	for _, g := range l.Groups {
		if len(g.Charts) == 0 {
			continue
		}
		want := map[string]*lockfile.Chart{}
		for i := range g.Charts {
			c := &g.Charts[i]
			want[c.ArtifactName()] = c
		}
		for _, a := range m.Archives {
			if a.Group != g.Name || len(want) == 0 {
				continue
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			err := chartsOf(ctx, filepath.Join(out, a.Name), want, dir, tmpDir, opened)
			if err != nil {
				return fmt.Errorf("the charts in %s: %w", a.Name, err)
			}
		}
		for key, c := range want {
			if c != nil {
				return fmt.Errorf("chart %s of group %q is in none of its archives", key, g.Name)
			}
		}
		for i := range g.Charts {
			c := &g.Charts[i]
			name := c.FileName()
			if f := opened[name]; f != nil {
				set = append(set, sums.Pending{Name: name, SHA256: c.Archive.Encoded(), What: "chart " + name, File: f})
			}
		}
	}
	if len(set) == 0 {
		return nil
	}
	return sums.CommitSet(dir, set)
}

// chartsOf copies the chart layers of want (by NAME:VERSION; each found
// one is set to nil) out of the archive at p into temporary files in dir,
// added to files by file name.
func chartsOf(ctx context.Context, p string, want map[string]*lockfile.Chart, dir, tmpDir string, files map[string]*atomicfile.File) error {
	sk, err := archive.OpenSeekable(ctx, p, archive.SeekableOptions{Dir: tmpDir, Read: archive.ReadOptions{Unhashed: true}})
	if err != nil {
		return err
	}
	defer sk.Close()
	for _, img := range sk.Contents.Images {
		a := img.Artifact
		if a == nil || a.Kind != archive.KindChart || want[a.Image] == nil || len(img.Manifests) != 1 || len(img.Manifests[0].Layers) == 0 {
			continue
		}
		c := want[a.Image]
		layer := img.Manifests[0].Layers[0]
		if layer.Digest != c.Archive {
			return fmt.Errorf("chart %s: its layer is %s, the lockfile's archive %s", a.Image, layer.Digest, c.Archive)
		}
		fi, ok := sk.Contents.File(layer)
		if !ok {
			return fmt.Errorf("chart %s: its layer %s is not in the archive", a.Image, layer.Digest)
		}
		name := c.FileName()
		f, err := atomicfile.Create(filepath.Join(dir, name), 0o644)
		if err != nil {
			return err
		}
		files[name] = f
		v := layer.Digest.Verifier()
		r := io.NewSectionReader(sk.File, fi.Offset, fi.Size)
		if _, err := io.Copy(io.MultiWriter(f, v), iox.ContextReader(ctx, r)); err != nil {
			return err
		}
		if !v.Verified() {
			return fmt.Errorf("chart %s: its layer does not hash to %s", a.Image, layer.Digest)
		}
		if err := f.Sync(); err != nil {
			return err
		}
		want[a.Image] = nil
	}
	return nil
}
