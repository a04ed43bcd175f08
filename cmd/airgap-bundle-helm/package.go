package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// The one time every entry has: the lock pins a chart by its digest, so
// packaging the same directory twice must give the same bytes. 1980 rather
// than 1970, which some tar and zip tools warn about or cannot store.
var epoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// packageChart is `helm package DIR` (helm's loader with .helmignore,
// vendored subcharts written out as directories under charts/, Chart.yaml
// as helm writes it, the missing-dependency check), followed by a rewrite
// of helm's archive into a reproducible one: entries sorted by path, one
// mtime, mode 0644, uid/gid 0 and no user names, no directory entries,
// and a gzip header with neither name nor mtime. Helm's own archive has
// the files' mtimes and its loader's (partly map) order.
func packageChart(req *packageRequest) (*packageResponse, error) {
	if req.Dir == "" || req.Out == "" {
		return nil, errorf("request", "package needs a chart directory and an output path")
	}
	fi, err := os.Stat(req.Dir)
	if err != nil {
		return nil, errorf("request", "chart directory: %v", err)
	}
	if !fi.IsDir() {
		return nil, errorf("request", "%s is not a directory", req.Dir)
	}
	// helm package's own loading, only to check the dependencies first:
	// its error says what is missing but not how to get it.
	ch, err := loader.LoadDir(req.Dir)
	if err != nil {
		return nil, errorf("request", "loading chart %s: %v", req.Dir, err)
	}
	if err := checkDependencies(ch); err != nil {
		return nil, err
	}

	tmp, err := os.MkdirTemp("", "airgap-bundle-helm-package-")
	if err != nil {
		return nil, errorf("request", "%v", err)
	}
	defer os.RemoveAll(tmp)
	p := action.NewPackage()
	p.Destination = tmp
	helmTgz, err := p.Run(req.Dir, nil)
	if err != nil {
		return nil, errorf("request", "packaging %s: %v", req.Dir, err)
	}
	data, err := reproducible(helmTgz)
	if err != nil {
		return nil, errorf("request", "packaging %s: %v", req.Dir, err)
	}
	// What airgap-bundle will render must load: the rewrite checked by
	// the loader that render uses.
	got, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, errorf("request", "packaging %s: the archive made does not load: %v", req.Dir, err)
	}
	if err := writeFileAtomic(req.Out, data); err != nil {
		return nil, errorf("request", "writing %s: %v", req.Out, err)
	}
	return &packageResponse{Name: got.Metadata.Name, Version: got.Metadata.Version}, nil
}

// reproducible reads helm's .tgz and writes the same files in the fixed
// form packageChart describes.
func reproducible(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	type entry struct {
		name string
		data []byte
	}
	var entries []entry
	// Helm refuses to load more than this decompressed; so do we, before
	// holding it all in memory.
	budget := archive.MaxDecompressedChartSize
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch h.Typeflag {
		case tar.TypeReg:
		case tar.TypeDir:
			continue
		default:
			return nil, fmt.Errorf("helm wrote %s as tar type %q, not a file", h.Name, h.Typeflag)
		}
		if h.Size > budget {
			return nil, fmt.Errorf("the chart is over %d bytes decompressed", archive.MaxDecompressedChartSize)
		}
		budget -= h.Size
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{name: h.Name, data: data})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(entries); i++ {
		// A subchart vendored both as a directory and as a .tgz of the
		// same name: helm would write both and the loader keep either.
		if entries[i].name == entries[i-1].name {
			return nil, fmt.Errorf("%s would be in the archive twice (is a subchart in charts/ both a directory and a .tgz?)", entries[i].name)
		}
	}

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     e.name,
			Mode:     0o644,
			Size:     int64(len(e.data)),
			ModTime:  epoch,
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeFileAtomic leaves either the whole archive at path or what was
// there before, never a part.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
