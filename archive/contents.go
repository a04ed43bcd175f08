package archive

// Contents is what Read found in an archive, as plain data: the files and
// their hashes, the JSON documents kept, the metadata files decoded and the
// images built from them. Check and Strays are functions of these fields
// alone, so they give the same answer however often and in whatever order
// they are called.

import (
	"encoding/json"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airgap-bundle/airgap-bundle/image"
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
	// Offset is where the content starts in the (uncompressed) tar
	// stream: in an uncompressed archive, the file's bytes are
	// [Offset, Offset+Size) of the archive file, readable in place.
	Offset int64
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

// Contents is what Read found in an archive.
type Contents struct {
	Format      Format
	Compression Compression
	// Size and SHA256 are of the archive file itself, as read (compressed).
	Size   int64
	SHA256 string // hex, as in SHA256SUMS
	// ModTime is the first entry's modification time, in UTC: the one
	// time Write gives every entry (Options.ModTime).
	ModTime time.Time
	// Files are all regular files (and resolved symlinks), by cleaned path.
	Files map[string]*FileInfo
	// Blobs are the files under blobs/, by the digest their names say.
	Blobs map[digest.Digest]*BlobInfo
	// BadBlobNames are files under blobs/ whose names are not digests.
	BadBlobNames []string
	// Documents are the small JSON files kept in memory (metadata files,
	// manifests, indexes, configs), by path.
	Documents map[string][]byte
	// MaxDocumentSize is the ReadOptions.MaxDocumentSize the archive was
	// read with: larger files were hashed, not kept.
	MaxDocumentSize int64
	// Layout is oci-layout, nil when absent.
	Layout *ocispec.ImageLayout
	// Index is index.json, nil when absent.
	Index *ocispec.Index
	// DockerManifest is manifest.json, nil when absent.
	DockerManifest []DockerEntry
	// Repositories is the legacy repositories file, nil when absent.
	Repositories map[string]map[string]string
	// Images are the images found, in index.json order (or manifest.json
	// order for a Docker archive): one per index.json target, with all
	// the names pointing at it.
	Images []Image
}

// Document returns a kept JSON document by path.
func (c *Contents) Document(p string) ([]byte, bool) {
	b, ok := c.Documents[p]
	return b, ok
}

// BlobDocument returns the kept content of a blob, by digest.
func (c *Contents) BlobDocument(d digest.Digest) ([]byte, bool) {
	if b := c.Blobs[d]; b != nil {
		return c.Document(b.Path)
	}
	return nil, false
}

// Has reports whether the content d describes is in the archive: the blob
// of that digest, or in a Docker archive, a file with that sha256.
func (c *Contents) Has(d image.Descriptor) bool {
	_, ok := c.File(d)
	return ok
}

// File is the file holding d's content (for a blob, the file its name
// says is d; a symlink and its target are the same content).
func (c *Contents) File(d image.Descriptor) (*FileInfo, bool) {
	if d.Digest == "" {
		return nil, false
	}
	if b := c.Blobs[d.Digest]; b != nil {
		return c.Files[b.Path], true
	}
	if c.Format != FormatDocker {
		return nil, false
	}
	var found *FileInfo
	for _, f := range c.Files {
		if f.SHA256 == d.Digest && (found == nil || preferFile(f, found)) {
			found = f
		}
	}
	return found, found != nil
}

// preferFile picks, among files of the same content, the regular file over
// a symlink to it, then the first path: the same one every time.
func preferFile(f, than *FileInfo) bool {
	if (f.LinkTo == "") != (than.LinkTo == "") {
		return f.LinkTo == ""
	}
	return f.Path < than.Path
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

// ImageBytes is the size of every distinct blob img uses that is in the
// archive (top, manifests, configs, layers).
func (c *Contents) ImageBytes(img Image) int64 {
	return c.distinctBytes(map[digest.Digest]bool{}, img)
}

func (c *Contents) distinctBytes(seen map[digest.Digest]bool, img Image) int64 {
	var n int64
	img.eachDescriptor(func(d image.Descriptor) {
		if seen[d.Digest] {
			return
		}
		if f, ok := c.File(d); ok {
			seen[d.Digest] = true
			n += f.Size
		}
	})
	return n
}

// UniqueBytes is the size of every distinct blob the images use, each
// counted once; ImagesBytes is the sum of the images' ImageBytes. Their
// difference is what sharing blobs between images saved.
func (c *Contents) UniqueBytes() int64 {
	seen := map[digest.Digest]bool{}
	var n int64
	for _, img := range c.Images {
		n += c.distinctBytes(seen, img)
	}
	return n
}

// ImagesBytes is the sum of every image's ImageBytes.
func (c *Contents) ImagesBytes() int64 {
	var n int64
	for _, img := range c.Images {
		n += c.ImageBytes(img)
	}
	return n
}

// isMetadata tells the metadata files, which have their own size limit.
func isMetadata(p string) bool {
	return p == FileIndex || p == FileManifest || p == FileLayout || p == FileRepositories
}

// WriteImages are the images as Write takes them to write this archive
// again, byte for byte (with Options{Compression, ModTime} as read): the
// platform manifest.json describes first, as Write puts Manifests[0] there.
func (c *Contents) WriteImages() []Image {
	out := make([]Image, len(c.Images))
	for i, img := range c.Images {
		if l := img.Docker; l != nil && l.Manifest != nil && *l.Manifest > 0 && *l.Manifest < len(img.Manifests) {
			j := *l.Manifest
			ms := make([]image.Manifest, 0, len(img.Manifests))
			ms = append(ms, img.Manifests[j])
			ms = append(ms, img.Manifests[:j]...)
			img.Manifests = append(ms, img.Manifests[j+1:]...)
		}
		out[i] = img
	}
	return out
}
