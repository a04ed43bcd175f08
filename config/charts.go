package config

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
)

// A group's charts: each is a Helm chart whose rendered manifests name
// images. The spec only says where a chart comes from and how to render
// it; lock fetches, pins and renders (package bundler), so nothing here
// touches the network.

// Chart is one [[group.charts]] entry.
type Chart struct {
	// Exactly one source: Repo (an HTTP(S) chart repository) with Name,
	// OCI (oci://host/path/name, no tag), or Path (a chart directory or
	// .tgz, absolute once decoded).
	Repo string
	Name string // the chart's name in Repo; for OCI the last path element
	OCI  string
	Path string
	// PathWritten is Path as the spec wrote it (the lockfile records it,
	// so a lockfile does not depend on where the checkout lives).
	PathWritten string
	// Version is an exact version or a semver constraint ("" means the
	// newest release, as helm does); Path charts have their own.
	Version string
	// Values are values files (absolute), merged in order, then Set.
	Values      []string
	Set         map[string]any
	ReleaseName string
	Namespace   string
	KubeVersion string // "" means the renderer's default
	APIVersions []string
	// ExtraImages are images the chart pulls at run time that no template
	// names (an operator's operands).
	ExtraImages []Image
	// Inputs digests everything besides the chart that shapes the
	// rendering: the values files' bytes, Set, release name, namespace,
	// kube-version and api-versions. The lockfile records it; a change
	// means the chart must be rendered again.
	Inputs digest.Digest
	Pos    errdefs.Pos
	// Relocked is set by lock once it pinned and rendered the chart again
	// in this run: its lockfile entry's images are then not its images.
	Relocked bool
}

// Source is the chart's identity in the lockfile: "REPO#NAME", the oci://
// reference, or "path:" and the path as written.
func (c *Chart) Source() string {
	switch {
	case c.Repo != "":
		return c.Repo + "#" + c.Name
	case c.OCI != "":
		return c.OCI
	}
	return "path:" + c.PathWritten
}

// Label names the chart in messages.
func (c *Chart) Label() string {
	switch {
	case c.Repo != "":
		return fmt.Sprintf("chart %q from %s", c.Name, c.Repo)
	case c.OCI != "":
		return fmt.Sprintf("chart %s", c.OCI)
	}
	return fmt.Sprintf("chart %s", c.PathWritten)
}

// Host is the registry host (host[:port]) whose registries entry gives the
// chart's credentials and TLS settings; "" for a local chart.
func (c *Chart) Host() string {
	switch {
	case c.Repo != "":
		if u, err := url.Parse(c.Repo); err == nil {
			return u.Host
		}
	case c.OCI != "":
		rest := strings.TrimPrefix(c.OCI, "oci://")
		host, _, _ := strings.Cut(rest, "/")
		return host
	}
	return ""
}

type rawChart struct {
	Repo        *string        `toml:"repo"`
	Name        *string        `toml:"name"`
	OCI         *string        `toml:"oci"`
	Path        *string        `toml:"path"`
	Version     *string        `toml:"version"`
	Values      []string       `toml:"values"`
	Set         map[string]any `toml:"set"`
	ReleaseName *string        `toml:"release-name"`
	Namespace   *string        `toml:"namespace"`
	KubeVersion *string        `toml:"kube-version"`
	APIVersions []string       `toml:"api-versions"`
	ExtraImages []string       `toml:"extra-images"`
}

var (
	chartKinds = map[string]kind{"repo": kString, "name": kString, "oci": kString, "path": kString, "version": kString,
		"values": kStrings, "set": kTable, "release-name": kString, "namespace": kString, "kube-version": kString,
		"api-versions": kStrings, "extra-images": kStrings}
	chartNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)
	// A release name and a namespace are DNS labels for Helm.
	dnsLabelRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,51}[a-z0-9])?$`)
	kubeVerRE    = regexp.MustCompile(`^v?[0-9]+\.[0-9]+(\.[0-9]+)?$`)
	apiVersionRE = regexp.MustCompile(`^[A-Za-z0-9.-]+(/[A-Za-z0-9.-]+)?(/[A-Za-z0-9.-]+)?$`)
)

func init() {
	validKeys["chart"] = []string{"repo", "name", "oci", "path", "version", "values", "set", "release-name", "namespace", "kube-version", "api-versions", "extra-images"}
}

// charts decodes a group's charts, adding their extra images to the group.
func (d *decoder) charts(p []any, label string, raws []*rawChart, g *Group, addImage func(Image)) {
	seen := map[string]int{}
	for i, rc := range raws {
		at := append(slices.Clip(p), "charts", i)
		c := d.chart(at, fmt.Sprintf("%s chart #%d", label, i+1), rc)
		if c == nil {
			continue
		}
		if first, dup := seen[c.Source()]; dup {
			d.add(at, "%s: %s is also listed as chart #%d; one entry per chart", label, c.Label(), first+1)
			continue
		}
		seen[c.Source()] = i
		for _, img := range c.ExtraImages {
			addImage(img)
		}
		g.Charts = append(g.Charts, c)
	}
}

func (d *decoder) chart(at []any, label string, raw *rawChart) *Chart {
	key := func(k string) []any { return append(slices.Clip(at), k) }
	str := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	c := &Chart{Pos: d.pos(at...), Repo: str(raw.Repo), Name: str(raw.Name), OCI: str(raw.OCI), Version: strings.TrimSpace(str(raw.Version)), Set: raw.Set}
	before := d.errs.count()
	n := 0
	for _, s := range []*string{raw.Repo, raw.OCI, raw.Path} {
		if s != nil {
			n++
		}
	}
	if n != 1 {
		d.add(at, "%s: give exactly one source: repo = \"https://…\" with name, oci = \"oci://host/path/name\", or path = \"charts/x\"", label)
		return nil
	}
	switch {
	case raw.Repo != nil:
		u, err := url.Parse(c.Repo)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			d.add(key("repo"), "%s: repo %q is not an http(s) chart repository URL (the directory holding index.yaml)", label, c.Repo)
		}
		c.Repo = strings.TrimSuffix(c.Repo, "/")
		if c.Name == "" {
			d.add(at, "%s: a repo chart needs name = \"CHART\"", label)
		} else if !chartNameRE.MatchString(c.Name) {
			d.add(key("name"), "%s: name %q is not a chart name (lower case letters, digits, '-', '_' and '.')", label, c.Name)
		}
		label = fmt.Sprintf("%s %s", label, c.Label())
	case raw.OCI != nil:
		rest, ok := strings.CutPrefix(c.OCI, "oci://")
		if !ok || rest == "" {
			d.add(key("oci"), "%s: oci %q must start with oci:// (oci://host/path/name)", label, c.OCI)
			break
		}
		if strings.ContainsAny(path.Base(rest), ":@") {
			d.add(key("oci"), "%s: oci %q: give the version in version = \"…\", not as a tag or digest", label, c.OCI)
			break
		}
		ref, err := image.ParseReference(rest+":x", "")
		if err != nil || !strings.Contains(rest, "/") {
			d.add(key("oci"), "%s: oci %q is not oci://host/path/name", label, c.OCI)
			break
		}
		c.OCI = "oci://" + strings.TrimSuffix(ref.Name(), ":x")
		if raw.Name != nil && *raw.Name != path.Base(rest) {
			d.add(key("name"), "%s: name %q differs from the chart the oci reference names (%s); leave name out", label, *raw.Name, path.Base(rest))
		}
		c.Name = path.Base(rest)
	case raw.Path != nil:
		c.PathWritten = *raw.Path
		if c.PathWritten == "" {
			d.add(key("path"), "%s: path is empty", label)
			break
		}
		c.Path = d.relPath(c.PathWritten)
		if raw.Version != nil {
			d.add(key("version"), "%s: a path chart has its own version (Chart.yaml); leave version out", label)
		}
		if raw.Name != nil {
			d.add(key("name"), "%s: a path chart has its own name (Chart.yaml); leave name out", label)
		}
		c.Name = strings.TrimSuffix(filepath.Base(c.Path), ".tgz")
	}
	if c.Version != "" && strings.ContainsAny(c.Version, "\n\"") {
		d.add(key("version"), "%s: version %q is not a version or constraint", label, c.Version)
	}

	c.ReleaseName = c.Name
	if raw.ReleaseName != nil {
		c.ReleaseName = *raw.ReleaseName
	}
	if !dnsLabelRE.MatchString(c.ReleaseName) {
		at := at
		if raw.ReleaseName != nil {
			at = key("release-name")
		}
		d.add(at, "%s: release name %q must be a DNS label (lower case letters, digits and '-', at most 53 characters); set release-name", label, c.ReleaseName)
	}
	c.Namespace = "default"
	if raw.Namespace != nil {
		c.Namespace = *raw.Namespace
		if !dnsLabelRE.MatchString(c.Namespace) {
			d.add(key("namespace"), "%s: namespace %q must be a DNS label", label, c.Namespace)
		}
	}
	if raw.KubeVersion != nil {
		c.KubeVersion = *raw.KubeVersion
		if !kubeVerRE.MatchString(c.KubeVersion) {
			d.add(key("kube-version"), "%s: kube-version %q: want a Kubernetes version such as \"1.31.0\"", label, c.KubeVersion)
		}
	}
	for j, a := range raw.APIVersions {
		if !apiVersionRE.MatchString(a) {
			d.add(append(key("api-versions"), j), "%s: api-versions[%d] %q: want group/version or group/version/Kind, e.g. \"monitoring.coreos.com/v1\"", label, j, a)
		}
	}
	c.APIVersions = raw.APIVersions
	for j, w := range raw.ExtraImages {
		ref, err := image.ParseReference(w, d.defaultRegistry)
		if err != nil {
			d.add(append(key("extra-images"), j), "%s: extra-images: %v", label, err)
			continue
		}
		c.ExtraImages = append(c.ExtraImages, Image{Ref: ref, Pos: d.pos(append(key("extra-images"), j)...)})
	}

	// The values files are read here, so a missing one is named at its
	// line with the spec's other problems, and their bytes go into Inputs.
	h := sha256.New()
	inputs := struct {
		Values      []digest.Digest `json:"values"`
		Set         map[string]any  `json:"set"`
		ReleaseName string          `json:"releaseName"`
		Namespace   string          `json:"namespace"`
		KubeVersion string          `json:"kubeVersion"`
		APIVersions []string        `json:"apiVersions"`
	}{Set: c.Set, ReleaseName: c.ReleaseName, Namespace: c.Namespace, KubeVersion: c.KubeVersion, APIVersions: c.APIVersions}
	for j, v := range raw.Values {
		file := d.relPath(v)
		data, err := inputfile.Read(d.ctx, file, inputfile.MaxManifest)
		if err != nil {
			d.add(append(key("values"), j), "%s: values file %s: %v", label, file, unwrapPathError(err))
			continue
		}
		c.Values = append(c.Values, file)
		inputs.Values = append(inputs.Values, digest.FromBytes(data))
	}
	js, err := json.Marshal(inputs)
	if err != nil {
		d.add(key("set"), "%s: set: %v", label, err)
	}
	h.Write(js)
	c.Inputs = digest.NewDigest(digest.SHA256, h)
	if d.errs.count() > before {
		return nil
	}
	return c
}
