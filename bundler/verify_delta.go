package bundler

// Verifying a delta (verify DELTA_DIR [--base BASE_DIR]) and delta
// archives on their own. A delta archive leaves out, on purpose, the
// layers delta.json's from-base lists: those are not missing blobs.
// Only delta.json says which they are, so a delta archive is one a
// delta.json beside it lists (delta.ForArchive), whatever its name.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/sums"
)

// Roles of a report in a delta's verification (DeltaInfo.Kind).
const (
	DeltaFile      = "file"      // delta.json or bundle.lock
	DeltaArchive   = "delta"     // a delta archive
	DeltaUnchanged = "unchanged" // BASE's copy of an archive unchanged since BASE
)

// DeltaInfo says what a report of a delta stands for.
type DeltaInfo struct {
	Kind string // DeltaFile, DeltaArchive or DeltaUnchanged
	// Of is the full archive of the new version that a delta archive, or
	// BASE's unchanged copy, stands for.
	Of string
	// LeftOut are the blobs a delta archive leaves out (delta.json's
	// from-base), which are not problems; LeftOutBytes their size.
	LeftOut      []delta.Blob
	LeftOutBytes int64
	// BaseChecked says every left-out blob was looked for in BASE's
	// archives, and hashed there (verify --base).
	BaseChecked bool
}

// DeltaReport is what verifying a delta directory found.
type DeltaReport struct {
	Dir  string
	Base string // "" without --base
	// Files are the reports of delta.json and bundle.lock.
	Files []ArchiveReport
	// Archives are the reports of the delta archives, in delta.json's
	// order, any archive in the directory delta.json does not list, and
	// with a BASE, BASE's copies of the archives unchanged since BASE and
	// BASE's archives that cannot be read.
	Archives []ArchiveReport
}

// VerifyDelta checks a delta directory: delta.json parses; bundle.lock
// and every delta archive are the files delta.json describes (size and
// sha256) and have their SHA256SUMS lines; each delta archive passes the
// checks of a built archive against bundle.lock's group, except that the
// blobs delta.json says it leaves out are not missing; no other archive
// is in the directory. With base, it checks the union too: BASE's
// bundle.lock (when it has one) is the delta's BASE, every left-out blob
// is in one of BASE's archives and hashes to its digest there, and each
// archive unchanged since BASE is in BASE with delta.json's size and
// sha256. Every archive of BASE is read once. Problems are in the reports;
// the error is for a context that ended.
func VerifyDelta(ctx context.Context, dir, base string) (*DeltaReport, error) {
	dr := &DeltaReport{Dir: dir, Base: base}
	info := ArchiveReport{Path: filepath.Join(dir, delta.FileName), Name: delta.FileName, Delta: &DeltaInfo{Kind: DeltaFile}}
	m, err := delta.Read(ctx, dir)
	if sum, size, herr := hashFile(info.Path); herr == nil {
		info.SHA256, info.Size = sum, size
	}
	if err != nil {
		info.add(archive.Problem{Kind: KindDeltaInvalid, Detail: deltaDetail(err)})
		dr.Files = append(dr.Files, info)
		return dr, ctx.Err()
	}
	recorded, sumsErr := sums.Read(filepath.Join(dir, SumsFile))
	if sumsErr != nil {
		info.add(archive.Problem{Kind: KindChecksumUnreadable, Detail: sumsErr.Error()})
	}
	checkSum := func(r *ArchiveReport) {
		if sumsErr != nil || r.SHA256 == "" {
			return
		}
		switch sum, ok := recorded[r.Name]; {
		case !ok:
			r.add(archive.Problem{Kind: KindChecksumMissing})
		case sum != r.SHA256:
			r.add(archive.Problem{Kind: KindChecksumMismatch, Digest: digest.NewDigestFromEncoded(digest.SHA256, r.SHA256), Detail: sum})
		}
	}
	checkSum(&info)
	if base != "" {
		if err := delta.CheckBaseLock(base, m); err != nil {
			info.add(archive.Problem{Kind: KindDeltaMismatch, Detail: deltaDetail(err)})
		}
	}
	dr.Files = append(dr.Files, info)
	dr.Files = append(dr.Files, verifyDeltaLock(dir, m, checkSum))
	lock, _ := lockfile.Read(filepath.Join(dir, delta.LockfileName)) // reported above

	listed := map[string]bool{}
	for i := range m.Archives {
		if err := ctx.Err(); err != nil {
			return dr, err
		}
		a := &m.Archives[i]
		if a.Delta == nil {
			continue
		}
		listed[a.Delta.Name] = true
		r, c := readArchive(ctx, filepath.Join(dir, a.Delta.Name))
		r.Group = a.Group
		markDelta(&r, a)
		if r.SHA256 != "" && (r.Size != a.Delta.Size || r.SHA256 != a.Delta.SHA256) {
			r.add(archive.Problem{Kind: KindDeltaMismatch, Detail: fmt.Sprintf("is %d bytes with sha256 %s; delta.json says %d bytes with sha256 %s", r.Size, r.SHA256, a.Delta.Size, a.Delta.SHA256)})
		}
		if c != nil {
			if want, _ := archive.CompressionFor(a.Delta.Name); c.Compression != want {
				r.add(archive.Problem{Kind: KindCompressionMismatch, Detail: fmt.Sprintf("is %s-compressed, but its name asks for %s", c.Compression, want)})
			}
			r.add(c.Strays()...)
			if g := lockGroup(lock, a.Group); g != nil {
				// The left-out layers are not "sound" in the archive:
				// verifyLocked then compares no platform's total size,
				// and reports nothing else of them.
				verifyLocked(&r, c, g)
			}
		}
		checkSum(&r)
		dr.Archives = append(dr.Archives, r)
	}
	// An archive delta.json does not list: a stray, or left from another
	// delta; whatever it leaves out cannot be told from damage.
	if paths, err := archive.Files([]string{dir}); err == nil {
		for _, p := range paths {
			if n := filepath.Base(p); !listed[n] {
				dr.Archives = append(dr.Archives, ArchiveReport{Path: p, Name: n, Problems: []archive.Problem{{Kind: KindDeltaUnlisted, Archive: n,
					Detail: fmt.Sprintf("is in the delta directory, but %s does not list it: it is not part of this delta (remove it, or build the delta again)", delta.FileName)}}})
			}
		}
	}
	if base != "" {
		if err := verifyUnion(ctx, dr, m, base); err != nil {
			return dr, err
		}
	}
	return dr, ctx.Err()
}

// deltaDetail is a delta error as a problem's detail, without the class
// apply's errors carry ("delta cannot be applied"): verify applies nothing.
func deltaDetail(err error) string {
	return strings.TrimPrefix(err.Error(), delta.ErrDelta.Error()+": ")
}

// OK reports whether no problem was found.
func (dr *DeltaReport) OK() bool {
	for _, r := range append(slices.Clone(dr.Files), dr.Archives...) {
		if !r.OK() {
			return false
		}
	}
	return true
}

// verifyDeltaLock checks the delta's bundle.lock: the lockfile
// delta.json describes, a lockfile that parses, with its SHA256SUMS line.
func verifyDeltaLock(dir string, m *delta.Manifest, checkSum func(*ArchiveReport)) ArchiveReport {
	r := ArchiveReport{Path: filepath.Join(dir, delta.LockfileName), Name: delta.LockfileName, Delta: &DeltaInfo{Kind: DeltaFile}}
	sum, size, err := hashFile(r.Path)
	if err != nil {
		r.add(archive.Problem{Kind: KindDeltaMismatch, Detail: fmt.Sprintf("cannot be read (%v); delta.json gives its sha256 %s", err, m.LockfileSHA256)})
		return r
	}
	r.SHA256, r.Size = sum, size
	if sum != m.LockfileSHA256 {
		r.add(archive.Problem{Kind: KindDeltaMismatch, Detail: fmt.Sprintf("has sha256 %s; delta.json says the new lockfile's is %s", sum, m.LockfileSHA256)})
	}
	if _, err := lockfile.Read(r.Path); err != nil {
		r.add(archive.Problem{Kind: KindLockfileInvalid, Detail: err.Error()})
	}
	checkSum(&r)
	return r
}

func lockGroup(l *lockfile.Lock, name string) *lockfile.Group {
	if l == nil {
		return nil
	}
	return l.Group(name)
}

// markDelta makes r the report of a delta archive: the blobs a leaves out
// are not missing.
func markDelta(r *ArchiveReport, a *delta.Archive) {
	r.Delta = &DeltaInfo{Kind: DeltaArchive, Of: a.Name, LeftOut: a.FromBase, LeftOutBytes: a.LeftOutBytes()}
	left := a.LeftOut()
	r.Problems = slices.DeleteFunc(r.Problems, func(p archive.Problem) bool {
		_, ok := left[p.Digest]
		return ok && p.Kind == archive.KindBlobMissing
	})
}

// baseCopy is one copy of a blob in one of BASE's archives.
type baseCopy struct {
	archive  string
	size     int64
	computed digest.Digest
}

// verifyUnion checks what the delta expects of BASE (see VerifyDelta),
// reading each of BASE's archives once.
func verifyUnion(ctx context.Context, dr *DeltaReport, m *delta.Manifest, base string) error {
	paths, err := archive.Files([]string{base})
	if err != nil && !errors.Is(err, archive.ErrNoArchive) {
		return fmt.Errorf("BASE %s: %w", base, err)
	}
	// BASE's copy of each unchanged archive: by its name, else by its
	// sha256 in BASE's SHA256SUMS (as apply finds it).
	names := map[string]string{} // BASE file name -> the archive of the new version
	have := map[string]bool{}
	for _, p := range paths {
		have[filepath.Base(p)] = true
	}
	baseSums, _ := sums.Read(filepath.Join(base, SumsFile))
	for _, a := range m.Archives {
		if !a.Unchanged {
			continue
		}
		if have[a.Name] {
			names[a.Name] = a.Name
			continue
		}
		for n, sum := range baseSums {
			if sum == a.SHA256 && have[n] {
				names[n] = a.Name
			}
		}
	}
	byName := map[string]*delta.Archive{}
	for i := range m.Archives {
		byName[m.Archives[i].Name] = &m.Archives[i]
	}

	copies := map[digest.Digest][]baseCopy{}
	found := map[string]bool{}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, c := readArchive(ctx, p)
		of, isUnchanged := names[r.Name]
		if c == nil {
			// Unreadable: it holds nothing the union can count on.
			dr.Archives = append(dr.Archives, r)
			continue
		}
		for d, b := range c.Blobs {
			copies[d] = append(copies[d], baseCopy{archive: r.Name, size: b.Size, computed: b.ComputedDigest})
		}
		if !isUnchanged {
			continue
		}
		a := byName[of]
		found[a.Name] = true
		r.Group, r.Delta = a.Group, &DeltaInfo{Kind: DeltaUnchanged, Of: a.Name}
		if r.Size != a.Size || r.SHA256 != a.SHA256 {
			r.add(archive.Problem{Kind: KindDeltaMismatch, Detail: fmt.Sprintf("BASE's copy of %s (unchanged since BASE) is %d bytes with sha256 %s; delta.json says %d bytes with sha256 %s (damaged, or built with another SOURCE_DATE_EPOCH)", a.Name, r.Size, r.SHA256, a.Size, a.SHA256)})
		}
		dr.Archives = append(dr.Archives, r)
	}
	for _, a := range m.Archives {
		if a.Unchanged && !found[a.Name] {
			dr.Archives = append(dr.Archives, ArchiveReport{Path: filepath.Join(base, a.Name), Name: a.Name, Group: a.Group, Delta: &DeltaInfo{Kind: DeltaUnchanged, Of: a.Name},
				Problems: []archive.Problem{{Kind: KindArchiveMissing, Archive: a.Name, Detail: "unchanged since BASE, so BASE must hold it"}}})
		}
	}

	for i := range dr.Archives {
		r := &dr.Archives[i]
		if r.Delta == nil || r.Delta.Kind != DeltaArchive {
			continue
		}
		r.Delta.BaseChecked = true
		for _, b := range r.Delta.LeftOut {
			cs := copies[b.Digest]
			if slices.ContainsFunc(cs, func(c baseCopy) bool { return c.computed == b.Digest && c.size == b.Size }) {
				continue
			}
			if len(cs) == 0 {
				r.add(archive.Problem{Kind: KindBaseBlobMissing, Digest: b.Digest, Detail: b.Where})
				continue
			}
			c := cs[0]
			what := "hashes to " + c.computed.String()
			if c.computed == b.Digest {
				what = fmt.Sprintf("is %d bytes, delta.json says %d", c.size, b.Size)
			}
			r.add(archive.Problem{Kind: KindBaseBlobCorrupt, Digest: b.Digest, Detail: fmt.Sprintf("BASE's %s: its copy %s", c.archive, what)})
		}
	}
	return nil
}
