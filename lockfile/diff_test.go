package lockfile

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// dg is a digest made of one repeated hex character (or two alternating).
func dg(s string) digest.Digest {
	return digest.Digest("sha256:" + strings.Repeat(s, 64/len(s)))
}

var (
	ociIndex    = image.OCIIndex
	ociManifest = image.OCIManifest
)

// single is a one-platform image: its digest is its linux/amd64 manifest.
func single(ref string, d digest.Digest, size int64) Image {
	return Image{Ref: ref, Digest: d, MediaType: ociManifest, Size: size, Platforms: []Platform{
		{Platform: "linux/amd64", Digest: d, MediaType: ociManifest, Config: dg("c"), Size: size},
	}}
}

// multi is an index of 100 bytes plus one platform per "platform=digest:size".
func multi(ref string, d0 digest.Digest, platforms ...string) Image {
	img := Image{Ref: ref, Digest: d0, MediaType: ociIndex, Size: 100}
	for _, p := range platforms {
		var name, d string
		var size int64
		if _, err := fmt.Sscanf(strings.NewReplacer("=", " ", ":", " ").Replace(p), "%s %s %d", &name, &d, &size); err != nil {
			panic(p + ": " + err.Error())
		}
		img.Platforms = append(img.Platforms, Platform{Platform: name, Digest: dg(d), MediaType: ociManifest, Config: dg("c"), Size: size})
		img.Size += size
	}
	return img
}

func group(name string, platforms []string, imgs ...Image) Group {
	return Group{Name: name, Platforms: platforms, Index: "original", Images: imgs}
}

func lock(groups ...Group) *Lock { return &Lock{Version: Version, Groups: groups} }

var amd = []string{"linux/amd64"}

// describe renders a Diff compactly, one change a line, digests by their
// first hex character.
func describe(d *Diff) string {
	short := func(s digest.Digest) string {
		if s == "" {
			return "-"
		}
		return string(s[len("sha256:") : len("sha256:")+1])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "groups=%d added=%d removed=%d updated=%d bytes=%d\n", d.GroupsChanged, d.Added, d.Removed, d.Updated, d.DownloadBytes)
	for _, g := range d.Groups {
		fmt.Fprintf(&b, "%s %s bytes=%d", g.Name, g.Change, g.DownloadBytes)
		if g.PlatformsChanged() {
			fmt.Fprintf(&b, " platforms=%v->%v", g.OldPlatforms, g.NewPlatforms)
		}
		if g.IndexChanged() {
			fmt.Fprintf(&b, " index=%s->%s", g.OldIndex, g.NewIndex)
		}
		b.WriteString("\n")
		for _, i := range g.Images {
			switch i.Change {
			case Added:
				fmt.Fprintf(&b, " + %s %s +%d", i.NewRef, short(i.NewDigest), i.DownloadBytes)
			case Removed:
				fmt.Fprintf(&b, " - %s %s", i.OldRef, short(i.OldDigest))
			case Updated:
				ref := i.NewRef
				if i.OldRef != i.NewRef {
					ref = i.OldRef + "->" + i.NewRef
				}
				fmt.Fprintf(&b, " ~ %s %s->%s +%d", ref, short(i.OldDigest), short(i.NewDigest), i.DownloadBytes)
			}
			if i.OldFilteredDigest != i.NewFilteredDigest {
				fmt.Fprintf(&b, " filtered=%s->%s", short(i.OldFilteredDigest), short(i.NewFilteredDigest))
			}
			if len(i.UnchangedPlatforms) > 0 {
				fmt.Fprintf(&b, " same=%v", i.UnchangedPlatforms)
			}
			b.WriteString("\n")
			for _, p := range i.Platforms {
				fmt.Fprintf(&b, "   %s %s %s->%s +%d\n", p.Change, p.Platform, short(p.OldDigest), short(p.NewDigest), p.DownloadBytes)
			}
		}
	}
	return b.String()
}

func TestCompare(t *testing.T) {
	const (
		node1 = "docker.io/calico/node:v3.28.0"
		node2 = "docker.io/calico/node:v3.28.1"
		csi   = "docker.io/calico/csi:v3.28.1"
		pause = "docker.io/rancher/mirrored-pause:3.6"
	)
	base := lock(
		group("calico", amd, single(node1, dg("1"), 1000)),
		group("core", amd, single(pause, dg("2"), 50)),
	)
	cases := []struct {
		name     string
		old, new *Lock
		want     string
	}{
		{"identical", base, base, "groups=0 added=0 removed=0 updated=0 bytes=0\n"},
		{"both missing", nil, nil, "groups=0 added=0 removed=0 updated=0 bytes=0\n"},
		{
			"no old lockfile: everything is added",
			nil, base,
			`groups=2 added=2 removed=0 updated=0 bytes=1050
calico added bytes=1000
 + docker.io/calico/node:v3.28.0 1 +1000
core added bytes=50
 + docker.io/rancher/mirrored-pause:3.6 2 +50
`,
		},
		{
			"no new lockfile: everything is removed",
			base, nil,
			`groups=2 added=0 removed=2 updated=0 bytes=0
calico removed bytes=0
 - docker.io/calico/node:v3.28.0 1
core removed bytes=0
 - docker.io/rancher/mirrored-pause:3.6 2
`,
		},
		{
			"a moving tag re-resolved: same ref, new digest",
			lock(group("core", amd, single(pause, dg("2"), 50))),
			lock(group("core", amd, single(pause, dg("3"), 70))),
			`groups=1 added=0 removed=0 updated=1 bytes=70
core updated bytes=70
 ~ docker.io/rancher/mirrored-pause:3.6 2->3 +70
   updated linux/amd64 2->3 +70
`,
		},
		{
			"a version bump is one moved line, a new image an added one",
			base,
			lock(
				group("calico", amd, single(node2, dg("4"), 1200), single(csi, dg("5"), 30)),
				group("core", amd, single(pause, dg("2"), 50)),
			),
			`groups=1 added=1 removed=0 updated=1 bytes=1230
calico updated bytes=1230
 ~ docker.io/calico/node:v3.28.0->docker.io/calico/node:v3.28.1 1->4 +1200
   updated linux/amd64 1->4 +1200
 + docker.io/calico/csi:v3.28.1 5 +30
`,
		},
		{
			"a new tag with the same digest downloads nothing",
			lock(group("calico", amd, single(node1, dg("1"), 1000))),
			lock(group("calico", amd, single(node2, dg("1"), 1000))),
			`groups=1 added=0 removed=0 updated=1 bytes=0
calico updated bytes=0
 ~ docker.io/calico/node:v3.28.0->docker.io/calico/node:v3.28.1 1->1 +0 same=[linux/amd64]
`,
		},
		{
			"two old tags of one repository and one new: ambiguous, not paired",
			lock(group("calico", amd, single(node1, dg("1"), 1000), single("docker.io/calico/node:v3.27.0", dg("6"), 900))),
			lock(group("calico", amd, single(node2, dg("4"), 1200))),
			`groups=1 added=1 removed=2 updated=0 bytes=1200
calico updated bytes=1200
 + docker.io/calico/node:v3.28.1 4 +1200
 - docker.io/calico/node:v3.27.0 6
 - docker.io/calico/node:v3.28.0 1
`,
		},
		{
			"an index bump where one platform kept its manifest",
			lock(group("g", []string{"linux/amd64", "linux/arm64"}, multi(pause, dg("a"), "linux/amd64=b:500", "linux/arm64=d:400"))),
			lock(group("g", []string{"linux/amd64", "linux/arm64"}, multi(pause, dg("e"), "linux/amd64=b:500", "linux/arm64=f:450"))),
			`groups=1 added=0 removed=0 updated=1 bytes=550
g updated bytes=550
 ~ docker.io/rancher/mirrored-pause:3.6 a->e +550 same=[linux/amd64]
   updated linux/arm64 d->f +450
`,
		},
		{
			"group platforms changed: same index, one platform more, one less",
			lock(group("g", []string{"linux/amd64", "linux/arm/v7"}, multi(pause, dg("a"), "linux/amd64=b:500", "linux/arm/v7=7:300"))),
			lock(group("g", []string{"linux/amd64", "linux/arm64"}, multi(pause, dg("a"), "linux/amd64=b:500", "linux/arm64=d:400"))),
			`groups=1 added=0 removed=0 updated=1 bytes=400
g updated bytes=400 platforms=[linux/amd64 linux/arm/v7]->[linux/amd64 linux/arm64]
 ~ docker.io/rancher/mirrored-pause:3.6 a->a +400 same=[linux/amd64]
   added linux/arm64 -->d +400
   removed linux/arm/v7 7->- +0
`,
		},
		{
			"index mode changed: the filtered digest appears",
			lock(group("g", amd, multi(pause, dg("a"), "linux/amd64=b:500"))),
			func() *Lock {
				l := lock(group("g", amd, multi(pause, dg("a"), "linux/amd64=b:500")))
				l.Groups[0].Index = "filtered"
				l.Groups[0].Images[0].FilteredDigest = dg("9")
				return l
			}(),
			`groups=1 added=0 removed=0 updated=1 bytes=0
g updated bytes=0 index=original->filtered
 ~ docker.io/rancher/mirrored-pause:3.6 a->a +0 filtered=-->9 same=[linux/amd64]
`,
		},
		{
			"platform list reordered: a group change without image changes",
			lock(group("g", []string{"linux/amd64", "linux/arm64"})),
			lock(group("g", []string{"linux/arm64", "linux/amd64"})),
			`groups=1 added=0 removed=0 updated=0 bytes=0
g updated bytes=0 platforms=[linux/amd64 linux/arm64]->[linux/arm64 linux/amd64]
`,
		},
		{
			"an image moved to another group downloads nothing; one new image in two groups counts once",
			lock(group("a", amd, single(pause, dg("2"), 50))),
			lock(
				group("b", amd, single(pause, dg("2"), 50), single(csi, dg("5"), 30)),
				group("c", amd, single(csi, dg("5"), 30)),
			),
			`groups=3 added=3 removed=1 updated=0 bytes=30
a removed bytes=0
 - docker.io/rancher/mirrored-pause:3.6 2
b added bytes=30
 + docker.io/calico/csi:v3.28.1 5 +30
 + docker.io/rancher/mirrored-pause:3.6 2 +0
c added bytes=30
 + docker.io/calico/csi:v3.28.1 5 +30
`,
		},
		{
			"order: updated, added, removed, each by ref",
			lock(group("g", amd, single("docker.io/x/b:1", dg("1"), 1), single("docker.io/x/a:1", dg("2"), 1), single("docker.io/x/z:1", dg("3"), 1), single("docker.io/x/y:1", dg("4"), 1))),
			lock(group("g", amd, single("docker.io/x/b:1", dg("5"), 1), single("docker.io/x/a:1", dg("6"), 1), single("docker.io/x/d:1", dg("7"), 1), single("docker.io/x/c:1", dg("8"), 1))),
			`groups=1 added=2 removed=2 updated=2 bytes=4
g updated bytes=4
 ~ docker.io/x/a:1 2->6 +1
   updated linux/amd64 2->6 +1
 ~ docker.io/x/b:1 1->5 +1
   updated linux/amd64 1->5 +1
 + docker.io/x/c:1 8 +1
 + docker.io/x/d:1 7 +1
 - docker.io/x/y:1 4
 - docker.io/x/z:1 3
`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before string
			if c.old != nil {
				before = fmt.Sprint(*c.old)
			}
			d := Compare(c.old, c.new)
			if got := describe(d); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
			if d.Empty() != (d.GroupsChanged == 0) {
				t.Errorf("Empty() = %v with %d groups changed", d.Empty(), d.GroupsChanged)
			}
			if d.Groups == nil {
				t.Error("Groups is nil: JSON would say null, not []")
			}
			if c.old != nil && fmt.Sprint(*c.old) != before {
				t.Error("Compare modified the old lockfile")
			}
		})
	}
}

// Comparing the other way round swaps added and removed, and downloads
// nothing that the (now old) bigger lockfile had.
func TestCompareReversed(t *testing.T) {
	small := lock(group("g", amd, single("docker.io/x/a:1", dg("1"), 10)))
	big := lock(group("g", amd, single("docker.io/x/a:1", dg("1"), 10), single("docker.io/x/b:1", dg("2"), 20)))
	fwd, back := Compare(small, big), Compare(big, small)
	if fwd.Added != 1 || fwd.Removed != 0 || fwd.DownloadBytes != 20 {
		t.Errorf("forward: %s", describe(fwd))
	}
	if back.Added != 0 || back.Removed != 1 || back.DownloadBytes != 0 {
		t.Errorf("backward: %s", describe(back))
	}
}

// deltaOf renders each changed group's delta bound and the totals.
func deltaOf(d *Diff) string {
	var b strings.Builder
	for _, g := range d.Groups {
		fmt.Fprintf(&b, "%s %s delta=%d unsized=%d\n", g.Name, g.Change, g.DeltaBytes, g.DeltaUnsizedManifests)
	}
	fmt.Fprintf(&b, "total delta=%d unsized=%d download=%d\n", d.DeltaBytes, d.DeltaUnsizedManifests, d.DownloadBytes)
	return b.String()
}

// The delta of NEW against OLD, per group, as build --since OLD writes it:
// a changed group's archive carries every image's documents, the layers
// OLD lacks and the carried artefacts; the lockfile bounds it by platform
// sizes and counts the platforms whose manifest and config travel without
// a recorded size.
func TestCompareDelta(t *testing.T) {
	const (
		node1 = "docker.io/calico/node:v3.28.0"
		node2 = "docker.io/calico/node:v3.28.1"
		typha = "docker.io/calico/typha:v3.28.0"
		pause = "docker.io/rancher/mirrored-pause:3.6"
	)
	withArtifact := func(img Image, d digest.Digest, size int64) Image {
		img.Artifacts = []Artifact{{Kind: ArtifactSignature, Subject: img.Digest, Tag: ArtifactTag(img.Digest, ArtifactSignature), Digest: d, MediaType: ociManifest, Size: size}}
		return img
	}
	base := lock(
		group("calico", amd, single(node1, dg("1"), 1000), single(typha, dg("7"), 300)),
		group("core", amd, single(pause, dg("2"), 50)),
	)
	for _, c := range []struct {
		name     string
		old, new *Lock
		want     string
	}{
		{
			"a bump carries the new image, and the unchanged one's manifest and config; an unchanged group nothing",
			base,
			lock(group("calico", amd, single(node2, dg("4"), 1200), single(typha, dg("7"), 300)), group("core", amd, single(pause, dg("2"), 50))),
			"calico updated delta=1200 unsized=1\ntotal delta=1200 unsized=1 download=1200\n",
		},
		{
			"a new image in two groups is carried by each group's delta, downloaded once",
			base,
			lock(
				group("calico", amd, single(node1, dg("1"), 1000), single(typha, dg("7"), 300), single("docker.io/x/new:1", dg("5"), 80)),
				group("core", amd, single(pause, dg("2"), 50), single("docker.io/x/new:1", dg("5"), 80)),
			),
			"calico updated delta=80 unsized=2\ncore updated delta=80 unsized=1\ntotal delta=160 unsized=3 download=80\n",
		},
		{
			"an index travels whole, a platform OLD pins without its layers",
			lock(group("g", []string{"linux/amd64", "linux/arm64"}, multi(pause, dg("a"), "linux/amd64=b:500", "linux/arm64=d:400"))),
			lock(group("g", []string{"linux/amd64", "linux/arm64"}, multi(pause, dg("e"), "linux/amd64=b:500", "linux/arm64=f:450"))),
			"g updated delta=550 unsized=1\ntotal delta=550 unsized=1 download=550\n",
		},
		{
			"an image moved to another group: OLD's other group holds its layers; the removed group has no delta",
			base,
			lock(group("calico", amd, single(typha, dg("7"), 300)), group("core", amd, single(pause, dg("2"), 50), single(node1, dg("1"), 1000))),
			"calico updated delta=0 unsized=1\ncore updated delta=0 unsized=2\ntotal delta=0 unsized=3 download=0\n",
		},
		{
			"carried signatures travel whole, even an unchanged image's",
			lock(group("calico", amd, withArtifact(single(typha, dg("7"), 300), dg("8"), 40))),
			lock(group("calico", amd, withArtifact(single(typha, dg("7"), 300), dg("8"), 40), single(node2, dg("4"), 1200))),
			"calico updated delta=1240 unsized=1\ntotal delta=1240 unsized=1 download=1200\n",
		},
		{
			"a removed group carries nothing",
			base,
			lock(group("calico", amd, single(node1, dg("1"), 1000), single(typha, dg("7"), 300))),
			"core removed delta=0 unsized=0\ntotal delta=0 unsized=0 download=0\n",
		},
		{
			"no old lockfile: every byte",
			nil, base,
			"calico added delta=1300 unsized=0\ncore added delta=50 unsized=0\ntotal delta=1350 unsized=0 download=1350\n",
		},
	} {
		if got := deltaOf(Compare(c.old, c.new)); got != c.want {
			t.Errorf("%s:\n%s--- want\n%s", c.name, got, c.want)
		}
	}
}

// A chart bump shows as the chart's versions and the images it brings
// and drops; an unchanged chart is not listed.
func TestCompareCharts(t *testing.T) {
	d1, d2 := digest.FromString("v1"), digest.FromString("v2")
	same := Chart{Source: "oci://r/c/same", Name: "same", Version: "1.0.0", Digest: d1, Archive: d1, Inputs: d1}
	oldG := Group{Name: "g", Charts: []Chart{same, {Source: "https://r#web", Name: "web", Version: "1.2.0", Digest: d1, Archive: d1, Inputs: d1,
		Images: []ChartImage{{Ref: "r/web:1.2.0", Template: "web/templates/d.yaml"}, {Ref: "r/cache:7", Template: "web/charts/cache/templates/s.yaml"}}}}}
	newG := Group{Name: "g", Charts: []Chart{same, {Source: "https://r#web", Name: "web", Version: "1.3.0", Digest: d2, Archive: d2, Inputs: d1,
		Images: []ChartImage{{Ref: "r/web:1.3.0", Template: "web/templates/d.yaml"}, {Ref: "r/cache:7", Template: "web/charts/cache/templates/s.yaml"}}}}}
	d := Compare(&Lock{Version: 1, Groups: []Group{oldG}}, &Lock{Version: 1, Groups: []Group{newG}})
	if len(d.Groups) != 1 || len(d.Groups[0].Charts) != 1 {
		t.Fatalf("diff: %+v", d.Groups)
	}
	c := d.Groups[0].Charts[0]
	if c.Name != "web" || c.Change != Updated || c.OldVersion != "1.2.0" || c.NewVersion != "1.3.0" ||
		!slices.Equal(c.Brings, []string{"r/web:1.3.0"}) || !slices.Equal(c.Drops, []string{"r/web:1.2.0"}) {
		t.Errorf("chart diff: %+v", c)
	}
}
