package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
)

// Pushed describes one image reference of a set's spec.
type Pushed struct {
	Ref       string `json:"ref"`
	Digest    string `json:"digest"`    // top-level manifest digest the registry serves (index or image)
	Config    string `json:"config"`    // config blob digest of the linux/amd64 image
	MediaType string `json:"mediaType"` // top-level media type
	Index     bool   `json:"index"`
	Layers    int    `json:"layers"` // layers of the linux/amd64 image
	Bytes     int64  `json:"bytes"`  // linux/amd64 closure: manifests + config + layers
}

// Blob is one blob of a set's linux/amd64 closure.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Bump is the one-image version bump of the k3s-like set: From is in the
// spec, To was pushed next to it with one changed layer. NewBlobs are the
// blobs (config and layers; manifests are not blobs a client GETs from
// /blobs/) of To's linux/amd64 image that no image of the set has.
type Bump struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	NewBlobs []string `json:"newBlobs"`
	// NewBytes is the size of every blob of To's linux/amd64 closure
	// that no image of the set has (NewBlobs and the manifest): what a
	// delta against the set must carry at the least (issue 17).
	NewBytes int64 `json:"newBytes"`
}

// Refs is what gen writes (refs-SET.json) and the other commands read.
type Refs struct {
	Set      string   `json:"set"`
	Registry string   `json:"registry"`
	Seed     string   `json:"seed"`
	Images   []Pushed `json:"images"`
	// Blobs is the distinct linux/amd64 closure of Images, in first-use
	// order: index and image manifests, configs and layers, each once.
	// The floor row cats exactly these files of the registry's storage.
	Blobs         []Blob `json:"blobs"`
	DistinctBytes int64  `json:"distinctBytes"` // sum of Blobs' sizes
	// Configs are the config digests of every image manifest the set and
	// its extra tags (Retag, Bump) can resolve to, any platform.
	Configs []string `json:"configs"`
	Big     *Pushed  `json:"big,omitempty"`   // big set: the same image with the big layer doubled
	Bump    *Bump    `json:"bump,omitempty"`  // k3s set
	Retag   []string `json:"retag,omitempty"` // k3s set: every image again under a new tag (same digests)
}

type genOpts struct {
	set, registry, seed, work, out string
	images, blobs                  int
	totalMB                        float64
	bigMB, compMB                  float64
	double                         bool
}

func runGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	var o genOpts
	fs.StringVar(&o.set, "set", "k3s", "image set: k3s, big, odd or many")
	fs.StringVar(&o.registry, "registry", "", "registry host:port (plain HTTP)")
	fs.IntVar(&o.images, "images", 20, "k3s, many: number of images")
	fs.IntVar(&o.blobs, "blobs", 10000, "many: about this many distinct linux/amd64 blobs")
	fs.Float64Var(&o.totalMB, "total-mb", 250, "k3s, odd, many: MiB of distinct linux/amd64 layer data")
	fs.Float64Var(&o.bigMB, "big-mb", 1024, "big: MiB of the incompressible layer")
	fs.Float64Var(&o.compMB, "comp-mb", 300, "big: MiB (uncompressed) of the compressible layer")
	fs.BoolVar(&o.double, "double", true, "big: also push the image with the big layer doubled")
	fs.StringVar(&o.seed, "seed", "airgap-bench-v2", "seed of all generated data")
	fs.StringVar(&o.work, "work", "", "directory for the generated layer files")
	fs.StringVar(&o.out, "out", "", "where to write refs-SET.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.registry == "" || o.work == "" || o.out == "" || o.images < 2 || o.totalMB <= 0 || o.bigMB <= 0 || o.compMB <= 0 {
		return fmt.Errorf("need --registry, --work, --out, --images >= 2, sizes > 0")
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	t0 := time.Now()
	g := &gen{o: o, ctx: context.Background(), refs: Refs{Set: o.set, Registry: o.registry, Seed: o.seed}, seen: map[string]bool{}, configs: map[string]bool{}}
	var err error
	switch o.set {
	case "k3s":
		err = g.k3s()
	case "big":
		err = g.big()
	case "odd":
		err = g.odd()
	case "many":
		err = g.many()
	default:
		err = fmt.Errorf("unknown set %q", o.set)
	}
	if err != nil {
		return err
	}
	for c := range g.configs {
		g.refs.Configs = append(g.refs.Configs, c)
	}
	sort.Strings(g.refs.Configs)
	b, err := json.MarshalIndent(g.refs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchtool gen %s: pushed %d references, %d distinct linux/amd64 blobs, %.1f MiB, in %.1fs\n",
		o.set, len(g.refs.Images), len(g.refs.Blobs), mib(g.refs.DistinctBytes), time.Since(t0).Seconds())
	return nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

type gen struct {
	o       genOpts
	ctx     context.Context
	refs    Refs
	seen    map[string]bool // blobs already in refs.Blobs
	configs map[string]bool
	// isBlobGet: configs and layers, which clients GET from /blobs/
	// (manifests they GET from /manifests/)
	isBlobGet map[string]bool
}

// mb converts MiB to bytes, at least 1 KiB.
func mb(m float64) int64 {
	n := int64(m * (1 << 20))
	if n < 1024 {
		n = 1024
	}
	return n
}

// k3s is a k3s-airgap-like set: o.images images over three shared base
// layers (one under every image, two under half each), 2 own layers each of
// varying size. Image i: i%4 == 1 Docker schema2 image, 2 OCI image, 3 OCI
// index (amd64 + a small arm64 child), 0 Docker manifest list. All layer data
// is incompressible. About o.totalMB MiB of distinct amd64 layer data.
func (g *gen) k3s() error {
	n := g.o.images
	total := mb(g.o.totalMB)
	baseAll, baseA, baseB := total/10, total*8/100, total*8/100
	own := total - baseAll - baseA - baseB
	weights := 0
	for i := 1; i <= n; i++ {
		weights += 2 * (i%5 + 1)
	}
	bases := map[string]*fileLayer{}
	for name, size := range map[string]int64{"base-all": baseAll, "base-a": baseA, "base-b": baseB} {
		l, err := g.layer(name, size, false)
		if err != nil {
			return err
		}
		bases[name] = l
	}
	for i := 1; i <= n; i++ {
		size := own * int64(i%5+1) / int64(weights)
		half := bases["base-a"]
		if i > n/2 {
			half = bases["base-b"]
		}
		layers := []*fileLayer{bases["base-all"], half}
		for l := 1; l <= 2; l++ {
			fl, err := g.layer(fmt.Sprintf("k3s-%02d-layer-%d", i, l), size, false)
			if err != nil {
				return err
			}
			layers = append(layers, fl)
		}
		repo := fmt.Sprintf("%s/k3s/app-%02d", g.o.registry, i)
		p, err := g.pushKind(i%4, repo+":v1", fmt.Sprintf("app-%02d", i), layers)
		if err != nil {
			return err
		}
		g.refs.Images = append(g.refs.Images, p)
		if i == 1 {
			// the version bump: image 1 with its last layer changed, as v2
			fl, err := g.layer("k3s-01-layer-2-v2", size, false)
			if err != nil {
				return err
			}
			before := map[string]bool{}
			for d := range g.seen {
				before[d] = true
			}
			bp, err := g.pushKind(i%4, repo+":v2", "app-01-v2", append(layers[:3:3], fl))
			if err != nil {
				return err
			}
			g.refs.Bump = &Bump{From: p.Ref, To: bp.Ref}
			// closure blobs of v2 the set had not seen; pushKind added
			// them to Blobs, which describes the spec (v1): take them out.
			var keep []Blob
			for _, b := range g.refs.Blobs {
				if before[b.Digest] {
					keep = append(keep, b)
					continue
				}
				delete(g.seen, b.Digest)
				g.refs.DistinctBytes -= b.Size
				g.refs.Bump.NewBytes += b.Size
				if g.isBlobGet[b.Digest] {
					g.refs.Bump.NewBlobs = append(g.refs.Bump.NewBlobs, b.Digest)
				}
			}
			g.refs.Blobs = keep
		}
		for _, fl := range layers[2:] {
			os.Remove(fl.path)
		}
	}
	for _, l := range bases {
		os.Remove(l.path)
	}
	// every image again under a new tag: the registry has all blobs, so the
	// push only uploads manifests
	for i, p := range g.refs.Images {
		ref := fmt.Sprintf("%s/k3s/app-%02d:v3", g.o.registry, i+1)
		if _, err := g.pushSame(p, ref); err != nil {
			return err
		}
		g.refs.Retag = append(g.refs.Retag, ref)
	}
	return nil
}

// big is one OCI image with an incompressible o.bigMB layer and a
// compressible layer of o.compMB (uncompressed), and with o.double the same
// image with the big layer twice the size (bench/big2x), for the flat-memory check.
func (g *gen) big() error {
	bl, err := g.layer("big", mb(g.o.bigMB), false)
	if err != nil {
		return err
	}
	cl, err := g.layerEntries("compressible", []entry{{name: "data/text.log", size: mb(g.o.compMB), text: true}}, compGzipFast, types.OCILayer)
	if err != nil {
		return err
	}
	p, err := g.pushKind(2, g.o.registry+"/big/app:v1", "big", []*fileLayer{bl, cl})
	if err != nil {
		return err
	}
	g.refs.Images = append(g.refs.Images, p)
	os.Remove(bl.path)
	if g.o.double {
		bl2, err := g.layer("big-double", 2*mb(g.o.bigMB), false)
		if err != nil {
			return err
		}
		img, err := g.image("big2x", true, []*fileLayer{bl2, cl})
		if err != nil {
			return err
		}
		bp, err := g.pushObj(g.o.registry+"/big/app2x:v1", img, false)
		if err != nil {
			return err
		}
		g.refs.Big = &bp
		os.Remove(bl2.path)
	}
	os.Remove(cl.path)
	return nil
}

// odd is 9 references of unusual shapes, o.totalMB MiB of layer data
// spread over them.
func (g *gen) odd() error {
	unit := mb(g.o.totalMB) / 100 // layer data is in hundredths of the total
	reg := g.o.registry + "/odd/"
	push := func(ref string, obj any) error {
		p, err := g.pushObj(reg+ref, obj, true)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		g.refs.Images = append(g.refs.Images, p)
		return nil
	}
	rnd := func(name string, size int64) (*fileLayer, error) { return g.layer(name, size, false) }

	// 1. OCI index: 3 platforms and a BuildKit attestation for amd64
	var amd, arm, armv7 []*fileLayer
	for _, sp := range []struct {
		dst  *[]*fileLayer
		name string
		size int64
	}{{&amd, "idx-amd64", 8 * unit}, {&arm, "idx-arm64", unit}, {&armv7, "idx-armv7", unit}} {
		l, err := rnd(sp.name, sp.size)
		if err != nil {
			return err
		}
		*sp.dst = []*fileLayer{l}
	}
	idx, err := g.index("odd-index", true, map[string][]*fileLayer{"linux/amd64": amd, "linux/arm64": arm, "linux/arm/v7": armv7})
	if err != nil {
		return err
	}
	if idx, err = fixtures.WithAttestation(idx, fixtures.LinuxAMD64); err != nil {
		return err
	}
	if err := push("oci-index:v1", idx); err != nil {
		return err
	}
	// 2. Docker manifest list, amd64 + arm64
	l1, err := rnd("list-amd64", 8*unit)
	if err != nil {
		return err
	}
	l2, err := rnd("list-arm64", unit)
	if err != nil {
		return err
	}
	list, err := g.index("odd-list", false, map[string][]*fileLayer{"linux/amd64": {l1}, "linux/arm64": {l2}})
	if err != nil {
		return err
	}
	if err := push("docker-list:v1", list); err != nil {
		return err
	}
	// 3. whiteouts: a file, a directory, then a layer deleting one and making the other opaque
	wl1, err := g.layerEntries("whiteout-1", []entry{{name: "etc/old.conf", size: 4 * unit}, {name: "var/cache/x/blob", size: 4 * unit}}, compGzipStored, types.DockerLayer)
	if err != nil {
		return err
	}
	wl2, err := g.layerEntries("whiteout-2", []entry{{name: "etc/.wh.old.conf"}, {name: "var/cache/x/.wh..wh..opq"}, {name: "var/cache/x/new", size: 2 * unit}}, compGzipStored, types.DockerLayer)
	if err != nil {
		return err
	}
	img, err := g.image("whiteouts", false, []*fileLayer{wl1, wl2})
	if err != nil {
		return err
	}
	if err := push("whiteouts:v1", img); err != nil {
		return err
	}
	// 4. 60 layers
	var many []*fileLayer
	for i := 1; i <= 60; i++ {
		l, err := rnd(fmt.Sprintf("many-%02d", i), 20*unit/60)
		if err != nil {
			return err
		}
		many = append(many, l)
	}
	if img, err = g.image("sixty", true, many); err != nil {
		return err
	}
	if err := push("sixty-layers:v1", img); err != nil {
		return err
	}
	// 5. zstd-compressed layers (OCI)
	var zl []*fileLayer
	for i := 1; i <= 3; i++ {
		l, err := g.layerEntries(fmt.Sprintf("zstd-%d", i), []entry{{name: fmt.Sprintf("data/zstd-%d.bin", i), size: 5 * unit}}, compZstd, types.OCILayerZStd)
		if err != nil {
			return err
		}
		zl = append(zl, l)
	}
	if img, err = g.image("zstd", true, zl); err != nil {
		return err
	}
	if err := push("zstd-layers:v1", img); err != nil {
		return err
	}
	// 6. compressible (text) layers, Docker
	tl, err := g.layerEntries("text", []entry{{name: "usr/share/doc/big.txt", size: 20 * unit, text: true}}, compGzipFast, types.DockerLayer)
	if err != nil {
		return err
	}
	if img, err = g.image("text", false, []*fileLayer{tl}); err != nil {
		return err
	}
	if err := push("text-layer:v1", img); err != nil {
		return err
	}
	// 7. the same layer twice in one manifest, plus an empty layer
	dl, err := rnd("dup", 5*unit)
	if err != nil {
		return err
	}
	el, err := g.layerEntries("empty", nil, compGzipStored, types.OCILayer)
	if err != nil {
		return err
	}
	if img, err = g.image("dup", true, []*fileLayer{dl, el, dl}); err != nil {
		return err
	}
	if err := push("dup-layer:v1", img); err != nil {
		return err
	}
	// 8. tiny single-layer image, 9. the same image under a second tag
	sl, err := rnd("tiny", 64<<10)
	if err != nil {
		return err
	}
	if img, err = g.image("tiny", true, []*fileLayer{sl}); err != nil {
		return err
	}
	if err := push("tiny:v1", img); err != nil {
		return err
	}
	return push("tiny:alias", img)
}

// pushKind builds and pushes layers as kind: 1 Docker image, 2 OCI image,
// 3 OCI index, 0 Docker manifest list (indexes get a small arm64 child).
func (g *gen) pushKind(kind int, ref, name string, layers []*fileLayer) (Pushed, error) {
	obj, err := g.buildKind(kind, name, layers)
	if err != nil {
		return Pushed{}, err
	}
	return g.pushObj(ref, obj, true)
}

// buildKind builds what pushKind pushes: a v1.Image or a v1.ImageIndex.
func (g *gen) buildKind(kind int, name string, layers []*fileLayer) (any, error) {
	if kind == 1 || kind == 2 {
		return g.image(name, kind == 2, layers)
	}
	arm, err := g.layer(name+"-arm64", 64<<10, false)
	if err != nil {
		return nil, err
	}
	return g.index(name, kind == 3, map[string][]*fileLayer{"linux/amd64": layers, "linux/arm64": {arm}})
}

var platforms = map[string]fixtures.Platform{
	"linux/amd64":  fixtures.LinuxAMD64,
	"linux/arm64":  fixtures.LinuxARM64,
	"linux/arm/v7": fixtures.LinuxARMv7,
}

func (g *gen) index(name string, oci bool, children map[string][]*fileLayer) (v1.ImageIndex, error) {
	var idx v1.ImageIndex = empty.Index
	if oci {
		idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	} else {
		idx = mutate.IndexMediaType(idx, types.DockerManifestList)
	}
	keys := make([]string, 0, len(children))
	for k := range children {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := platforms[k]
		img, err := g.platformImage(name+"-"+k, oci, p, children[k])
		if err != nil {
			return nil, err
		}
		child, err := fixtures.PlainDescriptor(img)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        child,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}},
		})
	}
	return idx, nil
}

func (g *gen) image(name string, oci bool, layers []*fileLayer) (v1.Image, error) {
	return g.platformImage(name, oci, fixtures.LinuxAMD64, layers)
}

func (g *gen) platformImage(name string, oci bool, p fixtures.Platform, layers []*fileLayer) (v1.Image, error) {
	img := empty.Image
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: fixtures.Epoch},
		Config: v1.Config{
			Env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd:    []string{"/bin/true"},
			Labels: map[string]string{"org.airgap-bundle.bench.seed": g.o.seed, "org.airgap-bundle.bench.image": name},
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		mt := l.mt
		if !oci && mt == types.OCILayer {
			mt = types.DockerLayer
		}
		if oci && mt == types.DockerLayer {
			mt = types.OCILayer
		}
		var layer v1.Layer = l
		if l.mount != nil {
			layer = &remote.MountableLayer{Layer: l, Reference: l.mount}
		}
		adds = append(adds, mutate.Addendum{
			Layer:     layer,
			MediaType: mt,
			History:   v1.History{Created: v1.Time{Time: fixtures.Epoch}, CreatedBy: "benchtool: " + l.name},
		})
	}
	return mutate.Append(img, adds...)
}

// pushObj pushes obj (v1.Image or v1.ImageIndex) to ref with fixtures.Push
// (which checks that the registry serves the pushed digest) and, with
// inSet, adds its linux/amd64 closure to the set's blobs.
func (g *gen) pushObj(ref string, obj any, inSet bool) (Pushed, error) {
	digest, err := fixtures.Push(g.ctx, ref, obj, nil, "", "")
	if err != nil {
		return Pushed{}, err
	}
	return g.record(ref, digest, obj, inSet)
}

// record describes obj, pushed to ref as digest, and with inSet adds its
// linux/amd64 closure to the set's blobs.
func (g *gen) record(ref, digest string, obj any, inSet bool) (Pushed, error) {
	p := Pushed{Ref: ref, Digest: digest}
	add := func(d string, size int64, blobGet bool) {
		p.Bytes += size
		if g.isBlobGet == nil {
			g.isBlobGet = map[string]bool{}
		}
		g.isBlobGet[d] = g.isBlobGet[d] || blobGet
		if inSet && !g.seen[d] {
			g.seen[d] = true
			g.refs.Blobs = append(g.refs.Blobs, Blob{Digest: d, Size: size})
			g.refs.DistinctBytes += size
		}
	}
	var img v1.Image
	switch o := obj.(type) {
	case v1.ImageIndex:
		p.Index = true
		mt, _ := o.MediaType()
		p.MediaType = string(mt)
		raw, err := o.RawManifest()
		if err != nil {
			return Pushed{}, err
		}
		add(digest, int64(len(raw)), false)
		im, err := o.IndexManifest()
		if err != nil {
			return Pushed{}, err
		}
		for _, d := range im.Manifests {
			if d.Platform == nil || d.Annotations[fixtures.AnnotationReferenceType] != "" {
				continue
			}
			child, err := o.Image(d.Digest)
			if err != nil {
				return Pushed{}, err
			}
			if cn, err := child.ConfigName(); err == nil {
				g.configs[cn.String()] = true
			}
			if d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" && d.Platform.Variant == "" {
				img = child
			}
		}
		if img == nil {
			return Pushed{}, fmt.Errorf("%s: no linux/amd64 child", ref)
		}
	case v1.Image:
		img = o
		mt, _ := o.MediaType()
		p.MediaType = string(mt)
	default:
		return Pushed{}, fmt.Errorf("cannot push %T", obj)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return Pushed{}, err
	}
	md, _ := img.Digest()
	add(md.String(), int64(len(raw)), false)
	cn, err := img.ConfigName()
	if err != nil {
		return Pushed{}, err
	}
	rc, err := img.RawConfigFile()
	if err != nil {
		return Pushed{}, err
	}
	p.Config = cn.String()
	g.configs[p.Config] = true
	add(p.Config, int64(len(rc)), true)
	m, err := img.Manifest()
	if err != nil {
		return Pushed{}, err
	}
	for _, l := range m.Layers {
		add(l.Digest.String(), l.Size, true)
	}
	p.Layers = len(m.Layers)
	return p, nil
}

// pushSame pushes the object p describes again under ref, by copying the
// manifest the registry serves (its blobs are all there already).
func (g *gen) pushSame(p Pushed, ref string) (string, error) {
	src, err := name.ParseReference(p.Ref, name.Insecure)
	if err != nil {
		return "", err
	}
	dst, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", err
	}
	desc, err := remote.Get(src, remote.WithContext(g.ctx))
	if err != nil {
		return "", err
	}
	if desc.Digest.String() != p.Digest {
		return "", fmt.Errorf("%s: registry serves %s, pushed %s", p.Ref, desc.Digest, p.Digest)
	}
	return desc.Digest.String(), remote.Put(dst, desc, remote.WithContext(g.ctx))
}

// layer is an incompressible layer holding one file, data/NAME.bin.
func (g *gen) layer(name string, size int64, _ bool) (*fileLayer, error) {
	return g.layerEntries(name, []entry{{name: "data/" + name + ".bin", size: size}}, compGzipStored, types.DockerLayer)
}

// fileLayer is a layer stored in a file, digests computed while it was
// written, so that layers of any size never sit in memory.
type fileLayer struct {
	name, path     string
	size           int64
	digest, diffID v1.Hash
	mt             types.MediaType
	comp           compression
	// mount, when set, is an image that has the layer already: a push
	// mounts it from there instead of uploading it again (many set)
	mount name.Reference
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	switch l.comp {
	case compZstd:
		zr, err := zstd.NewReader(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		r = zr.IOReadCloser()
	default:
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		r = zr
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

type compression int

const (
	compGzipStored compression = iota // gzip of stored deflate blocks: for incompressible data
	compGzipFast                      // gzip -1: for compressible data
	compZstd
)

// entry is one file of a layer: size bytes of ChaCha8 output (or, with
// text, compressible log-like lines) seeded from the seed and its name. A
// name whose base starts with .wh. is a whiteout (size 0).
type entry struct {
	name string
	size int64
	text bool
}

// layerEntries writes a layer of entries (and their parent directories).
// The tar headers are fixed and the compressed stream carries no name or
// time, so the digest depends only on the seed, the entries and the Go
// release's compressors.
func (g *gen) layerEntries(name string, entries []entry, comp compression, mt types.MediaType) (*fileLayer, error) {
	f, err := os.CreateTemp(g.o.work, "layer-*.tmp")
	if err != nil {
		return nil, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	zSum, tarSum, count := sha256.New(), sha256.New(), &countingWriter{}
	dst := io.MultiWriter(f, zSum, count)
	var zw io.WriteCloser
	switch comp {
	case compZstd:
		zw, err = zstd.NewWriter(dst, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	case compGzipFast:
		zw, err = gzip.NewWriterLevel(dst, gzip.BestSpeed)
	default:
		zw, err = gzip.NewWriterLevel(dst, gzip.NoCompression)
	}
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, tarSum))
	dirs := map[string]bool{}
	buf := make([]byte, 1<<20)
	for _, e := range entries {
		var hs []*tar.Header
		for d := filepath.Dir(e.name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			hs = append([]*tar.Header{{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}}, hs...)
		}
		hs = append(hs, &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: e.size})
		for _, h := range hs {
			h.ModTime, h.Format, h.Uname, h.Gname = fixtures.Epoch, tar.FormatUSTAR, "root", "root"
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
		}
		rng := rand.NewChaCha8(sha256.Sum256([]byte(g.o.seed + "\x00" + name + "\x00" + e.name)))
		for left := e.size; left > 0; {
			n := int64(len(buf))
			if left < n {
				n = left
			}
			if e.text {
				fillText(rng, buf[:n])
			} else {
				_, _ = rng.Read(buf[:n])
			}
			if _, err := tw.Write(buf[:n]); err != nil {
				return nil, err
			}
			left -= n
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	l := &fileLayer{name: name, size: count.n, digest: hashOf(zSum), diffID: hashOf(tarSum), mt: mt, comp: comp}
	l.path = filepath.Join(g.o.work, l.digest.Hex+".layer")
	if err := os.Rename(f.Name(), l.path); err != nil {
		return nil, err
	}
	return l, nil
}

var words = []string{"INFO", "WARN", "DEBUG", "request", "served", "kube-proxy", "etcd", "coredns", "in", "ms", "ok",
	"GET", "/api/v1/namespaces", "default", "pod", "node", "ready", "sync", "lease", "renewed", "watch", "closed"}

// fillText fills b with log-like lines: compressible about 3.5:1 by gzip -1.
func fillText(rng *rand.ChaCha8, b []byte) {
	i := 0
	var r [8]byte
	line := make([]byte, 0, 256)
	two := func(l []byte, v byte) []byte { return append(l, '0'+v/10, '0'+v%10) }
	for i < len(b) {
		_, _ = rng.Read(r[:])
		line = append(line[:0], "2020-01-01T00:"...)
		line = two(line, r[0]%60)
		line = append(line, ':')
		line = two(line, r[1]%60)
		line = append(line, '.')
		line = strconv.AppendInt(line, int64(r[2])*4%1000, 10)
		line = append(line, "Z "...)
		for k := 3; k < 8; k++ {
			line = append(line, words[int(r[k])%len(words)]...)
			line = append(line, ' ')
		}
		line = strconv.AppendInt(line, int64(r[3])*int64(r[4]), 10)
		line = append(line, '\n')
		i += copy(b[i:], line)
	}
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}
