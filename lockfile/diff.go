package lockfile

import (
	"slices"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// Kinds of change in a Diff.
const (
	Added   = "added"
	Removed = "removed"
	Updated = "updated"
)

// Diff is what changes from one lockfile to another, per group: what a
// reviewer of a lockfile pull request wants to see. JSON keys are
// kebab-case, like the lockfile's own keys.
type Diff struct {
	GroupsChanged int `json:"groups-changed"`
	Added         int `json:"added"`   // images, over all groups
	Removed       int `json:"removed"` // images, over all groups
	Updated       int `json:"updated"` // images, over all groups (moved ones included)
	// DownloadBytes is an upper bound of what a rebuild from the new
	// lockfile downloads, given a cache that holds everything the old one
	// pins: the compressed size (manifest + config + layers) of every
	// platform manifest the old lockfile does not have, plus new index
	// blobs, each digest counted once. The lockfile does not list layers,
	// so a layer a new platform shares with an old one is counted again.
	DownloadBytes int64 `json:"download-bytes"`
	// DeltaBytes and DeltaUnsizedManifests are the sums of the groups'
	// (GroupDiff.DeltaBytes): what build --since OLD writes in all, each
	// group's delta archive being whole on its own.
	DeltaBytes            int64       `json:"delta-bytes"`
	DeltaUnsizedManifests int         `json:"delta-unsized-manifests"`
	Groups                []GroupDiff `json:"groups"`
}

// Empty reports whether the two lockfiles pin the same thing.
func (d *Diff) Empty() bool { return len(d.Groups) == 0 }

// GroupDiff is the change of one group. Platforms and index are given for
// each side the group exists on; a change of either is a change of the
// group even when no image changed.
type GroupDiff struct {
	Name          string          `json:"name"`
	Change        string          `json:"change"` // Added, Removed or Updated
	OldPlatforms  []string        `json:"old-platforms,omitempty"`
	NewPlatforms  []string        `json:"new-platforms,omitempty"`
	OldIndex      image.IndexMode `json:"old-index,omitempty"`
	NewIndex      image.IndexMode `json:"new-index,omitempty"`
	DownloadBytes int64           `json:"download-bytes"` // as Diff's, for this group
	// DeltaBytes bounds the group's delta archive (build --since OLD:
	// every manifest, index, config and carried artefact of the group,
	// and the layers OLD's images lack) by what the lockfile records: the
	// size (manifest + config + layers) of each platform manifest OLD
	// does not pin, each index blob, and each carried signature, SBOM
	// and attestation, each digest once. A layer a new platform shares
	// with OLD is counted although the delta leaves it out, so this is an
	// upper bound of those. The platforms OLD pins travel without their
	// layers, as their manifest and config, whose sizes the lockfile
	// does not record: DeltaUnsizedManifests counts them (a few KiB
	// each). A removed group has no delta archive: both are 0.
	DeltaBytes            int64       `json:"delta-bytes"`
	DeltaUnsizedManifests int         `json:"delta-unsized-manifests"`
	Images                []ImageDiff `json:"images"` // updated, then added, then removed; each by ref
	// Charts are the group's charts that changed, by source.
	Charts []ChartDiff `json:"charts,omitempty"`
}

// ChartDiff is the change of one chart of a group: its version and digest
// on each side it exists on, and the images it brings and drops.
type ChartDiff struct {
	Source     string        `json:"source"`
	Name       string        `json:"name"`
	Change     string        `json:"change"` // Added, Removed or Updated
	OldVersion string        `json:"old-version,omitempty"`
	NewVersion string        `json:"new-version,omitempty"`
	OldDigest  digest.Digest `json:"old-digest,omitempty"`
	NewDigest  digest.Digest `json:"new-digest,omitempty"`
	Brings     []string      `json:"brings,omitempty"` // refs the new side has and the old one lacks
	Drops      []string      `json:"drops,omitempty"`
}

// chartDiffs compares the charts of a group on both sides.
func chartDiffs(og, ng *Group) []ChartDiff {
	refs := func(c *Chart) []string {
		var out []string
		if c != nil {
			for _, i := range c.Images {
				if !slices.Contains(out, i.Ref) {
					out = append(out, i.Ref)
				}
			}
		}
		return out
	}
	var out []ChartDiff
	add := func(oc, nc *Chart) {
		d := ChartDiff{Change: Updated}
		switch {
		case oc == nil:
			d.Change = Added
		case nc == nil:
			d.Change = Removed
		}
		if oc != nil {
			d.Source, d.Name, d.OldVersion, d.OldDigest = oc.Source, oc.Name, oc.Version, oc.Digest
		}
		if nc != nil {
			d.Source, d.Name, d.NewVersion, d.NewDigest = nc.Source, nc.Name, nc.Version, nc.Digest
		}
		olds, news := refs(oc), refs(nc)
		for _, r := range news {
			if !slices.Contains(olds, r) {
				d.Brings = append(d.Brings, r)
			}
		}
		for _, r := range olds {
			if !slices.Contains(news, r) {
				d.Drops = append(d.Drops, r)
			}
		}
		if d.Change != Updated || d.OldDigest != d.NewDigest || oc.Inputs != nc.Inputs || len(d.Brings)+len(d.Drops) > 0 {
			sort.Strings(d.Brings)
			sort.Strings(d.Drops)
			out = append(out, d)
		}
	}
	for i := range ng.Charts {
		add(og.Chart(ng.Charts[i].Source), &ng.Charts[i])
	}
	for i := range og.Charts {
		if ng.Chart(og.Charts[i].Source) == nil {
			add(&og.Charts[i], nil)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Source < out[b].Source })
	return out
}

// PlatformsChanged reports whether the group's platform list changed (only
// for a group in both lockfiles).
func (g *GroupDiff) PlatformsChanged() bool {
	return g.Change == Updated && !slices.Equal(g.OldPlatforms, g.NewPlatforms)
}

// IndexChanged reports whether the group's index mode changed.
func (g *GroupDiff) IndexChanged() bool { return g.Change == Updated && g.OldIndex != g.NewIndex }

// ImageDiff is one image added, removed or updated. An update keeps the ref
// and changes what it pins, or moves to another ref of the same repository
// (a removed and an added ref of one repository in one group, when that
// pairing is unambiguous): then OldRef and NewRef differ.
type ImageDiff struct {
	Change            string        `json:"change"` // Added, Removed or Updated
	OldRef            string        `json:"old-ref,omitempty"`
	NewRef            string        `json:"new-ref,omitempty"`
	OldDigest         digest.Digest `json:"old-digest,omitempty"`
	NewDigest         digest.Digest `json:"new-digest,omitempty"`
	OldFilteredDigest digest.Digest `json:"old-filtered-digest,omitempty"`
	NewFilteredDigest digest.Digest `json:"new-filtered-digest,omitempty"`
	// Platforms lists, for an update, the platforms added, removed or
	// pinned to another manifest (in the new entry's order, then removed
	// ones); unchanged platforms are left out.
	Platforms []PlatformDiff `json:"platforms,omitempty"`
	// UnchangedPlatforms, for an update, are the platforms still pinned to
	// the same manifest.
	UnchangedPlatforms []string `json:"unchanged-platforms,omitempty"`
	DownloadBytes      int64    `json:"download-bytes"` // as Diff's, for this image
	// SignaturesChanged says the verified signatures differ; OldSignedBy
	// and NewSignedBy then say who signed on each side: "key FILE
	// (FINGERPRINT)" or the Fulcio identity, each once, sorted.
	SignaturesChanged bool     `json:"signatures-changed,omitempty"`
	OldSignedBy       []string `json:"old-signed-by,omitempty"`
	NewSignedBy       []string `json:"new-signed-by,omitempty"`
	// ArtifactsChanged says the carried signatures, SBOMs and attestations
	// differ; OldArtifacts and NewArtifacts count them.
	ArtifactsChanged bool `json:"artifacts-changed,omitempty"`
	OldArtifacts     int  `json:"old-artifacts,omitempty"`
	NewArtifacts     int  `json:"new-artifacts,omitempty"`
}

// Ref is the image's new ref, or its old one when it was removed.
func (i *ImageDiff) Ref() string {
	if i.NewRef != "" {
		return i.NewRef
	}
	return i.OldRef
}

// PlatformDiff is one platform of an updated image.
type PlatformDiff struct {
	Platform      string        `json:"platform"`
	Change        string        `json:"change"` // Added, Removed or Updated
	OldDigest     digest.Digest `json:"old-digest,omitempty"`
	NewDigest     digest.Digest `json:"new-digest,omitempty"`
	DownloadBytes int64         `json:"download-bytes"`
}

// Compare computes the diff from old to new. Either may be nil (no
// lockfile). Neither is modified.
func Compare(oldLock, newLock *Lock) *Diff {
	if oldLock == nil {
		oldLock = &Lock{}
	}
	if newLock == nil {
		newLock = &Lock{}
	}
	c := &comparer{have: map[digest.Digest]bool{}, total: map[digest.Digest]int64{}}
	for _, g := range oldLock.Groups {
		for _, img := range g.Images {
			c.have[img.Digest] = true
			for _, p := range img.Platforms {
				c.have[p.Digest] = true
			}
		}
	}

	names := map[string]bool{}
	for _, g := range oldLock.Groups {
		names[g.Name] = true
	}
	for _, g := range newLock.Groups {
		names[g.Name] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)

	d := &Diff{Groups: []GroupDiff{}}
	for _, name := range sorted {
		gd, changed := c.group(oldLock.Group(name), newLock.Group(name))
		if !changed {
			continue
		}
		d.Groups = append(d.Groups, gd)
		d.GroupsChanged++
		for _, i := range gd.Images {
			switch i.Change {
			case Added:
				d.Added++
			case Removed:
				d.Removed++
			case Updated:
				d.Updated++
			}
		}
	}
	for _, n := range c.total {
		d.DownloadBytes += n
	}
	for _, g := range d.Groups {
		d.DeltaBytes += g.DeltaBytes
		d.DeltaUnsizedManifests += g.DeltaUnsizedManifests
	}
	return d
}

type comparer struct {
	have  map[digest.Digest]bool  // every manifest and index digest the old lockfile pins
	total map[digest.Digest]int64 // new blobs over the whole diff, by digest
}

// newBlobs returns the manifests (with what they reference) and index
// blobs of img that the old lockfile does not pin, with their sizes.
func (c *comparer) newBlobs(img *Image) map[digest.Digest]int64 {
	out := map[digest.Digest]int64{}
	var platforms int64
	for _, p := range img.Platforms {
		platforms += p.Size
		if !c.have[p.Digest] {
			out[p.Digest] = p.Size
		}
	}
	// An index is a blob of its own: Size counts it with the platforms.
	if img.IsIndex() && !c.have[img.Digest] && img.Size > platforms {
		out[img.Digest] = img.Size - platforms
	}
	return out
}

func sum(m map[digest.Digest]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func (c *comparer) group(og, ng *Group) (GroupDiff, bool) {
	gd := GroupDiff{Images: []ImageDiff{}}
	switch {
	case og == nil:
		gd.Name, gd.Change = ng.Name, Added
	case ng == nil:
		gd.Name, gd.Change = og.Name, Removed
	default:
		gd.Name, gd.Change = ng.Name, Updated
	}
	if og != nil {
		gd.OldPlatforms, gd.OldIndex = slices.Clone(og.Platforms), og.Index
	} else {
		og = &Group{}
	}
	if ng != nil {
		gd.NewPlatforms, gd.NewIndex = slices.Clone(ng.Platforms), ng.Index
	} else {
		ng = &Group{}
	}

	groupBlobs := map[digest.Digest]int64{}
	addBlobs := func(m map[digest.Digest]int64) int64 {
		for k, v := range m {
			groupBlobs[k] = v
			c.total[k] = v
		}
		return sum(m)
	}

	var updated, added, removed []ImageDiff
	var addedImgs, removedImgs []*Image
	for i := range ng.Images {
		ni := &ng.Images[i]
		oi := og.Image(ni.Ref)
		if oi == nil {
			addedImgs = append(addedImgs, ni)
			continue
		}
		if imagesEqual(oi, ni) {
			continue
		}
		updated = append(updated, c.update(oi, ni, addBlobs))
	}
	for i := range og.Images {
		if ng.Image(og.Images[i].Ref) == nil {
			removedImgs = append(removedImgs, &og.Images[i])
		}
	}

	// A removed and an added ref of the same repository, each the only one
	// of that repository on its side, is one image moved to a new ref.
	byName := func(imgs []*Image) map[string][]*Image {
		m := map[string][]*Image{}
		for _, img := range imgs {
			if n := repoName(img.Ref); n != "" {
				m[n] = append(m[n], img)
			}
		}
		return m
	}
	addedByName, removedByName := byName(addedImgs), byName(removedImgs)
	paired := map[*Image]bool{}
	for _, ni := range addedImgs {
		n := repoName(ni.Ref)
		if n == "" || len(addedByName[n]) != 1 || len(removedByName[n]) != 1 {
			continue
		}
		oi := removedByName[n][0]
		paired[ni], paired[oi] = true, true
		updated = append(updated, c.update(oi, ni, addBlobs))
	}
	for _, ni := range addedImgs {
		if paired[ni] {
			continue
		}
		added = append(added, ImageDiff{
			Change: Added, NewRef: ni.Ref, NewDigest: ni.Digest, NewFilteredDigest: ni.FilteredDigest,
			DownloadBytes: addBlobs(c.newBlobs(ni)),
		})
	}
	for _, oi := range removedImgs {
		if paired[oi] {
			continue
		}
		removed = append(removed, ImageDiff{Change: Removed, OldRef: oi.Ref, OldDigest: oi.Digest, OldFilteredDigest: oi.FilteredDigest})
	}
	for _, list := range [][]ImageDiff{updated, added, removed} {
		sort.SliceStable(list, func(a, b int) bool { return list[a].Ref() < list[b].Ref() })
		gd.Images = append(gd.Images, list...)
	}
	gd.DownloadBytes = sum(groupBlobs)
	gd.DeltaBytes, gd.DeltaUnsizedManifests = c.delta(ng)
	gd.Charts = chartDiffs(og, ng)
	changed := gd.Change != Updated || len(gd.Images) > 0 || len(gd.Charts) > 0 || gd.PlatformsChanged() || gd.IndexChanged()
	return gd, changed
}

// delta bounds what a delta of g against the old lockfile carries (see
// GroupDiff.DeltaBytes): a changed group's delta archive holds all of its
// images' documents, not only the changed ones'.
func (c *comparer) delta(g *Group) (bytes int64, unsized int) {
	seen := map[digest.Digest]bool{}
	for i := range g.Images {
		img := &g.Images[i]
		var platforms int64
		for _, p := range img.Platforms {
			platforms += p.Size
			if seen[p.Digest] {
				continue
			}
			seen[p.Digest] = true
			if c.have[p.Digest] {
				unsized++ // its layers are BASE's: manifest and config travel
			} else {
				bytes += p.Size
			}
		}
		// The index travels whether or not OLD pins it (a filtered index,
		// written instead, is smaller than the original counted here).
		if img.IsIndex() && !seen[img.Digest] && img.Size > platforms {
			seen[img.Digest] = true
			bytes += img.Size - platforms
		}
		for _, a := range img.Artifacts {
			if !seen[a.Digest] {
				seen[a.Digest] = true
				bytes += a.Size
			}
		}
	}
	return bytes, unsized
}

func (c *comparer) update(oi, ni *Image, addBlobs func(map[digest.Digest]int64) int64) ImageDiff {
	blobs := c.newBlobs(ni)
	id := ImageDiff{
		Change: Updated, OldRef: oi.Ref, NewRef: ni.Ref,
		OldDigest: oi.Digest, NewDigest: ni.Digest,
		OldFilteredDigest: oi.FilteredDigest, NewFilteredDigest: ni.FilteredDigest,
		DownloadBytes: addBlobs(blobs),
	}
	oldByPlatform := map[string]*Platform{}
	for i := range oi.Platforms {
		oldByPlatform[oi.Platforms[i].Platform] = &oi.Platforms[i]
	}
	for _, np := range ni.Platforms {
		pd := PlatformDiff{Platform: np.Platform, NewDigest: np.Digest, DownloadBytes: blobs[np.Digest]}
		switch op := oldByPlatform[np.Platform]; {
		case op == nil:
			pd.Change = Added
		case op.Digest != np.Digest:
			pd.Change, pd.OldDigest = Updated, op.Digest
		default:
			id.UnchangedPlatforms = append(id.UnchangedPlatforms, np.Platform)
			continue
		}
		id.Platforms = append(id.Platforms, pd)
	}
	for _, op := range oi.Platforms {
		if !slices.ContainsFunc(ni.Platforms, func(p Platform) bool { return p.Platform == op.Platform }) {
			id.Platforms = append(id.Platforms, PlatformDiff{Platform: op.Platform, Change: Removed, OldDigest: op.Digest})
		}
	}
	if !slices.Equal(oi.Signatures, ni.Signatures) {
		id.SignaturesChanged = true
		id.OldSignedBy, id.NewSignedBy = oi.SignedBy(), ni.SignedBy()
	}
	if !slices.Equal(oi.Artifacts, ni.Artifacts) {
		id.ArtifactsChanged = true
		id.OldArtifacts, id.NewArtifacts = len(oi.Artifacts), len(ni.Artifacts)
	}
	return id
}

// SignedBy lists who signed the image's verified manifests, each once,
// sorted: "key FILE (FINGERPRINT)" or the Fulcio identity.
func (img *Image) SignedBy() []string {
	var out []string
	for _, s := range img.Signatures {
		who := s.Identity
		if s.Key != "" {
			who = "key " + s.Key + " (" + s.Fingerprint + ")"
		}
		if !slices.Contains(out, who) {
			out = append(out, who)
		}
	}
	sort.Strings(out)
	return out
}

func imagesEqual(a, b *Image) bool {
	return a.Ref == b.Ref && a.Digest == b.Digest && a.MediaType == b.MediaType && a.Size == b.Size &&
		a.FilteredDigest == b.FilteredDigest && slices.Equal(a.Platforms, b.Platforms) &&
		slices.Equal(a.Signatures, b.Signatures) && slices.Equal(a.Artifacts, b.Artifacts)
}

// repoName is the repository of a canonical ref, or "" if it does not parse.
func repoName(ref string) string {
	r, err := image.ParseReference(ref, "")
	if err != nil {
		return ""
	}
	return r.Name()
}
