// Package lockfile reads and writes bundle.lock: the registry digests a spec
// resolved to. It is generated, sorted and free of timestamps so that users
// can commit it and review its diffs.
package lockfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/BurntSushi/toml"
	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
	"github.com/airgap-bundle/airgap-bundle/internal/tomlpos"
)

// Version is the lockfile format this code reads and writes.
const Version = 1

// Lock is a whole lockfile.
type Lock struct {
	Version int     `toml:"version"`
	Groups  []Group `toml:"group"`
}

// Group pins the images of one spec group. Platforms and Index record what
// the group asked for, so a change to either re-resolves it.
type Group struct {
	Name      string          `toml:"name"`
	Platforms []string        `toml:"platforms"`
	Index     image.IndexMode `toml:"index"`
	// Attachments records that the group carries its images' signatures,
	// SBOMs and attestations (spec: carry-signatures): each image's
	// artifacts were looked for, and a change looks again.
	Attachments bool    `toml:"attachments,omitempty"`
	Images      []Image `toml:"image"`
	// Charts pin the group's Helm charts; the images they render are
	// among Images.
	Charts []Chart `toml:"chart,omitempty"`
}

// Chart pins one Helm chart of a group and says which images it brings.
type Chart struct {
	// Source is the spec's chart: "REPO#NAME", "oci://host/path/name" or
	// "path:" and the path as the spec writes it.
	Source string `toml:"source"`
	Name   string `toml:"name"` // from Chart.yaml
	// Constraint is the spec's version as written ("" for the newest, and
	// for path charts); Version what it resolved to.
	Constraint string `toml:"constraint,omitempty"`
	Version    string `toml:"version"`
	// Digest is the sha256 of the chart's .tgz, or for an OCI chart its
	// manifest's digest; Archive the .tgz's (equal to Digest but for OCI).
	Digest  digest.Digest `toml:"digest"`
	Archive digest.Digest `toml:"archive"`
	Size    int64         `toml:"size"` // of the .tgz
	// URL is where an HTTP repository serves the .tgz, as its index.yaml
	// said when it was locked.
	URL string `toml:"url,omitempty"`
	// Inputs is config.Chart.Inputs: the values, set and render options.
	Inputs digest.Digest `toml:"inputs"`
	Images []ChartImage  `toml:"image,omitempty"`
}

// ChartImage is one image a chart brings and where it came from: the
// rendered template ("chart/templates/x.yaml") or "extra-images".
type ChartImage struct {
	Ref      string `toml:"ref"`
	Template string `toml:"template"`
}

// ChartsDir is where build puts each chart's .tgz beside the archives
// (with a SHA256SUMS of its own), and apply too.
const ChartsDir = "charts"

// FileName is the chart's .tgz in ChartsDir, as helm package names it.
func (c *Chart) FileName() string { return c.Name + "-" + c.Version + ".tgz" }

// ArtifactName is the chart's NAME:VERSION, which names its OCI form in
// an archive (archive.Artifact.Image).
func (c *Chart) ArtifactName() string { return c.Name + ":" + c.Version }

// FromExtraImages is ChartImage.Template for an image the spec lists in
// the chart's extra-images.
const FromExtraImages = "extra-images"

// Chart returns the chart entry of that source, or nil.
func (g *Group) Chart(source string) *Chart {
	for i := range g.Charts {
		if g.Charts[i].Source == source {
			return &g.Charts[i]
		}
	}
	return nil
}

// Image pins one reference.
type Image struct {
	Ref       string          `toml:"ref"`        // canonical, as written in the spec
	Digest    digest.Digest   `toml:"digest"`     // what the reference pointed to
	MediaType image.MediaType `toml:"media-type"` // manifest or index
	Size      int64           `toml:"size"`       // top-level blob plus every selected platform
	// FilteredDigest is the digest of the index written into the archive
	// when the group's index mode is "filtered".
	FilteredDigest digest.Digest `toml:"filtered-digest,omitempty"`
	Platforms      []Platform    `toml:"platform"`
	// Signatures record what lock verified: absent when no signature
	// requirement applies to the image.
	Signatures []Signature `toml:"signature,omitempty"`
	// Artifacts are the signatures, SBOMs and attestations attached to
	// the image's manifests that the archive carries (groups with
	// attachments only).
	Artifacts []Artifact `toml:"artifact,omitempty"`
}

// Kinds of artifacts.
const (
	ArtifactSignature   = "signature"   // cosign's sha256-<hex>.sig
	ArtifactAttestation = "attestation" // cosign's sha256-<hex>.att
	ArtifactSBOM        = "sbom"        // cosign's sha256-<hex>.sbom
	ArtifactReferrer    = "referrer"    // an OCI 1.1 referrer (subject)
)

// Artifact pins one manifest attached to a manifest of an image.
type Artifact struct {
	Kind    string        `toml:"kind"`
	Subject digest.Digest `toml:"subject"` // the image's digest or a platform's
	// Tag is the cosign tag it was found under; empty for a referrer.
	Tag          string          `toml:"tag,omitempty"`
	Digest       digest.Digest   `toml:"digest"`
	MediaType    image.MediaType `toml:"media-type"`
	ArtifactType string          `toml:"artifact-type,omitempty"`
	Size         int64           `toml:"size"` // manifest + config + layers
}

// Signature records one verified signature: which manifest it signs,
// the cosign signature manifest (tag sha256-<hex>.sig) that held it, and
// the key or identity that it was verified with. Keys are public; no
// secret is ever recorded.
type Signature struct {
	Manifest digest.Digest `toml:"manifest"` // the image's digest, or one of its platforms'
	Digest   digest.Digest `toml:"digest"`   // the signature manifest
	// Key is the public key file as the spec names it, Fingerprint the
	// sha256 of its DER SubjectPublicKeyInfo; Identity the Fulcio issuer
	// and subject instead.
	Key         string `toml:"key,omitempty"`
	Fingerprint string `toml:"fingerprint,omitempty"`
	Identity    string `toml:"identity,omitempty"`
}

// ArtifactTag is the cosign tag of an artifact of kind attached to
// manifest subject (sha256-<hex>.sig, .att, .sbom); "" for a referrer.
func ArtifactTag(subject digest.Digest, kind string) string {
	suffix := map[string]string{ArtifactSignature: ".sig", ArtifactAttestation: ".att", ArtifactSBOM: ".sbom"}[kind]
	if suffix == "" {
		return ""
	}
	return strings.Replace(subject.String(), ":", "-", 1) + suffix
}

// SignatureFor returns the recorded signature of manifest verified with a
// key of that fingerprint (or with that identity), or nil.
func (i *Image) SignatureFor(manifest digest.Digest, fingerprint, identity string) *Signature {
	for k := range i.Signatures {
		s := &i.Signatures[k]
		if s.Manifest == manifest && (fingerprint != "" && s.Fingerprint == fingerprint || identity != "" && s.Identity == identity) {
			return s
		}
	}
	return nil
}

// Manifests lists the manifests an image pins: its own digest, then each
// platform's that differs from it.
func (i *Image) Manifests() []digest.Digest {
	out := []digest.Digest{i.Digest}
	for _, p := range i.Platforms {
		if p.Digest != i.Digest {
			out = append(out, p.Digest)
		}
	}
	return out
}

// Platform pins one platform's manifest of an image.
type Platform struct {
	Platform  string          `toml:"platform"`
	Digest    digest.Digest   `toml:"digest"`
	MediaType image.MediaType `toml:"media-type"`
	Config    digest.Digest   `toml:"config"`
	Size      int64           `toml:"size"` // manifest + config + layers, compressed
}

// IsIndex reports whether the image's top level is an index.
func (i *Image) IsIndex() bool { return i.MediaType.IsIndex() }

// Group returns the group of that name, or nil.
func (l *Lock) Group(name string) *Group {
	for i := range l.Groups {
		if l.Groups[i].Name == name {
			return &l.Groups[i]
		}
	}
	return nil
}

// Image returns the entry for a canonical reference, or nil.
func (g *Group) Image(ref string) *Image {
	for i := range g.Images {
		if g.Images[i].Ref == ref {
			return &g.Images[i]
		}
	}
	return nil
}

// Path is where the lockfile of a spec lives: beside it, with the spec's
// base name and a .lock extension (bundle.toml -> bundle.lock).
func Path(specPath string) string {
	base := strings.TrimSuffix(filepath.Base(specPath), filepath.Ext(specPath))
	return filepath.Join(filepath.Dir(specPath), base+".lock")
}

// Read reads and checks a lockfile. A missing file gives an error that
// matches os.ErrNotExist.
func Read(path string) (*Lock, error) {
	data, err := inputfile.Read(context.Background(), path, inputfile.MaxLockfile)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse checks a lockfile strictly: a hand-edited or corrupt lockfile is an
// error at its line, never silently replaced.
func Parse(data []byte, path string) (*Lock, error) {
	var l Lock
	md, err := toml.Decode(string(data), &l)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &errdefs.Error{Class: errdefs.ErrLockfile, Pos: errdefs.Pos{File: path, Line: pe.Position.Line, Col: tomlpos.Column(string(data), pe.Position.Line, pe.Position.Start)}, Msg: pe.Message + hint, Err: err}
		}
		return nil, &errdefs.Error{Class: errdefs.ErrLockfile, Pos: errdefs.Pos{File: path}, Msg: err.Error() + hint, Err: err}
	}
	c := &checker{path: path, loc: tomlpos.New(string(data))}
	if len(md.Undecoded()) > 0 {
		var doc map[string]any
		if _, err := toml.Decode(string(data), &doc); err == nil {
			unknownKeys(doc, func(p []any, name string) { c.add(c.loc.Line(p...), "unknown key %q", name) })
		}
	}
	if l.Version != Version {
		c.add(c.loc.Line("version"), "version = %d: this airgap-bundle reads lockfile version %d", l.Version, Version)
	}
	groups := map[string]bool{}
	for gi, g := range l.Groups {
		if g.Name == "" || groups[g.Name] {
			c.add(c.loc.Line("group", gi, "name"), "group name %q is empty or repeated", g.Name)
		}
		groups[g.Name] = true
		c.group(gi, g)
		c.charts(gi, g)
	}
	if len(c.errs) > 0 {
		return nil, fmt.Errorf("%w%s", errdefs.List(c.errs, "problems"), hint)
	}
	return &l, nil
}

// checker gathers a lockfile's problems, each at its line.
type checker struct {
	path string
	loc  *tomlpos.Locator
	errs []error
}

func (c *checker) add(line int, format string, args ...any) {
	c.errs = append(c.errs, &errdefs.Error{Class: errdefs.ErrLockfile, Pos: errdefs.Pos{File: c.path, Line: line}, Msg: fmt.Sprintf(format, args...)})
}

// at returns the line finder below a key path (group i, image j, ...).
func (c *checker) at(base ...any) func(p ...any) int {
	return func(p ...any) int { return c.loc.Line(append(slices.Clip(base), p...)...) }
}

func (c *checker) group(gi int, g Group) {
	line := c.at("group", gi)
	if len(g.Platforms) == 0 {
		c.add(line("platforms"), "group %q: platforms is empty", g.Name)
	} else if _, perrs := image.ParsePlatformSet(g.Platforms); len(perrs) > 0 {
		c.add(line("platforms"), "group %q: %v", g.Name, perrs[0])
	}
	if _, err := image.ParseIndexMode(string(g.Index)); err != nil {
		c.add(line("index"), "group %q: index = %q: want %q or %q", g.Name, g.Index, image.IndexOriginal, image.IndexFiltered)
	}
	refs := map[string]bool{}
	for ii, img := range g.Images {
		iline := c.at("group", gi, "image", ii)
		ref, rerr := image.ParseReference(img.Ref, "")
		switch {
		case rerr != nil:
			c.add(iline("ref"), "group %q: %v", g.Name, rerr)
		case ref.String() != img.Ref:
			c.add(iline("ref"), "group %q: ref %q is not canonical (want %q)", g.Name, img.Ref, ref.String())
		case refs[img.Ref]:
			c.add(iline("ref"), "group %q: image %q is listed twice", g.Name, img.Ref)
		}
		refs[img.Ref] = true
		what := fmt.Sprintf("group %q: image %q", g.Name, img.Ref)
		c.image(iline, what, img)
		c.signatures(iline, what, img)
		c.artifacts(iline, what, img)
		if !g.Attachments && len(img.Artifacts) > 0 {
			c.add(iline("artifact", 0, "kind"), "%s: artifacts in a group without attachments", what)
		}
	}
}

// image checks an image's own fields and its platforms.
func (c *checker) image(iline func(...any) int, what string, img Image) {
	if err := checkDigest(img.Digest); err != nil {
		c.add(iline("digest"), "%s: digest: %v", what, err)
	}
	if !img.MediaType.IsImage() {
		c.add(iline("media-type"), "%s: media-type %q is not an image manifest or index", what, img.MediaType)
	}
	if img.Size <= 0 {
		c.add(iline("size"), "%s: size must be positive", what)
	}
	if len(img.Platforms) == 0 {
		c.add(iline(), "%s has no platform entries", what)
	}
	for pi, p := range img.Platforms {
		pline := func(k string) int { return iline("platform", pi, k) }
		if _, err := image.ParsePlatform(p.Platform); err != nil {
			c.add(pline("platform"), "%s: %v", what, err)
		}
		if err := checkDigest(p.Digest); err != nil {
			c.add(pline("digest"), "%s: platform %s: digest: %v", what, p.Platform, err)
		}
		if err := checkDigest(p.Config); err != nil {
			c.add(pline("config"), "%s: platform %s: config: %v", what, p.Platform, err)
		}
		if !p.MediaType.IsManifest() {
			c.add(pline("media-type"), "%s: platform %s: media-type %q is not an image manifest", what, p.Platform, p.MediaType)
		}
		if p.Size <= 0 {
			c.add(pline("size"), "%s: platform %s: size must be positive", what, p.Platform)
		}
	}
	if img.FilteredDigest != "" {
		if err := checkDigest(img.FilteredDigest); err != nil {
			c.add(iline("filtered-digest"), "%s: filtered-digest: %v", what, err)
		}
	}
	if !img.IsIndex() && len(img.Platforms) > 1 {
		c.add(iline("platform", 1), "%s: a single manifest has exactly one platform entry", what)
	}
	if !img.IsIndex() && len(img.Platforms) == 1 && img.Platforms[0].Digest != img.Digest {
		c.add(iline("platform", 0, "digest"), "%s: a single manifest's platform digest must equal its digest", what)
	}
}

func (c *checker) signatures(iline func(...any) int, what string, img Image) {
	seen := map[Signature]bool{}
	for si, sg := range img.Signatures {
		sline := func(k string) int { return iline("signature", si, k) }
		switch {
		case checkDigest(sg.Manifest) != nil:
			c.add(sline("manifest"), "%s: signature: manifest: %v", what, checkDigest(sg.Manifest))
		case !slices.Contains(img.Manifests(), sg.Manifest):
			c.add(sline("manifest"), "%s: signature of %s, which is neither the image nor one of its platforms", what, sg.Manifest)
		}
		if err := checkDigest(sg.Digest); err != nil {
			c.add(sline("digest"), "%s: signature: digest: %v", what, err)
		}
		switch {
		case sg.Identity != "" && (sg.Key != "" || sg.Fingerprint != ""):
			c.add(sline("identity"), "%s: a signature is verified with a key or an identity, not both", what)
		case sg.Identity == "" && (sg.Key == "" || sg.Fingerprint == ""):
			c.add(sline("key"), "%s: signature of %s: key and fingerprint (or identity) are required", what, sg.Manifest)
		case sg.Fingerprint != "":
			if err := checkDigest(digest.Digest(sg.Fingerprint)); err != nil {
				c.add(sline("fingerprint"), "%s: signature: fingerprint: %v", what, err)
			}
		}
		if seen[sg] {
			c.add(sline("manifest"), "%s: signature listed twice", what)
		}
		seen[sg] = true
	}
}

func (c *checker) artifacts(iline func(...any) int, image string, img Image) {
	seen := map[digest.Digest]bool{}
	for ai, a := range img.Artifacts {
		aline := func(k string) int { return iline("artifact", ai, k) }
		what := fmt.Sprintf("%s: artifact %d", image, ai+1)
		if !slices.Contains([]string{ArtifactSignature, ArtifactAttestation, ArtifactSBOM, ArtifactReferrer}, a.Kind) {
			c.add(aline("kind"), "%s: kind %q: want %q, %q, %q or %q", what, a.Kind, ArtifactSignature, ArtifactAttestation, ArtifactSBOM, ArtifactReferrer)
		}
		if !slices.Contains(img.Manifests(), a.Subject) {
			c.add(aline("subject"), "%s: subject %q is neither the image nor one of its platforms", what, a.Subject)
		}
		if err := checkDigest(a.Digest); err != nil {
			c.add(aline("digest"), "%s: digest: %v", what, err)
		} else if seen[a.Digest] {
			c.add(aline("digest"), "%s: %s is listed twice", what, a.Digest)
		}
		seen[a.Digest] = true
		if want := ArtifactTag(a.Subject, a.Kind); (a.Kind == ArtifactReferrer) != (a.Tag == "") || a.Tag != "" && a.Tag != want {
			c.add(aline("tag"), "%s: tag %q: want %q", what, a.Tag, want)
		}
		if !a.MediaType.IsManifest() {
			c.add(aline("media-type"), "%s: media-type %q is not a manifest", what, a.MediaType)
		}
		if a.Size <= 0 {
			c.add(aline("size"), "%s: size must be positive", what)
		}
	}
}

// charts checks a group's chart entries: each image a chart brings must be
// pinned in the group, so build can trust the group's images alone.
func (c *checker) charts(gi int, g Group) {
	seen := map[string]bool{}
	for ci, ch := range g.Charts {
		line := c.at("group", gi, "chart", ci)
		what := fmt.Sprintf("group %q: chart %q", g.Name, ch.Source)
		switch {
		case ch.Source == "":
			c.add(line("source"), "group %q: a chart without source", g.Name)
		case seen[ch.Source]:
			c.add(line("source"), "%s is listed twice", what)
		}
		seen[ch.Source] = true
		if ch.Name == "" || ch.Version == "" {
			c.add(line(), "%s: name and version are required", what)
		}
		for k, d := range map[string]digest.Digest{"digest": ch.Digest, "archive": ch.Archive, "inputs": ch.Inputs} {
			if err := checkDigest(d); err != nil {
				c.add(line(k), "%s: %s: %v", what, k, err)
			}
		}
		if ch.Size <= 0 {
			c.add(line("size"), "%s: size must be positive", what)
		}
		if !strings.HasPrefix(ch.Source, "oci://") && ch.Digest != ch.Archive {
			c.add(line("archive"), "%s: archive must equal digest but for an OCI chart", what)
		}
		for ii, im := range ch.Images {
			if g.Image(im.Ref) == nil {
				c.add(line("image", ii, "ref"), "%s: image %q is not pinned in the group", what, im.Ref)
			}
			if im.Template == "" {
				c.add(line("image", ii, "template"), "%s: image %q: template is required", what, im.Ref)
			}
		}
	}
}

const hint = "\n(the lockfile is generated: restore it from version control, or delete it and run \"airgap-bundle lock\")"

func checkDigest(d digest.Digest) error {
	s := d.String()
	d, err := digest.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%q: only sha256 is supported", s)
	}
	return nil
}

// Sort puts groups, images and platforms in the order they are written.
// Platforms keep the order the group asked for: the first one is what
// docker load shows.
func (l *Lock) Sort() {
	sort.Slice(l.Groups, func(i, j int) bool { return l.Groups[i].Name < l.Groups[j].Name })
	for gi := range l.Groups {
		charts := l.Groups[gi].Charts
		sort.Slice(charts, func(i, j int) bool { return charts[i].Source < charts[j].Source })
		for ci := range charts {
			ims := charts[ci].Images
			sort.Slice(ims, func(i, j int) bool {
				if ims[i].Ref != ims[j].Ref {
					return ims[i].Ref < ims[j].Ref
				}
				return ims[i].Template < ims[j].Template
			})
		}
		imgs := l.Groups[gi].Images
		sort.Slice(imgs, func(i, j int) bool { return imgs[i].Ref < imgs[j].Ref })
		for ii := range imgs {
			sigs := imgs[ii].Signatures
			sort.Slice(sigs, func(i, j int) bool {
				a, b := sigs[i], sigs[j]
				if a.Manifest != b.Manifest {
					return a.Manifest < b.Manifest
				}
				if a.Fingerprint != b.Fingerprint {
					return a.Fingerprint < b.Fingerprint
				}
				return a.Identity < b.Identity
			})
			arts := imgs[ii].Artifacts
			sort.Slice(arts, func(i, j int) bool {
				if arts[i].Subject != arts[j].Subject {
					return arts[i].Subject < arts[j].Subject
				}
				if arts[i].Kind != arts[j].Kind {
					return arts[i].Kind < arts[j].Kind
				}
				return arts[i].Digest < arts[j].Digest
			})
		}
	}
}

// Encode renders the lockfile. The same Lock always gives the same bytes.
func (l *Lock) Encode(specName string) ([]byte, error) {
	l.Sort()
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Generated by airgap-bundle from %s. Do not edit: run \"airgap-bundle lock\".\n", specName)
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(l); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write stores data at path unless the file already holds exactly those
// bytes. It writes atomically (see package atomicfile), so a crash never
// leaves half a lockfile.
func Write(path string, data []byte) (changed bool, err error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return false, err
	}
	return true, nil
}
