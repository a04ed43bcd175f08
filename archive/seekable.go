package archive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
)

// ErrCompressed marks a compressed archive opened without a directory to
// decompress it into.
var ErrCompressed = errors.New("compressed archive")

// Seekable is an archive as an uncompressed tar that can be read at the
// offsets its Contents give: the archive itself when it is a .tar, else a
// decompressed copy of it. push and serve read blobs in place this way.
type Seekable struct {
	// File is the tar; Contents' FileInfo.Offset values are offsets in it.
	File     *os.File
	Contents *Contents
	// Compression is the archive's own (the copy is never compressed).
	Compression Compression
	// Copy is the decompressed copy's path, "" when File is the archive.
	Copy string
	// Info is File's, taken before the pass that hashed it: a change to
	// the file since shows as another size or mtime.
	Info fs.FileInfo

	temp *atomicfile.File // a copy that is removed by Close
}

// Close closes the file and removes a temporary copy.
func (s *Seekable) Close() error {
	err := s.File.Close()
	if s.temp != nil {
		if aerr := s.temp.Abort(); err == nil {
			err = aerr
		}
	}
	return err
}

// SeekableOptions say where a compressed archive is decompressed.
type SeekableOptions struct {
	// Dir is where a compressed archive is decompressed to; "" refuses
	// one (ErrCompressed).
	Dir string
	// Keep keeps the copy in Dir as <sha256 of the archive>.tar, where the
	// next OpenSeekable of the same bytes finds it (serve, across runs);
	// else the copy is a temporary file that Close removes (push). A kept
	// copy is trusted no more than the archive: it is read and every blob
	// hashed again, and one that fails is removed.
	Keep bool
	Read ReadOptions
}

// OpenSeekable reads the archive at p once through Read and returns it as
// a Seekable. Blobs that do not hash to their names are the caller's to
// report (BlobInfo.ComputedDigest), except in a kept copy: that copy is
// removed, as a copy damaged since it was made would be.
func OpenSeekable(ctx context.Context, p string, opts SeekableOptions) (_ *Seekable, err error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	s := &Seekable{File: f}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	br := bufio.NewReaderSize(f, 256<<10)
	if s.Compression, err = sniffCompression(br); err != nil {
		return nil, err
	}
	switch {
	case s.Compression == None:
		if s.Info, err = f.Stat(); err != nil {
			return nil, err
		}
		if opts.Read.Unhashed {
			s.Contents, err = readSeeking(ctx, f, opts.Read)
		} else {
			s.Contents, err = Read(ctx, br, opts.Read)
		}
	case opts.Dir == "":
		return nil, fmt.Errorf("%w (%s): its blobs can be read in place only from an uncompressed tar; give a directory to decompress it into, or decompress it yourself (%s)", ErrCompressed, s.Compression, s.Compression.command(p))
	case opts.Keep:
		err = s.openKept(ctx, p, opts)
	default:
		err = s.openTemp(ctx, br, p, opts)
	}
	if err != nil {
		return nil, err
	}
	if s.Contents.Compression != None {
		return nil, fmt.Errorf("archive compressed twice (%s inside)", s.Contents.Compression)
	}
	return s, nil
}

// openTemp decompresses into a temporary file while Read reads the tar, in
// one pass: the offsets Read gives are offsets in that file.
func (s *Seekable) openTemp(ctx context.Context, br *bufio.Reader, p string, opts SeekableOptions) error {
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return err
	}
	zr, closeZ, err := decompressorFor(br, s.Compression)
	if err != nil {
		return err
	}
	defer closeZ()
	// atomicfile's temporary name (.NAME.tmp-p<PID>-*) lets a later run
	// remove it if this one is killed.
	tmp, err := atomicfile.CreateIn(opts.Dir, filepath.Join(opts.Dir, filepath.Base(p)+".tar"), 0o600)
	if err != nil {
		return err
	}
	s.temp = tmp
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if s.Contents, err = Read(ctx, io.TeeReader(zr, bw), opts.Read); err != nil {
		return err
	}
	// Read stops at the tar's end; the rest of the stream is padding,
	// copied too so that the file is the whole tar.
	if _, err := io.Copy(bw, iox.ContextReader(ctx, zr)); err != nil {
		return fmt.Errorf("archive: %s: %w", s.Compression, err)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	// Never committed nor synced (a scratch copy): read back under its
	// temporary name, removed by Close.
	rf, err := os.Open(tmp.Name())
	if err != nil {
		return err
	}
	s.File.Close()
	s.File, s.Copy = rf, tmp.Name()
	s.Info, err = rf.Stat()
	return err
}

// openKept finds, or makes, the copy named by the archive's sha256 in
// opts.Dir, and reads it.
func (s *Seekable) openKept(ctx context.Context, p string, opts SeekableOptions) error {
	if _, err := s.File.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, iox.ContextReader(ctx, s.File)); err != nil {
		return err
	}
	target := filepath.Join(opts.Dir, hex.EncodeToString(h.Sum(nil))+".tar")
	if fi, err := os.Stat(target); err != nil || !fi.Mode().IsRegular() {
		if err := decompressTo(ctx, s.File, target); err != nil {
			return fmt.Errorf("decompressing into %s: %w", opts.Dir, err)
		}
	}
	rf, err := os.Open(target)
	if err != nil {
		return err
	}
	s.File.Close()
	s.File, s.Copy = rf, target
	if s.Info, err = rf.Stat(); err != nil {
		return err
	}
	s.Contents, err = Read(ctx, bufio.NewReaderSize(rf, 256<<10), opts.Read)
	if err == nil {
		err = checkBlobDigests(s.Contents, target)
	}
	if err != nil {
		os.Remove(target)
		return fmt.Errorf("%w (in its decompressed copy %s, now removed: open it again to decompress it anew)", err, target)
	}
	return nil
}

// decompressTo writes the tar inside f to target, published whole.
func decompressTo(ctx context.Context, f *os.File, target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tmp, err := atomicfile.Create(target, 0o600)
	if err != nil {
		return err
	}
	defer tmp.Close() // removes the temporary file unless published
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if _, err := Decompress(ctx, bw, f); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	// Not synced: a copy a crash left short fails Read's checks, and is
	// made again once removed.
	return tmp.Publish()
}

// checkBlobDigests makes sure every blob of c hashes to its name.
func checkBlobDigests(c *Contents, p string) error {
	for _, d := range c.blobDigests() {
		if b := c.Blobs[d]; b.ComputedDigest != d {
			return fmt.Errorf("%s: %s hashes to %s, not its name", p, b.Path, b.ComputedDigest)
		}
	}
	return nil
}
