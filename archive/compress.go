package archive

import (
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
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

// zstd settings.
//
// ZstdWindowSize is the largest back-reference distance, written to the frame
// header. k3s decodes with klauspost's decoder and WithDecoderMaxMemory(32 MiB)
// (pkg/untar MaxDecoderMemory), which caps the window of a stream, and RFC 8878
// asks every decoder to support at least 8 MiB, so an 8 MiB window keeps every
// consumer able to read the archive.
//
// zstdConcurrency is fixed, not GOMAXPROCS, so the bytes do not depend on the
// machine. Does klauspost's output depend on concurrency? In the stream mode
// used here (WithConcurrentBlocks off), no: blocks are encoded one after
// another with the shared history, and concurrency > 1 only overlaps encoding
// a block with writing the previous one; v1.20.4 gives identical bytes for 1,
// 2 and 4 (TestZstdIndependentOfConcurrency checks it). With
// WithConcurrentBlocks on, the input is cut into independently compressed
// jobs, which does change the bytes, and that option silently switches off
// at concurrency 1, so a NumCPU setting would differ between a 1-CPU and a
// multi-CPU machine. It stays off, and concurrency stays fixed in case a later
// klauspost release ties stream output to it.
const (
	ZstdWindowSize  = 8 << 20
	zstdConcurrency = 2
)

// newCompressor wraps w in c's compressor. Close flushes the compressor but
// does not close w.
func newCompressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case None:
		return nopCloser{w}, nil
	case Gzip:
		// The header has no name, no comment and mtime 0 (klauspost writes 0
		// for a zero ModTime), OS 255: nothing from the machine.
		gw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
		if err != nil {
			return nil, fmt.Errorf("archive: gzip: %w", err)
		}
		return gw, nil
	case Zstd:
		return newZstdWriter(w, zstdConcurrency)
	}
	return nil, fmt.Errorf("archive: unknown compression %d", int(c))
}

func newZstdWriter(w io.Writer, concurrency int) (io.WriteCloser, error) {
	zw, err := zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithWindowSize(ZstdWindowSize),
		zstd.WithEncoderConcurrency(concurrency),
		zstd.WithConcurrentBlocks(false),
		zstd.WithEncoderCRC(true),
	)
	if err != nil {
		return nil, fmt.Errorf("archive: zstd: %w", err)
	}
	return zw, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
