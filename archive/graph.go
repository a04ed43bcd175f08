package archive

// From what the tar held to the model: which shape the archive has, its
// metadata files decoded, and its images. buildImages is a function of the
// Contents' fields alone, so Check can run it again for the problems it
// met instead of Read keeping them aside.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// tellFormat tells the shape of an archive by its metadata files.
func tellFormat(docs map[string][]byte) (Format, error) {
	_, hasIndex := docs[FileIndex]
	_, hasLayout := docs[FileLayout]
	_, hasManifest := docs[FileManifest]
	switch {
	case hasIndex || hasLayout:
		if hasManifest {
			return FormatOCIDocker, nil
		}
		return FormatOCI, nil
	case hasManifest:
		return FormatDocker, nil
	}
	return "", errors.New("archive: not an image archive: neither index.json nor manifest.json")
}

// decodeMetadata decodes oci-layout, index.json, manifest.json and
// repositories; any of them malformed makes the archive unreadable.
func decodeMetadata(c *Contents) error {
	if b, ok := c.Documents[FileLayout]; ok {
		var l ocispec.ImageLayout
		if err := strictJSON(b, &l); err != nil {
			return fmt.Errorf("archive: %s: %w", FileLayout, err)
		}
		c.Layout = &l
	}
	if b, ok := c.Documents[FileIndex]; ok {
		var idx ocispec.Index
		if err := strictJSON(b, &idx); err != nil {
			return fmt.Errorf("archive: %s: %w", FileIndex, err)
		}
		c.Index = &idx
	}
	if b, ok := c.Documents[FileManifest]; ok {
		var m []DockerEntry
		if err := strictJSON(b, &m); err != nil {
			return fmt.Errorf("archive: %s: %w", FileManifest, err)
		}
		if m == nil {
			m = []DockerEntry{}
		}
		c.DockerManifest = m
	}
	if b, ok := c.Documents[FileRepositories]; ok {
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

// graph builds the images of one archive.
type graph struct {
	c        *Contents
	images   []*Image
	problems []Problem
}

// buildImages builds the images from the decoded metadata, the blobs and
// the kept documents, and lists what stopped it from following a
// reference (a document too large or malformed, indexes nested too deep).
func buildImages(c *Contents) ([]Image, []Problem) {
	g := &graph{c: c}
	if c.Index != nil {
		g.indexImages()
		g.linkDockerManifest()
	} else {
		g.dockerImages()
	}
	out := make([]Image, len(g.images))
	for i, img := range g.images {
		out[i] = *img
	}
	return out, g.problems
}

// fileRef describes a file of a Docker archive named by path: a blob path
// takes its digest from the name, any other file from its content. A
// missing file outside blobs/ has no digest.
func (c *Contents) fileRef(p string) image.Descriptor {
	p = path.Clean(p)
	var d image.Descriptor
	if bd, ok := blobDigest(p); ok {
		d.Digest = bd
	}
	if f := c.Files[p]; f != nil {
		d.Size = f.Size
		if d.Digest == "" {
			d.Digest = f.SHA256
		}
	}
	return d
}

// entryName is the name an index.json entry gives its target.
func entryName(d ocispec.Descriptor) string {
	if n := d.Annotations[AnnotationImageName]; n != "" {
		return n
	}
	return d.Annotations[AnnotationRefName]
}

func descriptorOf(d ocispec.Descriptor) image.Descriptor {
	return image.Descriptor{MediaType: image.MediaType(d.MediaType), Digest: d.Digest, Size: d.Size}
}

func (g *graph) indexImages() {
	byTop := map[digest.Digest]*Image{}
	for i, d := range g.c.Index.Manifests {
		if img := byTop[d.Digest]; img != nil {
			if n := entryName(d); n != "" && !slices.Contains(img.Names, n) {
				img.Names = append(img.Names, n)
			}
			continue
		}
		img := &Image{Top: descriptorOf(d), Artifact: artifactOf(d)}
		if n := entryName(d); n != "" {
			img.Names = []string{n}
		}
		byTop[d.Digest] = img
		g.images = append(g.images, img)
		g.walk(img, d, nil, fmt.Sprintf("index.json entry %d", i), 0)
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
func (g *graph) walk(img *Image, d ocispec.Descriptor, parent *ocispec.Descriptor, what string, depth int) {
	c := g.c
	doc, haveDoc := c.BlobDocument(d.Digest)
	if c.Blobs[d.Digest] == nil {
		if depth == 0 {
			return // Check reports the missing top
		}
		img.Absent = append(img.Absent, image.Manifest{Descriptor: descriptorOf(d), Platform: descriptorPlatform(d), Attestation: image.IsAttestation(d)})
		return
	}
	if depth > 0 && image.MediaType(d.MediaType).IsIndex() {
		img.Inner = append(img.Inner, descriptorOf(d))
	}
	if !haveDoc {
		g.problems = append(g.problems, Problem{Kind: KindDocumentUnreadable, Digest: d.Digest,
			Detail: fmt.Sprintf("%s %s is over %d bytes or not JSON: not read", what, d.Digest, c.MaxDocumentSize)})
		return
	}
	mt := image.MediaType(d.MediaType)
	if mt == "" {
		mt = docMediaType(doc)
	}
	switch {
	case mt.IsIndex():
		if depth >= 4 {
			g.problems = append(g.problems, Problem{Kind: KindIndexTooDeep, Digest: d.Digest, Detail: what})
			return
		}
		var idx ocispec.Index
		if err := json.Unmarshal(doc, &idx); err != nil {
			g.problems = append(g.problems, Problem{Kind: KindDocumentInvalid, Digest: d.Digest, Detail: err.Error()})
			return
		}
		for i := range idx.Manifests {
			child := idx.Manifests[i]
			g.walk(img, child, &child, fmt.Sprintf("child %d of index %s", i, d.Digest), depth+1)
		}
	case mt.IsManifest():
		img.Manifests = append(img.Manifests, g.manifest(d, mt, doc, parent))
	default:
		g.problems = append(g.problems, Problem{Kind: KindNotAnImage, Digest: d.Digest,
			Detail: fmt.Sprintf("%s %s: media type %q is not an image manifest or index", what, d.Digest, mt)})
	}
}

func descriptorPlatform(d ocispec.Descriptor) string {
	if d.Platform == nil {
		return ""
	}
	return platformString(d.Platform.OS, d.Platform.Architecture, d.Platform.Variant)
}

// manifest builds the model of one manifest blob.
func (g *graph) manifest(d ocispec.Descriptor, mt image.MediaType, doc []byte, parent *ocispec.Descriptor) image.Manifest {
	m := image.Manifest{Descriptor: descriptorOf(d)}
	if m.MediaType == "" {
		m.MediaType = mt
	}
	var om ocispec.Manifest
	if err := json.Unmarshal(doc, &om); err != nil {
		return m // Check reports it
	}
	m.Config = descriptorOf(om.Config)
	for _, l := range om.Layers {
		m.Layers = append(m.Layers, descriptorOf(l))
	}
	cfg := g.config(m.Config)
	m.DiffIDs = cfg.diffIDs
	if parent != nil && parent.Platform != nil {
		m.Platform = descriptorPlatform(*parent)
	} else {
		m.Platform = cfg.platform
	}
	m.Attestation = parent != nil && image.IsAttestation(*parent)
	return m
}

type configInfo struct {
	platform string
	diffIDs  []digest.Digest
}

// config reads what the model needs from a config document.
func (g *graph) config(d image.Descriptor) configInfo {
	f, ok := g.c.File(d)
	if !ok {
		return configInfo{}
	}
	doc, ok := g.c.Document(f.Path)
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

// dockerImages builds one image per manifest.json entry of a Docker
// archive: a Manifest with a zero Descriptor, since there is no manifest
// blob.
func (g *graph) dockerImages() {
	for i, e := range g.c.DockerManifest {
		m := image.Manifest{Config: g.c.fileRef(e.Config)}
		for _, l := range e.Layers {
			m.Layers = append(m.Layers, g.c.fileRef(l))
		}
		cfg := g.config(m.Config)
		m.Platform, m.DiffIDs = cfg.platform, cfg.diffIDs
		first := 0
		g.images = append(g.images, &Image{Names: slices.Clone(e.RepoTags), Manifests: []image.Manifest{m}, Docker: &DockerLink{Entry: i, Manifest: &first}})
	}
}

// linkDockerManifest finds, for each manifest.json entry of an OCI+Docker
// archive, the index.json image its RepoTags name (or, without RepoTags,
// whose platform it matches) and the platform its Config and Layers are.
func (g *graph) linkDockerManifest() {
	byName := map[string]*Image{}
	for _, img := range g.images {
		for _, n := range img.Names {
			if k := normalName(n); k != "" {
				byName[k] = img
			}
		}
	}
	for i, e := range g.c.DockerManifest {
		var img *Image
		for _, t := range e.RepoTags {
			if cand := byName[normalName(t)]; cand != nil && img == nil {
				img = cand
			}
		}
		cfg := g.c.fileRef(e.Config).Digest
		layers := make([]digest.Digest, len(e.Layers))
		for j, l := range e.Layers {
			layers[j] = g.c.fileRef(l).Digest
		}
		match := func(im *Image) int {
			return slices.IndexFunc(im.Manifests, func(m image.Manifest) bool {
				if m.Config.Digest != cfg || len(m.Layers) != len(layers) {
					return false
				}
				for j, l := range m.Layers {
					if l.Digest != layers[j] {
						return false
					}
				}
				return true
			})
		}
		if img == nil && len(e.RepoTags) == 0 {
			for _, cand := range g.images {
				if cand.Docker == nil && match(cand) >= 0 {
					img = cand
					break
				}
			}
		}
		if img == nil || img.Docker != nil {
			continue // Check reports it
		}
		img.Docker = &DockerLink{Entry: i}
		if j := match(img); j >= 0 {
			img.Docker.Manifest = &j
		}
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
