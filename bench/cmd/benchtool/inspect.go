package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// contents is what inspect learns from a contender's output: the sha256 of
// every regular file in it, and which well-known files sit at an archive's root.
type contents struct {
	sums     map[string]bool // "sha256:<hex>"
	rootDocs map[string]bool // manifest.json, index.json, oci-layout at the root
	dirs     int             // skopeo dir: trees (a "version" file next to "manifest.json")
}

// runInspect prints, tab-separated, how many of the expected images are in
// the outputs (their config blob is there, byte for byte), how many of the
// registry's manifests are there byte for byte (so their digests survive),
// and the archive format.
func runInspect(args []string) error {
	fset := flag.NewFlagSet("inspect", flag.ContinueOnError)
	expect := fset.String("expect", "", "refs.json written by gen")
	big := fset.Bool("big", false, "expect the big image instead of the image set")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *expect == "" || fset.NArg() == 0 {
		return errors.New("need --expect refs.json and at least one PATH")
	}
	b, err := os.ReadFile(*expect)
	if err != nil {
		return err
	}
	var refs Refs
	if err := json.Unmarshal(b, &refs); err != nil {
		return fmt.Errorf("%s: %w", *expect, err)
	}
	want := refs.Images
	if *big {
		if refs.Big == nil {
			return errors.New("refs.json has no big image")
		}
		want = []Pushed{*refs.Big}
	}
	c := &contents{sums: map[string]bool{}, rootDocs: map[string]bool{}}
	for _, p := range fset.Args() {
		if err := c.add(p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	var images, kept int
	for _, p := range want {
		if c.sums[p.Config] {
			images++
		}
		if c.sums[p.Digest] {
			kept++
		}
	}
	fmt.Printf("%d/%d\t%d/%d\t%s\n", images, len(want), kept, len(want), c.format())
	return nil
}

func (c *contents) format() string {
	oci := c.rootDocs["index.json"] && c.rootDocs["oci-layout"]
	docker := c.rootDocs["manifest.json"]
	switch {
	case oci && docker:
		return "OCI layout + docker manifest.json"
	case oci:
		return "OCI layout"
	case docker:
		return "docker-archive (manifest.json)"
	case c.dirs > 0:
		return fmt.Sprintf("tar of %d skopeo dir: trees", c.dirs)
	}
	return "unknown"
}

func (c *contents) add(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return c.addDir(p)
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	magic, _ := br.Peek(4)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	return c.addTar(r)
}

func (c *contents) addTar(r io.Reader) error {
	tr := tar.NewReader(r)
	dirDocs := map[string]int{} // per directory: 1 = manifest.json, 2 = version
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		dir, base := path.Split(name)
		switch {
		case dir == "":
			c.rootDocs[name] = true
		case base == "manifest.json":
			dirDocs[dir] |= 1
		case base == "version":
			dirDocs[dir] |= 2
		}
		if err := c.hash(tr); err != nil {
			return err
		}
	}
	for _, v := range dirDocs {
		if v == 3 {
			c.dirs++
		}
	}
	return nil
}

func (c *contents) addDir(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !strings.Contains(rel, string(filepath.Separator)) {
			c.rootDocs[rel] = true
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return c.hash(f)
	})
}

func (c *contents) hash(r io.Reader) error {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return err
	}
	c.sums["sha256:"+hex.EncodeToString(h.Sum(nil))] = true
	return nil
}
