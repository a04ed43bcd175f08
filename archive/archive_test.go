package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airgap-bundle/airgap-bundle/image"
)

var testTime = time.Unix(1700000000, 0)

type tarEntry struct {
	hdr  *tar.Header
	body []byte
}

func readTar(t *testing.T, b []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{hdr, body})
	}
}

func writeArchive(t *testing.T, images []Image, blobs Blobs, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, images, blobs, opts); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

// blobsOf lists every blob digest of images.
func blobsOf(images []Image) []digest.Digest {
	set := map[digest.Digest]bool{}
	for _, img := range images {
		set[img.Top.Digest] = true
		for _, m := range img.Manifests {
			set[m.Digest] = true
			set[m.Config.Digest] = true
			for _, l := range m.Layers {
				set[l.Digest] = true
			}
		}
	}
	var out []digest.Digest
	for d := range set {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

func TestWriteEntries(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name   string
		images []Image
		repos  bool
	}{
		{"all", w.images, true},
		{"one image", w.images[:1], true},
		{"shared layers", w.images[1:3], true},
		{"digest only", w.images[3:4], false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			blobs := w.blobs.clone() // fresh open counts
			out := writeArchive(t, tc.images, blobs, Options{ModTime: testTime})
			entries := readTar(t, out)

			want := []string{"blobs/", "blobs/sha256/"}
			for _, d := range blobsOf(tc.images) {
				want = append(want, "blobs/sha256/"+d.Encoded())
			}
			want = append(want, "index.json", "manifest.json", "oci-layout")
			if tc.repos {
				want = append(want, "repositories")
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.hdr.Name)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("entries:\n got %q\nwant %q", got, want)
			}

			for _, e := range entries {
				h := e.hdr
				if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
					t.Errorf("%s: owner %d/%d %q/%q", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
				}
				if !h.ModTime.Equal(testTime) {
					t.Errorf("%s: mtime %v", h.Name, h.ModTime)
				}
				if len(h.PAXRecords) != 0 || h.Format != tar.FormatUSTAR {
					t.Errorf("%s: format %v, PAX %v", h.Name, h.Format, h.PAXRecords)
				}
				switch {
				case strings.HasSuffix(h.Name, "/"):
					if h.Typeflag != tar.TypeDir || h.Mode != 0o755 {
						t.Errorf("%s: type %c mode %o, want directory 0755", h.Name, h.Typeflag, h.Mode)
					}
				default:
					if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Linkname != "" {
						t.Errorf("%s: type %c mode %o link %q, want regular 0644", h.Name, h.Typeflag, h.Mode, h.Linkname)
					}
				}
				if hex, ok := strings.CutPrefix(h.Name, "blobs/sha256/"); ok && hex != "" {
					d := digest.NewDigestFromEncoded(digest.SHA256, hex)
					if !bytes.Equal(e.body, w.blobs.data[d]) {
						t.Errorf("%s: content differs from the blob", h.Name)
					}
					if n := blobs.opens[d]; n != 1 {
						t.Errorf("%s: opened %d times", h.Name, n)
					}
				}
			}
			if got := string(files(t, out)["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
				t.Errorf("oci-layout = %s", got)
			}
		})
	}
}

// files returns the metadata files of an uncompressed archive by name.
func files(t *testing.T, out []byte) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, e := range readTar(t, out) {
		if !strings.HasPrefix(e.hdr.Name, "blobs/") {
			m[e.hdr.Name] = e.body
		}
	}
	return m
}

func TestWriteIndexJSON(t *testing.T) {
	w := newWorld(t)
	f := files(t, writeArchive(t, w.images, w.blobs, Options{}))
	var idx ocispec.Index
	if err := json.Unmarshal(f["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("index.json: schemaVersion %d mediaType %q", idx.SchemaVersion, idx.MediaType)
	}
	type row struct {
		top        image.Descriptor
		name, tag  string
		hasRefName bool
	}
	want := []row{
		{w.pause.Descriptor, "docker.io/rancher/mirrored-pause:3.6", "3.6", true},
		{w.pause.Descriptor, "docker.io/rancher/mirrored-pause@" + w.pause.Digest.String(), "", false},
		{w.busybox.Descriptor, "docker.io/library/busybox:1.36", "1.36", true},
		{w.busybox.Descriptor, "docker.io/library/busybox:latest", "latest", true},
		{w.index, "registry.k8s.io/pause:3.9", "3.9", true},
		{w.digestOnly.Descriptor, "quay.io/x/y@" + w.digestOnly.Digest.String(), "", false},
	}
	if len(idx.Manifests) != len(want) {
		t.Fatalf("index.json has %d entries, want %d: %s", len(idx.Manifests), len(want), f["index.json"])
	}
	for i, d := range idx.Manifests {
		r := want[i]
		got := image.Descriptor{MediaType: image.MediaType(d.MediaType), Digest: d.Digest, Size: d.Size}
		if got != r.top {
			t.Errorf("entry %d: descriptor %+v, want %+v", i, got, r.top)
		}
		if d.Annotations[AnnotationImageName] != r.name {
			t.Errorf("entry %d: %s = %q, want %q", i, AnnotationImageName, d.Annotations[AnnotationImageName], r.name)
		}
		tag, ok := d.Annotations[AnnotationRefName]
		if ok != r.hasRefName || tag != r.tag {
			t.Errorf("entry %d: ref.name = %q (present %v), want %q (present %v)", i, tag, ok, r.tag, r.hasRefName)
		}
		if len(d.Annotations) != 1+btoi(r.hasRefName) || d.Platform != nil {
			t.Errorf("entry %d: extra fields: %+v", i, d)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestWriteManifestJSON(t *testing.T) {
	w := newWorld(t)
	f := files(t, writeArchive(t, w.images, w.blobs, Options{}))
	raw := f["manifest.json"]
	var items []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		t.Fatal(err)
	}
	paths := func(ds ...image.Descriptor) []string {
		var out []string
		for _, d := range ds {
			out = append(out, "blobs/sha256/"+d.Digest.Encoded())
		}
		return out
	}
	want := []struct {
		m        image.Manifest
		repoTags []string
	}{
		{w.pause, []string{"docker.io/rancher/mirrored-pause:3.6"}},
		{w.busybox, []string{"docker.io/library/busybox:1.36", "docker.io/library/busybox:latest"}},
		{w.arm64, []string{"registry.k8s.io/pause:3.9"}}, // first included platform
		{w.digestOnly, nil},
	}
	if len(items) != len(want) {
		t.Fatalf("manifest.json has %d entries, want %d: %s", len(items), len(want), raw)
	}
	for i, it := range items {
		if it.Config != paths(want[i].m.Config)[0] {
			t.Errorf("entry %d: Config %s, want %s", i, it.Config, paths(want[i].m.Config)[0])
		}
		if !slices.Equal(it.Layers, paths(want[i].m.Layers...)) {
			t.Errorf("entry %d: Layers %q, want %q", i, it.Layers, paths(want[i].m.Layers...))
		}
		if !slices.Equal(it.RepoTags, want[i].repoTags) {
			t.Errorf("entry %d: RepoTags %q, want %q", i, it.RepoTags, want[i].repoTags)
		}
	}
	if !bytes.Contains(raw, []byte(`"RepoTags":null`)) {
		t.Errorf("digest-only image should have RepoTags null, as docker save writes it: %s", raw)
	}
	if bytes.Contains(raw, []byte("LayerSources")) || bytes.Contains(raw, []byte("Parent")) {
		t.Errorf("manifest.json has LayerSources or Parent: %s", raw)
	}

	var repos map[string]map[string]string
	if err := json.Unmarshal(f["repositories"], &repos); err != nil {
		t.Fatal(err)
	}
	top := func(m image.Manifest) string { return m.Layers[len(m.Layers)-1].Digest.Encoded() }
	wantRepos := map[string]map[string]string{
		"rancher/mirrored-pause": {"3.6": top(w.pause)},
		"busybox":                {"1.36": top(w.busybox), "latest": top(w.busybox)},
		"registry.k8s.io/pause":  {"3.9": top(w.arm64)},
	}
	gotJSON, _ := json.Marshal(repos)
	wantJSON, _ := json.Marshal(wantRepos)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("repositories = %s, want %s", gotJSON, wantJSON)
	}
}

func TestWriteModTime(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		in, want time.Time
	}{
		{time.Time{}, time.Unix(0, 0)},
		{time.Unix(0, 0), time.Unix(0, 0)},
		{time.Unix(1700000000, 999), time.Unix(1700000000, 0)},
	} {
		for _, e := range readTar(t, writeArchive(t, w.images[:1], w.blobs, Options{ModTime: tc.in})) {
			if !e.hdr.ModTime.Equal(tc.want) {
				t.Errorf("ModTime %v: %s has %v, want %v", tc.in, e.hdr.Name, e.hdr.ModTime, tc.want)
			}
		}
	}
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, w.images, w.blobs, Options{ModTime: time.Unix(-1, 0)}); err == nil {
		t.Error("a time before the epoch was accepted")
	}
}

func decompress(t *testing.T, c Compression, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch c {
	case None:
		return b
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case Zstd:
		zr, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderMaxWindow(32<<20))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompressing %s: %v", c, err)
	}
	return out
}

func TestWriteDeterministic(t *testing.T) {
	w := newWorld(t)
	plain := writeArchive(t, w.images, w.blobs, Options{ModTime: testTime})
	for _, c := range []Compression{None, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			a := writeArchive(t, w.images, w.blobs, Options{Compression: c, ModTime: testTime})
			b := writeArchive(t, w.images, newWorld(t).blobs, Options{Compression: c, ModTime: testTime})
			if !bytes.Equal(a, b) {
				t.Fatal("two writes of the same images differ")
			}
			if got := decompress(t, c, a); !bytes.Equal(got, plain) {
				t.Fatalf("%s archive does not decompress to the plain tar", c)
			}
			switch c {
			case Gzip:
				// ID1 ID2 CM FLG MTIME(4) XFL OS: no name/comment flags, mtime 0.
				if a[3] != 0 || !bytes.Equal(a[4:8], []byte{0, 0, 0, 0}) {
					t.Errorf("gzip header has flags %#x mtime % x", a[3], a[4:8])
				}
			case Zstd:
				var h zstd.Header
				if err := h.Decode(a); err != nil {
					t.Fatal(err)
				}
				if !h.SingleSegment && (h.WindowSize == 0 || h.WindowSize > ZstdWindowSize) {
					t.Errorf("zstd window %d", h.WindowSize)
				}
			}
		})
	}
}

// TestZstdWindow writes an archive bigger than the window, and reads it with
// decoders limited to 8 and 32 MiB: every frame needs at most 8 MiB of
// window (a single-segment frame, as EncodeAll writes, needs its content
// size).
func TestZstdWindow(t *testing.T) {
	blobs := newMemBlobs()
	big := testLayer(t, gzTar(t, "big", string(randomBytes(1, 10<<20))), "application/vnd.docker.image.rootfs.diff.tar.gzip")
	_, m := testImage(t, blobs, false, "amd64", big)
	images := []Image{{Names: []string{"example.com/big:1"}, Top: m.Descriptor, Manifests: []image.Manifest{m}}}
	plain := writeArchive(t, images, blobs, Options{})
	out := writeArchive(t, images, blobs, Options{Compression: Zstd})

	var h zstd.Header
	if err := h.Decode(out); err != nil {
		t.Fatal(err)
	}
	window := h.WindowSize
	if h.SingleSegment {
		window = h.FrameContentSize
	}
	if window == 0 || window > 8<<20 {
		t.Fatalf("zstd frame: single segment %v, window %d, content %d; want a window of at most 8 MiB", h.SingleSegment, h.WindowSize, h.FrameContentSize)
	}
	if len(out) < 10<<20 {
		t.Fatalf("archive of %d bytes: the test needs one bigger than the window", len(out))
	}
	for _, limit := range []uint64{8 << 20, 32 << 20} {
		zr, err := zstd.NewReader(bytes.NewReader(out), zstd.WithDecoderMaxWindow(limit), zstd.WithDecoderMaxMemory(limit))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		zr.Close()
		if err != nil {
			t.Fatalf("decoding with a %d MiB window limit: %v", limit>>20, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("decoded archive differs from the plain tar")
		}
	}
}

// The compressed bytes must not depend on the machine's core count.
func TestCompressionIndependentOfCores(t *testing.T) {
	// Half incompressible, half repetitive: several zstd jobs and gzip
	// blocks.
	data := append(randomBytes(2, 3<<20), bytes.Repeat([]byte("airgap layer "), 2000000)...)
	writers := map[string]func(io.Writer, int) (io.WriteCloser, error){"zstd": newZstdWriter, "gzip": newGzipWriter}
	for name, newWriter := range writers {
		var outs [][]byte
		for _, n := range []int{1, 2, 4, 8} {
			var buf bytes.Buffer
			zw, err := newWriter(&buf, n)
			if err != nil {
				t.Fatal(err)
			}
			for p := data; len(p) > 0; {
				k := min(len(p), 50000)
				if _, err := zw.Write(p[:k]); err != nil {
					t.Fatal(err)
				}
				p = p[k:]
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			outs = append(outs, buf.Bytes())
		}
		for i := 1; i < len(outs); i++ {
			if !bytes.Equal(outs[0], outs[i]) {
				t.Errorf("%s output differs between %d and %d cores", name, 1, []int{1, 2, 4, 8}[i])
			}
		}
	}
}

func TestWriteBadBlob(t *testing.T) {
	w := newWorld(t)
	layer := w.pause.Layers[1]
	real := w.blobs.data[layer.Digest]
	corrupt := bytes.Clone(real)
	corrupt[len(corrupt)-1] ^= 0xff
	cases := []struct {
		name    string
		content []byte
		want    string
	}{
		{"short", real[:len(real)-1], "shorter"},
		{"empty", []byte{}, "shorter"},
		{"long", append(bytes.Clone(real), 0), "longer"},
		{"corrupt", corrupt, "does not match"},
	}
	for _, tc := range cases {
		for _, c := range []Compression{None, Gzip, Zstd} {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				var buf bytes.Buffer
				err := Write(context.Background(), &buf, w.images[:1], w.blobs.withBad(layer.Digest, tc.content), Options{Compression: c})
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), layer.Digest.String()) {
					t.Fatalf("err = %v, want one saying %q about %s", err, tc.want, layer.Digest)
				}
			})
		}
	}
	t.Run("missing", func(t *testing.T) {
		b := w.blobs.clone()
		delete(b.data, layer.Digest)
		var buf bytes.Buffer
		if err := Write(context.Background(), &buf, w.images[:1], b, Options{}); err == nil || !strings.Contains(err.Error(), layer.Digest.String()) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var buf bytes.Buffer
		if err := Write(ctx, &buf, w.images, w.blobs, Options{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestWriteInvalid(t *testing.T) {
	w := newWorld(t)
	pause := w.images[0]
	with := func(f func(*Image)) []Image {
		img := pause
		img.Manifests = slices.Clone(pause.Manifests)
		f(&img)
		return []Image{img}
	}
	other := w.images[1]
	cases := []struct {
		name   string
		images []Image
		want   string
	}{
		{"no images", nil, "no images"},
		{"no names", with(func(i *Image) { i.Names = nil }), "no names"},
		{"bad name", with(func(i *Image) { i.Names = []string{"UPPER/case:1"} }), "UPPER"},
		{"tag and digest", with(func(i *Image) { i.Names = []string{"x/y:1@" + w.pause.Digest.String()} }), "both a tag and a digest"},
		{"no manifests", with(func(i *Image) { i.Manifests = nil }), "no platform manifests"},
		{"manifest top mismatch", with(func(i *Image) { i.Manifests = []image.Manifest{w.busybox} }), "exactly that manifest"},
		{"two manifests under a manifest", with(func(i *Image) { i.Manifests = []image.Manifest{w.pause, w.busybox} }), "exactly that manifest"},
		{"top media type", with(func(i *Image) { i.Top.MediaType = "text/plain"; i.Manifests[0].MediaType = "text/plain" }), "not an image manifest"},
		{"bad digest", with(func(i *Image) { i.Manifests[0].Config.Digest = "sha256:zz" }), "digest"},
		{"sha512", with(func(i *Image) { i.Manifests[0].Config.Digest = digest.SHA512.FromString("x") }), "only sha256"},
		{"negative size", with(func(i *Image) { i.Manifests[0].Layers = []image.Descriptor{{Digest: digest.FromString("x"), Size: -1}} }), "negative size"},
		{"size conflict", with(func(i *Image) {
			l := i.Manifests[0].Layers[0]
			l.Size++
			i.Manifests[0].Layers = []image.Descriptor{i.Manifests[0].Layers[0], l}
		}), "has size"},
		{"index lists itself", []Image{{Names: []string{"a:1"}, Top: w.index, Manifests: []image.Manifest{{Descriptor: image.Descriptor{MediaType: image.OCIManifest, Digest: w.index.Digest, Size: w.index.Size}}}}}, "cannot also be"},
		{"same name, two images", []Image{pause, {Names: []string{"rancher/mirrored-pause:3.6"}, Top: other.Top, Manifests: other.Manifests}}, "also names"},
		{"same top, other platforms", []Image{
			{Names: []string{"a:1"}, Top: w.index, Manifests: []image.Manifest{w.amd64}},
			{Names: []string{"b:1"}, Top: w.index, Manifests: []image.Manifest{w.arm64}},
		}, "other descriptors or platforms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(context.Background(), &buf, tc.images, w.blobs, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteMergesNames(t *testing.T) {
	w := newWorld(t)
	// The same image three times, one name given twice: one manifest.json
	// entry, one index.json entry per distinct name, blobs once.
	img := w.images[0]
	images := []Image{
		img,
		{Names: []string{"docker.io/rancher/pause:latest", "docker.io/rancher/mirrored-pause:3.6"}, Top: img.Top, Manifests: img.Manifests},
		{Names: []string{"rancher/mirrored-pause:3.6"}, Top: img.Top, Manifests: img.Manifests},
	}
	out := writeArchive(t, images, w.blobs, Options{})
	f := files(t, out)
	var idx ocispec.Index
	if err := json.Unmarshal(f["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range idx.Manifests {
		names = append(names, d.Annotations[AnnotationImageName])
	}
	if want := []string{"docker.io/rancher/mirrored-pause:3.6", "docker.io/rancher/pause:latest"}; !slices.Equal(names, want) {
		t.Errorf("index.json names %q, want %q", names, want)
	}
	var items []struct{ RepoTags []string }
	if err := json.Unmarshal(f["manifest.json"], &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || !slices.Equal(items[0].RepoTags, []string{"docker.io/rancher/mirrored-pause:3.6", "docker.io/rancher/pause:latest"}) {
		t.Errorf("manifest.json = %s", f["manifest.json"])
	}
	if n := len(readTar(t, out)); n != 2+len(blobsOf(images))+4 {
		t.Errorf("%d entries", n)
	}
}

func TestParseName(t *testing.T) {
	d := digest.FromString("x").String()
	cases := []struct {
		in                       string
		full, tag, repo, repoTag string
	}{
		{"docker.io/rancher/mirrored-pause:3.6", "docker.io/rancher/mirrored-pause:3.6", "3.6", "rancher/mirrored-pause", "docker.io/rancher/mirrored-pause:3.6"},
		{"docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "latest", "busybox", "docker.io/library/busybox:latest"},
		{"busybox", "docker.io/library/busybox:latest", "latest", "busybox", "docker.io/library/busybox:latest"},
		{"registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "3.9", "registry.k8s.io/pause", "registry.k8s.io/pause:3.9"},
		{"localhost:5000/a/b:v1", "localhost:5000/a/b:v1", "v1", "localhost:5000/a/b", "localhost:5000/a/b:v1"},
		{"docker.io/x/y@" + d, "docker.io/x/y@" + d, "", "x/y", ""},
	}
	for _, tc := range cases {
		n, err := parseName(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if want := (imageName{tc.full, tc.tag, tc.repo, tc.repoTag}); n != want {
			t.Errorf("%s: %+v, want %+v", tc.in, n, want)
		}
	}
	for _, bad := range []string{"", "UPPER", "a:b:c", "x/y:1@" + d, "x@sha256:123"} {
		if _, err := parseName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCompressionFor(t *testing.T) {
	cases := []struct {
		name string
		want Compression
		ok   bool
	}{
		{"k3s.tar", None, true},
		{"dir/k3s.TAR", None, true},
		{"a.tar.gz", Gzip, true},
		{"a.tgz", Gzip, true},
		{"a.tar.zst", Zstd, true},
		{"a.tzst", Zstd, true},
		{"a.TAR.ZST", Zstd, true},
		{"a.zst", None, false},
		{"a.tar.bz2", None, false},
		{"a", None, false},
		{"a.gz", None, false},
	}
	for _, tc := range cases {
		got, err := CompressionFor(tc.name)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CompressionFor(%q) = %v, %v; want %v, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

// patternBlobs serves one large generated blob without holding it, and small
// blobs from memory.
type patternBlobs struct {
	*memBlobs
	big  digest.Digest
	size int64
}

func patternReader(size int64) io.Reader {
	return io.LimitReader(&patternSource{}, size)
}

type patternSource struct{ n byte }

func (p *patternSource) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.n
		p.n = p.n*31 + 7
	}
	return len(b), nil
}

func (p patternBlobs) Open(ctx context.Context, d image.Descriptor) (io.ReadCloser, error) {
	if d.Digest == p.big {
		return io.NopCloser(patternReader(p.size)), nil
	}
	return p.memBlobs.Open(ctx, d)
}

// TestWriteStreams writes a 64 MiB layer and checks that Write allocated far
// less than that: blobs are streamed, not held.
func TestWriteStreams(t *testing.T) {
	const size = 64 << 20
	big, err := digest.FromReader(patternReader(size))
	if err != nil {
		t.Fatal(err)
	}
	blobs := patternBlobs{memBlobs: newMemBlobs(), big: big, size: size}
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cfgD := blobs.add(cfg)
	man, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: string(image.OCIManifest),
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgD, Size: int64(len(cfg))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: big, Size: size}},
	})
	blobs.add(man)
	m, err := image.ParseManifest(man, image.OCIManifest)
	if err != nil {
		t.Fatal(err)
	}
	images := []Image{{Names: []string{"example.com/big:1"}, Top: m.Descriptor, Manifests: []image.Manifest{m}}}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cw := &countingWriter{}
	if err := Write(context.Background(), cw, images, blobs, Options{}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if cw.n < size {
		t.Fatalf("wrote %d bytes", cw.n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("Write allocated %d MiB for a %d MiB blob", alloc>>20, size>>20)
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// The zstd writer's frames decode to the input at every size around a
// frame boundary, and an error from the underlying writer reaches Write or
// Close without hanging.
func TestZstdFrames(t *testing.T) {
	data := randomBytes(3, 2*zstdFrameSize+5)
	for _, n := range []int{0, 1, zstdFrameSize - 1, zstdFrameSize, zstdFrameSize + 1, 2*zstdFrameSize + 5} {
		var buf bytes.Buffer
		zw, err := newZstdWriter(&buf, 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		zr, err := zstd.NewReader(bytes.NewReader(buf.Bytes()), zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		zr.Close()
		if err != nil || !bytes.Equal(got, data[:n]) {
			t.Fatalf("%d bytes: decoded %d bytes, %v", n, len(got), err)
		}
	}
	for _, failAfter := range []int{0, 1, 2} {
		zw, err := newZstdWriter(&failingWriter{after: failAfter}, 2)
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		for i := 0; i < 8 && werr == nil; i++ {
			_, werr = zw.Write(data[:zstdFrameSize])
		}
		cerr := zw.Close()
		if !errors.Is(werr, errDiskFull) && !errors.Is(cerr, errDiskFull) {
			t.Errorf("fail after %d writes: Write %v, Close %v; want the writer's error", failAfter, werr, cerr)
		}
	}
}

var errDiskFull = errors.New("disk full")

type failingWriter struct{ after, n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n >= f.after {
		return 0, errDiskFull
	}
	f.n++
	return len(p), nil
}
