package archive

// The tar side of reading: the input is untrusted and may be many
// gigabytes, so it is read in one streaming pass. Every file is hashed as it
// goes by; only small JSON documents (index.json, manifest.json, manifests,
// indexes, configs) are kept in memory. Nothing is ever written to disk.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
)

// Default limits of ReadOptions.
const (
	DefaultMaxMetadataSize  = 16 << 20
	DefaultMaxDocumentSize  = image.MaxManifestSize
	DefaultMaxDocumentTotal = 256 << 20
	DefaultMaxEntries       = 500_000
	// ZstdMaxWindow is the largest zstd window Read accepts, as k3s's
	// decoder does.
	ZstdMaxWindow = 32 << 20
)

// ErrUnsafe marks an archive Read refuses to read: an entry that could
// escape an extraction directory, a link, a device, a document over its size
// limit. Errors wrapping it are *EntryError values.
var ErrUnsafe = errors.New("unsafe archive")

// EntryError is an entry (or document) Read refuses.
type EntryError struct {
	Name   string // the entry's name as written in the tar
	Reason string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("archive: refusing entry %q: %s", e.Name, e.Reason)
}

// Unwrap makes errors.Is(err, ErrUnsafe) true.
func (e *EntryError) Unwrap() error { return ErrUnsafe }

// ReadOptions bound what Read accepts. Zero values take the defaults.
type ReadOptions struct {
	// MaxMetadataSize bounds index.json, manifest.json, repositories and
	// oci-layout (default 16 MiB). A larger one is refused.
	MaxMetadataSize int64
	// MaxDocumentSize bounds each manifest, index and config kept in memory
	// (default 4 MiB, as build). Larger files are only hashed; a manifest
	// over the limit cannot be read and is reported by Check.
	MaxDocumentSize int64
	// MaxDocumentTotal bounds all documents kept (default 256 MiB).
	MaxDocumentTotal int64
	// MaxEntries bounds the number of tar entries (default 500,000).
	MaxEntries int
	// Unhashed leaves Contents.SHA256, FileInfo.SHA256 and
	// BlobInfo.ComputedDigest empty, for a caller that proves the bytes
	// another way (apply checks the archive it rebuilds, which holds every
	// blob): hashing is most of what reading costs. OpenSeekable then reads
	// an uncompressed archive by its headers, seeking past large files.
	Unhashed bool
}

func (o ReadOptions) withDefaults() ReadOptions {
	if o.MaxMetadataSize <= 0 {
		o.MaxMetadataSize = DefaultMaxMetadataSize
	}
	if o.MaxDocumentSize <= 0 {
		o.MaxDocumentSize = DefaultMaxDocumentSize
	}
	if o.MaxDocumentTotal <= 0 {
		o.MaxDocumentTotal = DefaultMaxDocumentTotal
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	return o
}

// ReadFile reads the archive at p; see Read. Contents.Size and SHA256 are
// those of the file.
func ReadFile(ctx context.Context, p string, opts ReadOptions) (*Contents, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("archive: %s is not a regular file", p)
	}
	return Read(ctx, f, opts)
}

// Read reads one archive from r in a single pass: a tar, gzip- or
// zstd-compressed or not (told by its first bytes). It refuses, with an
// error wrapping ErrUnsafe, entries with an absolute path or a ".."
// component, hard links, symlinks (except, in a Docker archive, symlinks
// to a regular file inside the archive, as classic docker save writes for
// shared layers), devices and other special files, duplicate entries and
// metadata files over their limits. It never writes anything.
//
// Read fails only when the archive cannot be read or is refused;
// inconsistencies (a blob that does not match its name, a missing layer,
// index.json and manifest.json disagreeing) are left to Check.
func Read(ctx context.Context, r io.Reader, opts ReadOptions) (*Contents, error) {
	opts = opts.withDefaults()
	var whole hash.Hash = discardHash{}
	if !opts.Unhashed {
		whole = sha256.New()
	}
	counter := &iox.CountingWriter{}
	raw := bufio.NewReaderSize(io.TeeReader(r, io.MultiWriter(whole, counter)), 256<<10)
	tr, comp, closeFn, err := decompressor(raw)
	if err != nil {
		return nil, err
	}
	defer closeFn()

	rd := newReader(opts, comp)
	// Counted below the tar reader, which reads headers and data exactly
	// (no read-ahead): right after Next, the count is the entry's offset.
	rd.pos = &iox.CountingWriter{}
	if err := rd.readTar(ctx, io.TeeReader(iox.ContextReader(ctx, tr), rd.pos)); err != nil {
		return nil, err
	}
	// The rest of the stream: tar padding, and the compressor's trailer,
	// whose checksum is only verified at its end.
	if _, err := io.CopyBuffer(io.Discard, iox.ContextReader(ctx, tr), rd.buf); err != nil {
		return nil, fmt.Errorf("archive: reading the %s stream after the tar: %w", comp, err)
	}
	if _, err := io.CopyBuffer(io.Discard, raw, rd.buf); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	rd.c.Size = counter.N
	if !opts.Unhashed {
		rd.c.SHA256 = hex.EncodeToString(whole.Sum(nil))
	}
	return rd.finish()
}

// readSeeking reads an uncompressed archive by its tar headers, seeking
// past the data of every file too large to be a document: only headers,
// documents and each file's first bytes are read. Nothing is hashed
// (ReadOptions.Unhashed), so it is for a caller that proves the bytes
// another way; apply, whose rebuilt archive is checked whole, saves a
// pass over gigabytes of delta.
func readSeeking(ctx context.Context, rs io.ReadSeeker, opts ReadOptions) (*Contents, error) {
	opts = opts.withDefaults()
	opts.Unhashed = true
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	rd := newReader(opts, None)
	rd.pos = &iox.CountingWriter{}
	rd.seeking = true
	// tar.Reader seeks past unread data when its reader is an io.Seeker.
	src := &seekCounter{rs: rs, pos: rd.pos}
	if err := rd.readTar(ctx, src); err != nil {
		return nil, err
	}
	if _, err := io.CopyBuffer(io.Discard, iox.ContextReader(ctx, src), rd.buf); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	rd.c.Size = rd.pos.N
	return rd.finish()
}

// seekCounter keeps pos at the offset in rs: tar.Reader reads headers and
// data exactly, so right after Next it is the entry's offset.
type seekCounter struct {
	rs  io.ReadSeeker
	pos *iox.CountingWriter
}

func (s *seekCounter) Read(p []byte) (int, error) {
	n, err := s.rs.Read(p)
	s.pos.N += int64(n)
	return n, err
}

func (s *seekCounter) Seek(off int64, whence int) (int64, error) {
	n, err := s.rs.Seek(off, whence)
	if err == nil {
		s.pos.N = n
	}
	return n, err
}

func newReader(opts ReadOptions, comp Compression) *reader {
	return &reader{
		opts: opts,
		c: &Contents{
			Compression:     comp,
			Files:           map[string]*FileInfo{},
			Blobs:           map[digest.Digest]*BlobInfo{},
			Documents:       map[string][]byte{},
			MaxDocumentSize: opts.MaxDocumentSize,
		},
		links:    map[string]string{},
		linkText: map[string]string{},
		dirs:     map[string]bool{},
		buf:      make([]byte, 256<<10),
	}
}

// finish makes the images of what readTar gathered.
func (rd *reader) finish() (*Contents, error) {
	c := rd.c
	format, err := tellFormat(c.Documents)
	if err != nil {
		return nil, err
	}
	c.Format = format
	if err := rd.resolveLinks(); err != nil {
		return nil, err
	}
	if err := decodeMetadata(c); err != nil {
		return nil, err
	}
	c.Images, _ = buildImages(c)
	return c, nil
}

type reader struct {
	opts     ReadOptions
	c        *Contents
	links    map[string]string // symlink path -> target path (cleaned, inside the archive)
	linkText map[string]string // symlink path -> target as written
	dirs     map[string]bool
	docBytes int64
	entries  int
	buf      []byte // copy buffer
	small    []byte // whole small files, reused
	pos      *iox.CountingWriter
	seeking  bool // readSeeking: large files are not read
}

func (rd *reader) readTar(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if rd.entries == 0 {
				return errors.New("archive: not a tar archive, or an empty one")
			}
			return nil
		}
		if err != nil {
			if rd.c.Compression != None {
				return fmt.Errorf("archive: reading %s-compressed tar: %w", rd.c.Compression, err)
			}
			return fmt.Errorf("archive: reading tar: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // PAX global header (git archive writes one): no file
		}
		rd.entries++
		if rd.entries == 1 {
			rd.c.ModTime = hdr.ModTime.UTC()
		}
		if rd.entries > rd.opts.MaxEntries {
			return &EntryError{Name: hdr.Name, Reason: fmt.Sprintf("more than %d entries", rd.opts.MaxEntries)}
		}
		p, err := cleanName(hdr.Name)
		if err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeDir && rd.dirs[p] {
			continue // a directory listed twice is harmless
		}
		if rd.seen(p) {
			return &EntryError{Name: hdr.Name, Reason: "a second entry with the same path"}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			rd.dirs[p] = true
		case tar.TypeReg, tar.TypeRegA:
			if p == "." {
				return &EntryError{Name: hdr.Name, Reason: "a file named like the archive root"}
			}
			if err := rd.readFile(tr, hdr, p); err != nil {
				return err
			}
		case tar.TypeSymlink:
			target, err := symlinkTarget(hdr, p)
			if err != nil {
				return err
			}
			rd.links[p], rd.linkText[p] = target, hdr.Linkname
		case tar.TypeLink:
			return &EntryError{Name: hdr.Name, Reason: fmt.Sprintf("hard link to %q: links are not allowed", hdr.Linkname)}
		case tar.TypeChar, tar.TypeBlock:
			return &EntryError{Name: hdr.Name, Reason: "device file"}
		case tar.TypeFifo:
			return &EntryError{Name: hdr.Name, Reason: "named pipe"}
		default:
			return &EntryError{Name: hdr.Name, Reason: fmt.Sprintf("unsupported entry type %q", hdr.Typeflag)}
		}
	}
}

func (rd *reader) seen(p string) bool {
	_, f := rd.c.Files[p]
	_, l := rd.links[p]
	return f || l || rd.dirs[p]
}

// cleanName checks an entry name and returns it cleaned ("./a//b" -> "a/b").
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", &EntryError{Name: name, Reason: "empty name"}
	case strings.ContainsRune(name, 0):
		return "", &EntryError{Name: name, Reason: "NUL in name"}
	case strings.HasPrefix(name, "/"):
		return "", &EntryError{Name: name, Reason: "absolute path"}
	case strings.Contains(name, `\`):
		return "", &EntryError{Name: name, Reason: "backslash in name"}
	case len(name) > 4096:
		return "", &EntryError{Name: name[:64] + "…", Reason: "name over 4096 bytes"}
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", &EntryError{Name: name, Reason: `path has a ".." component`}
		}
	}
	return path.Clean(name), nil
}

// symlinkTarget resolves a symlink's target against its directory; it must
// stay inside the archive.
func symlinkTarget(hdr *tar.Header, p string) (string, error) {
	t := hdr.Linkname
	switch {
	case t == "":
		return "", &EntryError{Name: hdr.Name, Reason: "symlink without a target"}
	case strings.HasPrefix(t, "/"):
		return "", &EntryError{Name: hdr.Name, Reason: fmt.Sprintf("symlink to the absolute path %q", t)}
	case strings.ContainsRune(t, 0) || strings.Contains(t, `\`):
		return "", &EntryError{Name: hdr.Name, Reason: fmt.Sprintf("symlink target %q", t)}
	}
	full := path.Join(path.Dir(p), t)
	if full == ".." || strings.HasPrefix(full, "../") {
		return "", &EntryError{Name: hdr.Name, Reason: fmt.Sprintf("symlink to %q leaves the archive", t)}
	}
	return full, nil
}

// readFile hashes one regular file, keeping it when it is a small JSON
// document.
func (rd *reader) readFile(tr io.Reader, hdr *tar.Header, p string) error {
	if hdr.Size < 0 {
		return &EntryError{Name: hdr.Name, Reason: "negative size"}
	}
	fi := &FileInfo{Path: p, Size: hdr.Size, Offset: rd.pos.N}
	var blob *BlobInfo
	var blobHash hash.Hash
	if strings.HasPrefix(p, "blobs/") {
		if d, ok := blobDigest(p); ok {
			blob = &BlobInfo{Path: p, Digest: d, Size: hdr.Size}
			if d.Algorithm() != digest.SHA256 {
				blobHash = d.Algorithm().Hash()
			}
		} else {
			rd.c.BadBlobNames = append(rd.c.BadBlobNames, p)
		}
	}
	var h hash.Hash = discardHash{}
	if rd.opts.Unhashed {
		blobHash = nil
	} else {
		h = sha256.New()
	}
	head := &headWriter{}
	w := io.MultiWriter(h, head)
	if blobHash != nil {
		w = io.MultiWriter(h, head, blobHash)
	}

	limit := rd.opts.MaxDocumentSize
	if isMetadata(p) {
		limit = rd.opts.MaxMetadataSize
		if hdr.Size > limit {
			return &EntryError{Name: hdr.Name, Reason: fmt.Sprintf("%d bytes, over the %d-byte limit of %s", hdr.Size, limit, p)}
		}
	}
	if hdr.Size <= limit {
		// Small enough to be a document: read it whole (into a reused
		// buffer), keep a copy if it is JSON.
		if int64(cap(rd.small)) < hdr.Size {
			rd.small = make([]byte, hdr.Size)
		}
		data := rd.small[:hdr.Size]
		if _, err := io.ReadFull(tr, data); err != nil {
			return fmt.Errorf("archive: reading %s: %w", p, unexpected(err))
		}
		w.Write(data)
		if isMetadata(p) || looksLikeJSON(data) {
			rd.docBytes += int64(len(data))
			if rd.docBytes > rd.opts.MaxDocumentTotal {
				return &EntryError{Name: hdr.Name, Reason: fmt.Sprintf("the archive's JSON documents exceed %d bytes in all", rd.opts.MaxDocumentTotal)}
			}
			rd.c.Documents[p] = bytes.Clone(data)
		}
	} else if rd.seeking {
		// The first bytes tell the file's compression; Next seeks past
		// the rest (reading its last byte: a short file is an error).
		k := min(hdr.Size, 8)
		if _, err := io.ReadFull(tr, rd.buf[:k]); err != nil {
			return fmt.Errorf("archive: reading %s: %w", p, unexpected(err))
		}
		head.Write(rd.buf[:k])
	} else {
		n, err := io.CopyBuffer(w, tr, rd.buf)
		if err != nil {
			return fmt.Errorf("archive: reading %s: %w", p, unexpected(err))
		}
		if n != hdr.Size {
			return fmt.Errorf("archive: reading %s: %d of %d bytes", p, n, hdr.Size)
		}
	}
	if !rd.opts.Unhashed {
		fi.SHA256 = digest.NewDigest(digest.SHA256, h)
	}
	fi.Compression, _ = sniffCompression(bufio.NewReader(bytes.NewReader(head.b)))
	rd.c.Files[p] = fi
	if blob != nil {
		switch {
		case rd.opts.Unhashed:
		case blobHash != nil:
			blob.ComputedDigest = digest.NewDigest(blob.Digest.Algorithm(), blobHash)
		default:
			blob.ComputedDigest = fi.SHA256
		}
		rd.c.Blobs[blob.Digest] = blob
	}
	return nil
}

// discardHash stands in for a hash Read was told not to compute.
type discardHash struct{}

func (discardHash) Write(p []byte) (int, error) { return len(p), nil }
func (discardHash) Sum(b []byte) []byte         { return b }
func (discardHash) Reset()                      {}
func (discardHash) Size() int                   { return 0 }
func (discardHash) BlockSize() int              { return 64 }

// headWriter keeps the first bytes written to it.
type headWriter struct{ b []byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if n := 8 - len(h.b); n > 0 {
		h.b = append(h.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// blobDigest parses "blobs/<algorithm>/<encoded>".
func blobDigest(p string) (digest.Digest, bool) {
	parts := strings.Split(p, "/")
	if len(parts) != 3 || parts[0] != "blobs" {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
	if d.Validate() != nil {
		return "", false
	}
	return d, true
}

func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// resolveLinks allows symlinks only in a Docker archive and only to a
// regular file inside it (classic docker save links a layer saved twice to
// its first copy); each then stands for that file.
func (rd *reader) resolveLinks() error {
	// A file under another file's path ("a" and "a/b") cannot be extracted.
	for p := range rd.c.Files {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, isFile := rd.c.Files[d]; isFile {
				return &EntryError{Name: p, Reason: fmt.Sprintf("path goes through the file %q", d)}
			}
		}
	}
	if len(rd.links) == 0 {
		return nil
	}
	names := make([]string, 0, len(rd.links))
	for p := range rd.links {
		names = append(names, p)
	}
	slices.Sort(names)
	if rd.c.Format != FormatDocker {
		return &EntryError{Name: names[0], Reason: fmt.Sprintf("symlink to %q: links are not allowed in an OCI layout archive", rd.linkText[names[0]])}
	}
	for _, p := range names {
		t := rd.links[p]
		for hops := 0; ; hops++ {
			next, isLink := rd.links[t]
			if !isLink {
				break
			}
			if hops >= 8 {
				return &EntryError{Name: p, Reason: "symlink chain longer than 8 links"}
			}
			t = next
		}
		f, ok := rd.c.Files[t]
		if !ok {
			reason := fmt.Sprintf("symlink to %q, which is not a file in the archive", rd.linkText[p])
			if rd.dirs[t] {
				reason = fmt.Sprintf("symlink to the directory %q", rd.linkText[p])
			}
			return &EntryError{Name: p, Reason: reason}
		}
		rd.c.Files[p] = &FileInfo{Path: p, Size: f.Size, SHA256: f.SHA256, LinkTo: t, Offset: f.Offset}
	}
	// A file under a symlinked path would be reached through the link.
	for p := range rd.c.Files {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, isLink := rd.links[d]; isLink {
				return &EntryError{Name: p, Reason: fmt.Sprintf("path goes through the symlink %q", d)}
			}
		}
	}
	return nil
}
