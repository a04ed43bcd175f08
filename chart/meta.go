package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.yaml.in/yaml/v3"
)

// Media types of a Helm chart stored in an OCI registry (helm push).
const (
	ConfigMediaType        = "application/vnd.cncf.helm.config.v1+json"
	ContentMediaType       = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	LegacyContentMediaType = "application/tar+gzip"
	ProvenanceMediaType    = "application/vnd.cncf.helm.chart.provenance.v1.prov"
)

// Metadata is a chart's Chart.yaml, with the JSON names Helm gives it in
// an OCI chart's config blob, so a config made from it reads in helm pull.
type Metadata struct {
	Name         string            `json:"name,omitempty" yaml:"name"`
	Home         string            `json:"home,omitempty" yaml:"home"`
	Sources      []string          `json:"sources,omitempty" yaml:"sources"`
	Version      string            `json:"version,omitempty" yaml:"version"`
	Description  string            `json:"description,omitempty" yaml:"description"`
	Keywords     []string          `json:"keywords,omitempty" yaml:"keywords"`
	Maintainers  []Maintainer      `json:"maintainers,omitempty" yaml:"maintainers"`
	Icon         string            `json:"icon,omitempty" yaml:"icon"`
	APIVersion   string            `json:"apiVersion,omitempty" yaml:"apiVersion"`
	Condition    string            `json:"condition,omitempty" yaml:"condition"`
	Tags         string            `json:"tags,omitempty" yaml:"tags"`
	AppVersion   string            `json:"appVersion,omitempty" yaml:"appVersion"`
	Deprecated   bool              `json:"deprecated,omitempty" yaml:"deprecated"`
	Annotations  map[string]string `json:"annotations,omitempty" yaml:"annotations"`
	KubeVersion  string            `json:"kubeVersion,omitempty" yaml:"kubeVersion"`
	Dependencies []Dependency      `json:"dependencies,omitempty" yaml:"dependencies"`
	Type         string            `json:"type,omitempty" yaml:"type"`
}

// Maintainer is one entry of Chart.yaml's maintainers.
type Maintainer struct {
	Name  string `json:"name,omitempty" yaml:"name"`
	Email string `json:"email,omitempty" yaml:"email"`
	URL   string `json:"url,omitempty" yaml:"url"`
}

// Dependency is one entry of Chart.yaml's dependencies.
type Dependency struct {
	Name         string   `json:"name" yaml:"name"`
	Version      string   `json:"version,omitempty" yaml:"version"`
	Repository   string   `json:"repository" yaml:"repository"`
	Condition    string   `json:"condition,omitempty" yaml:"condition"`
	Tags         []string `json:"tags,omitempty" yaml:"tags"`
	Enabled      bool     `json:"enabled,omitempty" yaml:"enabled"`
	ImportValues []any    `json:"import-values,omitempty" yaml:"import-values"`
	Alias        string   `json:"alias,omitempty" yaml:"alias"`
}

// Config is the chart's OCI config blob, as helm push writes it.
func (m *Metadata) Config() ([]byte, error) { return json.Marshal(m) }

// Bounds on a chart archive read for its Chart.yaml: Helm's own loader
// refuses charts over 100 MiB decompressed.
const (
	MaxArchive   = 64 << 20
	maxChartYAML = 1 << 20
	maxEntries   = 100000
)

// ReadMetadata finds the top-level Chart.yaml of a chart archive (the one
// at NAME/Chart.yaml, not a subchart's) and decodes it.
func ReadMetadata(path string) (*Metadata, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseArchiveMetadata(io.LimitReader(f, MaxArchive+1))
}

// ParseArchiveMetadata is ReadMetadata of an archive's bytes.
func ParseArchiveMetadata(r io.Reader) (*Metadata, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a chart archive (.tgz): %v", err)
	}
	tr := tar.NewReader(zr)
	for n := 0; n < maxEntries; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("not a chart archive: no NAME/Chart.yaml")
		}
		if err != nil {
			return nil, fmt.Errorf("reading the chart archive: %v", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		dir, file, ok := strings.Cut(name, "/")
		if !ok || dir == "" || file != "Chart.yaml" || h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > maxChartYAML {
			return nil, fmt.Errorf("%s is over %d bytes", name, maxChartYAML)
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxChartYAML))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %v", name, err)
		}
		return ParseMetadata(data)
	}
	return nil, fmt.Errorf("not a chart archive: no Chart.yaml in its first %d entries", maxEntries)
}

// ParseMetadata decodes a Chart.yaml and checks what every chart has.
func ParseMetadata(data []byte) (*Metadata, error) {
	var m Metadata
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("Chart.yaml: %v", err)
	}
	if m.Name == "" || m.Version == "" {
		return nil, errors.New("Chart.yaml: name and version are required")
	}
	if strings.ContainsAny(m.Name, "/\\") || m.Name == "." || m.Name == ".." {
		return nil, fmt.Errorf("Chart.yaml: name %q is not a chart name", m.Name)
	}
	if strings.ContainsAny(m.Version, "/\\ ") {
		return nil, fmt.Errorf("Chart.yaml: version %q is not a version", m.Version)
	}
	return &m, nil
}

// Manifest is the OCI manifest of a chart archive (of size bytes, digest
// archive) whose Chart.yaml is m, in the form helm push gives it (config
// and content media types, title and version annotations) but without a
// creation time, so the same chart always gives the same manifest: a chart
// from an HTTP repository or a path is carried, and pushed, in this form.
// It returns the manifest and the config blob.
func (m *Metadata) Manifest(archive digest.Digest, size int64) (manifest, config []byte, err error) {
	config, err = m.Config()
	if err != nil {
		return nil, nil, err
	}
	ann := map[string]string{
		ocispec.AnnotationTitle:   m.Name,
		ocispec.AnnotationVersion: m.Version,
	}
	if m.Description != "" {
		ann[ocispec.AnnotationDescription] = m.Description
	}
	man := ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      ocispec.Descriptor{MediaType: ConfigMediaType, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers:      []ocispec.Descriptor{{MediaType: ContentMediaType, Digest: archive, Size: size}},
		Annotations: ann,
	}
	manifest, err = json.Marshal(man)
	return manifest, config, err
}
