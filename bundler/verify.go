package bundler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/sums"
)

// ErrVerify marks archives that failed verification.
var ErrVerify = errors.New("verification failed")

// VerifyOptions say which archives Verify checks.
type VerifyOptions struct {
	OutputDir string   // default: the spec's output-dir
	Groups    []string // only these groups; empty means all
}

// ArchiveReport is what verification found in one archive.
type ArchiveReport struct {
	Group  string // "" when the archive was checked on its own
	Path   string
	Name   string // file name: the prefix of every problem line
	Size   int64  // bytes of the file
	SHA256 string // hex
	Format archive.Format
	Images int // distinct images (one image under two names counts once)
	Blobs  int // files under blobs/
	Files  int // regular files (and, in a Docker archive, symlinks to them)
	// Problems, one line each, without the file name.
	Problems []string
}

// OK reports whether no problem was found.
func (r *ArchiveReport) OK() bool { return len(r.Problems) == 0 }

// Lines are the problems, each prefixed with the archive's file name.
func (r *ArchiveReport) Lines() []string {
	out := make([]string, len(r.Problems))
	for i, p := range r.Problems {
		out[i] = r.Name + ": " + p
	}
	return out
}

func (r *ArchiveReport) add(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Verify checks the built archive of each group of spec against lock, the
// lockfile it was built from: every blob hashes to its name and has its
// size, index.json and manifest.json agree with each other and with the
// blobs, every locked image and platform is there with the locked digests
// (the filtered digest in "filtered" groups), nothing else is (no other
// image, platform or blob), and SHA256SUMS in the output directory has the
// archive's checksum. A missing or unreadable archive is a problem of its
// report, not an error; errors are for a group missing from lock.
func Verify(ctx context.Context, spec *config.Spec, lock *lockfile.Lock, opts VerifyOptions) ([]ArchiveReport, error) {
	out := opts.OutputDir
	if out == "" {
		out = spec.OutputDir
	}
	groups, err := selectGroups(spec, opts.Groups)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if lock.Group(g.Name) == nil {
			return nil, fmt.Errorf("%w: group %q is not in the lockfile", ErrLockOutOfDate, g.Name)
		}
	}
	sums, sumsErr := sums.Read(filepath.Join(out, SumsFile))
	var reports []ArchiveReport
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return reports, err
		}
		p := filepath.Join(out, g.Archive)
		r, c := readArchive(ctx, p)
		r.Group = g.Name
		if c != nil {
			want, _ := archive.CompressionFor(g.Archive)
			if c.Compression != want {
				r.add("is %s-compressed, but its name asks for %s", c.Compression, want)
			}
			if c.Format != archive.FormatOCIDocker {
				r.add("is a %q archive: build writes an OCI layout with manifest.json", c.Format)
			}
			r.Problems = append(r.Problems, c.Strays()...)
			verifyLocked(&r, c, lock.Group(g.Name))
		}
		if r.SHA256 != "" {
			switch sum, ok := sums[r.Name]; {
			case sumsErr != nil:
				r.add("%s: %v", SumsFile, sumsErr)
			case !ok:
				r.add("%s has no line for it", SumsFile)
			case sum != r.SHA256:
				r.add("%s says %s, the file's sha256 is %s", SumsFile, sum, r.SHA256)
			}
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// VerifyArchive checks one archive's internal consistency only (see
// archive.Contents.Check): any archive Read understands, ours or not.
// Unreferenced content is not a problem here (other tools store more than
// the images need); Verify, which knows what build writes, reports it.
func VerifyArchive(ctx context.Context, path string) ArchiveReport {
	r, _ := readArchive(ctx, path)
	return r
}

// readArchive reads an archive and runs its internal checks. A file that
// cannot be read is one problem (and a nil Contents).
func readArchive(ctx context.Context, path string) (ArchiveReport, *archive.Contents) {
	r := ArchiveReport{Path: path, Name: filepath.Base(path)}
	c, err := archive.ReadFile(ctx, path, archive.ReadOptions{})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.add("archive is missing")
		return r, nil
	case err != nil:
		r.add("unreadable: %v", err)
		if sum, size, herr := hashFile(path); herr == nil {
			r.SHA256, r.Size = sum, size
		}
		return r, nil
	}
	r.Size, r.SHA256, r.Format, r.Images, r.Blobs, r.Files = c.Size, c.SHA256, c.Format, len(c.Images), len(c.Blobs), len(c.Files)
	r.Problems = append(r.Problems, c.Check()...)
	return r, c
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// verifyLocked compares an archive with its lockfile group. Problems the
// internal checks already report (a missing or corrupt blob) are not
// repeated: a platform's size is only compared when all its blobs are
// there and sound.
func verifyLocked(r *ArchiveReport, c *archive.Contents, lg *lockfile.Group) {
	if c.Index == nil {
		return // not our format: reported already
	}
	byName := map[string]*archive.ImageInfo{}
	for _, img := range c.Images {
		for _, n := range img.Names {
			byName[n] = img
		}
	}
	sound := func(ref archive.Ref) bool {
		b := c.Blobs[ref.Digest]
		return ref.Present() && b != nil && b.ComputedDigest == b.Digest && b.Size == ref.Size
	}
	expected := map[digest.Digest]bool{}  // blobs the lockfile accounts for
	explained := map[digest.Digest]bool{} // blobs of images or platforms already reported
	names := map[string]bool{}
	done := map[*archive.ImageInfo]bool{}
	for _, e := range lg.Images {
		ref, err := image.ParseReference(e.Ref, "")
		if err != nil {
			r.add("lockfile: %v", err)
			continue
		}
		name := archiveName(ref)
		names[name] = true
		want, what := e.Digest, "pins"
		if lg.Index == image.IndexFiltered && e.IsIndex() {
			want, what = e.FilteredDigest, "has the filtered index"
		}
		img := byName[name]
		switch {
		case img == nil:
			r.add("image %s is not in index.json", name)
			continue
		case img.Top.Digest.String() != want:
			r.add("image %s: index.json has %s, the lockfile %s %s", name, img.Top.Digest, what, want)
			for d := range img.References() {
				explained[d] = true
			}
			continue
		case img.Top.MediaType != e.MediaType:
			r.add("image %s: index.json gives media type %q, the lockfile %q", name, img.Top.MediaType, e.MediaType)
		}
		expected[img.Top.Digest] = true
		locked := map[digest.Digest]bool{}
		for _, pl := range e.Platforms {
			d := digest.Digest(pl.Digest)
			locked[d] = true
			expected[d] = true
			i := slices.IndexFunc(img.Platforms, func(p *archive.PlatformInfo) bool { return p.Manifest.Digest == d })
			if i < 0 {
				if c.Blobs[d] != nil {
					r.add("image %s: platform %s: manifest %s is not listed by its index %s", name, pl.Platform, d, img.Top.Digest)
				} else {
					r.add("image %s: platform %s: manifest %s is missing", name, pl.Platform, d)
				}
				continue
			}
			p := img.Platforms[i]
			expected[p.Config.Digest] = true
			ok := sound(*p.Manifest) && sound(p.Config)
			for _, l := range p.Layers {
				expected[l.Digest] = true
				ok = ok && sound(l)
			}
			if p.Manifest.MediaType != pl.MediaType {
				r.add("image %s: platform %s: manifest media type %q, the lockfile %q", name, pl.Platform, p.Manifest.MediaType, pl.MediaType)
			}
			if p.Config.Digest.String() != pl.Config {
				r.add("image %s: platform %s: config %s, the lockfile %s", name, pl.Platform, p.Config.Digest, pl.Config)
			} else if ok && p.Size != pl.Size {
				r.add("image %s: platform %s: %d bytes, the lockfile %d", name, pl.Platform, p.Size, pl.Size)
			}
		}
		if done[img] {
			continue // the same image under another name: the rest is checked once
		}
		done[img] = true
		for _, p := range img.Platforms {
			if !locked[p.Manifest.Digest] {
				r.add("image %s: platform %s (%s) is not in the lockfile", name, p.Platform, p.Manifest.Digest)
				explained[p.Manifest.Digest], explained[p.Config.Digest] = true, true
				for _, l := range p.Layers {
					explained[l.Digest] = true
				}
			}
		}
		if img.Docker >= 0 && img.DockerPlatform >= 0 && len(e.Platforms) > 0 {
			if got := img.Platforms[img.DockerPlatform]; got.Manifest.Digest.String() != e.Platforms[0].Digest {
				r.add("manifest.json: %s describes platform %s, not the group's first, %s", name, got.Platform, e.Platforms[0].Platform)
			}
		}
	}
	for _, img := range c.Images {
		for _, n := range img.Names {
			if !names[n] {
				r.add("image %s (%s) is not in the lockfile", n, img.Top.Digest)
				for d := range img.References() {
					explained[d] = true
				}
			}
		}
	}
	refs := c.References()
	var extra []digest.Digest
	for d := range c.Blobs {
		// Unreferenced blobs are reported as strays.
		if !expected[d] && !explained[d] && refs[d] {
			extra = append(extra, d)
		}
	}
	slices.Sort(extra)
	for _, d := range extra {
		r.add("blob %s (%d bytes) is not part of the lockfile's images", d, c.Blobs[d].Size)
	}
}
