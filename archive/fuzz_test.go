package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/airgap-bundle/airgap-bundle/image"

	digest "github.com/opencontainers/go-digest"
)

// fuzzTar writes name/body pairs as a tar; for seeds only.
func fuzzTar(f *testing.F, kv ...string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 0; i+1 < len(kv); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: kv[i], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(kv[i+1])), ModTime: time.Unix(0, 0)}); err != nil {
			f.Fatal(err)
		}
		tw.Write([]byte(kv[i+1])) //nolint:errcheck // bytes.Buffer
	}
	tw.Close() //nolint:errcheck
	return b.Bytes()
}

// Read on any bytes (tar, gzip, zstd, and the JSON inside) never panics,
// never names a path outside the archive, and what it reads can be checked.
func FuzzRead(f *testing.F) {
	w := newWorld(f)
	for _, comp := range []Compression{None, Gzip, Zstd} {
		var buf bytes.Buffer
		if err := Write(context.Background(), &buf, w.images[:1], w.blobs, Options{Compression: comp}); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(fuzzTar(f, "oci-layout", okLayout, "index.json", okIndex))
	f.Add(fuzzTar(f, "manifest.json", `[{"Config":"c.json","RepoTags":["a:1"],"Layers":["l/layer.tar"]}]`, "c.json", `{}`, "l/layer.tar", "x"))
	f.Add(fuzzTar(f, "../evil", "x", "/abs", "y", "a/../../b", "z"))
	f.Add(fuzzTar(f, "index.json", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`+strings.Repeat("a", 64)+`","size":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := ReadOptions{MaxMetadataSize: 1 << 20, MaxDocumentSize: 1 << 20, MaxDocumentTotal: 4 << 20, MaxEntries: 1000}
		c, err := Read(context.Background(), bytes.NewReader(data), opts)
		// The seeking read (apply's, of an uncompressed delta) does not
		// panic, and finds every file where Read finds it; a small
		// document limit makes it seek past most.
		small := opts
		small.MaxDocumentSize, small.Unhashed = 64, true
		sc, serr := readSeeking(context.Background(), bytes.NewReader(data), small)
		if err != nil {
			return
		}
		if serr == nil && c.Compression == None {
			for p, fi := range c.Files {
				if sf := sc.Files[p]; sf == nil || sf.Offset != fi.Offset || sf.Size != fi.Size {
					t.Fatalf("%s: seeking read %+v, Read %+v", p, sf, fi)
				}
			}
		}
		inside := func(p string) {
			if p == "" || path.IsAbs(p) || p != path.Clean(p) || p == ".." || strings.HasPrefix(p, "../") {
				t.Fatalf("entry path %q is not inside the archive", p)
			}
		}
		for p := range c.Files {
			inside(p)
		}
		for p := range c.Documents {
			inside(p)
			if _, ok := c.Files[p]; !ok {
				t.Fatalf("document %q is not a file of the archive", p)
			}
		}
		if c.Size != int64(len(data)) {
			t.Fatalf("size %d, read %d bytes", c.Size, len(data))
		}
		c.Check()
		c.Strays()
	})
}

// ParseManifest on any JSON: no panic, and an accepted manifest describes
// the blob it came from.
func FuzzParseManifest(f *testing.F) {
	w := newWorld(f)
	for _, m := range []image.Manifest{w.pause, w.busybox, w.amd64} {
		f.Add(w.blobs.data[m.Digest], string(m.MediaType))
	}
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:x"},"layers":[{}]}`), string(image.OCIManifest))
	f.Fuzz(func(t *testing.T, blob []byte, mt string) {
		m, err := image.ParseManifest(blob, image.MediaType(mt))
		if err != nil {
			return
		}
		if m.Digest != digest.FromBytes(blob) || m.Size != int64(len(blob)) {
			t.Fatalf("manifest descriptor %+v does not describe its %d-byte blob", m.Descriptor, len(blob))
		}
	})
}

// FilterIndex output is a valid index of the same media type that lists
// exactly the kept manifests, and filtering it again changes nothing.
func FuzzFilterIndex(f *testing.F) {
	w := newWorld(f)
	idx := w.blobs.data[w.index.Digest]
	f.Add(idx, string(w.index.MediaType), w.amd64.Digest.String(), "")
	f.Add(idx, string(w.index.MediaType), w.amd64.Digest.String(), w.arm64.Digest.String())
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:`+strings.Repeat("b", 64)+`"}],"x":{"y":[1,2]}}`), string(image.OCIIndex), "sha256:"+strings.Repeat("b", 64), "")
	f.Fuzz(func(t *testing.T, blob []byte, mt, k1, k2 string) {
		var keep []digest.Digest
		for _, k := range []string{k1, k2} {
			if k != "" {
				keep = append(keep, digest.Digest(k))
			}
		}
		out, err := image.FilterIndex(blob, image.MediaType(mt), keep)
		if err != nil {
			return
		}
		var idx struct {
			Manifests []struct {
				Digest digest.Digest `json:"digest"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(out, &idx); err != nil {
			t.Fatalf("filtered index is not JSON: %v\n%s", err, out)
		}
		for _, m := range idx.Manifests {
			found := false
			for _, k := range keep {
				found = found || k == m.Digest
			}
			if !found {
				t.Fatalf("filtered index keeps %s, not asked for (%v)", m.Digest, keep)
			}
		}
		again, err := image.FilterIndex(out, image.MediaType(mt), keep)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("filtering twice: %v\n%s\n%s", err, out, again)
		}
	})
}
