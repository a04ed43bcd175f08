package bundler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/hashicorp/go-multierror"
	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/sums"
	"github.com/airgap-bundle/airgap-bundle/trust"
)

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
	// Chunks is how many chunks a cut archive (split-oversize) was read
	// from, joined; 0 for an archive in one file. Its checksum is its
	// .sha256's, each chunk's SHA256SUMS'.
	Chunks int
	// Problems found, each with Archive set to Name.
	Problems []archive.Problem
	// Delta is set in a delta's reports: what the report stands for, and
	// for a delta archive the blobs it leaves out (see VerifyDelta).
	Delta *DeltaInfo
}

// OK reports whether no problem was found.
func (r *ArchiveReport) OK() bool { return len(r.Problems) == 0 }

func (r *ArchiveReport) add(ps ...archive.Problem) {
	for _, p := range ps {
		p.Archive = r.Name
		r.Problems = append(r.Problems, p)
	}
}

// Verify checks the built archive of each group of spec against lock, the
// lockfile it was built from: every blob hashes to its name and has its
// size, index.json and manifest.json agree with each other and with the
// blobs, every locked image and platform is there with the locked digests
// (the filtered digest in "filtered" groups), nothing else is (no other
// image, platform or blob), SHA256SUMS in the output directory has the
// archive's checksum, and in a group that carries signatures, the
// signatures the spec requires verify from the archive's own copies (see
// verifyCarriedSignatures). A missing or unreadable archive is a problem of its
// report, not an error; errors are for a group missing from lock.
func Verify(ctx context.Context, spec *config.Spec, lock *lockfile.Lock, opts VerifyOptions) ([]ArchiveReport, error) {
	out := OutputDir(spec, opts.OutputDir)
	groups, err := selectGroups(spec, opts.Groups)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if lock.Group(g.Name) == nil {
			return nil, fmt.Errorf("%w: group %q is not in the lockfile", errdefs.ErrLockOutOfDate, g.Name)
		}
	}
	recorded, sumsErr := sums.Read(filepath.Join(out, SumsFile))
	var reports []ArchiveReport
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return reports, err
		}
		files := groupFiles(out, g.Archive)
		held := map[string]bool{} // the image names the parts hold
		for i, part := range files {
			r := verifyGroupArchive(ctx, part.path, spec, g, lock.Group(g.Name), part.parts > 0, held)
			if part.parts > 0 && i == len(files)-1 {
				missingImages(&r, lock.Group(g.Name), held)
			}
			if r.SHA256 != "" && r.Chunks == 0 {
				switch sum, ok := recorded[r.Name]; {
				case sumsErr != nil:
					r.add(archive.Problem{Kind: KindChecksumUnreadable, Detail: sumsErr.Error()})
				case !ok:
					r.add(archive.Problem{Kind: KindChecksumMissing})
				case sum != r.SHA256:
					r.add(archive.Problem{Kind: KindChecksumMismatch, Digest: digest.NewDigestFromEncoded(digest.SHA256, r.SHA256), Detail: sum})
				}
			}
			reports = append(reports, r)
		}
	}
	return reports, nil
}

// verifyGroupArchive checks one archive of group g against lg, the
// lockfile group; a part (part set) against the images of lg it holds,
// whose names it adds to held.
func verifyGroupArchive(ctx context.Context, p string, spec *config.Spec, g *config.Group, lg *lockfile.Group, part bool, held map[string]bool) ArchiveReport {
	r, c := readArchive(ctx, p)
	r.Group = g.Name
	if c == nil {
		return r
	}
	if part {
		var names map[string]bool
		lg, names = lockSubset(c, lg)
		maps.Copy(held, names)
	}
	want, _ := archive.CompressionFor(g.Archive)
	if c.Compression != want {
		r.add(archive.Problem{Kind: KindCompressionMismatch, Detail: fmt.Sprintf("is %s-compressed, but its name asks for %s", c.Compression, want)})
	}
	if c.Format != archive.FormatOCIDocker {
		r.add(archive.Problem{Kind: KindFormatUnexpected, Detail: string(c.Format)})
	}
	r.add(c.Strays()...)
	verifyLocked(&r, c, lg)
	verifyCarriedSignatures(ctx, &r, c, spec, g, lg)
	return r
}

// VerifyArchive checks one archive's internal consistency only (see
// archive.Contents.Check): any archive Read understands, ours or not.
// Unreferenced content is not a problem here (other tools store more than
// the images need); Verify, which knows what build writes, reports it.
// A delta archive (a delta.json beside it lists it) leaves out the blobs
// delta.json says: those are not missing (VerifyDelta checks the rest of
// a delta).
func VerifyArchive(ctx context.Context, path string) ArchiveReport {
	r, _ := readArchive(ctx, path)
	of, err := delta.ForArchive(ctx, path)
	switch {
	case err != nil:
		r.add(archive.Problem{Kind: KindDeltaInvalid, Detail: deltaDetail(err)})
	case of != nil:
		markDelta(&r, of.Archive)
	case delta.NamedLikeDelta(path) && slices.ContainsFunc(r.Problems, func(p archive.Problem) bool { return p.Kind == archive.KindBlobMissing }):
		r.add(archive.Problem{Kind: KindDeltaUnlisted, Detail: fmt.Sprintf("is named like a delta archive, but no %s beside it lists it: the blobs a delta leaves out cannot be told from missing ones (verify it in its delta directory)", delta.FileName)})
	}
	return r
}

// readArchive reads an archive and runs its internal checks. A file that
// cannot be read is one problem (and a nil Contents).
func readArchive(ctx context.Context, path string) (ArchiveReport, *archive.Contents) {
	r := ArchiveReport{Path: path, Name: filepath.Base(path)}
	c, err := archive.ReadFile(ctx, path, archive.ReadOptions{})
	if errors.Is(err, fs.ErrNotExist) {
		// An archive cut into chunks (split-oversize) is read joined, and
		// checked against its .sha256.
		chunks, want, cut, cerr := archive.Chunks(path)
		switch {
		case cut && cerr != nil:
			r.add(archive.Problem{Kind: KindArchiveMissing, Detail: cerr.Error()})
			return r, nil
		case cut:
			rc, oerr := archive.OpenChunks(chunks)
			if oerr != nil {
				r.add(archive.Problem{Kind: KindArchiveUnreadable, Detail: oerr.Error()})
				return r, nil
			}
			c, err = archive.Read(ctx, rc, archive.ReadOptions{})
			rc.Close()
			r.Chunks = len(chunks)
			if err == nil && c.SHA256 != want {
				r.add(archive.Problem{Kind: KindChecksumMismatch, Digest: digest.NewDigestFromEncoded(digest.SHA256, c.SHA256), Detail: want + " (its .sha256: a chunk is damaged)"})
			}
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.add(archive.Problem{Kind: KindArchiveMissing})
		return r, nil
	case err != nil:
		r.add(archive.Problem{Kind: KindArchiveUnreadable, Detail: err.Error()})
		if sum, size, herr := hashFile(path); herr == nil {
			r.SHA256, r.Size = sum, size
		}
		return r, nil
	}
	r.Size, r.SHA256, r.Format, r.Blobs, r.Files = c.Size, c.SHA256, c.Format, len(c.Blobs), len(c.Files)
	for _, img := range c.Images {
		if img.Artifact == nil { // carried signatures and SBOMs are not images
			r.Images++
		}
	}
	r.add(c.Check()...)
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
	v := &lockVerifier{r: r, c: c, lg: lg, byName: map[string]int{},
		expected: map[digest.Digest]bool{}, explained: map[digest.Digest]bool{}, names: map[string]bool{}, done: map[int]bool{}}
	for i, img := range c.Images {
		for _, n := range img.Names {
			v.byName[n] = i
		}
	}
	for i := range lg.Images {
		v.image(&lg.Images[i])
	}
	v.unlockedNames()
	verifyArtifacts(r, c, lg, v.expected, v.explained)
	v.extraBlobs()
}

// lockVerifier checks one archive against its lockfile group: each
// pinned image and platform, then what the archive holds beyond them.
type lockVerifier struct {
	r         *ArchiveReport
	c         *archive.Contents
	lg        *lockfile.Group
	byName    map[string]int         // image name -> index in c.Images
	expected  map[digest.Digest]bool // blobs the lockfile accounts for
	explained map[digest.Digest]bool // blobs of images or platforms already reported
	names     map[string]bool        // names the lockfile pins
	done      map[int]bool           // images checked (one image may have several names)
}

func (v *lockVerifier) mismatch(name, platform, format string, args ...any) {
	v.r.add(archive.Problem{Kind: KindLockMismatch, Image: name, Platform: platform, Detail: fmt.Sprintf(format, args...)})
}

// sound says whether the archive holds d intact, at its size.
func (v *lockVerifier) sound(d image.Descriptor) bool {
	b := v.c.Blobs[d.Digest]
	return b != nil && b.ComputedDigest == b.Digest && b.Size == d.Size
}

// explain marks every blob of img as reported already.
func (v *lockVerifier) explain(img archive.Image) {
	for d := range img.References() {
		v.explained[d] = true
	}
}

// image checks the archive's image of one lockfile entry.
func (v *lockVerifier) image(e *lockfile.Image) {
	ref, err := image.ParseReference(e.Ref, "")
	if err != nil {
		v.r.add(archive.Problem{Kind: KindLockfileInvalid, Detail: err.Error()})
		return
	}
	name := ref.StoredName()
	v.names[name] = true
	want, what := e.Digest, "pins"
	if v.lg.Index == image.IndexFiltered && e.IsIndex() {
		want, what = e.FilteredDigest, "has the filtered index"
	}
	i, found := v.byName[name]
	if !found {
		v.r.add(archive.Problem{Kind: KindImageMissing, Image: name})
		return
	}
	img := v.c.Images[i]
	switch {
	case img.Top.Digest != want:
		v.r.add(archive.Problem{Kind: KindDigestMismatch, Image: name, Digest: img.Top.Digest, Detail: what + " " + want.String()})
		v.explain(img)
		return
	case img.Top.MediaType != e.MediaType:
		v.mismatch(name, "", "index.json gives media type %q, the lockfile %q", img.Top.MediaType, e.MediaType)
	}
	v.expected[img.Top.Digest] = true
	locked := map[digest.Digest]bool{}
	for k := range e.Platforms {
		pl := &e.Platforms[k]
		locked[pl.Digest] = true
		v.platform(name, img, pl)
	}
	if v.done[i] {
		return // the same image under another name: the rest is checked once
	}
	v.done[i] = true
	for _, m := range img.Manifests {
		if !locked[m.Digest] {
			v.r.add(archive.Problem{Kind: KindNotInLockfile, Image: name, Platform: m.Platform, Digest: m.Digest})
			v.explained[m.Digest], v.explained[m.Config.Digest] = true, true
			for _, l := range m.Layers {
				v.explained[l.Digest] = true
			}
		}
	}
	if img.Docker != nil && img.Docker.Manifest != nil && len(e.Platforms) > 0 {
		if got := img.Manifests[*img.Docker.Manifest]; got.Digest.String() != e.Platforms[0].Digest.String() {
			v.r.add(archive.Problem{Kind: archive.KindDockerPlatformMismatch, Image: name, Platform: got.Platform, Detail: e.Platforms[0].Platform})
		}
	}
}

// platform checks one pinned platform manifest of img.
func (v *lockVerifier) platform(name string, img archive.Image, pl *lockfile.Platform) {
	d := pl.Digest
	v.expected[d] = true
	j := slices.IndexFunc(img.Manifests, func(m image.Manifest) bool { return m.Digest == d })
	if j < 0 {
		if v.c.Blobs[d] != nil {
			v.mismatch(name, pl.Platform, "manifest %s is not listed by its index %s", d, img.Top.Digest)
		} else {
			v.mismatch(name, pl.Platform, "manifest %s is missing", d)
		}
		return
	}
	m := img.Manifests[j]
	v.expected[m.Config.Digest] = true
	ok := v.sound(m.Descriptor) && v.sound(m.Config)
	for _, l := range m.Layers {
		v.expected[l.Digest] = true
		ok = ok && v.sound(l)
	}
	if m.MediaType != pl.MediaType {
		v.mismatch(name, pl.Platform, "manifest media type %q, the lockfile %q", m.MediaType, pl.MediaType)
	}
	if m.Config.Digest != pl.Config {
		v.mismatch(name, pl.Platform, "config %s, the lockfile %s", m.Config.Digest, pl.Config)
	} else if ok && m.TotalSize() != pl.Size {
		v.mismatch(name, pl.Platform, "%d bytes, the lockfile %d", m.TotalSize(), pl.Size)
	}
}

// unlockedNames reports the archive's names the lockfile does not pin.
func (v *lockVerifier) unlockedNames() {
	for _, img := range v.c.Images {
		for _, n := range img.Names {
			if !v.names[n] {
				v.r.add(archive.Problem{Kind: KindNotInLockfile, Image: n, Digest: img.Top.Digest})
				v.explain(img)
			}
		}
	}
}

// extraBlobs reports referenced blobs that nothing pinned or reported
// accounts for (unreferenced ones are strays, reported elsewhere).
func (v *lockVerifier) extraBlobs() {
	refs := v.c.References()
	var extra []digest.Digest
	for d := range v.c.Blobs {
		if !v.expected[d] && !v.explained[d] && refs[d] {
			extra = append(extra, d)
		}
	}
	slices.Sort(extra)
	for _, d := range extra {
		v.r.add(archive.Problem{Kind: KindBlobExtra, Digest: d, Detail: strconv.FormatInt(v.c.Blobs[d].Size, 10)})
	}
}

// verifyArtifacts compares the artifacts an archive carries (signatures,
// SBOMs, attestations) with those the lockfile pins: each is there, whole,
// attached to the same manifest of the same image, and nothing else is.
func verifyArtifacts(r *ArchiveReport, c *archive.Contents, lg *lockfile.Group, expected, explained map[digest.Digest]bool) {
	byTop := map[digest.Digest]archive.Image{}
	for _, img := range c.Images {
		if img.Artifact != nil {
			byTop[img.Top.Digest] = img
		}
	}
	mismatch := func(name, format string, args ...any) {
		r.add(archive.Problem{Kind: KindLockMismatch, Image: name, Detail: fmt.Sprintf(format, args...)})
	}
	pinned := map[digest.Digest]bool{}
	for _, e := range lg.Images {
		ref, err := image.ParseReference(e.Ref, "")
		if err != nil {
			continue // reported by verifyLocked
		}
		name := ref.StoredName()
		for _, a := range e.Artifacts {
			d := a.Digest
			pinned[d] = true
			img, ok := byTop[d]
			if !ok {
				mismatch(name, "%s %s of %s is missing", a.Kind, a.Digest, a.Subject)
				continue
			}
			got := img.Artifact
			switch {
			case got.Kind != a.Kind || got.Subject != a.Subject || got.Tag != a.Tag:
				mismatch(name, "%s %s: index.json says %s of %s (tag %q), the lockfile %s of %s (tag %q)", a.Kind, a.Digest, got.Kind, got.Subject, got.Tag, a.Kind, a.Subject, a.Tag)
			case img.Top.MediaType != a.MediaType:
				mismatch(name, "%s %s: media type %q, the lockfile %q", a.Kind, a.Digest, img.Top.MediaType, a.MediaType)
			}
			expected[d] = true
			if len(img.Manifests) != 1 {
				continue // the archive's own check reports it
			}
			m := img.Manifests[0]
			whole := c.Blobs[d] != nil && c.Blobs[d].ComputedDigest == d
			for _, b := range append([]image.Descriptor{m.Config}, m.Layers...) {
				expected[b.Digest] = true
				bi := c.Blobs[b.Digest]
				whole = whole && bi != nil && bi.ComputedDigest == b.Digest && bi.Size == b.Size
			}
			if whole && m.TotalSize() != a.Size {
				mismatch(name, "%s %s: %d bytes, the lockfile %d", a.Kind, a.Digest, m.TotalSize(), a.Size)
			}
		}
	}
	verifyCharts(c, lg, pinned, expected, mismatch)
	for _, img := range c.Images {
		if d := img.Top.Digest; img.Artifact != nil && !pinned[d] {
			r.add(archive.Problem{Kind: KindNotInLockfile, Image: img.Label(), Digest: d})
			for x := range img.References() {
				explained[x] = true
			}
		}
	}
}

// verifyCarriedSignatures checks, for a group whose archive carries
// signatures, that every image the spec requires signatures of has them
// in the archive: the signature manifests the lockfile records, read from
// the archive with their layers, must verify with the spec's keys for the
// manifests the archive holds (trust.CheckRecorded), so neither an edited
// lockfile nor an edited archive passes. Without carried signatures there
// is nothing in the archive to check them against; build checked them.
// The registry's index of an image in a "filtered" group is not in its
// archive, so only its platforms' signatures (verify-platforms) are
// checked there.
func verifyCarriedSignatures(ctx context.Context, r *ArchiveReport, c *archive.Contents, spec *config.Spec, g *config.Group, lg *lockfile.Group) {
	if !lg.Attachments || c.Index == nil {
		return
	}
	for i := range lg.Images {
		e := &lg.Images[i]
		ref, err := image.ParseReference(e.Ref, "")
		if err != nil {
			continue // reported by verifyLocked
		}
		reqs := spec.SignatureRequirements(g, ref)
		if len(reqs) == 0 {
			continue
		}
		var opts trust.RecordedOptions
		if lg.Index == image.IndexFiltered && e.IsIndex() {
			opts.Absent = []digest.Digest{e.Digest}
		}
		err = trust.CheckRecorded(ctx, ref, e, reqs, archiveStore{c}, opts)
		if err == nil {
			continue
		}
		errs := []error{err}
		var m *multierror.Error
		if errors.As(err, &m) {
			errs = m.Errors
		}
		for _, err := range errs {
			p := archive.Problem{Kind: KindSignatureRejected, Image: ref.StoredName(), Detail: err.Error()}
			var te *trust.Error
			if errors.As(err, &te) {
				p.Digest, p.Platform = digest.Digest(te.Manifest), te.Platform
			}
			r.add(p)
		}
	}
}

// archiveStore reads what trust.CheckRecorded needs from an archive's
// blobs, each whole and under its own name.
type archiveStore struct{ c *archive.Contents }

func (s archiveStore) Manifest(_ context.Context, d digest.Digest) ([]byte, error) {
	return s.blob(d, -1)
}

func (s archiveStore) Blob(_ context.Context, d digest.Digest, size int64) ([]byte, error) {
	return s.blob(d, size)
}

func (s archiveStore) blob(d digest.Digest, size int64) ([]byte, error) {
	b := s.c.Blobs[d]
	switch {
	case b == nil:
		return nil, fmt.Errorf("%s is not in the archive", d)
	case b.ComputedDigest != d || size >= 0 && b.Size != size:
		return nil, fmt.Errorf("%s in the archive is corrupt", d)
	}
	data, ok := s.c.BlobDocument(d)
	if !ok {
		return nil, fmt.Errorf("%s in the archive is not a JSON document of at most %d bytes", d, s.c.MaxDocumentSize)
	}
	return data, nil
}

// verifyCharts checks the charts an archive carries against the group's
// pinned charts: each is there, and its chart layer is the pinned .tgz
// (for an OCI chart, its manifest is the registry's, by digest too).
func verifyCharts(c *archive.Contents, lg *lockfile.Group, pinned, expected map[digest.Digest]bool, mismatch func(name, format string, args ...any)) {
	for i := range lg.Charts {
		l := &lg.Charts[i]
		name := l.ArtifactName()
		var found *archive.Image
		for k := range c.Images {
			if a := c.Images[k].Artifact; a != nil && a.Kind == archive.KindChart && a.Image == name {
				found = &c.Images[k]
			}
		}
		switch {
		case found == nil:
			mismatch("chart "+name, "chart %s (%s) is missing", name, l.Source)
			continue
		case len(found.Manifests) != 1 || len(found.Manifests[0].Layers) == 0:
			mismatch("chart "+name, "chart %s is not one manifest with its chart layer", name)
		case found.Manifests[0].Layers[0].Digest != l.Archive:
			mismatch("chart "+name, "chart %s: its archive is %s, the lockfile %s", name, found.Manifests[0].Layers[0].Digest, l.Archive)
		case strings.HasPrefix(l.Source, "oci://") && found.Top.Digest != l.Digest:
			mismatch("chart "+name, "chart %s: manifest %s, the lockfile %s", name, found.Top.Digest, l.Digest)
		}
		pinned[found.Top.Digest] = true
		expected[found.Top.Digest] = true
		for _, m := range found.Manifests {
			for _, b := range append([]image.Descriptor{m.Config}, m.Layers...) {
				expected[b.Digest] = true
			}
		}
	}
}
