package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
)

// Annotation keys of index.json entries. containerd's importer names an image
// after AnnotationImageName; OCI tools look images up by AnnotationRefName.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = ocispec.AnnotationRefName
)

// Blobs opens blobs by descriptor. The caller has verified the content;
// Write still checks that each blob has exactly the descriptor's size and
// digest while it copies.
type Blobs interface {
	Open(ctx context.Context, d image.Descriptor) (io.ReadCloser, error)
}

// Options set how Write writes an archive.
type Options struct {
	// Compression of the whole archive; see CompressionFor.
	Compression Compression
	// ModTime is the modification time of every tar entry, in whole seconds
	// (callers pass SOURCE_DATE_EPOCH, or the Unix epoch). The zero
	// time.Time means the Unix epoch.
	ModTime time.Time
	// BlobsVerified says the Blobs check content themselves: each reader
	// fails, at the latest at EOF, when the bytes do not match the digest
	// (as the cache's readers do), or serves content verified a moment ago.
	// Write then checks sizes only, and hashes nothing twice.
	BlobsVerified bool
	// Omit leaves out the blobs it says yes to, nothing else changing:
	// index.json and manifest.json still name them. A delta archive is an
	// archive with the blobs its site already holds omitted (nil: none).
	Omit func(d digest.Digest) bool
}

const (
	blobsDir = "blobs/"
	shaDir   = "blobs/sha256/"
)

// Write writes one archive of images to w, reading blob content from blobs.
//
// Images with the same Top digest are one image under several names: Write
// merges them (in the order first seen), so their blobs are stored once,
// index.json has one entry per name and manifest.json one entry with every
// tag among its RepoTags. Merged Image values must agree on Top and
// Manifests. The same name on two different images is an error.
//
// index.json lists names in the order given; manifest.json lists images in
// the order first seen. Blobs are opened one at a time, in digest order, and
// streamed; none is held in memory. On error, what was written to w is not a
// usable archive: write to a temporary file and rename it on success.
func Write(ctx context.Context, w io.Writer, images []Image, blobs Blobs, opts Options) error {
	mtime, err := entryTime(opts.ModTime)
	if err != nil {
		return err
	}
	p, err := plan(images)
	if err != nil {
		return err
	}

	// Compressors write in small pieces: buffered. A plain tar is written
	// in the blob copy's 256 KiB pieces already, and a buffer would only
	// copy each of them once more.
	var buf flusher = nopFlusher{w}
	if opts.Compression != None {
		buf = bufio.NewWriterSize(w, 256<<10)
	}
	cw, err := newCompressor(buf, opts.Compression)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			cw.Close() // release the compressor's goroutines and buffers
		}
	}()
	tw := tar.NewWriter(cw)
	copyBuf := make([]byte, 256<<10)
	for _, e := range p.entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.blob != nil && opts.Omit != nil && opts.Omit(e.blob.Digest) {
			continue
		}
		hdr := &tar.Header{
			Name:     e.name,
			Mode:     0o644,
			Typeflag: tar.TypeReg,
			Size:     e.size,
			ModTime:  mtime,
		}
		if e.dir {
			hdr.Mode, hdr.Typeflag, hdr.Size = 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("archive: writing %s: %w", e.name, err)
		}
		switch {
		case e.blob != nil:
			if err := copyBlob(ctx, tw, blobs, *e.blob, copyBuf, opts.BlobsVerified); err != nil {
				return err
			}
		case !e.dir:
			if _, err := tw.Write(e.data); err != nil {
				return fmt.Errorf("archive: writing %s: %w", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive: closing tar: %w", err)
	}
	closed = true
	if err := cw.Close(); err != nil {
		return fmt.Errorf("archive: closing %s stream: %w", opts.Compression, err)
	}
	if err := buf.Flush(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

type flusher interface {
	io.Writer
	Flush() error
}

type nopFlusher struct{ io.Writer }

func (nopFlusher) Flush() error { return nil }

// entryTime checks and normalises Options.ModTime.
func entryTime(t time.Time) (time.Time, error) {
	if t.IsZero() {
		return time.Unix(0, 0).UTC(), nil
	}
	if t.Before(time.Unix(0, 0)) {
		return time.Time{}, fmt.Errorf("archive: modification time %s is before the Unix epoch", t)
	}
	// Whole seconds keep every header in the plain ustar format (sub-second
	// times need PAX records).
	return time.Unix(t.Unix(), 0).UTC(), nil
}

// copyBlob streams one blob into tw, checking its size and digest.
func copyBlob(ctx context.Context, tw io.Writer, blobs Blobs, d image.Descriptor, buf []byte, verified bool) error {
	rc, err := blobs.Open(ctx, d)
	if err != nil {
		return fmt.Errorf("archive: opening blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	r := iox.ContextReader(ctx, rc)
	var v digest.Verifier
	w := tw
	if !verified {
		v = d.Digest.Verifier()
		w = io.MultiWriter(tw, v)
	}
	n, err := io.CopyBuffer(w, io.LimitReader(r, d.Size), buf)
	if err != nil {
		return fmt.Errorf("archive: copying blob %s: %w", d.Digest, err)
	}
	if n < d.Size {
		return fmt.Errorf("archive: blob %s is shorter than its descriptor: %d of %d bytes", d.Digest, n, d.Size)
	}
	var one [1]byte
	m, err := io.ReadFull(r, one[:])
	if m > 0 {
		return fmt.Errorf("archive: blob %s is longer than its descriptor's %d bytes", d.Digest, d.Size)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("archive: reading blob %s: %w", d.Digest, err)
	}
	if v != nil && !v.Verified() {
		return fmt.Errorf("archive: blob %s does not match its digest", d.Digest)
	}
	return nil
}

// entry is one tar entry: a directory, a metadata file held in data, or a
// blob streamed from Blobs.
type entry struct {
	name string
	dir  bool
	size int64
	data []byte
	blob *image.Descriptor
}

type archivePlan struct {
	entries []entry
}

// merged is one distinct image (one Top digest) with all its names.
type merged struct {
	top       image.Descriptor
	manifests []image.Manifest
	names     []imageName
	artifact  *Artifact
}

// plan checks images, merges those with the same Top and lays out every tar
// entry in write order.
func plan(images []Image) (*archivePlan, error) {
	if len(images) == 0 {
		return nil, errors.New("archive: no images")
	}
	var (
		order    []*merged
		byTop    = map[digest.Digest]*merged{}
		nameTop  = map[string]digest.Digest{}
		blobDesc = map[digest.Digest]image.Descriptor{}
	)
	addBlob := func(d image.Descriptor, what string) error {
		if err := checkDescriptor(d); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if old, ok := blobDesc[d.Digest]; ok {
			if old.Size != d.Size {
				return fmt.Errorf("%s: blob %s has size %d here and %d elsewhere", what, d.Digest, d.Size, old.Size)
			}
			return nil
		}
		blobDesc[d.Digest] = d
		return nil
	}

	for i, img := range images {
		what := fmt.Sprintf("archive: image %d (%s)", i, strings.Join(img.Names, ", "))
		if err := checkImage(img); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		m, seen := byTop[img.Top.Digest]
		if seen {
			if m.top != img.Top || !sameManifests(m.manifests, img.Manifests) || (m.artifact == nil) != (img.Artifact == nil) {
				return nil, fmt.Errorf("%s: same top digest %s as an earlier image but other descriptors or platforms", what, img.Top.Digest)
			}
		} else {
			m = &merged{top: img.Top, manifests: img.Manifests, artifact: img.Artifact}
			byTop[img.Top.Digest] = m
			order = append(order, m)
			if err := addBlob(img.Top, what); err != nil {
				return nil, err
			}
			for _, man := range img.Manifests {
				if err := addBlob(man.Descriptor, what); err != nil {
					return nil, err
				}
				if err := addBlob(man.Config, what+": config"); err != nil {
					return nil, err
				}
				for _, l := range man.Layers {
					if err := addBlob(l, what+": layer"); err != nil {
						return nil, err
					}
				}
			}
		}
		for _, s := range img.Names {
			n, err := parseName(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			if top, ok := nameTop[n.full]; ok {
				if top != img.Top.Digest {
					return nil, fmt.Errorf("%s: name %s also names image %s", what, n.full, top)
				}
				continue // the same name twice: keep one
			}
			nameTop[n.full] = img.Top.Digest
			m.names = append(m.names, n)
		}
	}

	indexJSON, err := indexFile(order)
	if err != nil {
		return nil, err
	}
	manifestJSON, err := manifestFile(order)
	if err != nil {
		return nil, err
	}
	reposJSON, err := repositoriesFile(order)
	if err != nil {
		return nil, err
	}

	var p archivePlan
	p.entries = append(p.entries, entry{name: blobsDir, dir: true}, entry{name: shaDir, dir: true})
	digests := make([]digest.Digest, 0, len(blobDesc))
	for d := range blobDesc {
		digests = append(digests, d)
	}
	slices.Sort(digests)
	for _, d := range digests {
		desc := blobDesc[d]
		p.entries = append(p.entries, entry{name: blobPath(d), size: desc.Size, blob: &desc})
	}
	file := func(name string, data []byte) {
		p.entries = append(p.entries, entry{name: name, size: int64(len(data)), data: data})
	}
	file(ocispec.ImageIndexFile, indexJSON)
	file("manifest.json", manifestJSON)
	file(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"`+ocispec.ImageLayoutVersion+`"}`))
	if reposJSON != nil {
		file("repositories", reposJSON)
	}
	return &p, nil
}

// checkImage checks one Image's shape.
func checkImage(img Image) error {
	if img.Artifact != nil {
		if err := checkArtifact(img); err != nil {
			return err
		}
	} else if len(img.Names) == 0 {
		return errors.New("no names")
	}
	if len(img.Manifests) == 0 {
		return errors.New("no platform manifests")
	}
	for _, m := range img.Manifests {
		if !m.MediaType.IsManifest() {
			return fmt.Errorf("manifest %s: media type %q is not an image manifest", m.Digest, m.MediaType)
		}
	}
	switch {
	case img.Top.MediaType.IsManifest():
		if len(img.Manifests) != 1 || img.Manifests[0].Descriptor != img.Top {
			return fmt.Errorf("top %s is a manifest: Manifests must be exactly that manifest", img.Top.Digest)
		}
	case img.Top.MediaType.IsIndex():
		seen := map[digest.Digest]bool{}
		for _, m := range img.Manifests {
			if m.Digest == img.Top.Digest {
				return fmt.Errorf("top %s is an index and cannot also be a platform manifest", img.Top.Digest)
			}
			if seen[m.Digest] {
				return fmt.Errorf("manifest %s listed twice", m.Digest)
			}
			seen[m.Digest] = true
		}
	default:
		return fmt.Errorf("top %s: media type %q is not an image manifest or index", img.Top.Digest, img.Top.MediaType)
	}
	return nil
}

func checkDescriptor(d image.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d.Digest, err)
	}
	if d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %s: only sha256 blobs are supported", d.Digest)
	}
	if d.Size < 0 {
		return fmt.Errorf("blob %s: negative size %d", d.Digest, d.Size)
	}
	return nil
}

func sameManifests(a, b []image.Manifest) bool {
	return slices.EqualFunc(a, b, func(x, y image.Manifest) bool {
		return x.Descriptor == y.Descriptor && x.Config == y.Config && slices.Equal(x.Layers, y.Layers)
	})
}

func blobPath(d digest.Digest) string {
	return shaDir + d.Encoded()
}

// indexFile is index.json: one entry per name, pointing at the image's top
// descriptor, as containerd's exporter writes it (core/images/archive,
// addNameAnnotation): io.containerd.image.name is the full name and
// org.opencontainers.image.ref.name the tag. A digest-only name has no tag,
// so no ref.name.
func indexFile(images []*merged) ([]byte, error) {
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{},
	}
	for _, m := range images {
		if m.artifact != nil {
			idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
				MediaType:   string(m.top.MediaType),
				Digest:      m.top.Digest,
				Size:        m.top.Size,
				Annotations: m.artifact.annotations(),
			})
			continue
		}
		for _, n := range m.names {
			ann := map[string]string{AnnotationImageName: n.full}
			if n.tag != "" {
				ann[AnnotationRefName] = n.tag
			}
			idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
				MediaType:   string(m.top.MediaType),
				Digest:      m.top.Digest,
				Size:        m.top.Size,
				Annotations: ann,
			})
		}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("archive: index.json: %w", err)
	}
	return b, nil
}

// manifestItem is one manifest.json entry. Like containerd's exporter (which
// Docker 25+ uses with the containerd store), it has no Parent and no
// LayerSources: moby writes LayerSources only for foreign (non-distributable)
// layers it did not export, and here every layer's blob is in the archive.
type manifestItem struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// manifestFile is manifest.json: one entry per image, describing its first
// platform manifest, with RepoTags in docker's familiar form
// ("rancher/mirrored-pause:3.6", "busybox:latest", "registry.k8s.io/pause:3.9").
// An image with only digest names has "RepoTags": null, as both moby and
// containerd write it.
func manifestFile(images []*merged) ([]byte, error) {
	items := make([]manifestItem, 0, len(images))
	for _, m := range images {
		if m.artifact != nil {
			continue // not an image to load
		}
		first := m.manifests[0]
		item := manifestItem{Config: blobPath(first.Config.Digest), Layers: []string{}}
		for _, l := range first.Layers {
			item.Layers = append(item.Layers, blobPath(l.Digest))
		}
		for _, n := range m.names {
			if n.repoTag != "" {
				item.RepoTags = append(item.RepoTags, n.repoTag)
			}
		}
		items = append(items, item)
	}
	return encodeJSON(items, "manifest.json")
}

// repositoriesFile is the legacy "repositories" file as moby's tar export
// writes it (daemon/internal/image/tarexport/save.go): familiar repository
// name → tag → hex of the image's top layer, only for tagged names, and no
// file at all when there are none. moby's value is the hex of the last layer
// in the entry's Layers (its layers are stored by DiffID); here it is the hex
// of the last layer blob of manifest.json's entry. Loaders read this file only
// for pre-1.10 archives without manifest.json.
func repositoriesFile(images []*merged) ([]byte, error) {
	repos := map[string]map[string]string{}
	for _, m := range images {
		layers := m.manifests[0].Layers
		if len(layers) == 0 {
			continue
		}
		top := layers[len(layers)-1].Digest.Encoded()
		for _, n := range m.names {
			if n.repoTag == "" {
				continue
			}
			if repos[n.repo] == nil {
				repos[n.repo] = map[string]string{}
			}
			repos[n.repo][n.tag] = top
		}
	}
	if len(repos) == 0 {
		return nil, nil
	}
	return encodeJSON(repos, "repositories")
}

// encodeJSON encodes like moby's json.NewEncoder(f).Encode: compact, with a
// trailing newline (and without escaping <, > and &, which names cannot hold
// anyway). Map keys come out sorted, so the bytes are deterministic.
func encodeJSON(v any, what string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("archive: %s: %w", what, err)
	}
	return b.Bytes(), nil
}
