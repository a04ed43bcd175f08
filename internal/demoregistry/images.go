package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
)

// Epoch is the mtime of every layer entry and the creation time of every
// image: fixed, so digests do not depend on when or where they are built.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Image is one seeded image: Ref is "repository:tag" below the registry
// root, as docker.io names it (so a registry mirroring docker.io at this
// registry's root serves it under its public name).
type Image struct {
	Ref    string
	Kind   string
	Digest string            // of the manifest or index the tag points to
	Object any               // v1.Image or v1.ImageIndex
	Plats  map[string]string // platform -> manifest digest
}

func (im Image) String() string {
	return fmt.Sprintf("%-26s %s  %s", im.Ref, im.Digest, im.Kind)
}

// Images builds the demo images from the files under dir (testdata/demo):
//
//   - library/hello:1.0, an OCI index of linux/amd64 and linux/arm64
//     (layers base/ + hello/<arch>/);
//   - airgapdemo/pause:3.6, a Docker schema2 image (layer pause/);
//   - airgapdemo/webapp:2.0, an OCI image whose upper layer
//     (webapp/2-update/) deletes a file with a .wh. whiteout and replaces a
//     directory with an opaque .wh..wh..opq marker;
//   - airgapdemo/toolbox:1.2 and airgapdemo/toolbox:stable, one OCI image
//     under two tags (layers base/ + toolbox/).
func Images(dir string) ([]Image, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("demo image files: %s is not a directory (run from the repository root, or pass -data)", dir)
	}
	var out []Image
	add := func(ref, kind string, obj any) error {
		im := Image{Ref: ref, Kind: kind, Object: obj, Plats: map[string]string{}}
		switch o := obj.(type) {
		case v1.ImageIndex:
			d, err := o.Digest()
			if err != nil {
				return err
			}
			im.Digest = d.String()
			m, err := o.IndexManifest()
			if err != nil {
				return err
			}
			for _, c := range m.Manifests {
				im.Plats[c.Platform.String()] = c.Digest.String()
			}
		case v1.Image:
			d, err := o.Digest()
			if err != nil {
				return err
			}
			im.Digest = d.String()
			cf, err := o.ConfigFile()
			if err != nil {
				return err
			}
			im.Plats[cf.Platform().String()] = d.String()
		}
		out = append(out, im)
		return nil
	}
	oci := func(p fixtures.Platform, title string, layers ...string) (v1.Image, error) {
		return image(dir, true, p, title, layers...)
	}

	// (a) A multi-platform OCI index.
	var children []fixtures.Child
	for _, p := range []fixtures.Platform{fixtures.LinuxAMD64, fixtures.LinuxARM64} {
		img, err := oci(p, "hello", "base", "hello/"+p.Architecture)
		if err != nil {
			return nil, err
		}
		children = append(children, fixtures.Child{Platform: p, Image: img})
	}
	idx, err := fixtures.IndexOf(true, children...)
	if err != nil {
		return nil, err
	}
	if err := add("library/hello:1.0", "OCI index: linux/amd64, linux/arm64", idx); err != nil {
		return nil, err
	}

	// (b) A Docker schema2 single-platform image.
	pause, err := image(dir, false, fixtures.LinuxAMD64, "pause", "pause")
	if err != nil {
		return nil, err
	}
	if err := add("airgapdemo/pause:3.6", "Docker schema2 manifest, linux/amd64", pause); err != nil {
		return nil, err
	}

	// (c) Whiteouts: a deleted file and an opaque directory in the upper layer.
	webapp, err := oci(fixtures.LinuxAMD64, "webapp", "webapp/1-base", "webapp/2-update")
	if err != nil {
		return nil, err
	}
	if err := add("airgapdemo/webapp:2.0", "OCI manifest, linux/amd64, whiteout + opaque dir in layer 2", webapp); err != nil {
		return nil, err
	}

	// (d) One image, two tags.
	toolbox, err := oci(fixtures.LinuxAMD64, "toolbox", "base", "toolbox")
	if err != nil {
		return nil, err
	}
	for _, tag := range []string{"1.2", "stable"} {
		if err := add("airgapdemo/toolbox:"+tag, "OCI manifest, linux/amd64 (same image as :1.2 and :stable)", toolbox); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// image builds a single-platform image from the layer directories (relative
// to dir), with OCI media types when oci is set, Docker schema2 otherwise.
func image(dir string, oci bool, p fixtures.Platform, title string, layerDirs ...string) (v1.Image, error) {
	layerType := types.DockerLayer
	if oci {
		layerType = types.OCILayer
	}
	layers := make([]fixtures.Layer, 0, len(layerDirs))
	for _, ld := range layerDirs {
		l, err := dirLayer(filepath.Join(dir, filepath.FromSlash(ld)), layerType)
		if err != nil {
			return nil, err
		}
		layers = append(layers, fixtures.Layer{Layer: l, CreatedBy: "COPY testdata/demo/" + ld + "/ /"})
	}
	return fixtures.Assemble(fixtures.ImageSpec{Platform: p, OCI: oci, Created: Epoch, Layers: layers, Config: v1.Config{
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd: []string{"/bin/sh", "-c", "echo 'airgap-bundle demo image " + title + ": text files only, nothing to run'"},
		Labels: map[string]string{
			"org.opencontainers.image.title":  "airgap-bundle demo: " + title,
			"org.opencontainers.image.source": "https://github.com/airgap-bundle/airgap-bundle/tree/main/testdata/demo",
		},
	}})
}

// dirLayer makes a layer of the files under root: one tar entry per
// directory and regular file, in fs.WalkDir's (lexical) order, with fixed
// owner, mtime and modes, so nothing of the checkout (umask, clone time,
// user) reaches the digest. Symlinks and other file types are refused: git
// does not carry them the same way everywhere.
func dirLayer(root string, mt types.MediaType) (v1.Layer, error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	err := fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		h := &tar.Header{
			Name:    p,
			ModTime: Epoch,
			Uname:   "root",
			Gname:   "root",
			Format:  tar.FormatUSTAR,
		}
		var content []byte
		switch {
		case d.IsDir():
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, p+"/", 0o755
		case d.Type().IsRegular():
			if content, err = os.ReadFile(filepath.Join(root, filepath.FromSlash(p))); err != nil {
				return err
			}
			h.Typeflag, h.Size, h.Mode = tar.TypeReg, int64(len(content)), 0o644
			if bytes.HasPrefix(content, []byte("#!")) {
				h.Mode = 0o755
			}
		default:
			return fmt.Errorf("%s: only directories and regular files can go into a demo layer", path.Join(filepath.ToSlash(root), p))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", path.Join(filepath.ToSlash(root), p), err)
		}
		_, err = tw.Write(content)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("demo layer %s: %w", root, err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if tarBuf.Len() <= 1024 { // only the end-of-archive blocks
		return nil, fmt.Errorf("demo layer %s: no files", root)
	}

	var gzBuf bytes.Buffer
	// A zero gzip.Header: no name, no comment, mtime 0. The compressor is
	// klauspost/compress at the version go.mod pins, so the output does not
	// change with the Go release.
	zw, err := gzip.NewWriterLevel(&gzBuf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return fixtures.LayerFromBytes(tarBuf.Bytes(), gzBuf.Bytes(), mt), nil
}
