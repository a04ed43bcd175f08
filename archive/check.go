package archive

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// dockerLabel names a manifest.json entry by its RepoTags.
func dockerLabel(i int, e DockerEntry) string {
	if len(e.RepoTags) > 0 {
		return strings.Join(e.RepoTags, ", ")
	}
	return fmt.Sprintf("entry %d", i)
}

// Check lists the archive's internal inconsistencies in a fixed order;
// none means the archive is consistent:
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
func (c *Contents) Check() []Problem {
	_, out := buildImages(c)
	add := func(p Problem) { out = append(out, p) }
	c.checkLayout(add)
	c.checkUses(c.uses(add), add)
	switch c.Format {
	case FormatOCIDocker:
		c.checkDockerAgainstIndex(add)
	case FormatDocker:
		c.checkDockerFiles(add)
	}
	c.checkIndexNames(add)
	return out
}

// checkLayout checks the OCI layout file, index.json's presence and the
// blobs' names and contents.
func (c *Contents) checkLayout(add func(Problem)) {
	if c.Format == FormatOCI || c.Format == FormatOCIDocker {
		switch {
		case c.Layout == nil:
			add(Problem{Kind: KindLayoutMissing})
		case c.Layout.Version != ocispec.ImageLayoutVersion:
			add(Problem{Kind: KindLayoutVersion, Detail: c.Layout.Version})
		}
		if c.Index == nil {
			add(Problem{Kind: KindIndexMissing})
		}
	}
	for _, p := range sortedCopy(c.BadBlobNames) {
		add(Problem{Kind: KindBlobBadName, Detail: p})
	}
	for _, d := range c.blobDigests() {
		if b := c.Blobs[d]; b.ComputedDigest != b.Digest {
			add(Problem{Kind: KindBlobCorrupt, Digest: d, Detail: b.ComputedDigest.String()})
		}
	}
}

// use is one reference to a blob: what it says the blob is, the file it
// finds (nil when absent), and who makes it, for messages.
type use struct {
	d       image.Descriptor
	file    *FileInfo
	by      string
	img, pl string
}

// uses lists every reference of the images, in a fixed order (the first
// referrer of a missing blob names it), checking the documents it passes
// (tops, manifests, configs) on the way.
func (c *Contents) uses(add func(Problem)) []use {
	var uses []use
	ref := func(d image.Descriptor, by, img, pl string) use {
		f, _ := c.File(d)
		return use{d: d, file: f, by: by, img: img, pl: pl}
	}
	for _, img := range c.Images {
		label := img.Label()
		if c.Format != FormatDocker {
			uses = append(uses, ref(img.Top, "index.json: "+label, label, ""))
			if c.Has(img.Top) {
				c.checkTop(img.Top, label, add)
				if len(img.Manifests) == 0 && len(img.Absent) > 0 {
					add(Problem{Kind: KindPlatformsAbsent, Image: label, Digest: img.Top.Digest, Detail: strconv.Itoa(len(img.Absent))})
				}
			}
		}
		for _, m := range img.Manifests {
			pl := manifestLabel(m)
			of := label + " " + pl
			if m.Digest != "" {
				uses = append(uses, ref(m.Descriptor, "manifest of "+of, label, pl))
				if f, ok := c.File(m.Descriptor); ok {
					if doc, ok := c.Document(f.Path); ok {
						if _, err := image.ParseManifest(doc, m.MediaType); err != nil {
							add(Problem{Kind: KindManifestInvalid, Image: label, Platform: pl, Digest: m.Digest, Detail: err.Error()})
							continue
						}
					}
				}
			}
			if m.Config.Digest == "" {
				continue
			}
			uses = append(uses, ref(m.Config, "config of "+of, label, pl))
			for j, l := range m.Layers {
				uses = append(uses, ref(l, fmt.Sprintf("layer %d of %s", j, of), label, pl))
			}
			if img.Artifact == nil { // an artifact's config and layers are no image's
				c.checkConfig(img, m, label, add)
			}
		}
	}
	if c.Format == FormatOCIDocker {
		// (In a Docker archive, the images are manifest.json's entries.)
		// These are named by path: present when the path is.
		for i, e := range c.DockerManifest {
			label := "manifest.json: " + dockerLabel(i, e)
			byPath := func(p, by string) use {
				return use{d: c.fileRef(p), file: c.Files[path.Clean(p)], by: by, img: dockerLabel(i, e)}
			}
			uses = append(uses, byPath(e.Config, "config of "+label))
			for j, l := range e.Layers {
				uses = append(uses, byPath(l, fmt.Sprintf("layer %d of %s", j, label)))
			}
		}
	}
	return uses
}

// checkUses reports each missing blob once, and each size a reference
// gets wrong once.
func (c *Contents) checkUses(uses []use, add func(Problem)) {
	missing := map[digest.Digest]bool{}
	sizeSeen := map[string]bool{}
	for _, u := range uses {
		if u.d.Digest == "" {
			continue
		}
		if u.file == nil {
			if !missing[u.d.Digest] {
				missing[u.d.Digest] = true
				add(Problem{Kind: KindBlobMissing, Image: u.img, Platform: u.pl, Digest: u.d.Digest, Detail: u.by})
			}
			continue
		}
		if key := u.d.Digest.String() + fmt.Sprint(u.d.Size); u.file.Size != u.d.Size && !sizeSeen[key] {
			sizeSeen[key] = true
			add(Problem{Kind: KindSizeMismatch, Image: u.img, Platform: u.pl, Digest: u.d.Digest,
				Detail: fmt.Sprintf("is %d bytes; its reference (%s) says %d", u.file.Size, u.by, u.d.Size)})
		}
	}
}

// checkIndexNames reports index.json names containerd would not take.
func (c *Contents) checkIndexNames(add func(Problem)) {
	if c.Index == nil {
		return
	}
	for i, d := range c.Index.Manifests {
		if n := d.Annotations[AnnotationImageName]; n != "" {
			if _, err := parseName(n); err != nil {
				add(Problem{Kind: KindIndexBadName, Image: n, Detail: fmt.Sprintf("entry %d: %v", i, err)})
			}
		}
	}
}

// Strays lists, in an OCI layout, the blobs nothing references and the
// files that are neither metadata nor blobs: harmless to every consumer,
// but not what build writes.
func (c *Contents) Strays() []Problem {
	if c.Format != FormatOCI && c.Format != FormatOCIDocker {
		return nil
	}
	var out []Problem
	refs := c.References()
	for _, d := range c.blobDigests() {
		if !refs[d] {
			out = append(out, Problem{Kind: KindUnreferenced, Digest: d, Detail: strconv.FormatInt(c.Blobs[d].Size, 10)})
		}
	}
	var extra []string
	for p, f := range c.Files {
		if !isMetadata(p) && !strings.HasPrefix(p, "blobs/") && f.LinkTo == "" {
			extra = append(extra, p)
		}
	}
	for _, p := range sortedCopy(extra) {
		out = append(out, Problem{Kind: KindUnexpectedFile, Detail: p})
	}
	return out
}

// References is every digest index.json, the indexes and manifests it
// leads to and manifest.json reference, present or not.
func (c *Contents) References() map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	for _, img := range c.Images {
		for d := range img.References() {
			out[d] = true
		}
		for _, d := range img.Inner {
			out[d.Digest] = true
		}
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

// checkTop checks that an index.json target parses as its media type says.
// (A manifest target is checked as a platform.)
func (c *Contents) checkTop(top image.Descriptor, label string, add func(Problem)) {
	doc, ok := c.BlobDocument(top.Digest)
	if !ok {
		return // reported while building the model
	}
	kind := KindManifestInvalid
	if top.MediaType.IsIndex() {
		kind = KindIndexInvalid
	}
	problem := func(s string) { add(Problem{Kind: kind, Image: label, Digest: top.Digest, Detail: s}) }
	mt := top.MediaType
	if mt == "" {
		problem("index.json gives no mediaType")
		mt = docMediaType(doc)
	}
	if !mt.IsIndex() {
		return // a manifest, or reported while building the model
	}
	var idx struct {
		SchemaVersion *int                 `json:"schemaVersion"`
		MediaType     image.MediaType      `json:"mediaType"`
		Manifests     []ocispec.Descriptor `json:"manifests"`
		Config        json.RawMessage      `json:"config"`
		Layers        json.RawMessage      `json:"layers"`
	}
	if err := strictJSON(doc, &idx); err != nil {
		problem(err.Error())
		return
	}
	switch {
	case idx.SchemaVersion == nil || *idx.SchemaVersion != 2:
		problem("schemaVersion is not 2")
	case idx.MediaType != "" && idx.MediaType != mt:
		problem(fmt.Sprintf("mediaType %q, but index.json says %q", idx.MediaType, mt))
	case idx.Manifests == nil:
		problem(`no "manifests"`)
	case idx.Config != nil || idx.Layers != nil:
		problem("has a config or layers: not an index")
	}
}

// checkConfig checks a platform's config against its layers.
func (c *Contents) checkConfig(img Image, m image.Manifest, label string, add func(Problem)) {
	f, ok := c.File(m.Config)
	if !ok {
		return
	}
	pl := manifestLabel(m)
	problem := func(kind ProblemKind, d digest.Digest, detail string) {
		add(Problem{Kind: kind, Image: label, Platform: pl, Digest: d, Detail: detail})
	}
	if _, ok := c.Document(f.Path); !ok {
		if f.Size <= c.MaxDocumentSize {
			problem(KindConfigInvalid, m.Config.Digest, "is not JSON")
		}
		return
	}
	if len(m.DiffIDs) != len(m.Layers) {
		problem(KindConfigInvalid, m.Config.Digest, fmt.Sprintf("lists %d diff_ids for %d layers", len(m.DiffIDs), len(m.Layers)))
		return
	}
	if m.Digest != "" || img.Docker == nil {
		return // registry layers are compressed: nothing more to compare
	}
	e := c.DockerManifest[img.Docker.Entry]
	for j, l := range m.Layers {
		lf, ok := c.File(l)
		if !ok || lf.Compression != None {
			continue
		}
		if lf.SHA256 != m.DiffIDs[j] {
			problem(KindDiffIDMismatch, lf.SHA256, fmt.Sprintf("layer %d of %s %s (%s) hashes to %s, its config's diff_id is %s", j, label, pl, path.Clean(e.Layers[j]), lf.SHA256, m.DiffIDs[j]))
		}
	}
}

// checkDockerAgainstIndex checks that manifest.json and index.json describe
// the same images.
func (c *Contents) checkDockerAgainstIndex(add func(Problem)) {
	byName := map[string]int{}
	for i, img := range c.Images {
		for _, n := range img.Names {
			if k := normalName(n); k != "" {
				byName[k] = i
			}
		}
	}
	entryOf := map[int]int{}
	for i, img := range c.Images {
		if img.Docker != nil {
			entryOf[img.Docker.Entry] = i
		}
	}
	for i, e := range c.DockerManifest {
		label := dockerLabel(i, e)
		var named []int
		for _, t := range e.RepoTags {
			n := normalName(t)
			if n == "" {
				add(Problem{Kind: KindDockerBadTag, Detail: t})
				continue
			}
			img, ok := byName[n]
			if !ok {
				add(Problem{Kind: KindDockerTagUnknown, Detail: t})
				continue
			}
			if !slices.Contains(named, img) {
				named = append(named, img)
			}
		}
		if len(named) > 1 {
			add(Problem{Kind: KindDockerEntryAmbiguous, Image: label, Detail: strconv.Itoa(len(named))})
		}
		img, linked := entryOf[i]
		switch {
		case !linked && len(named) > 0:
			add(Problem{Kind: KindDockerEntryDuplicate, Image: label, Digest: c.Images[named[0]].Top.Digest})
		case !linked && len(e.RepoTags) == 0:
			add(Problem{Kind: KindDockerEntryUnmatched, Image: label})
		case linked && c.Images[img].Docker.Manifest == nil:
			add(Problem{Kind: KindDockerEntryMismatch, Image: label, Digest: c.Images[img].Top.Digest})
		}
	}
	for _, img := range c.Images {
		if img.Docker == nil && img.Artifact != nil {
			continue // artifacts stay out of manifest.json
		}
		if img.Docker == nil {
			add(Problem{Kind: KindDockerEntryMissing, Image: img.Label(), Digest: img.Top.Digest})
			continue
		}
		e := c.DockerManifest[img.Docker.Entry]
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
				add(Problem{Kind: KindDockerTagMissing, Image: n})
			}
		}
	}
}

// checkDockerFiles checks the files of a Docker archive against their
// names.
func (c *Contents) checkDockerFiles(add func(Problem)) {
	for i, e := range c.DockerManifest {
		label := dockerLabel(i, e)
		for _, t := range e.RepoTags {
			if normalName(t) == "" {
				add(Problem{Kind: KindDockerBadTag, Image: label, Detail: t})
			}
		}
		if c.Files[path.Clean(e.Config)] == nil {
			add(Problem{Kind: KindDockerFileMissing, Image: label, Detail: fmt.Sprintf("config file %q", e.Config)})
		}
		var diffIDs []digest.Digest
		if i < len(c.Images) && len(c.Images[i].Manifests) > 0 {
			diffIDs = c.Images[i].Manifests[0].DiffIDs
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
			add(Problem{Kind: KindDockerFileMissing, Image: label, Detail: fmt.Sprintf("layer %d file %q", j, l)})
		}
		files := append([]string{e.Config}, e.Layers...)
		for _, p := range files {
			f := c.Files[path.Clean(p)]
			if f == nil {
				continue // reported as missing
			}
			if want := nameDigest(p); want != "" && want != f.SHA256.Encoded() {
				add(Problem{Kind: KindDockerFileCorrupt, Image: label, Digest: f.SHA256, Detail: p})
			}
		}
	}
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

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
