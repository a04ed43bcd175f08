package archive

// Reading archives: ours, and what docker save, skopeo, podman and crane
// write. The input is untrusted and may be many gigabytes, so it is read in
// one streaming pass: every file is hashed as it goes by and only small JSON
// documents (index.json, manifest.json, manifests, indexes, configs) are
// kept in memory. Nothing is ever written to disk.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Format is the shape of an archive.
type Format string

// The shapes Read understands.
const (
	// FormatOCIDocker is an OCI image layout (oci-layout, index.json,
	// blobs/) plus a Docker manifest.json: what this tool writes, and what
	// docker save writes on Docker 25 and later.
	FormatOCIDocker Format = "oci+docker"
	// FormatOCI is a plain OCI image layout without manifest.json, as
	// skopeo's oci-archive transport writes it.
	FormatOCI Format = "oci"
	// FormatDocker is a Docker archive without an OCI layout: manifest.json,
	// <hex>.json configs and <id>/layer.tar or <hex>.tar[.gz] layers, as
	// classic docker save, skopeo/podman docker-archive and crane write it.
	FormatDocker Format = "docker"
)

// Names of the metadata files of an archive.
const (
	FileIndex        = ocispec.ImageIndexFile  // index.json
	FileLayout       = ocispec.ImageLayoutFile // oci-layout
	FileManifest     = "manifest.json"
	FileRepositories = "repositories"
)

// Default limits of ReadOptions.
const (
	DefaultMaxMetadataSize  = 16 << 20
	DefaultMaxDocumentSize  = 4 << 20
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

// FileInfo is one regular file of an archive (or, in a Docker archive, a
// symlink to one).
type FileInfo struct {
	Path   string        // cleaned entry name: "blobs/sha256/<hex>", "<id>/layer.tar"
	Size   int64         // bytes
	SHA256 digest.Digest // sha256 of the content
	// LinkTo is, for a symlink, the path of the regular file it resolves
	// to (Size and SHA256 are that file's). Empty for a regular file.
	LinkTo string
	// Compression is what the content's first bytes say (a compressed
	// layer); None for anything else.
	Compression Compression
}

// BlobInfo is one file under blobs/<algorithm>/<encoded>.
type BlobInfo struct {
	Path           string
	Digest         digest.Digest // what the name says
	Size           int64
	ComputedDigest digest.Digest // what the content hashes to, same algorithm
}

// DockerEntry is one entry of manifest.json.
type DockerEntry struct {
	Config       string
	RepoTags     []string
	Layers       []string
	LayerSources map[string]json.RawMessage `json:",omitempty"`
}

// Ref is a blob or file an image references.
type Ref struct {
	MediaType image.MediaType
	// Digest is what the reference says (a descriptor's digest), or for a
	// file of a Docker archive named by path, the sha256 of its content.
	Digest digest.Digest
	// Size is what the reference says, or the file's size.
	Size int64
	// Path is the archive entry holding it; "" when it is absent.
	Path string
}

// Present reports whether the referenced content is in the archive.
func (r Ref) Present() bool { return r.Path != "" }

// PlatformInfo is one platform manifest of an image, as found in the archive.
type PlatformInfo struct {
	// Platform is "os/arch[/variant]", from the index entry or else the
	// config; "" when neither says.
	Platform string
	// Attestation marks a BuildKit attestation manifest (platform
	// unknown/unknown or vnd.docker.reference.type=attestation-manifest).
	Attestation bool
	// Manifest is the manifest blob; nil for a Docker archive, which has
	// none.
	Manifest *Ref
	Config   Ref
	Layers   []Ref
	// DiffIDs are the config's rootfs.diff_ids, when the config was read.
	DiffIDs []digest.Digest
	// Size is manifest + config + layers as referenced.
	Size int64
}

// ImageInfo is one image of an archive: an index.json target (with all
// the names pointing at it) or, in a Docker archive, a manifest.json entry.
type ImageInfo struct {
	// Names as the archive writes them: io.containerd.image.name (else
	// org.opencontainers.image.ref.name) of index.json entries, or the
	// RepoTags of a Docker archive.
	Names []string
	// Top is the index.json target: a manifest or an index. Nil for a
	// Docker archive.
	Top *Ref
	// Platforms are the platform manifests present, in index order
	// (attestations included, marked).
	Platforms []*PlatformInfo
	// Absent are the children an index lists that are not in the archive
	// (other platforms, in "original" index mode).
	Absent []ocispec.Descriptor
	// Docker is the index of the manifest.json entry that describes this
	// image, -1 when none does; DockerPlatform is the index in Platforms of
	// the platform that entry describes, -1 when none matches.
	Docker, DockerPlatform int
	// Bytes is the size of every distinct blob the image uses that is in
	// the archive (top, manifests, configs, layers).
	Bytes int64
}

// Contents is what Read found in an archive.
type Contents struct {
	Format      Format
	Compression Compression
	// Size and SHA256 are of the archive file itself, as read (compressed).
	Size   int64
	SHA256 string // hex, as in SHA256SUMS
	// Files are all regular files (and resolved symlinks), by cleaned path.
	Files map[string]*FileInfo
	// Blobs are the files under blobs/, by the digest their names say.
	Blobs map[digest.Digest]*BlobInfo
	// BadBlobNames are files under blobs/ whose names are not digests.
	BadBlobNames []string
	// Layout is oci-layout, nil when absent.
	Layout *ocispec.ImageLayout
	// Index is index.json, nil when absent.
	Index *ocispec.Index
	// DockerManifest is manifest.json, nil when absent.
	DockerManifest []DockerEntry
	// Repositories is the legacy repositories file, nil when absent.
	Repositories map[string]map[string]string
	// Images are the images found, in index.json order (or manifest.json
	// order for a Docker archive).
	Images []*ImageInfo

	docs     map[string][]byte // small JSON documents, by path
	maxDoc   int64             // ReadOptions.MaxDocumentSize
	inner    []digest.Digest   // indexes reached below the top level
	problems []string          // found while building the image views
}

// Document returns a small JSON file kept in memory (a metadata file, a
// manifest, an index or a config), by path.
func (c *Contents) Document(p string) ([]byte, bool) {
	b, ok := c.docs[p]
	return b, ok
}

// BlobDocument returns the kept content of a blob, by digest.
func (c *Contents) BlobDocument(d digest.Digest) ([]byte, bool) {
	if b := c.Blobs[d]; b != nil {
		return c.Document(b.Path)
	}
	return nil, false
}

// PayloadBytes is the size of all regular files (symlinks not counted
// twice).
func (c *Contents) PayloadBytes() int64 {
	var n int64
	for _, f := range c.Files {
		if f.LinkTo == "" {
			n += f.Size
		}
	}
	return n
}

// UniqueBytes is the size of every distinct blob the images use, each
// counted once; ImagesBytes is the sum of the images' Bytes. Their
// difference is what sharing blobs between images saved.
func (c *Contents) UniqueBytes() int64 {
	seen := map[digest.Digest]bool{}
	var n int64
	for _, img := range c.Images {
		img.eachRef(func(r Ref) {
			if r.Present() && !seen[r.Digest] {
				seen[r.Digest] = true
				n += c.Files[r.Path].Size
			}
		})
	}
	return n
}

// ImagesBytes is the sum of every image's Bytes.
func (c *Contents) ImagesBytes() int64 {
	var n int64
	for _, img := range c.Images {
		n += img.Bytes
	}
	return n
}

// eachRef calls f for the top, and each platform's manifest, config and
// layers.
func (img *ImageInfo) eachRef(f func(Ref)) {
	if img.Top != nil {
		f(*img.Top)
	}
	for _, p := range img.Platforms {
		if p.Manifest != nil {
			f(*p.Manifest)
		}
		f(p.Config)
		for _, l := range p.Layers {
			f(l)
		}
	}
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
	whole := sha256.New()
	counter := &iox.CountingWriter{}
	raw := bufio.NewReaderSize(io.TeeReader(r, io.MultiWriter(whole, counter)), 256<<10)
	comp, err := sniffCompression(raw)
	if err != nil {
		return nil, err
	}
	var (
		tr      io.Reader = raw
		closeFn           = func() {}
	)
	switch comp {
	case Gzip:
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, fmt.Errorf("archive: gzip: %w", err)
		}
		tr, closeFn = zr, func() { zr.Close() }
	case Zstd:
		zr, err := zstd.NewReader(raw, zstd.WithDecoderMaxWindow(ZstdMaxWindow))
		if err != nil {
			return nil, fmt.Errorf("archive: zstd: %w", err)
		}
		tr, closeFn = zr, zr.Close
	}
	defer closeFn()

	rd := &reader{
		opts: opts,
		c: &Contents{
			Compression: comp,
			Files:       map[string]*FileInfo{},
			Blobs:       map[digest.Digest]*BlobInfo{},
			docs:        map[string][]byte{},
			maxDoc:      opts.MaxDocumentSize,
		},
		links:    map[string]string{},
		linkText: map[string]string{},
		dirs:     map[string]bool{},
		buf:      make([]byte, 256<<10),
	}
	if err := rd.readTar(ctx, iox.ContextReader(ctx, tr)); err != nil {
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
	c := rd.c
	c.Size = counter.N
	c.SHA256 = hex.EncodeToString(whole.Sum(nil))
	if err := rd.finish(); err != nil {
		return nil, err
	}
	c.buildViews()
	return c, nil
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
}

// metadata files and their JSON size limit.
func isMetadata(p string) bool {
	return p == FileIndex || p == FileManifest || p == FileLayout || p == FileRepositories
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
	fi := &FileInfo{Path: p, Size: hdr.Size}
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
	h := sha256.New()
	head := &headWriter{}
	w := io.Writer(io.MultiWriter(h, head))
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
			rd.c.docs[p] = bytes.Clone(data)
		}
	} else {
		n, err := io.CopyBuffer(w, tr, rd.buf)
		if err != nil {
			return fmt.Errorf("archive: reading %s: %w", p, unexpected(err))
		}
		if n != hdr.Size {
			return fmt.Errorf("archive: reading %s: %d of %d bytes", p, n, hdr.Size)
		}
	}
	fi.SHA256 = digest.NewDigest(digest.SHA256, h)
	fi.Compression, _ = sniffCompression(bufio.NewReader(bytes.NewReader(head.b)))
	rd.c.Files[p] = fi
	if blob != nil {
		if blobHash != nil {
			blob.ComputedDigest = digest.NewDigest(blob.Digest.Algorithm(), blobHash)
		} else {
			blob.ComputedDigest = fi.SHA256
		}
		rd.c.Blobs[blob.Digest] = blob
	}
	return nil
}

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

// finish resolves links, tells the format and decodes the metadata files.
func (rd *reader) finish() error {
	c := rd.c
	_, hasIndex := c.docs[FileIndex]
	_, hasLayout := c.docs[FileLayout]
	_, hasManifest := c.docs[FileManifest]
	switch {
	case hasIndex || hasLayout:
		c.Format = FormatOCI
		if hasManifest {
			c.Format = FormatOCIDocker
		}
	case hasManifest:
		c.Format = FormatDocker
	default:
		return errors.New("archive: not an image archive: neither index.json nor manifest.json")
	}
	if err := rd.resolveLinks(); err != nil {
		return err
	}
	if b, ok := c.docs[FileLayout]; ok {
		var l ocispec.ImageLayout
		if err := strictJSON(b, &l); err != nil {
			return fmt.Errorf("archive: %s: %w", FileLayout, err)
		}
		c.Layout = &l
	}
	if b, ok := c.docs[FileIndex]; ok {
		var idx ocispec.Index
		if err := strictJSON(b, &idx); err != nil {
			return fmt.Errorf("archive: %s: %w", FileIndex, err)
		}
		c.Index = &idx
	}
	if b, ok := c.docs[FileManifest]; ok {
		var m []DockerEntry
		if err := strictJSON(b, &m); err != nil {
			return fmt.Errorf("archive: %s: %w", FileManifest, err)
		}
		if m == nil {
			m = []DockerEntry{}
		}
		c.DockerManifest = m
	}
	if b, ok := c.docs[FileRepositories]; ok {
		var r map[string]map[string]string
		if err := strictJSON(b, &r); err != nil {
			return fmt.Errorf("archive: %s: %w", FileRepositories, err)
		}
		c.Repositories = r
	}
	return nil
}

// strictJSON decodes one JSON value and nothing after it.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
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
		rd.c.Files[p] = &FileInfo{Path: p, Size: f.Size, SHA256: f.SHA256, LinkTo: t}
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

// ---- image views ----

func (c *Contents) problemf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// ref describes a descriptor, with the path of its blob when present.
func (c *Contents) ref(d ocispec.Descriptor) Ref {
	r := Ref{MediaType: image.MediaType(d.MediaType), Digest: d.Digest, Size: d.Size}
	if b := c.Blobs[d.Digest]; b != nil {
		r.Path = b.Path
	}
	return r
}

// fileRef describes a file of a Docker archive named by path: a blob path
// takes its digest from the name, any other file from its content.
func (c *Contents) fileRef(p string) Ref {
	p = path.Clean(p)
	r := Ref{}
	if d, ok := blobDigest(p); ok {
		r.Digest = d
	}
	if f := c.Files[p]; f != nil {
		r.Path, r.Size = p, f.Size
		if r.Digest == "" {
			r.Digest = f.SHA256
		}
	}
	return r
}

func (c *Contents) buildViews() {
	if c.Index != nil {
		c.indexViews()
		c.linkDockerManifest()
	} else {
		c.dockerViews()
	}
	for _, img := range c.Images {
		seen := map[digest.Digest]bool{}
		img.eachRef(func(r Ref) {
			if r.Present() && !seen[r.Digest] {
				seen[r.Digest] = true
				img.Bytes += c.Files[r.Path].Size
			}
		})
	}
}

// imageName is the name an index.json entry gives its target.
func entryName(d ocispec.Descriptor) string {
	if n := d.Annotations[AnnotationImageName]; n != "" {
		return n
	}
	return d.Annotations[AnnotationRefName]
}

func (c *Contents) indexViews() {
	byTop := map[digest.Digest]*ImageInfo{}
	for i, d := range c.Index.Manifests {
		if img := byTop[d.Digest]; img != nil {
			if n := entryName(d); n != "" && !slices.Contains(img.Names, n) {
				img.Names = append(img.Names, n)
			}
			continue
		}
		top := c.ref(d)
		img := &ImageInfo{Top: &top, Docker: -1, DockerPlatform: -1}
		if n := entryName(d); n != "" {
			img.Names = []string{n}
		}
		byTop[d.Digest] = img
		c.Images = append(c.Images, img)
		c.walk(img, d, nil, fmt.Sprintf("index.json entry %d", i), 0)
	}
}

// docMediaType is a document's own mediaType, or what its fields say.
func docMediaType(doc []byte) image.MediaType {
	var m struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if json.Unmarshal(doc, &m) != nil {
		return ""
	}
	switch {
	case m.MediaType != "":
		return image.MediaType(m.MediaType)
	case m.Manifests != nil:
		return image.OCIIndex
	case m.Config != nil:
		return image.OCIManifest
	}
	return ""
}

// walk adds what descriptor d (a manifest or an index) leads to. parent is
// the index entry that listed d (for its platform), nil at the top.
func (c *Contents) walk(img *ImageInfo, d ocispec.Descriptor, parent *ocispec.Descriptor, what string, depth int) {
	doc, haveDoc := c.BlobDocument(d.Digest)
	if c.Blobs[d.Digest] == nil {
		if depth == 0 {
			return // Check reports the missing top
		}
		img.Absent = append(img.Absent, d)
		return
	}
	if depth > 0 && image.MediaType(d.MediaType).IsIndex() {
		c.inner = append(c.inner, d.Digest)
	}
	if !haveDoc {
		c.problemf("%s %s is over %d bytes or not JSON: not read", what, d.Digest, c.maxDoc)
		return
	}
	mt := image.MediaType(d.MediaType)
	if mt == "" {
		mt = docMediaType(doc)
	}
	switch {
	case image.MediaType(mt).IsIndex():
		if depth >= 4 {
			c.problemf("%s %s: indexes nested more than 4 deep", what, d.Digest)
			return
		}
		var idx ocispec.Index
		if err := json.Unmarshal(doc, &idx); err != nil {
			c.problemf("index %s: %v", d.Digest, err)
			return
		}
		for i := range idx.Manifests {
			child := idx.Manifests[i]
			c.walk(img, child, &child, fmt.Sprintf("child %d of index %s", i, d.Digest), depth+1)
		}
	case image.MediaType(mt).IsManifest():
		img.Platforms = append(img.Platforms, c.platform(d, mt, doc, parent))
	default:
		c.problemf("%s %s: media type %q is not an image manifest or index", what, d.Digest, mt)
	}
}

// platform builds the view of one manifest blob.
func (c *Contents) platform(d ocispec.Descriptor, mt image.MediaType, doc []byte, parent *ocispec.Descriptor) *PlatformInfo {
	man := c.ref(d)
	if man.MediaType == "" {
		man.MediaType = mt
	}
	p := &PlatformInfo{Manifest: &man, Size: d.Size}
	var m ocispec.Manifest
	if err := json.Unmarshal(doc, &m); err != nil {
		return p // Check reports it
	}
	p.Config = c.ref(m.Config)
	p.Size += m.Config.Size
	for _, l := range m.Layers {
		p.Layers = append(p.Layers, c.ref(l))
		p.Size += l.Size
	}
	cfg := c.config(p.Config)
	p.DiffIDs = cfg.diffIDs
	if parent != nil && parent.Platform != nil {
		p.Platform = platformString(parent.Platform.OS, parent.Platform.Architecture, parent.Platform.Variant)
	} else {
		p.Platform = cfg.platform
	}
	p.Attestation = parent != nil && image.IsAttestation(*parent)
	return p
}

type configInfo struct {
	platform string
	diffIDs  []digest.Digest
}

// config reads what the views need from a config document.
func (c *Contents) config(r Ref) configInfo {
	if !r.Present() {
		return configInfo{}
	}
	doc, ok := c.Document(r.Path)
	if !ok {
		return configInfo{}
	}
	var cfg struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
		RootFS       struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if json.Unmarshal(doc, &cfg) != nil {
		return configInfo{}
	}
	return configInfo{platform: platformString(cfg.OS, cfg.Architecture, cfg.Variant), diffIDs: cfg.RootFS.DiffIDs}
}

func platformString(os, arch, variant string) string {
	if os == "" && arch == "" {
		return ""
	}
	s := os + "/" + arch
	if variant != "" {
		s += "/" + variant
	}
	return s
}

// dockerViews builds one image per manifest.json entry of a Docker archive.
func (c *Contents) dockerViews() {
	for i, e := range c.DockerManifest {
		p := &PlatformInfo{Config: c.fileRef(e.Config)}
		p.Size = p.Config.Size
		for _, l := range e.Layers {
			r := c.fileRef(l)
			p.Layers = append(p.Layers, r)
			p.Size += r.Size
		}
		cfg := c.config(p.Config)
		p.Platform, p.DiffIDs = cfg.platform, cfg.diffIDs
		img := &ImageInfo{Names: slices.Clone(e.RepoTags), Platforms: []*PlatformInfo{p}, Docker: i, DockerPlatform: 0}
		c.Images = append(c.Images, img)
	}
}

// linkDockerManifest finds, for each manifest.json entry of an OCI+Docker
// archive, the index.json image its RepoTags name (or, without RepoTags,
// whose platform it matches) and the platform its Config and Layers are.
func (c *Contents) linkDockerManifest() {
	byName := map[string]*ImageInfo{}
	for _, img := range c.Images {
		for _, n := range img.Names {
			if k := normalName(n); k != "" {
				byName[k] = img
			}
		}
	}
	for i, e := range c.DockerManifest {
		var img *ImageInfo
		for _, t := range e.RepoTags {
			if cand := byName[normalName(t)]; cand != nil && img == nil {
				img = cand
			}
		}
		cfg := c.fileRef(e.Config).Digest
		layers := make([]digest.Digest, len(e.Layers))
		for j, l := range e.Layers {
			layers[j] = c.fileRef(l).Digest
		}
		match := func(im *ImageInfo) int {
			return slices.IndexFunc(im.Platforms, func(p *PlatformInfo) bool {
				if p.Config.Digest != cfg || len(p.Layers) != len(layers) {
					return false
				}
				for j, l := range p.Layers {
					if l.Digest != layers[j] {
						return false
					}
				}
				return true
			})
		}
		if img == nil && len(e.RepoTags) == 0 {
			for _, cand := range c.Images {
				if cand.Docker < 0 && match(cand) >= 0 {
					img = cand
					break
				}
			}
		}
		if img == nil || img.Docker >= 0 {
			continue // Check reports it
		}
		img.Docker, img.DockerPlatform = i, match(img)
	}
}

// normalName is a name's fully qualified form ("busybox:latest" ->
// "docker.io/library/busybox:latest"), "" when it is not a reference.
func normalName(s string) string {
	n, err := parseName(s)
	if err != nil {
		return ""
	}
	return n.full
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)
