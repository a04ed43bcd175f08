package main

import (
	"fmt"
	"math"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
)

// The many set (issue 20, "hundreds of images"): o.images images over shared
// bases, about o.blobs distinct linux/amd64 blobs, o.totalMB MiB of layer
// data. Every image's shape is a function of its slot, its number modulo
// manyPeriod, so the first manyPeriod images are the whole set in small:
// the same mix of kinds, bases, layer counts and sizes. That makes the
// 30-image spec of the linearity rows a fair sample of the 300.
//
// Image i (1-based), slot s = (i-1) mod 30:
//   - kind s mod 4, as pushKind: 1 Docker image, 2 OCI image, 3 OCI index,
//     0 Docker manifest list (indexes: the amd64 image and a small arm64 one),
//     so half of the images are multi-arch indexes;
//   - base family s mod 10: a chain of 3 shared layers (20 % of the bytes
//     over the 10 families);
//   - s mod 3 == 0: also a runtime, (s/3) mod 5, of 2 shared layers (10 %);
//   - own layers: one "app" layer with half of the image's own bytes, and
//     small ones sharing the other half; their number and the image's
//     bytes vary by slot around the means that give o.blobs and o.totalMB.
//
// The bases and runtimes are pushed once as images of their own
// (many/base-N, many/runtime-N, not in the set); every image of the set
// mounts their layers from there instead of uploading them again.
const (
	manyPeriod   = 30
	manyFamilies = 10
	manyRuntimes = 5
	// manyWorkers images are generated and pushed at once
	manyWorkers = 4
)

// manySlot is the shape of the images of one slot.
type manySlot struct {
	kind, family, runtime   int // runtime -1: none
	layerWeight, byteWeight float64
}

func manyShape(s int) manySlot {
	sl := manySlot{kind: s % 4, family: s % manyFamilies, runtime: -1}
	if s%3 == 0 {
		sl.runtime = (s / 3) % manyRuntimes
	}
	// permutations of 0..29 (7 and 11 are prime to 30): each weight has
	// mean 1 over a period
	sl.layerWeight = 0.25 + 1.5*float64((s*7)%manyPeriod)/float64(manyPeriod-1)
	sl.byteWeight = 0.2 + 1.6*float64((s*11)%manyPeriod)/float64(manyPeriod-1)
	return sl
}

// manyPlan is the number and sizes of every image's own layers.
type manyPlan struct {
	own [][]int64 // per image, its own layers' data sizes
}

// planMany splits the set's bytes and blobs over its images.
func planMany(images, blobs int, total int64) (manyPlan, error) {
	fixed := manyFamilies*3 + manyRuntimes*2 // shared layers
	for i := 0; i < images; i++ {
		fixed += 2 // image manifest and config
		if k := manyShape(i % manyPeriod).kind; k == 0 || k == 3 {
			fixed++ // the index
		}
	}
	if blobs < fixed+images {
		return manyPlan{}, fmt.Errorf("--blobs %d: %d images need at least %d", blobs, images, fixed+images)
	}
	meanLayers := float64(blobs-fixed) / float64(images)
	own := int64(float64(total) * 0.7)
	var p manyPlan
	for i := 0; i < images; i++ {
		sl := manyShape(i % manyPeriod)
		n := max(1, int(math.Round(meanLayers*sl.layerWeight)))
		budget := int64(float64(own) / float64(images) * sl.byteWeight)
		sizes := []int64{max(256, budget/2)}
		if n > 1 {
			wsum := 0
			for k := 1; k < n; k++ {
				wsum += 1 + (k*5)%9
			}
			for k := 1; k < n; k++ {
				sizes = append(sizes, max(256, budget/2*int64(1+(k*5)%9)/int64(wsum)))
			}
		}
		p.own = append(p.own, sizes)
	}
	return p, nil
}

type manyResult struct {
	ref, digest string
	obj         any
	err         error
	files       []*fileLayer
}

func (g *gen) many() error {
	n := g.o.images
	total := mb(g.o.totalMB)
	plan, err := planMany(n, g.o.blobs, total)
	if err != nil {
		return err
	}
	reg := g.o.registry + "/many/"
	// the shared layers, each pushed once in an image of its own
	shared := func(kind string, k int, share int64, parts []int64) ([]*fileLayer, error) {
		var ls []*fileLayer
		for j, pct := range parts {
			l, err := g.layer(fmt.Sprintf("many-%s-%d-%d", kind, k, j+1), max(1024, share*pct/100), false)
			if err != nil {
				return nil, err
			}
			ls = append(ls, l)
		}
		img, err := g.image(fmt.Sprintf("many-%s-%d", kind, k), true, ls)
		if err != nil {
			return nil, err
		}
		ref := fmt.Sprintf("%s%s-%d:v1", reg, kind, k)
		if _, err := fixtures.Push(g.ctx, ref, img, nil, "", ""); err != nil {
			return nil, err
		}
		from, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			l.mount = from
		}
		return ls, nil
	}
	bases := make([][]*fileLayer, manyFamilies)
	for k := range bases {
		if bases[k], err = shared("base", k, total*20/100/manyFamilies, []int64{60, 30, 10}); err != nil {
			return err
		}
	}
	runtimes := make([][]*fileLayer, manyRuntimes)
	for k := range runtimes {
		if runtimes[k], err = shared("runtime", k, total*10/100/manyRuntimes, []int64{70, 30}); err != nil {
			return err
		}
	}
	defer func() {
		for _, ls := range append(bases, runtimes...) {
			for _, l := range ls {
				os.Remove(l.path)
			}
		}
	}()

	// Images are generated and pushed manyWorkers at a time, and recorded
	// in their order, so refs-many.json does not depend on the timing.
	results := make([]chan manyResult, n)
	for i := range results {
		results[i] = make(chan manyResult, 1)
	}
	next := make(chan int)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(next)
		for i := 0; i < n; i++ {
			select {
			case next <- i:
			case <-done:
				return
			}
		}
	}()
	for w := 0; w < manyWorkers; w++ {
		go func() {
			for i := range next {
				results[i] <- g.manyImage(i, plan.own[i], bases, runtimes)
			}
		}()
	}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		r := <-results[i]
		if r.err != nil {
			return r.err
		}
		p, err := g.record(r.ref, r.digest, r.obj, true)
		if err != nil {
			return err
		}
		g.refs.Images = append(g.refs.Images, p)
		for _, l := range r.files {
			os.Remove(l.path)
		}
		if (i+1)%manyPeriod == 0 || i+1 == n {
			fmt.Fprintf(os.Stderr, "benchtool gen many: %d of %d images pushed, %d blobs so far, %.0fs\n", i+1, n, len(g.refs.Blobs), time.Since(t0).Seconds())
		}
	}
	return nil
}

// manyImage generates and pushes image i (0-based) of the many set.
func (g *gen) manyImage(i int, own []int64, bases, runtimes [][]*fileLayer) manyResult {
	sl := manyShape(i % manyPeriod)
	r := manyResult{ref: fmt.Sprintf("%s/many/team-%02d/app-%03d:v1", g.o.registry, i%15, i+1)}
	layers := append([]*fileLayer(nil), bases[sl.family]...)
	if sl.runtime >= 0 {
		layers = append(layers, runtimes[sl.runtime]...)
	}
	for k, size := range own {
		l, err := g.layer(fmt.Sprintf("many-%03d-layer-%02d", i+1, k+1), size, false)
		if err != nil {
			r.err = err
			return r
		}
		layers = append(layers, l)
		r.files = append(r.files, l)
	}
	name := fmt.Sprintf("many-%03d", i+1)
	if r.obj, r.err = g.buildKind(sl.kind, name, layers); r.err != nil {
		return r
	}
	r.digest, r.err = fixtures.Push(g.ctx, r.ref, r.obj, nil, "", "")
	if r.err != nil {
		r.err = fmt.Errorf("%s: %w", r.ref, r.err)
	}
	return r
}
