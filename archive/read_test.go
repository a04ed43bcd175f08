package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// tent is one entry of a hand-made tar.
type tent struct {
	name string
	body string
	typ  byte // tar.TypeReg when 0
	link string
	size int64 // header size when body is nil-like and size > 0 (sparse content is zeros)
}

func reg(name, body string) tent { return tent{name: name, body: body} }

// tarOf writes entries as an uncompressed tar.
func tarOf(t *testing.T, entries ...tent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, ModTime: time.Unix(0, 0), Linkname: e.link}
		body := []byte(e.body)
		if e.size > 0 {
			body = make([]byte, e.size)
		}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(body))
		}
		if typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func read(t *testing.T, b []byte, opts ReadOptions) (*Contents, error) {
	t.Helper()
	return Read(context.Background(), bytes.NewReader(b), opts)
}

func mustRead(t *testing.T, b []byte) *Contents {
	t.Helper()
	c, err := read(t, b, ReadOptions{})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return c
}

const okIndex = `{"schemaVersion":2,"manifests":[]}`
const okLayout = `{"imageLayoutVersion":"1.0.0"}`

// TestReadRefuses feeds malicious and malformed archives: each must be
// refused with a clear error, and nothing may be written anywhere.
func TestReadRefuses(t *testing.T) {
	dockerBase := []tent{reg("manifest.json", `[{"Config":"c.json","RepoTags":["x:1"],"Layers":["a/layer.tar"]}]`), reg("c.json", `{}`), reg("a/layer.tar", "layer")}
	zstdWide := func() []byte {
		var b bytes.Buffer
		zw, err := zstd.NewWriter(&b, zstd.WithWindowSize(1<<20), zstd.WithSingleSegment(false), zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(tarOf(t, reg("oci-layout", okLayout), reg("index.json", okIndex)))
		zw.Close()
		out := b.Bytes()
		// Frame header: magic, descriptor (no single segment, no
		// dictionary), window descriptor. Claim a 64 MiB window.
		if out[4]&0x23 != 0 {
			t.Fatalf("unexpected zstd frame header descriptor %#x", out[4])
		}
		out[5] = (26 - 10) << 3
		return out
	}
	truncGzip := func() []byte {
		var b bytes.Buffer
		zw, _ := zstdOrGzip(&b)
		zw.Write(tarOf(t, reg("oci-layout", okLayout), reg("index.json", okIndex)))
		zw.Close()
		out := b.Bytes()
		out[len(out)-6] ^= 0xff // the CRC32 of the gzip trailer
		return out
	}
	for _, tc := range []struct {
		name    string
		archive []byte
		opts    ReadOptions
		unsafe  bool   // errors.Is(err, ErrUnsafe)
		want    string // substring of the error
	}{
		{"dotdot escape", tarOf(t, reg("oci-layout", okLayout), reg("../escape", "x")), ReadOptions{}, true, `refusing entry "../escape": path has a ".." component`},
		{"dotdot inside", tarOf(t, reg("blobs/../../etc/passwd", "x")), ReadOptions{}, true, `refusing entry "blobs/../../etc/passwd": path has a ".." component`},
		{"absolute path", tarOf(t, reg("/etc/passwd", "x")), ReadOptions{}, true, `refusing entry "/etc/passwd": absolute path`},
		{"symlink out", tarOf(t, append(dockerBase, tent{name: "b/layer.tar", typ: tar.TypeSymlink, link: "../../etc/passwd"})...), ReadOptions{}, true, `refusing entry "b/layer.tar": symlink to "../../etc/passwd" leaves the archive`},
		{"absolute symlink", tarOf(t, append(dockerBase, tent{name: "b/layer.tar", typ: tar.TypeSymlink, link: "/etc/passwd"})...), ReadOptions{}, true, `refusing entry "b/layer.tar": symlink to the absolute path "/etc/passwd"`},
		{"symlink in an OCI layout", tarOf(t, reg("oci-layout", okLayout), reg("index.json", okIndex), reg("blobs/sha256/"+strings.Repeat("a", 64), "x"), tent{name: "blobs/sha256/" + strings.Repeat("b", 64), typ: tar.TypeSymlink, link: strings.Repeat("a", 64)}), ReadOptions{}, true, `symlink to "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": links are not allowed in an OCI layout archive`},
		{"symlink to a directory", tarOf(t, append(dockerBase, tent{name: "b/layer.tar", typ: tar.TypeSymlink, link: "../a"}, tent{name: "a", typ: tar.TypeDir})...), ReadOptions{}, true, `refusing entry "b/layer.tar": symlink to the directory "../a"`},
		{"dangling symlink", tarOf(t, append(dockerBase, tent{name: "b/layer.tar", typ: tar.TypeSymlink, link: "../nothing"})...), ReadOptions{}, true, `symlink to "../nothing", which is not a file in the archive`},
		{"path through a symlink", tarOf(t, append(dockerBase, tent{name: "d", typ: tar.TypeSymlink, link: "c.json"}, reg("d/x", "y"))...), ReadOptions{}, true, `refusing entry "d/x": path goes through the symlink "d"`},
		{"hardlink", tarOf(t, reg("oci-layout", okLayout), reg("index.json", okIndex), tent{name: "blobs/sha256/x", typ: tar.TypeLink, link: "index.json"}), ReadOptions{}, true, `refusing entry "blobs/sha256/x": hard link to "index.json": links are not allowed`},
		{"hardlink in a docker archive", tarOf(t, append(dockerBase, tent{name: "b/layer.tar", typ: tar.TypeLink, link: "a/layer.tar"})...), ReadOptions{}, true, `hard link to "a/layer.tar": links are not allowed`},
		{"char device", tarOf(t, reg("oci-layout", okLayout), tent{name: "dev/null", typ: tar.TypeChar}), ReadOptions{}, true, `refusing entry "dev/null": device file`},
		{"block device", tarOf(t, tent{name: "sda", typ: tar.TypeBlock}), ReadOptions{}, true, `refusing entry "sda": device file`},
		{"fifo", tarOf(t, tent{name: "pipe", typ: tar.TypeFifo}), ReadOptions{}, true, `refusing entry "pipe": named pipe`},
		{"huge index.json", tarOf(t, reg("oci-layout", okLayout), tent{name: "index.json", size: DefaultMaxMetadataSize + 1}), ReadOptions{}, true, `refusing entry "index.json": 16777217 bytes, over the 16777216-byte limit of index.json`},
		{"huge manifest.json", tarOf(t, tent{name: "./manifest.json", size: 2048}), ReadOptions{MaxMetadataSize: 1024}, true, `refusing entry "./manifest.json": 2048 bytes, over the 1024-byte limit of manifest.json`},
		{"too many JSON documents", tarOf(t, reg("a.json", `{"a":1}`), reg("b.json", `{"b":2}`), reg("c.json", `{"c":3}`)), ReadOptions{MaxDocumentTotal: 15}, true, `the archive's JSON documents exceed 15 bytes in all`},
		{"too many entries", tarOf(t, reg("a", ""), reg("b", ""), reg("c", "")), ReadOptions{MaxEntries: 2}, true, `refusing entry "c": more than 2 entries`},
		{"file under a file", tarOf(t, reg("manifest.json", `[]`), reg("a", "x"), reg("a/b", "y")), ReadOptions{}, true, `refusing entry "a/b": path goes through the file "a"`},
		{"file and directory", tarOf(t, reg("manifest.json", `[]`), reg("a", "x"), tent{name: "a/", typ: tar.TypeDir}), ReadOptions{}, true, `refusing entry "a/": a second entry with the same path`},
		{"duplicate entry", tarOf(t, reg("oci-layout", okLayout), reg("index.json", okIndex), reg("./index.json", okIndex)), ReadOptions{}, true, `refusing entry "./index.json": a second entry with the same path`},
		{"zstd window over 32 MiB", zstdWide(), ReadOptions{}, false, "archive: reading zstd-compressed tar: window size exceeded"},
		{"gzip with a bad checksum", truncGzip(), ReadOptions{}, false, "archive: reading the gzip stream after the tar: gzip: invalid checksum"},
		{"truncated tar", tarOf(t, reg("oci-layout", okLayout), reg("index.json", okIndex+strings.Repeat(" ", 3000)))[:1500], ReadOptions{}, false, "unexpected EOF"},
		{"not a tar", []byte(strings.Repeat("hello world\n", 100)), ReadOptions{}, false, "reading tar"},
		{"empty file", nil, ReadOptions{}, false, "archive: empty file"},
		{"bzip2", []byte("BZh91AY&SY"), ReadOptions{}, false, "bzip2-compressed: not supported"},
		{"no image metadata", tarOf(t, reg("hello.txt", "hi")), ReadOptions{}, false, "not an image archive: neither index.json nor manifest.json"},
		{"malformed index.json", tarOf(t, reg("oci-layout", okLayout), reg("index.json", `{"manifests": 7}`)), ReadOptions{}, false, "archive: index.json: json: cannot unmarshal number"},
		{"trailing data in manifest.json", tarOf(t, reg("manifest.json", `[] []`)), ReadOptions{}, false, "archive: manifest.json: data after the JSON value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := read(t, tc.archive, tc.opts)
			if err == nil {
				t.Fatalf("Read accepted it: %+v", c)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if errors.Is(err, ErrUnsafe) != tc.unsafe {
				t.Errorf("errors.Is(err, ErrUnsafe) = %v, want %v (%v)", !tc.unsafe, tc.unsafe, err)
			}
		})
	}
}

func zstdOrGzip(w io.Writer) (io.WriteCloser, error) { return newCompressor(w, Gzip) }

// TestReadOurs reads what Write writes, in every compression.
func TestReadOurs(t *testing.T) {
	w := newWorld(t)
	for _, comp := range []Compression{None, Gzip, Zstd} {
		t.Run(comp.String(), func(t *testing.T) {
			b := writeArchive(t, w.images, w.blobs, Options{Compression: comp})
			c := mustRead(t, b)
			sum := sha256.Sum256(b)
			if c.Format != FormatOCIDocker || c.Compression != comp || c.Size != int64(len(b)) || c.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("format %s, compression %s, size %d, sha256 %s", c.Format, c.Compression, c.Size, c.SHA256)
			}
			if p := c.Check(); len(p) != 0 {
				t.Errorf("Check on a good archive:\n%+v", p)
			}
			want := blobsOf(w.images)
			var got []digest.Digest
			for d, bi := range c.Blobs {
				got = append(got, d)
				if bi.ComputedDigest != d || bi.Size != int64(len(w.blobs.data[d])) {
					t.Errorf("blob %s: %+v", d, bi)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("blobs %v, want %v", got, want)
			}
			type view struct {
				names     string
				top       digest.Digest
				platforms string
				docker    string // manifest.json entry / its platform
				absent    int
			}
			var views []view
			for _, img := range c.Images {
				var ps []string
				for _, m := range img.Manifests {
					ps = append(ps, fmt.Sprintf("%s=%s/%d layers", m.Platform, m.Digest.Encoded()[:6], len(m.Layers)))
				}
				docker := "none"
				if img.Docker != nil {
					docker = fmt.Sprintf("%d/none", img.Docker.Entry)
					if img.Docker.Manifest != nil {
						docker = fmt.Sprintf("%d/%d", img.Docker.Entry, *img.Docker.Manifest)
					}
				}
				views = append(views, view{strings.Join(img.Names, ","), img.Top.Digest, strings.Join(ps, " "), docker, len(img.Absent)})
			}
			short := func(m image.Manifest) string { return m.Digest.Encoded()[:6] }
			wantViews := []view{
				{"docker.io/rancher/mirrored-pause:3.6,docker.io/rancher/mirrored-pause@" + w.pause.Digest.String(), w.pause.Digest, "linux/amd64=" + short(w.pause) + "/2 layers", "0/0", 0},
				{"docker.io/library/busybox:1.36,docker.io/library/busybox:latest", w.busybox.Digest, "linux/amd64=" + short(w.busybox) + "/2 layers", "1/0", 0},
				// Index order; manifest.json describes arm64, the group's first.
				{"registry.k8s.io/pause:3.9", w.index.Digest, "linux/amd64=" + short(w.amd64) + "/2 layers linux/arm64=" + short(w.arm64) + "/2 layers", "2/1", 1},
				{"quay.io/x/y@" + w.digestOnly.Digest.String(), w.digestOnly.Digest, "linux/amd64=" + short(w.digestOnly) + "/2 layers", "3/0", 0},
			}
			if fmt.Sprint(views) != fmt.Sprint(wantViews) {
				t.Errorf("images:\n%v\nwant\n%v", views, wantViews)
			}
			// Sizes: the shared libc layer is used by busybox and both
			// platforms of the index; the base layer by pause and quay.io/x/y.
			var unique int64
			for _, d := range want {
				unique += int64(len(w.blobs.data[d]))
			}
			if c.UniqueBytes() != unique {
				t.Errorf("UniqueBytes %d, want %d", c.UniqueBytes(), unique)
			}
			saved := c.ImagesBytes() - c.UniqueBytes()
			// (Each image counts its own blobs once: the index's two platforms
			// share libc within one image.)
			wantSaved := w.busybox.Layers[0].Size + w.pause.Layers[0].Size
			if saved != wantSaved {
				t.Errorf("saved %d, want %d (libc and base once each)", saved, wantSaved)
			}
		})
	}
}

// TestReadPlainOCILayout reads an OCI image layout without manifest.json,
// as skopeo's oci-archive writes it (ref.name annotations only, "./"
// prefixed entry names).
func TestReadPlainOCILayout(t *testing.T) {
	w := newWorld(t)
	idx := fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"annotations":{"org.opencontainers.image.ref.name":"3.9"}}]}`,
		w.index.MediaType, w.index.Digest, w.index.Size)
	entries := []tent{{name: "./", typ: tar.TypeDir}, reg("./oci-layout", okLayout), reg("./index.json", idx), {name: "./blobs/", typ: tar.TypeDir}, {name: "./blobs/sha256/", typ: tar.TypeDir}}
	seen := map[digest.Digest]bool{}
	for _, m := range []image.Manifest{w.amd64, w.arm64} {
		for _, d := range append([]image.Descriptor{m.Descriptor, m.Config}, m.Layers...) {
			if !seen[d.Digest] {
				seen[d.Digest] = true
				entries = append(entries, reg("./blobs/sha256/"+d.Digest.Encoded(), string(w.blobs.data[d.Digest])))
			}
		}
	}
	entries = append(entries, reg("./blobs/sha256/"+w.index.Digest.Encoded(), string(w.indexRaw)))
	c := mustRead(t, tarOf(t, entries...))
	if c.Format != FormatOCI || len(c.Images) != 1 {
		t.Fatalf("format %s, %d images", c.Format, len(c.Images))
	}
	img := c.Images[0]
	if fmt.Sprint(img.Names) != "[3.9]" || img.Top.Digest != w.index.Digest || len(img.Manifests) != 2 || len(img.Absent) != 1 || img.Docker != nil {
		t.Errorf("image %+v", img)
	}
	if p := c.Check(); len(p) != 0 {
		t.Errorf("Check:\n%+v", p)
	}
}

// dockerWorld is two images sharing a base layer, as v1.Images.
func dockerWorld(t *testing.T) (blobs *memBlobs, a, b v1.Image) {
	blobs = newMemBlobs()
	base := testLayer(t, gzTar(t, "etc/base", "base layer"), types.DockerLayer)
	la := testLayer(t, gzTar(t, "bin/a", "a"), types.DockerLayer)
	lb := testLayer(t, gzTar(t, "bin/b", "b"), types.DockerLayer)
	a, _ = testImage(t, blobs, false, "amd64", base, la)
	b, _ = testImage(t, blobs, false, "arm64", base, lb)
	return blobs, a, b
}

// TestReadCraneTarball reads go-containerregistry's tarball (crane pull,
// RKE2's format): sha256:<hex> config, <hex>.tar.gz layers.
func TestReadCraneTarball(t *testing.T) {
	_, a, b := dockerWorld(t)
	ta, _ := name.NewTag("example.com/a:1")
	tb, _ := name.NewTag("example.com/b:2")
	var buf bytes.Buffer
	if err := tarball.MultiRefWrite(map[name.Reference]v1.Image{ta: a, tb: b}, &buf); err != nil {
		t.Fatal(err)
	}
	c := mustRead(t, buf.Bytes())
	if c.Format != FormatDocker || len(c.Images) != 2 {
		t.Fatalf("format %s, %d images", c.Format, len(c.Images))
	}
	if p := c.Check(); len(p) != 0 {
		t.Errorf("Check:\n%+v", p)
	}
	for _, img := range c.Images {
		want := a
		if img.Names[0] == "example.com/b:2" {
			want = b
		}
		cfgName, _ := want.ConfigName()
		layers, _ := want.Layers()
		p := img.Manifests[0]
		if img.Top != (image.Descriptor{}) || p.Descriptor != (image.Descriptor{}) || p.Config.Digest.String() != cfgName.String() || len(p.Layers) != 2 {
			t.Errorf("%v: %+v", img.Names, p)
		}
		for i, l := range layers {
			d, _ := l.Digest()
			if p.Layers[i].Digest.String() != d.String() {
				t.Errorf("%v layer %d: %s, want %s", img.Names, i, p.Layers[i].Digest, d)
			}
		}
	}
	if saved := c.ImagesBytes() - c.UniqueBytes(); saved <= 0 {
		t.Errorf("the shared base layer saved %d bytes", saved)
	}
}

// classicSave lays out images as classic docker save does: <id>/layer.tar
// (uncompressed), <id>/json, <id>/VERSION, <config hex>.json, manifest.json,
// repositories; a layer saved twice is a symlink to its first copy.
func classicSave(t *testing.T, tags map[string]v1.Image, order []string, tamper func(name string, body []byte) []byte) []byte {
	t.Helper()
	var entries []tent
	type item struct{ Config, RepoTags, Layers any }
	var manifest []item
	saved := map[string]string{} // diffID -> layer path
	for _, tag := range order {
		img := tags[tag]
		cfg, _ := img.RawConfigFile()
		cfgName, _ := img.ConfigName()
		cfgPath := cfgName.Hex + ".json"
		entries = append(entries, reg(cfgPath, string(cfg)))
		layers, _ := img.Layers()
		var paths []string
		parent := ""
		for _, l := range layers {
			diffID, _ := l.DiffID()
			id := sha256.Sum256([]byte(tag + parent + diffID.String()))
			dir := hex.EncodeToString(id[:])
			parent = dir
			p := dir + "/layer.tar"
			paths = append(paths, p)
			entries = append(entries, tent{name: dir + "/", typ: tar.TypeDir}, reg(dir+"/VERSION", "1.0"), reg(dir+"/json", `{"id":"`+dir+`"}`))
			if first, ok := saved[diffID.String()]; ok {
				entries = append(entries, tent{name: p, typ: tar.TypeSymlink, link: "../" + first})
				continue
			}
			rc, _ := l.Uncompressed()
			body, _ := io.ReadAll(rc)
			if tamper != nil {
				body = tamper(p, body)
			}
			saved[diffID.String()] = p
			entries = append(entries, reg(p, string(body)))
		}
		manifest = append(manifest, item{cfgPath, []string{tag}, paths})
	}
	m, _ := json.Marshal(manifest)
	entries = append(entries, reg("manifest.json", string(m)), reg("repositories", `{}`))
	return tarOf(t, entries...)
}

// TestReadClassicDockerSave reads the pre-25 docker save shape, with its
// symlinked shared layer.
func TestReadClassicDockerSave(t *testing.T) {
	_, a, b := dockerWorld(t)
	tags := map[string]v1.Image{"a:1": a, "b:2": b}
	c := mustRead(t, classicSave(t, tags, []string{"a:1", "b:2"}, nil))
	if c.Format != FormatDocker || len(c.Images) != 2 {
		t.Fatalf("format %s, %d images", c.Format, len(c.Images))
	}
	if p := c.Check(); len(p) != 0 {
		t.Errorf("Check:\n%+v", p)
	}
	pa, pb := c.Images[0].Manifests[0], c.Images[1].Manifests[0]
	if pa.Platform != "linux/amd64" || pb.Platform != "linux/arm64" {
		t.Errorf("platforms %q %q", pa.Platform, pb.Platform)
	}
	if pa.Layers[0].Digest != pb.Layers[0].Digest || pa.Layers[0].Digest != pa.DiffIDs[0] {
		t.Errorf("the shared base layer: %s %s, diff_id %s", pa.Layers[0].Digest, pb.Layers[0].Digest, pa.DiffIDs[0])
	}
	// b's entry names the symlink, which resolves to a's layer file.
	if f := c.Files[path.Clean(c.DockerManifest[1].Layers[0])]; !c.Has(pb.Layers[0]) || f.LinkTo != path.Clean(c.DockerManifest[0].Layers[0]) {
		t.Errorf("the symlinked layer resolves to %q", f.LinkTo)
	}
	if saved := c.ImagesBytes() - c.UniqueBytes(); saved != pa.Layers[0].Size {
		t.Errorf("saved %d, want the base layer's %d", saved, pa.Layers[0].Size)
	}

	// A missing layer file.
	var entries []tent
	var dropped string
	for _, e := range readTar(t, classicSave(t, tags, []string{"a:1"}, nil)) {
		if strings.HasSuffix(e.hdr.Name, "/layer.tar") && dropped == "" {
			dropped = e.hdr.Name
			continue
		}
		entries = append(entries, tent{name: e.hdr.Name, body: string(e.body), typ: e.hdr.Typeflag, link: e.hdr.Linkname})
	}
	if got, want := mustRead(t, tarOf(t, entries...)).Check(), []Problem{{Kind: KindDockerFileMissing, Image: "a:1", Detail: fmt.Sprintf("layer 0 file %q", dropped)}}; !slices.Equal(got, want) {
		t.Errorf("Check without a layer file: %q, want %q", got, want)
	}

	// A layer whose content does not hash to its config's diff_id.
	c = mustRead(t, classicSave(t, tags, []string{"a:1"}, func(p string, body []byte) []byte {
		if strings.HasSuffix(p, "/layer.tar") && len(body) > 600 {
			body = slices.Clone(body)
			body[600] ^= 1
		}
		return body
	}))
	got := c.Check()
	if len(got) != 2 || got[0].Kind != KindDiffIDMismatch || got[0].Image != "a:1" || got[0].Platform != "linux/amd64" ||
		!strings.Contains(got[0].Detail, "layer 0 of a:1 linux/amd64 (") || !strings.Contains(got[0].Detail, "its config's diff_id is "+pa.DiffIDs[0].String()) {
		t.Errorf("Check of a tampered layer:\n%+v", got)
	}
}

// TestCheckProblems changes one thing in a good archive and expects
// exactly the line that names it.
func TestCheckProblems(t *testing.T) {
	w := newWorld(t)
	good := writeArchive(t, w.images, w.blobs, Options{})
	layer := w.busybox.Layers[1].Digest
	flipped := slices.Clone(w.blobs.data[layer])
	flipped[len(flipped)/2] ^= 0x40
	extra := []byte("an unreferenced blob")
	for _, tc := range []struct {
		name   string
		change func(name string, body []byte) (string, []byte, bool) // new name, body, keep
		add    []tent
		want   []Problem
	}{
		{
			name: "flipped byte",
			change: func(n string, b []byte) (string, []byte, bool) {
				if n == blobPath(layer) {
					return n, flipped, true
				}
				return n, b, true
			},
			want: []Problem{{Kind: KindBlobCorrupt, Digest: layer, Detail: digest.FromBytes(flipped).String()}},
		},
		{
			name: "missing layer",
			change: func(n string, b []byte) (string, []byte, bool) {
				return n, b, n != blobPath(layer)
			},
			want: []Problem{{Kind: KindBlobMissing, Image: "docker.io/library/busybox:1.36", Platform: "linux/amd64", Digest: layer, Detail: "layer 1 of docker.io/library/busybox:1.36 linux/amd64"}},
		},
		{
			name: "manifest.json layers disagree with index.json",
			change: func(n string, b []byte) (string, []byte, bool) {
				if n == "manifest.json" {
					b = bytes.Replace(b, []byte(`,"`+blobPath(layer)+`"`), nil, 1)
				}
				return n, b, true
			},
			want: []Problem{{Kind: KindDockerEntryMismatch, Image: "docker.io/library/busybox:1.36, docker.io/library/busybox:latest", Digest: w.busybox.Digest}},
		},
		{
			name: "RepoTag not in index.json",
			change: func(n string, b []byte) (string, []byte, bool) {
				if n == "manifest.json" {
					b = bytes.Replace(b, []byte(`"docker.io/library/busybox:latest"`), []byte(`"docker.io/library/busybox:evil"`), 1)
				}
				return n, b, true
			},
			want: []Problem{
				{Kind: KindDockerTagUnknown, Detail: "docker.io/library/busybox:evil"},
				{Kind: KindDockerTagMissing, Image: "docker.io/library/busybox:latest"},
			},
		},
		{
			name: "image without manifest.json entry",
			change: func(n string, b []byte) (string, []byte, bool) {
				if n == "manifest.json" {
					var items []map[string]any
					json.Unmarshal(b, &items)
					b, _ = json.Marshal(items[1:])
				}
				return n, b, true
			},
			want: []Problem{{Kind: KindDockerEntryMissing, Image: "docker.io/rancher/mirrored-pause:3.6", Digest: w.pause.Digest}},
		},
		{
			name: "unreferenced blob and unexpected file",
			add:  []tent{reg(blobPath(digest.FromBytes(extra)), string(extra)), reg("etc/motd", "hi")},
			want: []Problem{
				{Kind: KindUnreferenced, Digest: digest.FromBytes(extra), Detail: "20"},
				{Kind: KindUnexpectedFile, Detail: "etc/motd"},
			},
		},
		{
			name: "blob under a wrong name",
			add:  []tent{reg("blobs/sha256/notahash", "x")},
			want: []Problem{{Kind: KindBlobBadName, Detail: "blobs/sha256/notahash"}},
		},
		{
			name: "index.json size disagrees",
			change: func(n string, b []byte) (string, []byte, bool) {
				if n == "index.json" {
					b = bytes.Replace(b, []byte(fmt.Sprintf(`"size":%d`, w.index.Size)), []byte(fmt.Sprintf(`"size":%d`, w.index.Size+1)), 1)
				}
				return n, b, true
			},
			want: []Problem{{Kind: KindSizeMismatch, Image: "registry.k8s.io/pause:3.9", Digest: w.index.Digest, Detail: fmt.Sprintf("is %d bytes; its reference (index.json: registry.k8s.io/pause:3.9) says %d", w.index.Size, w.index.Size+1)}},
		},
		{
			name: "oci-layout version",
			change: func(n string, b []byte) (string, []byte, bool) {
				if n == "oci-layout" {
					b = []byte(`{"imageLayoutVersion":"2.0.0"}`)
				}
				return n, b, true
			},
			want: []Problem{{Kind: KindLayoutVersion, Detail: "2.0.0"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var entries []tent
			for _, e := range readTar(t, good) {
				n, b := e.hdr.Name, e.body
				if tc.change != nil && e.hdr.Typeflag == tar.TypeReg {
					var keep bool
					if n, b, keep = tc.change(n, b); !keep {
						continue
					}
				}
				entries = append(entries, tent{name: n, body: string(b), typ: e.hdr.Typeflag})
			}
			entries = append(entries, tc.add...)
			c := mustRead(t, tarOf(t, entries...))
			if got := append(c.Check(), c.Strays()...); !slices.Equal(got, tc.want) {
				t.Errorf("Check:\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// TestStraysAreNotInconsistencies: an unreferenced blob (Docker 25's
// docker save stores legacy layer configs so) is a stray, not a Check
// problem.
func TestStraysAreNotInconsistencies(t *testing.T) {
	w := newWorld(t)
	var entries []tent
	for _, e := range readTar(t, writeArchive(t, w.images, w.blobs, Options{})) {
		entries = append(entries, tent{name: e.hdr.Name, body: string(e.body), typ: e.hdr.Typeflag})
	}
	legacy := `{"id":"abc","created":"1970-01-01T00:00:00Z"}`
	c := mustRead(t, tarOf(t, append(entries, reg(blobPath(digest.FromString(legacy)), legacy))...))
	if p := c.Check(); len(p) != 0 {
		t.Errorf("Check: %v", p)
	}
	want := []Problem{{Kind: KindUnreferenced, Digest: digest.FromString(legacy), Detail: fmt.Sprint(len(legacy))}}
	if got := c.Strays(); !slices.Equal(got, want) {
		t.Errorf("Strays: %v, want %v", got, want)
	}
}

// TestReadFileStreams reads an archive with a large layer without holding
// it: only documents are kept.
func TestReadFileStreams(t *testing.T) {
	big := randomBytes(7, 12<<20)
	blobs := newMemBlobs()
	layer := testLayer(t, big, types.OCILayer)
	_, m := testImage(t, blobs, true, "amd64", layer)
	p := filepath.Join(t.TempDir(), "big.tar.zst")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(context.Background(), f, []Image{{Names: []string{"big:1"}, Top: m.Descriptor, Manifests: []image.Manifest{m}}}, blobs, Options{Compression: Zstd}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c, err := ReadFile(context.Background(), p, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Check(); len(p) != 0 {
		t.Errorf("Check:\n%+v", p)
	}
	if _, kept := c.BlobDocument(m.Layers[0].Digest); kept {
		t.Error("a 12 MiB layer was kept in memory")
	}
	if _, kept := c.BlobDocument(m.Config.Digest); !kept {
		t.Error("the config was not kept")
	}
	if c.Blobs[m.Layers[0].Digest].ComputedDigest != m.Layers[0].Digest {
		t.Error("the layer was not hashed")
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.tar.zst", "a.tar", "c.TGZ", ".a.tar.tmp-p1-2", "notes.txt", "d.tar.gz"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "sub.tar"), 0o755)
	got, err := Files([]string{dir, "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar.zst"), filepath.Join(dir, "c.TGZ"), filepath.Join(dir, "d.tar.gz"), "/dev/null"}
	if !slices.Equal(got, want) {
		t.Errorf("Files = %q, want %q", got, want)
	}
	if _, err := Files([]string{t.TempDir()}); !errors.Is(err, ErrNoArchive) {
		t.Errorf("empty directory: %v, want ErrNoArchive", err)
	}
	if _, err := Files([]string{filepath.Join(dir, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}
}

// A symlink in a directory is followed to a regular file; one that leads
// nowhere or to something else is passed over, saying why.
func TestFilesSymlinks(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "real.tar")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, to := range map[string]string{"linked.tar": target, "dangling.tar": filepath.Join(elsewhere, "gone.tar"), "dir.tar": elsewhere, "dev.tar": "/dev/null"} {
		if err := os.Symlink(to, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	got, skipped, err := ListFiles([]string{dir})
	if err != nil || !slices.Equal(got, []string{filepath.Join(dir, "linked.tar")}) {
		t.Fatalf("ListFiles = %q, %v", got, err)
	}
	if len(skipped) != 3 || !strings.Contains(skipped[0], "dangling.tar: a symlink that leads nowhere") ||
		!strings.Contains(skipped[1], "dev.tar: a symlink to a character device") || !strings.Contains(skipped[2], "dir.tar: a symlink to a directory") {
		t.Errorf("skipped: %q", skipped)
	}
	if got, err := Files([]string{dir}); err != nil || len(got) != 1 {
		t.Errorf("Files = %q, %v", got, err)
	}
	os.Remove(filepath.Join(dir, "linked.tar"))
	if _, err := Files([]string{dir}); !errors.Is(err, ErrNoArchive) || !strings.Contains(err.Error(), "leads nowhere") {
		t.Errorf("only links that lead nowhere: %v", err)
	}
}

// Unhashed reads the same archive to the same files, offsets, documents
// and images, and computes no hash.
func TestReadUnhashed(t *testing.T) {
	w := newWorld(t)
	b := writeArchive(t, w.images, w.blobs, Options{})
	hashed := mustRead(t, b)
	c, err := Read(context.Background(), bytes.NewReader(b), ReadOptions{Unhashed: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.SHA256 != "" || c.Size != hashed.Size || len(c.Images) != len(hashed.Images) || len(c.Documents) != len(hashed.Documents) {
		t.Errorf("unhashed: sha256 %q size %d images %d documents %d; hashed: size %d images %d documents %d",
			c.SHA256, c.Size, len(c.Images), len(c.Documents), hashed.Size, len(hashed.Images), len(hashed.Documents))
	}
	if len(c.Files) != len(hashed.Files) || len(c.Blobs) != len(hashed.Blobs) || len(c.Blobs) == 0 {
		t.Fatalf("unhashed: %d files %d blobs; hashed: %d files %d blobs", len(c.Files), len(c.Blobs), len(hashed.Files), len(hashed.Blobs))
	}
	for p, fi := range hashed.Files {
		u := c.Files[p]
		if u == nil || u.Offset != fi.Offset || u.Size != fi.Size || u.SHA256 != "" {
			t.Errorf("%s: unhashed %+v, hashed %+v", p, u, fi)
		}
	}
	for d, bi := range c.Blobs {
		if bi.ComputedDigest != "" || bi.Size != hashed.Blobs[d].Size {
			t.Errorf("blob %s: %+v", d, bi)
		}
	}
}

// OpenSeekable with Unhashed reads an uncompressed archive by its headers
// (seeking past large files) to what Read finds; a truncated one fails.
func TestOpenSeekableUnhashedSeeks(t *testing.T) {
	w := newWorld(t)
	// The world's layers are smaller than its manifests; one image gets a
	// 64 KiB layer (random: gzip keeps it that size).
	noise := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	_, bigM := testImage(t, w.blobs, true, "amd64", testLayer(t, gzTar(t, "big", string(noise)), types.OCILayer))
	images := append(slices.Clone(w.images), Image{Names: []string{"example.com/big:1"}, Top: bigM.Descriptor, Manifests: []image.Manifest{bigM}})
	b := writeArchive(t, images, w.blobs, Options{})
	hashed := mustRead(t, b)
	p := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// A document limit at the largest document: larger files (layers) are
	// skipped, not read.
	var limit int64
	for p, d := range hashed.Documents {
		if !isMetadata(p) {
			limit = max(limit, int64(len(d)))
		}
	}
	opts := ReadOptions{Unhashed: true, MaxDocumentSize: limit}
	s, err := OpenSeekable(context.Background(), p, SeekableOptions{Read: opts})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := s.Contents
	if c.Size != int64(len(b)) || c.Format != hashed.Format || len(c.Images) != len(hashed.Images) || len(c.Files) != len(hashed.Files) {
		t.Errorf("seeking: size %d format %s images %d files %d; Read: size %d format %s images %d files %d",
			c.Size, c.Format, len(c.Images), len(c.Files), hashed.Size, hashed.Format, len(hashed.Images), len(hashed.Files))
	}
	skipped := 0
	for path, fi := range hashed.Files {
		u := c.Files[path]
		if u == nil || u.Offset != fi.Offset || u.Size != fi.Size || u.Compression != fi.Compression {
			t.Errorf("%s: seeking %+v, Read %+v", path, u, fi)
			continue
		}
		if fi.Size > limit && !isMetadata(path) {
			skipped++
		}
		if got := b[u.Offset : u.Offset+u.Size]; digest.FromBytes(got) != fi.SHA256 {
			t.Errorf("%s: the bytes at offset %d are not the file's", path, u.Offset)
		}
	}
	if skipped == 0 {
		t.Error("no file was large enough to be skipped: the test proves nothing")
	}
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, c.WriteImages(), w.blobs, Options{ModTime: c.ModTime}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), b) {
		t.Error("the archive written from a seeking read is not the archive read")
	}
	// The large files were sought past, not read: at most their first
	// bytes and their last (tar's check that the file is whole) were read.
	cr := &readCounter{ReadSeeker: bytes.NewReader(b)}
	if _, err := readSeeking(context.Background(), cr, opts); err != nil {
		t.Fatal(err)
	}
	var skippedBytes int64
	for _, fi := range hashed.Files {
		if fi.Size > limit && !isMetadata(fi.Path) {
			skippedBytes += fi.Size - 9
		}
	}
	if cr.n > int64(len(b))-skippedBytes {
		t.Errorf("readSeeking read %d of %d bytes; the %d files over %d bytes should have saved %d", cr.n, len(b), skipped, limit, skippedBytes)
	}
	// Cut in the middle, and inside the largest file's last byte (seeking
	// past it must notice the file is short).
	var largest *FileInfo
	for _, fi := range hashed.Files {
		if largest == nil || fi.Size > largest.Size {
			largest = fi
		}
	}
	for _, cut := range []int64{int64(len(b)) / 2, largest.Offset + largest.Size - 1} {
		short := filepath.Join(t.TempDir(), "short.tar")
		os.WriteFile(short, b[:cut], 0o644)
		if s, err := OpenSeekable(context.Background(), short, SeekableOptions{Read: opts}); err == nil {
			s.Close()
			t.Errorf("an archive cut at %d of %d bytes was read", cut, len(b))
		}
	}
}

type readCounter struct {
	io.ReadSeeker
	n int64
}

func (r *readCounter) Read(p []byte) (int, error) {
	n, err := r.ReadSeeker.Read(p)
	r.n += int64(n)
	return n, err
}
