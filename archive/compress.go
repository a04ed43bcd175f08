package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/airgap-bundle/airgap-bundle/internal/iox"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression is how a whole archive is compressed.
type Compression int

// Compressions of an archive.
const (
	None Compression = iota // plain tar
	Gzip                    // gzip: .tar.gz, .tgz
	Zstd                    // zstd: .tar.zst, .tzst
)

func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// CompressionFor picks the compression from an archive file name's
// extension, case-insensitively as k3s does: ".tar" none, ".tar.gz" and
// ".tgz" gzip, ".tar.zst" and ".tzst" zstd. Any other name is an error.
func CompressionFor(filename string) (Compression, error) {
	name := strings.ToLower(filename)
	switch {
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		return Gzip, nil
	case strings.HasSuffix(name, ".tar.zst"), strings.HasSuffix(name, ".tzst"):
		return Zstd, nil
	case strings.HasSuffix(name, ".tar"):
		return None, nil
	}
	return None, fmt.Errorf("archive %q: unknown extension (want .tar, .tar.gz, .tgz, .tar.zst or .tzst)", filename)
}

// Compressor settings. Compression is the bottleneck of a .tar.gz or
// .tar.zst build; the settings are chosen so that the bytes never depend on
// how many cores there are.
//
// ZstdWindowSize is the largest back-reference distance, written to the frame
// header. k3s decodes with klauspost's decoder and WithDecoderMaxMemory(32 MiB)
// (pkg/untar MaxDecoderMemory), which caps the window of a stream, and RFC 8878
// asks every decoder to support at least 8 MiB, so an 8 MiB window keeps every
// consumer able to read the archive.
//
// zstd is written as a series of independent frames, one per 2 MiB of
// tar (the last one shorter), each compressed on its own by klauspost's
// EncodeAll, several at once, and written in order. A frame boundary falls
// at a fixed input offset, so the bytes depend on the frame size only,
// never on how many frames are compressed at once
// (TestCompressionIndependentOfCores checks 1, 2, 4 and 8). Every zstd
// decoder reads concatenated frames as one stream (RFC 8878, section 3.1),
// k3s, containerd and the zstd command included. Memory stays bounded:
// at most `concurrency` frames are in flight, each needing its input, its
// output and an encoder with a frame-sized window (4 MiB frames took a
// warm 250 MB build from 43 to 65-79 MB of RSS; 2 MiB frames keep it
// under the 64 MB of issue 9). The single-stream encoder
// keeps its history across the whole archive but uses one core; its
// concurrent-block mode buffers without bound (660 MB of RSS on a 250 MB
// bundle in make bench). Layers are mostly compressed already, so the
// history lost at a frame boundary costs next to nothing.
//
// gzip is klauspost's pgzip: 1 MiB blocks, each compressed with the last
// 32 KiB of the one before as its dictionary, so the bytes depend on the
// block size only, never on how many blocks are compressed at once.
const (
	ZstdWindowSize = 8 << 20
	zstdFrameSize  = 2 << 20
	gzipBlockSize  = 1 << 20
)

// cores is how many gzip blocks are compressed at once.
func cores() int { return max(2, runtime.GOMAXPROCS(0)) }

// newCompressor wraps w in c's compressor. Close flushes the compressor but
// does not close w.
func newCompressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case None:
		return nopCloser{w}, nil
	case Gzip:
		// The header has no name, no comment and mtime 0 (klauspost writes 0
		// for a zero ModTime), OS 255: nothing from the machine.
		return newGzipWriter(w, cores())
	case Zstd:
		return newZstdWriter(w, min(cores(), 4))
	}
	return nil, fmt.Errorf("archive: unknown compression %d", int(c))
}

func newGzipWriter(w io.Writer, blocks int) (io.WriteCloser, error) {
	gw, err := pgzip.NewWriterLevel(w, pgzip.DefaultCompression)
	if err != nil {
		return nil, fmt.Errorf("archive: gzip: %w", err)
	}
	if err := gw.SetConcurrency(gzipBlockSize, blocks); err != nil {
		return nil, fmt.Errorf("archive: gzip: %w", err)
	}
	// No name, no comment, mtime 0: nothing from the machine. (pgzip
	// writes the zero time.Time as a date, not as 0.)
	gw.ModTime = time.Unix(0, 0)
	return gw, nil
}

func newZstdWriter(w io.Writer, concurrency int) (io.WriteCloser, error) {
	concurrency = max(1, concurrency)
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithWindowSize(min(ZstdWindowSize, zstdFrameSize)),
		zstd.WithEncoderConcurrency(concurrency),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		return nil, fmt.Errorf("archive: zstd: %w", err)
	}
	z := &zstdFrames{
		w: w, enc: enc,
		slots:    make(chan struct{}, concurrency),
		order:    make(chan chan []byte, concurrency),
		ins:      make(chan []byte, concurrency+1),
		outs:     make(chan []byte, concurrency+1),
		finished: make(chan struct{}),
	}
	go z.writeInOrder()
	return z, nil
}

// zstdFrames compresses each zstdFrameSize of input into its own frame.
// Write fills the current buffer; a full one goes to a goroutine that
// compresses it, and writeInOrder writes the frames in input order.
// Buffers are recycled through ins and outs, so memory stays at about
// 2 x concurrency frames whatever the archive's size.
type zstdFrames struct {
	w      io.Writer
	enc    *zstd.Encoder
	buf    []byte
	frames int

	slots    chan struct{}    // one per frame being compressed or written
	order    chan chan []byte // each frame's result, in input order
	ins      chan []byte      // free input buffers
	outs     chan []byte      // free output buffers
	finished chan struct{}    // closed when writeInOrder is done

	mu     sync.Mutex
	werr   error // the first error writing to w
	err    error // returned by every Write after a failure
	closed bool
}

func (z *zstdFrames) writeErr() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.werr
}

func (z *zstdFrames) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	n := len(p)
	for len(p) > 0 {
		if z.buf == nil {
			z.buf = recycled(z.ins, zstdFrameSize)
		}
		k := min(len(p), zstdFrameSize-len(z.buf))
		z.buf = append(z.buf, p[:k]...)
		p = p[k:]
		if len(z.buf) == zstdFrameSize {
			if err := z.flushFrame(); err != nil {
				z.err = err
				return 0, err
			}
		}
	}
	return n, nil
}

// recycled takes a free buffer, or makes one.
func recycled(free chan []byte, size int) []byte {
	select {
	case b := <-free:
		return b[:0]
	default:
		return make([]byte, 0, size)
	}
}

func recycle(free chan []byte, b []byte) {
	select {
	case free <- b:
	default:
	}
}

// flushFrame hands the current buffer to a compressing goroutine, first
// waiting for a free slot: that wait is what bounds memory.
func (z *zstdFrames) flushFrame() error {
	if err := z.writeErr(); err != nil {
		return err
	}
	in := z.buf
	z.buf = nil
	z.frames++
	z.slots <- struct{}{} // writeInOrder frees slots as it goes, error or not
	res := make(chan []byte, 1)
	z.order <- res // never blocks: at most cap(slots) frames are queued
	go func() {
		out := z.enc.EncodeAll(in, recycled(z.outs, zstdFrameSize+zstdFrameSize/64))
		recycle(z.ins, in)
		res <- out
	}()
	return nil
}

func (z *zstdFrames) writeInOrder() {
	defer close(z.finished)
	for res := range z.order {
		out := <-res
		if z.writeErr() == nil {
			if _, err := z.w.Write(out); err != nil {
				z.mu.Lock()
				z.werr = err
				z.mu.Unlock()
			}
		}
		recycle(z.outs, out)
		<-z.slots
	}
}

// Close compresses what is left (an empty input makes one empty frame)
// and waits until every frame is written. It does not close the
// underlying writer.
func (z *zstdFrames) Close() error {
	if z.closed {
		return z.err
	}
	z.closed = true
	if z.err == nil && (len(z.buf) > 0 || z.frames == 0) {
		if z.buf == nil {
			z.buf = []byte{}
		}
		z.err = z.flushFrame()
	}
	close(z.order)
	<-z.finished
	if z.err == nil {
		z.err = z.writeErr()
	}
	return z.err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// The reading side: the tar inside a compressed stream.

// decompressor returns the tar stream inside raw: raw itself, or its gzip
// or zstd decompressor (told by the first bytes), and what releases it.
func decompressor(raw *bufio.Reader) (io.Reader, Compression, func(), error) {
	comp, err := sniffCompression(raw)
	if err != nil {
		return nil, None, nil, err
	}
	r, closeFn, err := decompressorFor(raw, comp)
	return r, comp, closeFn, err
}

// decompressorFor returns the reader of what raw holds compressed with
// comp, and what releases it.
func decompressorFor(raw *bufio.Reader, comp Compression) (io.Reader, func(), error) {
	switch comp {
	case Gzip:
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("archive: gzip: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case Zstd:
		zr, err := zstd.NewReader(raw, zstd.WithDecoderMaxWindow(ZstdMaxWindow))
		if err != nil {
			return nil, nil, fmt.Errorf("archive: zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return raw, func() {}, nil
}

// command is how a user decompresses the file p with standard tools.
func (c Compression) command(p string) string {
	switch c {
	case Gzip:
		return "gunzip -k " + p
	case Zstd:
		return "zstd -d " + p
	}
	return ""
}

// NewDecompressor returns a reader of the tar inside r (a .tar, .tar.gz or
// .tar.zst, told by its first bytes, with the same limits as Read) and says
// how r was compressed. Close releases the decompressor, not r.
func NewDecompressor(r io.Reader) (io.ReadCloser, Compression, error) {
	tr, comp, closeFn, err := decompressor(bufio.NewReaderSize(r, 256<<10))
	if err != nil {
		return nil, None, err
	}
	return readCloser{tr, closeFn}, comp, nil
}

type readCloser struct {
	io.Reader
	close func()
}

func (r readCloser) Close() error { r.close(); return nil }

// Decompress copies the tar inside r (see NewDecompressor) to w, to the
// end of the stream, so the compressor's own checksum is checked, and
// says how r was compressed. Nothing else is checked: read the result
// with Read.
func Decompress(ctx context.Context, w io.Writer, r io.Reader) (Compression, error) {
	tr, comp, err := NewDecompressor(r)
	if err != nil {
		return None, err
	}
	defer tr.Close()
	if _, err := io.CopyBuffer(w, iox.ContextReader(ctx, tr), make([]byte, 256<<10)); err != nil {
		return comp, fmt.Errorf("archive: %s: %w", comp, err)
	}
	return comp, nil
}

// sniffCompression tells the compression from the first bytes.
func sniffCompression(br *bufio.Reader) (Compression, error) {
	head, err := br.Peek(6)
	if err != nil && len(head) == 0 {
		if errors.Is(err, io.EOF) {
			return None, errors.New("archive: empty file")
		}
		return None, fmt.Errorf("archive: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return Gzip, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return None, errors.New("archive: bzip2-compressed: not supported (use .tar, .tar.gz or .tar.zst)")
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return None, errors.New("archive: xz-compressed: not supported (use .tar, .tar.gz or .tar.zst)")
	}
	return None, nil
}
