package archive

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/image"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Label is how messages name an image: its first name, else its top
// digest, else "manifest.json entry N".
func (img *ImageInfo) Label() string {
	switch {
	case len(img.Names) > 0:
		return img.Names[0]
	case img.Top != nil:
		return img.Top.Digest.String()
	}
	return fmt.Sprintf("manifest.json entry %d", img.Docker)
}

// platformLabel is "linux/amd64", or the manifest digest when the platform
// is unknown.
func (p *PlatformInfo) label() string {
	switch {
	case p.Platform != "":
		return p.Platform
	case p.Manifest != nil:
		return "manifest " + p.Manifest.Digest.String()
	}
	return "config " + p.Config.Digest.String()
}

// dockerLabel names a manifest.json entry by its RepoTags.
func dockerLabel(i int, e DockerEntry) string {
	if len(e.RepoTags) > 0 {
		return strings.Join(e.RepoTags, ", ")
	}
	return fmt.Sprintf("entry %d", i)
}

// Check lists the archive's internal inconsistencies, one line each, in a
// fixed order; none means the archive is consistent:
//
//   - every blob hashes to its name;
//   - every blob an image references is present with the referenced size
//     (index children may be absent: other platforms of an original index);
//   - every manifest and index parses as its media type says, and every
//     config lists one diff_id per layer (in a Docker archive, an
//     uncompressed layer hashes to its diff_id);
//   - index.json and manifest.json describe the same images: one
//     manifest.json entry per index.json image, whose Config and Layers are
//     one of the image's platforms and whose RepoTags are its tagged names.
//
// What is there but unused is left to Strays: other tools store more than
// the images need (Docker 25's docker save keeps legacy v1 layer configs
// among the blobs).
func (c *Contents) Check() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	out = append(out, c.problems...)

	oci := c.Format == FormatOCI || c.Format == FormatOCIDocker
	if oci {
		switch {
		case c.Layout == nil:
			add("oci-layout is missing")
		case c.Layout.Version != ocispec.ImageLayoutVersion:
			add("oci-layout: imageLayoutVersion %q, want %q", c.Layout.Version, ocispec.ImageLayoutVersion)
		}
		if c.Index == nil {
			add("index.json is missing")
		}
	}
	for _, p := range sortedCopy(c.BadBlobNames) {
		add("%s is under blobs/ but not named by a digest", p)
	}
	for _, d := range c.blobDigests() {
		if b := c.Blobs[d]; b.ComputedDigest != b.Digest {
			add("blob %s: content hashes to %s", d, b.ComputedDigest)
		}
	}

	// Every reference, in a fixed order; the first referrer of a missing
	// blob names it.
	type use struct {
		ref Ref
		by  string
	}
	var uses []use
	for _, img := range c.Images {
		label := img.Label()
		if img.Top != nil {
			uses = append(uses, use{*img.Top, "index.json: " + label})
			if img.Top.Present() {
				topProblem := func(s string) { add("%s %s (%s): %s", kindOf(img.Top.MediaType), img.Top.Digest, label, s) }
				c.checkTop(*img.Top, topProblem)
				if len(img.Platforms) == 0 && len(img.Absent) > 0 {
					add("image %s: none of the %d manifests of index %s is in the archive", label, len(img.Absent), img.Top.Digest)
				}
			}
		}
		for _, p := range img.Platforms {
			of := label + " " + p.label()
			if p.Manifest != nil {
				uses = append(uses, use{*p.Manifest, "manifest of " + of})
				if doc, ok := c.Document(p.Manifest.Path); ok {
					if _, err := ParseManifest(doc, p.Manifest.MediaType); err != nil {
						add("manifest %s (%s): %s", p.Manifest.Digest, of, strings.TrimPrefix(err.Error(), "archive: "))
						continue
					}
				}
			}
			if p.Config.Digest == "" && p.Config.Path == "" {
				continue
			}
			uses = append(uses, use{p.Config, "config of " + of})
			for j, l := range p.Layers {
				uses = append(uses, use{l, fmt.Sprintf("layer %d of %s", j, of)})
			}
			c.checkConfig(p, of, add)
		}
	}
	if c.Format == FormatOCIDocker {
		// (In a Docker archive, the images are manifest.json's entries.)
		for i, e := range c.DockerManifest {
			label := "manifest.json: " + dockerLabel(i, e)
			uses = append(uses, use{c.fileRef(e.Config), "config of " + label})
			for j, l := range e.Layers {
				uses = append(uses, use{c.fileRef(l), fmt.Sprintf("layer %d of %s", j, label)})
			}
		}
	}
	missing := map[string]bool{}
	sizeSeen := map[string]bool{}
	for _, u := range uses {
		key := u.ref.Digest.String()
		if key == "" {
			continue
		}
		if !u.ref.Present() {
			if !missing[key] {
				missing[key] = true
				add("blob %s (%s) is missing", u.ref.Digest, u.by)
			}
			continue
		}
		if f := c.Files[u.ref.Path]; f.Size != u.ref.Size && !sizeSeen[key+fmt.Sprint(u.ref.Size)] {
			sizeSeen[key+fmt.Sprint(u.ref.Size)] = true
			add("blob %s is %d bytes; its reference (%s) says %d", u.ref.Digest, f.Size, u.by, u.ref.Size)
		}
	}

	switch c.Format {
	case FormatOCIDocker:
		out = append(out, c.checkDockerAgainstIndex()...)
	case FormatDocker:
		out = append(out, c.checkDockerFiles()...)
	}
	if c.Index != nil {
		for i, d := range c.Index.Manifests {
			if n := d.Annotations[AnnotationImageName]; n != "" {
				if _, err := parseName(n); err != nil {
					add("index.json: entry %d: %v", i, err)
				}
			}
		}
	}

	return out
}

// Strays lists, in an OCI layout, the blobs nothing references and the
// files that are neither metadata nor blobs: harmless to every consumer,
// but not what build writes.
func (c *Contents) Strays() []string {
	if c.Format != FormatOCI && c.Format != FormatOCIDocker {
		return nil
	}
	var out []string
	refs := c.References()
	for _, d := range c.blobDigests() {
		if !refs[d] {
			out = append(out, fmt.Sprintf("blob %s (%d bytes) is not referenced by index.json or manifest.json", d, c.Blobs[d].Size))
		}
	}
	var extra []string
	for p, f := range c.Files {
		if !isMetadata(p) && !strings.HasPrefix(p, "blobs/") && f.LinkTo == "" {
			extra = append(extra, p)
		}
	}
	for _, p := range sortedCopy(extra) {
		out = append(out, "unexpected file "+p)
	}
	return out
}

// References is every digest index.json, the indexes and manifests it
// leads to and manifest.json reference, present or not.
func (c *Contents) References() map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	for _, img := range c.Images {
		img.eachRef(func(r Ref) {
			if r.Digest != "" {
				out[r.Digest] = true
			}
		})
	}
	for _, d := range c.inner {
		out[d] = true
	}
	for _, e := range c.DockerManifest {
		for _, p := range append([]string{e.Config}, e.Layers...) {
			if d := c.fileRef(p).Digest; d != "" {
				out[d] = true
			}
		}
	}
	return out
}

// ImageReferences is every digest img references (top, manifests,
// configs, layers), present or not.
func (img *ImageInfo) References() map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	img.eachRef(func(r Ref) {
		if r.Digest != "" {
			out[r.Digest] = true
		}
	})
	return out
}

func kindOf(mediaType image.MediaType) string {
	if image.MediaType(mediaType).IsIndex() {
		return "index"
	}
	return "manifest"
}

// checkTop checks that an index.json target parses as its media type says.
// (A manifest target is checked as a platform.)
func (c *Contents) checkTop(top Ref, add func(string)) {
	doc, ok := c.Document(top.Path)
	if !ok {
		return // reported while building the views
	}
	mt := top.MediaType
	if mt == "" {
		add("index.json gives no mediaType")
		mt = docMediaType(doc)
	}
	if image.MediaType(mt).IsManifest() {
		return
	}
	if !image.MediaType(mt).IsIndex() {
		return // reported while building the views
	}
	var idx struct {
		SchemaVersion *int                 `json:"schemaVersion"`
		MediaType     image.MediaType      `json:"mediaType"`
		Manifests     []ocispec.Descriptor `json:"manifests"`
		Config        json.RawMessage      `json:"config"`
		Layers        json.RawMessage      `json:"layers"`
	}
	if err := strictJSON(doc, &idx); err != nil {
		add(err.Error())
		return
	}
	switch {
	case idx.SchemaVersion == nil || *idx.SchemaVersion != 2:
		add("schemaVersion is not 2")
	case idx.MediaType != "" && idx.MediaType != mt:
		add(fmt.Sprintf("mediaType %q, but index.json says %q", idx.MediaType, mt))
	case idx.Manifests == nil:
		add(`no "manifests"`)
	case idx.Config != nil || idx.Layers != nil:
		add("has a config or layers: not an index")
	}
}

// checkConfig checks a platform's config against its layers.
func (c *Contents) checkConfig(p *PlatformInfo, of string, add func(string, ...any)) {
	if !p.Config.Present() {
		return
	}
	if _, ok := c.Document(p.Config.Path); !ok {
		if f := c.Files[p.Config.Path]; f.Size <= c.maxDoc {
			add("config %s of %s is not JSON", p.Config.Digest, of)
		}
		return
	}
	if len(p.DiffIDs) != len(p.Layers) {
		add("config %s of %s lists %d diff_ids for %d layers", p.Config.Digest, of, len(p.DiffIDs), len(p.Layers))
		return
	}
	if p.Manifest != nil {
		return // registry layers are compressed: nothing more to compare
	}
	for j, l := range p.Layers {
		f := c.Files[l.Path]
		if f == nil || f.Compression != None {
			continue
		}
		if f.SHA256 != p.DiffIDs[j] {
			add("layer %d of %s (%s) hashes to %s, its config's diff_id is %s", j, of, l.Path, f.SHA256, p.DiffIDs[j])
		}
	}
}

// checkDockerAgainstIndex checks that manifest.json and index.json describe
// the same images.
func (c *Contents) checkDockerAgainstIndex() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	byName := map[string]*ImageInfo{}
	for _, img := range c.Images {
		for _, n := range img.Names {
			if k := normalName(n); k != "" {
				byName[k] = img
			}
		}
	}
	entryOf := map[int]*ImageInfo{}
	for _, img := range c.Images {
		if img.Docker >= 0 {
			entryOf[img.Docker] = img
		}
	}
	for i, e := range c.DockerManifest {
		label := dockerLabel(i, e)
		var named []*ImageInfo
		for _, t := range e.RepoTags {
			n := normalName(t)
			if n == "" {
				add("manifest.json: RepoTag %q is not an image name", t)
				continue
			}
			img := byName[n]
			if img == nil {
				add("manifest.json: RepoTag %s is not a name in index.json", t)
				continue
			}
			if !slices.Contains(named, img) {
				named = append(named, img)
			}
		}
		if len(named) > 1 {
			add("manifest.json: %s: its RepoTags name %d different images of index.json", label, len(named))
		}
		img := entryOf[i]
		switch {
		case img == nil && len(named) > 0:
			add("manifest.json: %s: a second entry for image %s", label, named[0].Top.Digest)
		case img == nil && len(e.RepoTags) == 0:
			add("manifest.json: entry %d matches no image of index.json", i)
		case img != nil && img.DockerPlatform < 0:
			add("manifest.json: %s: config and layers are not those of any platform of index.json's %s", label, img.Top.Digest)
		}
	}
	for _, img := range c.Images {
		if img.Docker < 0 {
			add("index.json: %s (%s) has no manifest.json entry", img.Label(), img.Top.Digest)
			continue
		}
		e := c.DockerManifest[img.Docker]
		tags := map[string]bool{}
		for _, t := range e.RepoTags {
			tags[normalName(t)] = true
		}
		for _, n := range img.Names {
			pn, err := parseName(n)
			if err != nil || pn.tag == "" {
				continue
			}
			if !tags[pn.full] {
				add("index.json: %s has no RepoTag in manifest.json", n)
			}
		}
	}
	return out
}

// checkDockerFiles checks the files of a Docker archive against their
// names.
func (c *Contents) checkDockerFiles() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for i, e := range c.DockerManifest {
		label := dockerLabel(i, e)
		for _, t := range e.RepoTags {
			if normalName(t) == "" {
				add("manifest.json: %s: RepoTag %q is not an image name", label, t)
			}
		}
		if c.Files[path.Clean(e.Config)] == nil {
			add("manifest.json: %s: config file %q is missing", label, e.Config)
		}
		var diffIDs []digest.Digest
		if i < len(c.Images) && len(c.Images[i].Platforms) > 0 {
			diffIDs = c.Images[i].Platforms[0].DiffIDs
		}
		for j, l := range e.Layers {
			if c.Files[path.Clean(l)] != nil {
				continue
			}
			// A foreign (non-distributable) layer is not saved: its
			// LayerSources entry says where it comes from.
			if j < len(diffIDs) && e.LayerSources[diffIDs[j].String()] != nil {
				continue
			}
			add("manifest.json: %s: layer %d file %q is missing", label, j, l)
		}
		files := append([]string{e.Config}, e.Layers...)
		for _, p := range files {
			f := c.Files[path.Clean(p)]
			if f == nil {
				continue // reported as missing
			}
			if want := nameDigest(p); want != "" && want != f.SHA256.Encoded() {
				add("manifest.json: %s: %s hashes to %s", label, p, f.SHA256)
			}
		}
	}
	return out
}

// nameDigest is the hex digest a Docker archive file's name claims:
// "<hex>.json", "sha256:<hex>", "<hex>.tar", "<hex>.tar.gz"; "" for names
// that claim none ("<id>/layer.tar").
func nameDigest(p string) string {
	base := path.Base(p)
	if _, ok := blobDigest(path.Clean(p)); ok {
		return "" // checked as a blob
	}
	base = strings.TrimPrefix(base, "sha256:")
	for _, ext := range []string{".json", ".tar.gz", ".tgz", ".tar.zst", ".tar"} {
		if strings.HasSuffix(base, ext) {
			base = strings.TrimSuffix(base, ext)
			break
		}
	}
	if hex64.MatchString(base) {
		return base
	}
	return ""
}

func (c *Contents) blobDigests() []digest.Digest {
	out := make([]digest.Digest, 0, len(c.Blobs))
	for d := range c.Blobs {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
