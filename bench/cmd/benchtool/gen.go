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
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
)

// Pushed describes one image the benchmark pushed.
type Pushed struct {
	Ref       string `json:"ref"`
	Digest    string `json:"digest"`    // manifest digest the registry serves
	Config    string `json:"config"`    // config blob digest
	MediaType string `json:"mediaType"` // manifest media type
	Layers    int    `json:"layers"`
	Bytes     int64  `json:"bytes"` // compressed layer bytes the manifest references
}

// Refs is what gen writes (refs.json) and inspect reads.
type Refs struct {
	Registry string   `json:"registry"`
	Seed     string   `json:"seed"`
	Images   []Pushed `json:"images"`
	// DistinctBytes counts every layer blob once (the shared base once);
	// ReferencedBytes counts it once per image that lists it.
	DistinctBytes   int64   `json:"distinctBytes"`
	ReferencedBytes int64   `json:"referencedBytes"`
	Big             *Pushed `json:"big,omitempty"`
}

func runGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	registry := fs.String("registry", "", "registry host:port (plain HTTP)")
	images := fs.Int("images", 8, "number of images")
	imageMB := fs.Int("image-mb", 40, "MiB of layer data per image (1 shared base layer + 3 own layers, a quarter each)")
	bigMB := fs.Int("big-mb", 512, "MiB of the single layer of the extra big image (0: none)")
	seed := fs.String("seed", "airgap-bench-v1", "seed of all generated data")
	work := fs.String("work", "", "directory for the generated layer files")
	out := fs.String("out", "", "where to write refs.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *registry == "" || *work == "" || *out == "" || *images < 1 || *imageMB < 4 || *bigMB < 0 {
		return fmt.Errorf("need --registry, --work, --out, --images >= 1, --image-mb >= 4, --big-mb >= 0")
	}
	if err := os.MkdirAll(*work, 0o755); err != nil {
		return err
	}
	ctx := context.Background()
	t0 := time.Now()
	refs := Refs{Registry: *registry, Seed: *seed}

	quarter := int64(*imageMB) << 20 / 4
	base, err := writeLayer(*work, *seed, "base", quarter)
	if err != nil {
		return err
	}
	refs.DistinctBytes += base.size
	for i := 1; i <= *images; i++ {
		layers := []*fileLayer{base}
		for l := 1; l <= 3; l++ {
			fl, err := writeLayer(*work, *seed, fmt.Sprintf("app-%02d-layer-%d", i, l), quarter)
			if err != nil {
				return err
			}
			refs.DistinctBytes += fl.size
			layers = append(layers, fl)
		}
		// Alternate the two manifest formats registries serve today:
		// odd images Docker schema2, even images OCI.
		oci := i%2 == 0
		p, err := buildAndPush(ctx, fmt.Sprintf("%s/bench/app-%02d:v1", *registry, i), *seed, oci, layers)
		if err != nil {
			return err
		}
		refs.ReferencedBytes += p.Bytes
		refs.Images = append(refs.Images, p)
		// The layer files are no longer needed once the registry has them.
		for _, fl := range layers[1:] {
			os.Remove(fl.path)
		}
	}
	os.Remove(base.path)
	if *bigMB > 0 {
		fl, err := writeLayer(*work, *seed, "big", int64(*bigMB)<<20)
		if err != nil {
			return err
		}
		p, err := buildAndPush(ctx, *registry+"/bench/big:v1", *seed, true, []*fileLayer{fl})
		if err != nil {
			return err
		}
		os.Remove(fl.path)
		refs.Big = &p
	}
	b, err := json.MarshalIndent(refs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchtool gen: pushed %d images (%.1f MiB distinct layer data, %.1f MiB referenced)%s in %.1fs\n",
		len(refs.Images), mib(refs.DistinctBytes), mib(refs.ReferencedBytes), bigNote(refs.Big), time.Since(t0).Seconds())
	return nil
}

func bigNote(p *Pushed) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf(" + %s (%.1f MiB layer)", p.Ref, mib(p.Bytes))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// buildAndPush assembles a linux/amd64 image from layers and pushes it with
// the test suite's fixtures.Push (which checks that the registry then serves
// exactly the pushed digest).
func buildAndPush(ctx context.Context, ref, seed string, oci bool, layers []*fileLayer) (Pushed, error) {
	img := empty.Image
	layerType := types.DockerLayer
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
		layerType = types.OCILayer
	}
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      v1.Time{Time: fixtures.Epoch},
		Config: v1.Config{
			Env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd:    []string{"/bin/true"},
			Labels: map[string]string{"org.airgap-bundle.bench.seed": seed, "org.airgap-bundle.bench.ref": ref},
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return Pushed{}, err
	}
	adds := make([]mutate.Addendum, 0, len(layers))
	var total int64
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:     l,
			MediaType: layerType,
			History:   v1.History{Created: v1.Time{Time: fixtures.Epoch}, CreatedBy: "benchtool: " + l.name},
		})
		total += l.size
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return Pushed{}, err
	}
	digest, err := fixtures.Push(ctx, ref, img, nil, "", "")
	if err != nil {
		return Pushed{}, err
	}
	cfg, err := img.ConfigName()
	if err != nil {
		return Pushed{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return Pushed{}, err
	}
	return Pushed{Ref: ref, Digest: digest, Config: cfg.String(), MediaType: string(mt), Layers: len(layers), Bytes: total}, nil
}

// fileLayer is a gzip tar layer stored in a file, digests computed while it
// was written, so that layers of any size never sit in memory.
type fileLayer struct {
	name, path     string
	size           int64
	digest, diffID v1.Hash
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// writeLayer writes a layer holding one file, data/NAME.bin, of size bytes
// of ChaCha8 output seeded from seed and name: incompressible, and the same
// bytes on every run. The tar headers are fixed and the gzip header carries
// no name or time, so the layer digest depends only on seed, name, size and
// the Go release's compress/flate.
func writeLayer(dir, seed, name string, size int64) (*fileLayer, error) {
	f, err := os.CreateTemp(dir, "layer-*.tmp")
	if err != nil {
		return nil, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	gzSum, tarSum, count := sha256.New(), sha256.New(), &countingWriter{}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, gzSum, count), gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, tarSum))
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "data/" + name + ".bin", Mode: 0o644, Size: size},
	} {
		h.ModTime, h.Format, h.Uname, h.Gname = fixtures.Epoch, tar.FormatUSTAR, "root", "root"
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	rng := rand.NewChaCha8(sha256.Sum256([]byte(seed + "\x00" + name)))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		_, _ = rng.Read(buf[:n])
		if _, err := tw.Write(buf[:n]); err != nil {
			return nil, err
		}
		left -= n
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
	l := &fileLayer{name: name, size: count.n, digest: hashOf(gzSum), diffID: hashOf(tarSum)}
	l.path = filepath.Join(dir, l.digest.Hex+".tar.gz")
	if err := os.Rename(f.Name(), l.path); err != nil {
		return nil, err
	}
	return l, nil
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// runRefs prints, for run.sh, the image references of refs.json one a line,
// or with --big the big image's reference (nothing if there is none), or
// with --sizes shell assignments of the data sizes in MiB.
func runRefs(args []string) error {
	fs := flag.NewFlagSet("refs", flag.ContinueOnError)
	big := fs.Bool("big", false, "print the big image's reference")
	sizes := fs.Bool("sizes", false, "print DISTINCT_MIB=, REFERENCED_MIB= and LAYER_MIB=")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: benchtool refs [--big | --sizes] refs.json")
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var refs Refs
	if err := json.Unmarshal(b, &refs); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	switch {
	case *big:
		if refs.Big != nil {
			fmt.Println(refs.Big.Ref)
		}
	case *sizes:
		var layer float64
		if len(refs.Images) > 0 {
			layer = mib(refs.Images[0].Bytes) / float64(refs.Images[0].Layers)
		}
		fmt.Printf("DISTINCT_MIB=%.1f REFERENCED_MIB=%.1f LAYER_MIB=%.1f\n", mib(refs.DistinctBytes), mib(refs.ReferencedBytes), layer)
	default:
		for _, p := range refs.Images {
			fmt.Println(p.Ref)
		}
	}
	return nil
}
