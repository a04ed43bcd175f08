package push

// The source side: archives read through archive.Read's model, and the
// images of each as what push needs: blobs (where they lie in a file),
// manifest documents in push order, and the names.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/image"
)

// blobSource is where one blob's bytes lie: [off, off+size) of file.
type blobSource struct {
	file *os.File
	off  int64
	size int64
}

// doc is one manifest or index, as stored (pushed byte for byte).
type doc struct {
	desc image.Descriptor
	raw  []byte
}

// sourceImage is one image of an archive, ready to push.
type sourceImage struct {
	src     *source
	archive string
	label   string
	names   []image.Reference
	// blobs are the configs and layers, each once.
	blobs []image.Descriptor
	// fromBase are the layers a delta archive leaves out (delta.json's
	// from-base): not in the archive, expected at the target, where BASE
	// was pushed (see resolveFromBase).
	fromBase []image.Descriptor
	// docs are the manifests and indexes to push, children before parents;
	// the last one is the top (what the names point at).
	docs []doc
	// absent are the children the top index lists that are not in the
	// archive (a partial index), attestations included.
	absent []image.Manifest
	// filtered is the index listing only the children the archive holds
	// (for an image with absent children), else nil.
	filtered *doc
	// made says the top was made by push (a Docker archive has no
	// manifest): the source digest is unknown.
	made bool
}

func (s *sourceImage) top() doc { return s.docs[len(s.docs)-1] }

// source is one archive opened for pushing.
type source struct {
	path string
	file *os.File // the tar blobs are read from: seekable's File
	// seekable is the archive, or its decompressed copy (removed by close).
	seekable *archive.Seekable
	format   archive.Format
	blobs    map[digest.Digest]blobSource
	images   []*sourceImage
	// delta is set for a delta archive (a delta.json beside it lists it):
	// the blobs it leaves out are expected at the target, not missing.
	delta   *delta.Of
	leftOut map[digest.Digest]delta.Blob
}

func (s *source) close() error {
	if s.seekable == nil {
		return nil
	}
	return s.seekable.Close()
}

// openSource reads an archive once through archive.Read. An uncompressed
// .tar is read in place: blobs are pushed from their offsets in the file.
// A .tar.gz or .tar.zst is decompressed once into a private temporary file
// in tmpDir, in the same pass that archive.Read makes over the tar (so the
// offsets the model gives are offsets in that file), and the blobs are then
// pushed from it; the file is removed when the push ends (or by the next
// run, if this one is killed).
//
// A delta archive (delta.ForArchive: a delta.json beside it lists it) is
// read the same way; the layers it leaves out are recorded as expected at
// the target instead of refused as missing.
func openSource(ctx context.Context, p, tmpDir string, unhashed bool) (_ *source, problems []error, err error) {
	of, err := delta.ForArchive(ctx, p)
	if err != nil {
		return nil, nil, fmt.Errorf("the delta.json beside it: %w", err)
	}
	sk, err := archive.OpenSeekable(ctx, p, archive.SeekableOptions{Dir: tmpDir, Read: archive.ReadOptions{Unhashed: unhashed}})
	if err != nil {
		return nil, nil, err
	}
	src := &source{path: p, seekable: sk, file: sk.File, blobs: map[digest.Digest]blobSource{}, delta: of}
	if of != nil {
		src.leftOut = of.Archive.LeftOut()
	}
	defer func() {
		if err != nil {
			src.close()
		}
	}()
	c := sk.Contents
	src.format = c.Format
	for d, b := range c.Blobs {
		if b.ComputedDigest != d && !unhashed {
			// Never pushed: a registry would refuse it, or worse, keep it.
			problems = append(problems, fmt.Errorf("%s hashes to %s, not its name (run airgap-bundle verify %s)", b.Path, b.ComputedDigest, p))
		}
	}
	for i := range c.Images {
		img, err := src.image(c, c.Images[i])
		if err != nil {
			problems = append(problems, fmt.Errorf("image %s: %w", c.Images[i].Label(), err))
			continue
		}
		src.images = append(src.images, img)
	}
	return src, problems, nil
}

// location records and returns where d's content lies.
func (src *source) location(c *archive.Contents, d image.Descriptor) (blobSource, error) {
	if b, ok := src.blobs[d.Digest]; ok {
		return b, nil
	}
	fi, ok := c.File(d)
	if !ok {
		return blobSource{}, fmt.Errorf("blob %s is not in the archive", d.Digest)
	}
	if fi.Size != d.Size && d.Size != 0 {
		return blobSource{}, fmt.Errorf("blob %s is %d bytes in the archive, %d in its descriptor", d.Digest, fi.Size, d.Size)
	}
	if fi.SHA256 != "" && d.Digest.Algorithm() == digest.SHA256 && fi.SHA256 != d.Digest {
		return blobSource{}, fmt.Errorf("blob %s hashes to %s (run airgap-bundle verify)", d.Digest, fi.SHA256)
	}
	b := blobSource{file: src.file, off: fi.Offset, size: fi.Size}
	src.blobs[d.Digest] = b
	return b, nil
}

func (src *source) readDoc(c *archive.Contents, d image.Descriptor) (doc, error) {
	loc, err := src.location(c, d)
	if err != nil {
		return doc{}, err
	}
	raw := make([]byte, loc.size)
	if _, err := loc.file.ReadAt(raw, loc.off); err != nil {
		return doc{}, err
	}
	if got := digest.FromBytes(raw); got != d.Digest {
		return doc{}, fmt.Errorf("%s hashes to %s", d.Digest, got)
	}
	if d.MediaType == "" {
		var m struct {
			MediaType string `json:"mediaType"`
		}
		json.Unmarshal(raw, &m)
		d.MediaType = image.MediaType(m.MediaType)
	}
	return doc{desc: d, raw: raw}, nil
}

// image turns one image of the model into what is pushed.
func (src *source) image(c *archive.Contents, img archive.Image) (*sourceImage, error) {
	out := &sourceImage{src: src, archive: src.path, label: img.Label()}
	if a := img.Artifact; a != nil && len(img.Names) == 0 {
		// A carried signature, SBOM or attestation goes into its image's
		// repository, under cosign's tag (sha256-<hex>.sig, .att, .sbom)
		// so that cosign finds it there, or by digest alone (a referrer);
		// a chart to charts/NAME:VERSION under the target.
		ref, err := artifactRef(a, img.Top.Digest)
		if err != nil {
			return nil, err
		}
		out.names = append(out.names, ref)
	}
	for _, n := range img.Names {
		// A plain OCI layout may name an image by tag alone
		// (org.opencontainers.image.ref.name "v1"): no repository.
		if c.Format == archive.FormatOCI && !strings.ContainsAny(n, "/") {
			return nil, fmt.Errorf("name %q is a tag without a repository: nothing to push it as", n)
		}
		ref, err := image.ParseReference(n, "")
		if err != nil {
			return nil, err
		}
		out.names = append(out.names, ref)
	}
	if len(out.names) == 0 {
		return nil, errors.New("no name: nothing to push it as")
	}
	seen := map[digest.Digest]bool{}
	for _, m := range img.Manifests {
		for _, d := range append([]image.Descriptor{m.Config}, m.Layers...) {
			if seen[d.Digest] {
				continue
			}
			seen[d.Digest] = true
			if _, err := src.location(c, d); err != nil {
				if b, ok := src.leftOut[d.Digest]; ok && !c.Has(d) {
					if b.Size != d.Size {
						return nil, fmt.Errorf("blob %s is %d bytes in its descriptor, %d in %s's from-base list", d.Digest, d.Size, b.Size, delta.FileName)
					}
					out.fromBase = append(out.fromBase, d)
					continue
				}
				if !c.Has(d) && src.delta == nil && delta.NamedLikeDelta(src.path) {
					err = fmt.Errorf("%w (the archive is named like a delta archive, but no %s beside it lists it: push a delta from its directory, where %s says which blobs it leaves out)", err, delta.FileName, delta.FileName)
				}
				return nil, err
			}
			out.blobs = append(out.blobs, d)
		}
	}
	if img.Top.Digest == "" {
		// A Docker archive: no manifest blob. Make one from the config and
		// layers; its digest is new.
		if len(img.Manifests) != 1 {
			return nil, errors.New("no manifest and no single config to make one from")
		}
		d, err := src.makeManifest(c, img.Manifests[0])
		if err != nil {
			return nil, err
		}
		out.docs, out.made = []doc{d}, true
		return out, nil
	}
	for _, m := range img.Manifests {
		if m.Digest == img.Top.Digest {
			continue
		}
		d, err := src.readDoc(c, m.Descriptor)
		if err != nil {
			return nil, err
		}
		out.docs = append(out.docs, d)
	}
	// Inner indexes were found parents first: push them children first.
	for i := len(img.Inner) - 1; i >= 0; i-- {
		d, err := src.readDoc(c, img.Inner[i])
		if err != nil {
			return nil, err
		}
		out.docs = append(out.docs, d)
	}
	top, err := src.readDoc(c, img.Top)
	if err != nil {
		return nil, err
	}
	out.docs = append(out.docs, top)
	out.absent = img.Absent
	if len(img.Absent) > 0 && top.desc.MediaType.IsIndex() {
		var keep []digest.Digest
		for _, d := range out.docs[:len(out.docs)-1] {
			keep = append(keep, d.desc.Digest)
		}
		raw, err := image.FilterIndex(top.raw, top.desc.MediaType, keep)
		if err != nil {
			return nil, fmt.Errorf("filtering the index: %w", err)
		}
		out.filtered = &doc{desc: image.Descriptor{MediaType: top.desc.MediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}, raw: raw}
	}
	return out, nil
}

// Media types of a made manifest.
const (
	dockerConfig = "application/vnd.docker.container.image.v1+json"
	dockerLayer  = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	ociConfig    = "application/vnd.oci.image.config.v1+json"
	ociLayer     = "application/vnd.oci.image.layer.v1.tar"
)

// makeManifest writes the manifest a Docker archive lacks: a Docker schema2
// manifest when every layer is gzip-compressed (crane, skopeo
// docker-archive of a registry image), else an OCI manifest with each
// layer's media type told by its first bytes (classic docker save stores
// layers uncompressed). The registry's original manifest is not in the
// archive, so its digest cannot be kept.
func (src *source) makeManifest(c *archive.Contents, m image.Manifest) (doc, error) {
	type desc struct {
		MediaType string        `json:"mediaType"`
		Size      int64         `json:"size"`
		Digest    digest.Digest `json:"digest"`
	}
	comps := make([]archive.Compression, len(m.Layers))
	allGzip := true
	for i, l := range m.Layers {
		fi, ok := c.File(l)
		if !ok {
			return doc{}, fmt.Errorf("layer %s is not in the archive", l.Digest)
		}
		comps[i] = fi.Compression
		allGzip = allGzip && fi.Compression == archive.Gzip
	}
	cfg, ok := c.File(m.Config)
	if !ok {
		return doc{}, fmt.Errorf("config %s is not in the archive", m.Config.Digest)
	}
	v := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{SchemaVersion: 2, Layers: []desc{}}
	if allGzip && len(m.Layers) > 0 {
		v.MediaType = string(image.DockerManifest)
		v.Config = desc{dockerConfig, cfg.Size, m.Config.Digest}
		for _, l := range m.Layers {
			v.Layers = append(v.Layers, desc{dockerLayer, l.Size, l.Digest})
		}
	} else {
		v.MediaType = string(image.OCIManifest)
		v.Config = desc{ociConfig, cfg.Size, m.Config.Digest}
		for i, l := range m.Layers {
			mt := ociLayer
			switch comps[i] {
			case archive.Gzip:
				mt += "+gzip"
			case archive.Zstd:
				mt += "+zstd"
			}
			v.Layers = append(v.Layers, desc{mt, l.Size, l.Digest})
		}
	}
	raw, err := json.MarshalIndent(v, "", "   ")
	if err != nil {
		return doc{}, err
	}
	return doc{desc: image.Descriptor{MediaType: image.MediaType(v.MediaType), Digest: digest.FromBytes(raw), Size: int64(len(raw))}, raw: raw}, nil
}

// artifactRef is where a carried artifact is pushed: its image's
// repository, tagged as cosign tags it, else by digest.
func artifactRef(a *archive.Artifact, top digest.Digest) (image.Reference, error) {
	if a.Kind == archive.KindChart {
		n, err := a.ChartName()
		if err != nil {
			return image.Reference{}, err
		}
		return image.ParseReference(n, "")
	}
	of, err := image.ParseReference(a.Image, "")
	if err != nil {
		return image.Reference{}, fmt.Errorf("artifact of %q: %w", a.Image, err)
	}
	if a.Tag != "" {
		return image.ParseReference(of.Name()+":"+a.Tag, "")
	}
	return image.ParseReference(of.Name()+"@"+top.String(), "")
}
