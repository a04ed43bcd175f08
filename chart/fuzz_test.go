package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"testing"
)

// A chart repository's index.yaml is outside input: decoding it and
// choosing a version never panics, and a chosen version is one the index
// lists.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nentries:\n  web:\n  - version: 1.2.0\n    urls: [web-1.2.0.tgz]\n  - version: 1.3.0-rc.1\n    urls: [x]\n"), "~1.2")
	f.Add([]byte("entries: {a: [{version: v2, urls: [u]}], b: []}\n"), "")
	f.Add([]byte("entries: [1, 2]\n"), ">=1")
	f.Add([]byte("&a [*a, *a]"), "*")
	f.Fuzz(func(t *testing.T, data []byte, constraint string) {
		idx, err := ParseIndex(data)
		if err != nil {
			return
		}
		for name, es := range idx.Entries {
			e, err := idx.entry(name, constraint)
			if err != nil {
				continue
			}
			found := false
			for _, x := range es {
				found = found || x.Version == e.Version
			}
			if !found || len(e.URLs) == 0 {
				t.Fatalf("entry %q %q: chose %+v, not an entry with a URL", name, constraint, e)
			}
		}
	})
}

// A chart archive comes from a repository, a registry or a user: reading
// its Chart.yaml never panics, and what it returns has a name and version.
func FuzzParseArchiveMetadata(f *testing.F) {
	f.Add(tgz(map[string]string{"web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.2.0\n"}))
	f.Add(tgz(map[string]string{"web/charts/sub/Chart.yaml": "name: sub\nversion: 1\n", "web/Chart.yaml": "name: web\nversion: 2\ndependencies: [{name: sub}]\n"}))
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseArchiveMetadata(bytes.NewReader(data))
		if err == nil && (m.Name == "" || m.Version == "") {
			t.Fatalf("metadata without name or version: %+v", m)
		}
	})
}

func tgz(files map[string]string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}
