package delta

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
	"github.com/airgap-bundle/airgap-bundle/internal/logs"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/sums"
)

// ApplyOptions say where the site's archives are and where the new ones go.
type ApplyOptions struct {
	// Base is the directory of BASE's archives (any compression).
	Base string
	// Out receives the new version's archives, SHA256SUMS and bundle.lock.
	// With InPlace it is Base, and Base's archives are replaced as one set.
	Out     string
	InPlace bool
	// TempDir receives decompressed copies of compressed archives (deltas,
	// and BASE archives that hold blobs the deltas need); default: Out.
	TempDir string
	Logger  *slog.Logger
}

// Applied is one archive apply wrote (or, unchanged, kept).
type Applied struct {
	Group     string `json:"group"`
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Unchanged bool   `json:"unchanged,omitempty"`
	// FromBase and FromDelta are the blob bytes read from BASE's archives
	// and from the delta archive.
	FromBase  int64 `json:"from-base"`
	FromDelta int64 `json:"from-delta"`
}

// Apply rebuilds every full archive of the delta's version from BASE's
// archives and the delta archives in dir, checks each against delta.json
// (size and sha256: byte for byte what build wrote outside), and commits
// them together with SHA256SUMS and the new lockfile, as build commits. Everything the delta needs from BASE is looked for
// before anything is written, and every missing blob is named at once. On
// any error nothing in Out has changed.
func Apply(ctx context.Context, dir string, opts ApplyOptions) ([]Applied, error) {
	log := logs.OrDiscard(opts.Logger)
	if opts.InPlace {
		opts.Out = opts.Base
	}
	if opts.Out == "" {
		return nil, fmt.Errorf("%w: apply needs an output directory (-o), or --in-place", ErrDelta)
	}
	if opts.TempDir == "" {
		opts.TempDir = opts.Out
	}
	m, err := Read(ctx, dir)
	if err != nil {
		return nil, err
	}
	lock, err := checkFiles(ctx, dir, m)
	if err != nil {
		return nil, err
	}
	if err := CheckBaseLock(opts.Base, m); err != nil {
		return nil, err
	}
	base, err := indexBase(ctx, opts.Base, m, opts.TempDir)
	if err != nil {
		return nil, err
	}
	defer base.close()
	if err := base.missing(m); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	unlock, err := atomicfile.LockDir(opts.Out)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := sums.Recover(opts.Out); err != nil {
		return nil, fmt.Errorf("output directory %s: %w", opts.Out, err)
	}
	if _, err := atomicfile.RemoveStale(opts.Out); err != nil {
		return nil, fmt.Errorf("output directory %s: %w", opts.Out, err)
	}

	var (
		out  []Applied
		set  []sums.Pending
		temp []*atomicfile.File
	)
	defer func() {
		for _, f := range temp {
			f.Close() // removes the temporary file; a no-op once committed
		}
	}()
	for _, a := range m.Archives {
		var r Applied
		var f *atomicfile.File
		if a.Unchanged {
			r, f, err = base.keep(ctx, a, opts)
		} else {
			r, f, err = rebuild(ctx, dir, a, base, opts)
		}
		if f != nil {
			temp = append(temp, f)
		}
		if err != nil {
			if atomicfile.IsDiskFull(err) {
				err = fmt.Errorf("output directory %s is full: the new archives need up to %d bytes there, beside the current ones: %w", opts.Out, totalSize(m), err)
			}
			return nil, err
		}
		log.Info("rebuilt archive", "archive", r.Path, "bytes", r.Size, "from-base", r.FromBase, "from-delta", r.FromDelta, "unchanged", r.Unchanged)
		out = append(out, r)
		if f != nil {
			set = append(set, sums.Pending{Name: a.Name, SHA256: a.SHA256, What: fmt.Sprintf("group %q", a.Group), File: f})
		}
	}
	// The lockfile goes in the same set: it says which version the
	// directory holds, and the next delta is checked against it.
	lf, err := atomicfile.Create(filepath.Join(opts.Out, LockfileName), 0o644)
	if err != nil {
		return nil, err
	}
	temp = append(temp, lf)
	if _, err := lf.Write(lock); err != nil {
		return nil, err
	}
	set = append(set, sums.Pending{Name: LockfileName, SHA256: m.LockfileSHA256, What: "the new lockfile", File: lf})
	if err := sums.CommitSet(opts.Out, set); err != nil {
		return nil, err
	}
	if err := extractCharts(ctx, opts.Out, lock, m, opts.TempDir); err != nil {
		return out, fmt.Errorf("the archives are in place; writing the charts beside them (%s/): %w", lockfile.ChartsDir, err)
	}
	return out, nil
}

func totalSize(m *Manifest) int64 {
	var n int64
	for _, a := range m.Archives {
		n += a.Size
	}
	return n
}

// checkFiles checks the delta's own files against delta.json and returns
// the new lockfile.
func checkFiles(ctx context.Context, dir string, m *Manifest) ([]byte, error) {
	lock, err := os.ReadFile(filepath.Join(dir, LockfileName))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDelta, err)
	}
	if sum := sha256.Sum256(lock); hex.EncodeToString(sum[:]) != m.LockfileSHA256 {
		return nil, fmt.Errorf("%w: %s is not the lockfile %s describes (sha256 %s)", ErrDelta, filepath.Join(dir, LockfileName), FileName, m.LockfileSHA256)
	}
	// Sizes only: hashing each delta archive here would read and hash its
	// bytes once more than rebuild does, and rebuild's check of the archive
	// it writes (which holds every delta blob) proves them. A size that
	// differs is a truncated copy, named before BASE is read.
	var errs []error
	for _, a := range m.Archives {
		if a.Delta == nil {
			continue
		}
		p := filepath.Join(dir, a.Delta.Name)
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			errs = append(errs, err)
		case fi.Size() != a.Delta.Size:
			errs = append(errs, fmt.Errorf("%s is damaged: %d bytes, delta.json says %d bytes with sha256 %s", p, fi.Size(), a.Delta.Size, a.Delta.SHA256))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrDelta, errors.Join(errs...))
	}
	return lock, nil
}

// CheckBaseLock refuses a BASE whose lockfile (written there by the apply
// that made it) is not the one the delta was made against.
func CheckBaseLock(baseDir string, m *Manifest) error {
	data, err := os.ReadFile(filepath.Join(baseDir, LockfileName))
	if err != nil || m.Base.LockfileSHA256 == "" {
		return nil // a build's output directory has no lockfile: the blobs decide
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != m.Base.LockfileSHA256 {
		if got == m.LockfileSHA256 {
			return fmt.Errorf("%w: %s already holds this version (its bundle.lock is the delta's new lockfile)", ErrDelta, baseDir)
		}
		return fmt.Errorf("%w: the delta was made against another BASE: %s/bundle.lock has sha256 %s, the delta's base (%s) %s", ErrDelta, baseDir, got, m.Base.Source, m.Base.LockfileSHA256)
	}
	return nil
}

// checkDeltaArchive hashes a delta archive and names it when it is not
// the one delta.json describes.
func checkDeltaArchive(ctx context.Context, p string, a Archive) error {
	size, sum, err := fileSHA256(ctx, p)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDelta, err)
	}
	if size != a.Delta.Size || sum != a.Delta.SHA256 {
		return fmt.Errorf("%w: %s is damaged: %d bytes with sha256 %s, delta.json says %d bytes with sha256 %s", ErrDelta, p, size, sum, a.Delta.Size, a.Delta.SHA256)
	}
	return nil
}

func fileSHA256(ctx context.Context, p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, iox.ContextReader(ctx, f))
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", p, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// rebuild writes one changed archive: the delta archive's images, their
// blobs from the delta or from BASE, in the delta's compression and entry
// time. Write checks every blob's digest as it copies, so a damaged BASE
// blob is named; the whole is then checked against delta.json.
func rebuild(ctx context.Context, dir string, a Archive, base *baseIndex, opts ApplyOptions) (Applied, *atomicfile.File, error) {
	r := Applied{Group: a.Group, Path: filepath.Join(opts.Out, a.Name)}
	deltaPath := filepath.Join(dir, a.Delta.Name)
	d, err := archive.OpenSeekable(ctx, deltaPath, archive.SeekableOptions{Dir: opts.TempDir, Read: archive.ReadOptions{Unhashed: true}})
	if err != nil {
		if derr := checkDeltaArchive(ctx, deltaPath, a); derr != nil {
			return r, nil, derr
		}
		return r, nil, fmt.Errorf("%w: %s: %w", ErrDelta, a.Delta.Name, err)
	}
	defer d.Close()
	tmp, err := atomicfile.Create(r.Path, 0o644)
	if err != nil {
		return r, nil, err
	}
	tmp.SyncAhead()
	h := newAsyncHash()
	counter := &iox.CountingWriter{}
	blobs := &unionBlobs{delta: d, base: base, r: &r}
	c := d.Contents
	// Neither the delta's blobs nor BASE's are hashed as they are read or
	// copied: the rebuilt archive's sha256, which must be delta.json's,
	// proves every byte. Only when it does not are the delta archive and
	// BASE's blobs hashed, to name the damaged one. (Each byte hashed once:
	// apply is bound by sha256.)
	err = archive.Write(ctx, io.MultiWriter(tmp, h, counter), c.WriteImages(), blobs, archive.Options{Compression: d.Compression, ModTime: c.ModTime, BlobsVerified: true})
	if err != nil {
		h.abort()
		if derr := checkDeltaArchive(ctx, deltaPath, a); derr != nil && ctx.Err() == nil {
			return r, tmp, derr
		}
		return r, tmp, fmt.Errorf("rebuilding %s (group %q): %w", a.Name, a.Group, err)
	}
	r.Size, r.SHA256 = counter.N, h.Sum()
	if r.Size != a.Size || r.SHA256 != a.SHA256 {
		if err := checkDeltaArchive(ctx, deltaPath, a); err != nil {
			return r, tmp, err
		}
		if err := blobs.damaged(ctx); err != nil {
			return r, tmp, fmt.Errorf("%w: rebuilding %s (group %q): %w", ErrDelta, a.Name, a.Group, err)
		}
		return r, tmp, fmt.Errorf("%w: rebuilt %s is %d bytes with sha256 %s, not the %d bytes with sha256 %s build wrote (delta and BASE do not belong together)", ErrDelta, a.Name, r.Size, r.SHA256, a.Size, a.SHA256)
	}
	return r, tmp, nil
}

// unionBlobs serves a rebuilt archive's blobs: the delta's own, else
// BASE's.
type unionBlobs struct {
	delta *archive.Seekable
	base  *baseIndex
	r     *Applied
	used  []usedBlob // BASE's blobs copied, for damaged
}

type usedBlob struct {
	d   digest.Digest
	loc location
}

// damaged hashes the BASE blobs a rebuild copied and names the first that
// does not hash to its digest; nil when none.
func (u *unionBlobs) damaged(ctx context.Context) error {
	for _, b := range u.used {
		v := b.d.Verifier()
		if _, err := io.Copy(v, iox.ContextReader(ctx, io.NewSectionReader(b.loc.file, b.loc.off, b.loc.size))); err != nil {
			return fmt.Errorf("BASE archive %s: blob %s: %w", b.loc.archive, b.d, err)
		}
		if !v.Verified() {
			return fmt.Errorf("BASE archive %s: blob %s (%d bytes) is damaged: it does not hash to its digest", b.loc.archive, b.d, b.loc.size)
		}
	}
	return nil
}

func (u *unionBlobs) Open(_ context.Context, d image.Descriptor) (io.ReadCloser, error) {
	if b := u.delta.Contents.Blobs[d.Digest]; b != nil {
		fi := u.delta.Contents.Files[b.Path]
		u.r.FromDelta += fi.Size
		return io.NopCloser(io.NewSectionReader(u.delta.File, fi.Offset, fi.Size)), nil
	}
	loc, ok := u.base.blobs[d.Digest]
	if !ok {
		return nil, fmt.Errorf("%w: blob %s is in neither the delta nor BASE", ErrDelta, d.Digest)
	}
	u.r.FromBase += loc.size
	u.used = append(u.used, usedBlob{d: d.Digest, loc: loc})
	return &namedBlob{Reader: io.NewSectionReader(loc.file, loc.off, loc.size), archive: loc.archive}, nil
}

// namedBlob names the BASE archive a blob came from in a read error
// (archive.Write's digest check fails through it).
type namedBlob struct {
	io.Reader
	archive string
}

func (n *namedBlob) Read(p []byte) (int, error) {
	k, err := n.Reader.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("BASE archive %s: %w", n.archive, err)
	}
	return k, err
}

func (n *namedBlob) Close() error { return nil }

// baseIndex locates blobs in BASE's archives: a .tar by its tar headers
// alone (the data is not read until copied, and checked then), a
// compressed one through a decompressed copy.
type baseIndex struct {
	dir   string
	blobs map[digest.Digest]location
	files []*os.File
	seek  []*archive.Seekable
	names map[string]bool // BASE's archive file names
}

type location struct {
	file      *os.File
	archive   string
	off, size int64
}

func (b *baseIndex) close() {
	for _, f := range b.files {
		f.Close()
	}
	for _, s := range b.seek {
		s.Close()
	}
}

// indexBase finds, in BASE's archives, every blob the delta needs: the
// .tar archives first (headers only), then the compressed ones, only while
// something is still missing.
func indexBase(ctx context.Context, dir string, m *Manifest, tmpDir string) (*baseIndex, error) {
	b := &baseIndex{dir: dir, blobs: map[digest.Digest]location{}, names: map[string]bool{}}
	need := map[digest.Digest]int64{}
	for _, a := range m.Archives {
		for _, bl := range a.FromBase {
			need[bl.Digest] = bl.Size
		}
	}
	paths, err := archive.Files([]string{dir})
	if err != nil && !errors.Is(err, archive.ErrNoArchive) {
		return nil, fmt.Errorf("%w: BASE %s: %w", ErrDelta, dir, err)
	}
	var compressed []string
	for _, p := range paths {
		b.names[filepath.Base(p)] = true
		if c, _ := archive.CompressionFor(p); c != archive.None {
			compressed = append(compressed, p)
			continue
		}
		if err := b.indexTar(ctx, p, need); err != nil {
			b.close()
			return nil, err
		}
	}
	for _, p := range compressed {
		if len(need) == 0 {
			break
		}
		s, err := archive.OpenSeekable(ctx, p, archive.SeekableOptions{Dir: tmpDir})
		if err != nil {
			b.close()
			return nil, fmt.Errorf("%w: BASE archive %s: %w", ErrDelta, p, err)
		}
		b.seek = append(b.seek, s)
		for d, bi := range s.Contents.Blobs {
			if size, ok := need[d]; ok && bi.Size == size {
				fi := s.Contents.Files[bi.Path]
				b.blobs[d] = location{file: s.File, archive: filepath.Base(p), off: fi.Offset, size: fi.Size}
				delete(need, d)
			}
		}
	}
	return b, nil
}

// indexTar records where the needed blobs of one .tar lie, reading only
// its headers (archive.TarBlobs).
func (b *baseIndex) indexTar(ctx context.Context, p string, need map[digest.Digest]int64) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("%w: BASE archive %s: %w", ErrDelta, p, err)
	}
	b.files = append(b.files, f)
	err = archive.TarBlobs(ctx, f, func(tb archive.TarBlob) error {
		if size, ok := need[tb.Digest]; ok && tb.Size == size {
			b.blobs[tb.Digest] = location{file: f, archive: filepath.Base(p), off: tb.Offset, size: tb.Size}
			delete(need, tb.Digest)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: BASE archive %s: %w", ErrDelta, p, err)
	}
	return err
}

// missing lists, all at once, what the delta needs and BASE lacks.
func (b *baseIndex) missing(m *Manifest) error {
	var errs []error
	listed := map[digest.Digest]bool{}
	for _, a := range m.Archives {
		if a.Unchanged {
			if _, err := b.unchangedPath(a); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		for _, bl := range a.FromBase {
			if _, ok := b.blobs[bl.Digest]; !ok && !listed[bl.Digest] {
				listed[bl.Digest] = true
				errs = append(errs, fmt.Errorf("%s (group %q) needs blob %s (%d bytes) from BASE's %s: it is in no archive of %s", a.Name, a.Group, bl.Digest, bl.Size, bl.Where, b.dir))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w (was it made against another BASE?): %w", ErrDelta, errors.Join(errs...))
	}
	return nil
}

// unchangedPath finds BASE's copy of an unchanged archive: by its name, or
// by its sha256 in BASE's SHA256SUMS.
func (b *baseIndex) unchangedPath(a Archive) (string, error) {
	if b.names[a.Name] {
		return filepath.Join(b.dir, a.Name), nil
	}
	if s, err := sums.Read(filepath.Join(b.dir, sums.FileName)); err == nil {
		for name, sum := range s {
			if sum == a.SHA256 && b.names[name] {
				return filepath.Join(b.dir, name), nil
			}
		}
	}
	return "", fmt.Errorf("%s (group %q) is unchanged since BASE, but %s has no %s, nor any archive with its sha256 %s", a.Name, a.Group, b.dir, a.Name, a.SHA256)
}

// keep checks BASE's copy of an unchanged archive and, unless it is
// already in place, copies it to the output.
func (b *baseIndex) keep(ctx context.Context, a Archive, opts ApplyOptions) (Applied, *atomicfile.File, error) {
	r := Applied{Group: a.Group, Path: filepath.Join(opts.Out, a.Name), Unchanged: true}
	src, err := b.unchangedPath(a)
	if err != nil {
		return r, nil, fmt.Errorf("%w: %w", ErrDelta, err)
	}
	f, err := os.Open(src)
	if err != nil {
		return r, nil, err
	}
	defer f.Close()
	h := sha256.New()
	var tmp *atomicfile.File
	w := io.Writer(h)
	if filepath.Clean(src) != filepath.Clean(r.Path) {
		if tmp, err = atomicfile.Create(r.Path, 0o644); err != nil {
			return r, nil, err
		}
		tmp.SyncAhead()
		w = io.MultiWriter(tmp, h)
	}
	n, err := io.CopyBuffer(w, iox.ContextReader(ctx, f), make([]byte, 256<<10))
	if err != nil {
		return r, tmp, fmt.Errorf("%s: %w", src, err)
	}
	r.Size, r.SHA256, r.FromBase = n, hex.EncodeToString(h.Sum(nil)), n
	if r.Size != a.Size || r.SHA256 != a.SHA256 {
		return r, tmp, fmt.Errorf("%w: BASE's %s is %d bytes with sha256 %s; the unchanged archive is %d bytes with sha256 %s (damaged, or built with another SOURCE_DATE_EPOCH)", ErrDelta, src, r.Size, r.SHA256, a.Size, a.SHA256)
	}
	return r, tmp, nil
}
