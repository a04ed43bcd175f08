package main

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
)

func newInspectCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect ARCHIVE",
		Short: "List the images of an archive: names, digests, platforms, sizes",
		Long: `inspect reads an image archive in one pass, without extracting it, and
lists its images: names, top-level digest, per platform the manifest and
config digests and the compressed size, the archive's payload, and how many
bytes storing shared blobs once saved (the images' sizes added up, minus the
distinct blobs).

It reads what build writes, and what docker save (classic and Docker 25+),
skopeo and podman (docker-archive, oci-archive) and crane write. Digests in
the table are cut to 12 digits; --json gives them whole. It does not judge
the archive: "airgap-bundle verify ARCHIVE" does.

A delta archive (build --since; one that a delta.json beside it lists) is
said to be one: the layers it leaves out, which the site's BASE holds, are
listed with their total size, not reported as missing.`,
		Example: `  airgap-bundle inspect dist/k3s-core.tar.zst
  airgap-bundle inspect saved-by-docker.tar
  airgap-bundle --json inspect dist/calico.tar | jq '.images[].names'`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ct, err := archive.ReadFile(c.Context(), args[0], archive.ReadOptions{})
			if err != nil {
				return err
			}
			of, err := delta.ForArchive(c.Context(), args[0])
			if err != nil {
				fmt.Fprintf(c.ErrOrStderr(), "warning: %s: the %s beside it cannot be read (%v): the layers a delta leaves out show as missing\n", args[0], delta.FileName, err)
			}
			doc := newInspectJSON(args[0], ct, of)
			if of == nil && err == nil && delta.NamedLikeDelta(args[0]) {
				fmt.Fprintf(c.ErrOrStderr(), "warning: %s is named like a delta archive, but no %s beside it lists it: the layers a delta leaves out show as missing\n", args[0], delta.FileName)
			}
			if doc.Part, doc.Parts, doc.MissingParts = archive.Siblings(args[0]); len(doc.MissingParts) > 0 {
				fmt.Fprintf(c.ErrOrStderr(), "warning: %s is part %d of %d of a group's archive; not beside it: %s (each part loads alone, but the group's images are spread over all of them)\n", args[0], doc.Part, doc.Parts, strings.Join(doc.MissingParts, ", "))
			}
			if n := len(doc.Problems); n > 0 {
				fmt.Fprintf(c.ErrOrStderr(), "warning: %s: %s; \"airgap-bundle verify %s\" lists them\n", args[0], count(n, "consistency problem", "consistency problems"), args[0])
			}
			if g.json {
				return g.printJSON(c, doc)
			}
			printInspect(g.out(c), doc)
			return nil
		},
	}
}

// inspectJSON is the --json document of inspect.
type inspectJSON struct {
	Archive      string             `json:"archive"`     // as given
	Format       string             `json:"format"`      // "oci+docker", "oci" or "docker"
	Compression  string             `json:"compression"` // "none", "gzip", "zstd"
	Size         int64              `json:"size"`        // bytes of the file
	SHA256       string             `json:"sha256"`      // hex, as in SHA256SUMS
	Files        int                `json:"files"`
	Blobs        int                `json:"blobs"`         // under blobs/ (0 in a classic Docker archive)
	PayloadBytes int64              `json:"payload-bytes"` // all files, uncompressed tar content
	ImagesBytes  int64              `json:"images-bytes"`  // the images' bytes added up
	UniqueBytes  int64              `json:"unique-bytes"`  // every distinct blob once
	SavedBytes   int64              `json:"saved-bytes"`   // images-bytes - unique-bytes
	Images       []inspectImageJSON `json:"images"`
	Problems     []string           `json:"problems"` // the lines verify ARCHIVE would print
	// Part and Parts number a part of a group's archive (max-size);
	// MissingParts are the other parts not beside it.
	Part         int      `json:"part,omitempty"`
	Parts        int      `json:"parts,omitempty"`
	MissingParts []string `json:"missing-parts,omitempty"`
	// Delta is set for a delta archive: what it stands for, and the blobs
	// it leaves out (not problems).
	Delta *inspectDeltaJSON `json:"delta,omitempty"`
}

type inspectDeltaJSON struct {
	DeltaFile    string               `json:"delta-file"` // the delta.json that lists it
	Of           string               `json:"of"`         // the full archive it stands for
	Group        string               `json:"group"`
	LeftOut      []inspectLeftOutJSON `json:"left-out"`
	LeftOutBytes int64                `json:"left-out-bytes"`
}

type inspectLeftOutJSON struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Where  string `json:"where"` // which of BASE's groups holds it
}

type inspectImageJSON struct {
	Names     []string `json:"names"`
	Digest    string   `json:"digest,omitempty"` // index.json target; none in a Docker archive
	MediaType string   `json:"media-type,omitempty"`
	Size      int64    `json:"size,omitempty"` // of the top-level blob
	// Bytes is every distinct blob of the image in the archive.
	Bytes     int64                 `json:"bytes"`
	Platforms []inspectPlatformJSON `json:"platforms"`
	// Absent are the platforms the index lists that the archive lacks.
	Absent []inspectAbsentJSON `json:"absent,omitempty"`
	// Artifacts are the signatures, SBOMs and attestations carried for
	// the image: their own index.json entries, no image to any loader.
	Artifacts []inspectArtifactJSON `json:"artifacts,omitempty"`
	// Chart is NAME:VERSION of a carried Helm chart (its OCI form): no
	// image to any loader either.
	Chart string `json:"chart,omitempty"`
}

type inspectArtifactJSON struct {
	Kind      string `json:"kind"`    // signature, attestation, sbom, referrer
	Subject   string `json:"subject"` // the manifest it is attached to
	Tag       string `json:"tag,omitempty"`
	Digest    string `json:"digest"`
	MediaType string `json:"media-type"`
	Layers    int    `json:"layers"`
	Size      int64  `json:"size"` // manifest + config + layers
}

type inspectPlatformJSON struct {
	Platform    string            `json:"platform"`
	Attestation bool              `json:"attestation,omitempty"`
	Digest      string            `json:"digest,omitempty"` // the manifest; none in a Docker archive
	MediaType   string            `json:"media-type,omitempty"`
	Config      inspectBlobJSON   `json:"config"`
	Layers      []inspectBlobJSON `json:"layers"`
	Size        int64             `json:"size"` // manifest + config + layers
}

type inspectBlobJSON struct {
	Digest    string `json:"digest"`
	MediaType string `json:"media-type,omitempty"`
	Size      int64  `json:"size"`
	Path      string `json:"path,omitempty"` // in a Docker archive, the file
	Missing   bool   `json:"missing,omitempty"`
	// LeftOut marks a blob a delta archive leaves out (not missing).
	LeftOut bool `json:"left-out,omitempty"`
}

type inspectAbsentJSON struct {
	Platform    string `json:"platform,omitempty"`
	Attestation bool   `json:"attestation,omitempty"`
	Digest      string `json:"digest"`
}

// newInspectJSON describes the archive; of is the delta it belongs to,
// nil for a full archive.
func newInspectJSON(archivePath string, c *archive.Contents, of *delta.Of) inspectJSON {
	j := inspectJSON{
		Archive: archivePath, Format: string(c.Format), Compression: c.Compression.String(),
		Size: c.Size, SHA256: c.SHA256, Files: len(c.Files), Blobs: len(c.Blobs),
		PayloadBytes: c.PayloadBytes(), ImagesBytes: c.ImagesBytes(), UniqueBytes: c.UniqueBytes(),
		Images: []inspectImageJSON{}, Problems: []string{},
	}
	var leftOut map[digest.Digest]delta.Blob
	if of != nil {
		a := of.Archive
		leftOut = a.LeftOut()
		j.Delta = &inspectDeltaJSON{DeltaFile: filepath.Join(of.Dir, delta.FileName), Of: a.Name, Group: a.Group, LeftOut: []inspectLeftOutJSON{}, LeftOutBytes: a.LeftOutBytes()}
		for _, b := range a.FromBase {
			j.Delta.LeftOut = append(j.Delta.LeftOut, inspectLeftOutJSON{Digest: b.Digest.String(), Size: b.Size, Where: b.Where})
		}
	}
	for _, p := range c.Check() {
		if _, ok := leftOut[p.Digest]; ok && p.Kind == archive.KindBlobMissing {
			continue // left out on purpose
		}
		j.Problems = append(j.Problems, problemText(p))
	}
	j.SavedBytes = j.ImagesBytes - j.UniqueBytes
	blob := func(d image.Descriptor, entryPath string) inspectBlobJSON {
		b := inspectBlobJSON{Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size, Missing: !c.Has(d)}
		if _, ok := leftOut[d.Digest]; ok && b.Missing {
			b.Missing, b.LeftOut = false, true
		}
		// A Docker archive names its files by path: the entry's, when the
		// file is there.
		if p := path.Clean(entryPath); entryPath != "" && c.Files[p] != nil {
			b.Path = p
		}
		return b
	}
	artifacts := map[string][]inspectArtifactJSON{} // by the name of their image
	for _, img := range c.Images {
		if a := img.Artifact; a != nil && len(img.Manifests) == 1 && slices.ContainsFunc(c.Images, func(o archive.Image) bool { return slices.Contains(o.Names, a.Image) }) {
			m := img.Manifests[0]
			artifacts[a.Image] = append(artifacts[a.Image], inspectArtifactJSON{Kind: a.Kind, Subject: a.Subject.String(), Tag: a.Tag,
				Digest: img.Top.Digest.String(), MediaType: string(img.Top.MediaType), Layers: len(m.Layers), Size: m.TotalSize()})
		}
	}
	for _, img := range c.Images {
		if a := img.Artifact; a != nil && artifacts[a.Image] != nil {
			continue // listed with its image
		}
		ij := inspectImageJSON{Names: img.Names, Bytes: c.ImageBytes(img), Platforms: []inspectPlatformJSON{}}
		for _, n := range img.Names {
			ij.Artifacts = append(ij.Artifacts, artifacts[n]...)
		}
		if ij.Names == nil {
			ij.Names = []string{}
		}
		if a := img.Artifact; a != nil && a.Kind == archive.KindChart {
			ij.Chart = a.Image
		}
		if c.Format != archive.FormatDocker {
			ij.Digest, ij.MediaType, ij.Size = img.Top.Digest.String(), string(img.Top.MediaType), img.Top.Size
		}
		var entry *archive.DockerEntry
		if c.Format == archive.FormatDocker && img.Docker != nil {
			entry = &c.DockerManifest[img.Docker.Entry]
		}
		for _, m := range img.Manifests {
			var cfgPath string
			var layerPaths []string
			if entry != nil {
				cfgPath, layerPaths = entry.Config, entry.Layers
			}
			pj := inspectPlatformJSON{Platform: m.Platform, Attestation: m.Attestation, Config: blob(m.Config, cfgPath), Layers: []inspectBlobJSON{}, Size: m.TotalSize()}
			if m.Digest != "" {
				pj.Digest, pj.MediaType = m.Digest.String(), string(m.MediaType)
			}
			for i, l := range m.Layers {
				var lp string
				if i < len(layerPaths) {
					lp = layerPaths[i]
				}
				pj.Layers = append(pj.Layers, blob(l, lp))
			}
			ij.Platforms = append(ij.Platforms, pj)
		}
		for _, m := range img.Absent {
			ij.Absent = append(ij.Absent, inspectAbsentJSON{Digest: m.Digest.String(), Platform: m.Platform, Attestation: m.Attestation})
		}
		j.Images = append(j.Images, ij)
	}
	return j
}

var formatNames = map[string]string{
	string(archive.FormatOCIDocker): "OCI layout + manifest.json",
	string(archive.FormatOCI):       "OCI layout",
	string(archive.FormatDocker):    "Docker archive (manifest.json)",
}

// short is the first 12 hex digits of a digest, as docker shows image IDs;
// "-" for none.
func short(d string) string {
	if d == "" {
		return "-"
	}
	if i := len("sha256:"); len(d) > i+12 && d[:i] == "sha256:" {
		return d[i : i+12]
	}
	return d
}

func printInspect(w io.Writer, j inspectJSON) {
	fmt.Fprintf(w, "%s: %s, %s, %s (%d bytes), sha256 %s\n\n", j.Archive, formatNames[j.Format], compressionName(j.Compression), progress.HumanBytes(j.Size), j.Size, j.SHA256)
	if j.Parts > 0 {
		fmt.Fprintf(w, "part %d of %d of a group's archive (a complete archive: it loads alone)\n\n", j.Part, j.Parts)
	}
	if d := j.Delta; d != nil {
		fmt.Fprintf(w, "a delta archive of %s (group %q, %s): it leaves out %s (%s) that BASE holds:\n", d.Of, d.Group, d.DeltaFile, count(len(d.LeftOut), "layer", "layers"), progress.HumanBytes(d.LeftOutBytes))
		for _, b := range d.LeftOut {
			fmt.Fprintf(w, "  %s  %s  BASE's %s\n", b.Digest, progress.HumanBytes(b.Size), b.Where)
		}
		fmt.Fprintln(w)
	}
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE / PLATFORM\tDIGEST\tCONFIG\tLAYERS\tSIZE")
	names, platforms, artifacts := 0, 0, 0
	for _, img := range j.Images {
		names += len(img.Names)
		first := "<none>"
		switch {
		case len(img.Names) > 0:
			first = img.Names[0]
		case img.Chart != "":
			first = "chart " + img.Chart
		}
		fmt.Fprintf(tw, "%s\t%s\t\t\t%s\n", first, short(img.Digest), progress.HumanBytes(img.Bytes))
		for _, n := range img.Names[min(1, len(img.Names)):] {
			fmt.Fprintf(tw, "%s\t(same image)\t\t\t\n", n)
		}
		for _, p := range img.Platforms {
			platforms++
			label := p.Platform
			if label == "" {
				label = "?"
			}
			if p.Attestation {
				label += " (attestation)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", label, short(p.Digest), short(p.Config.Digest), len(p.Layers), progress.HumanBytes(p.Size))
		}
		for _, a := range img.Absent {
			label := a.Platform
			if label == "" {
				label = "?"
			}
			if a.Attestation {
				label += " (attestation)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t-\t-\tnot in the archive\n", label, short(a.Digest))
		}
		for _, a := range img.Artifacts {
			artifacts++
			fmt.Fprintf(tw, "  %s of %s\t%s\t-\t%d\t%s\n", a.Kind, short(a.Subject), short(a.Digest), a.Layers, progress.HumanBytes(a.Size))
		}
	}
	tw.Flush()
	// Rows with empty last cells are padded: no trailing blanks.
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		if line != "" {
			fmt.Fprintln(w, strings.TrimRight(line, " \n"))
		}
	}
	carried := ""
	if artifacts > 0 {
		carried = ", " + count(artifacts, "signature, SBOM or attestation", "signatures, SBOMs and attestations")
	}
	fmt.Fprintf(w, "\n%s (%s, %s%s); %s\n", count(len(j.Images), "image", "images"), count(names, "name", "names"), count(platforms, "platform", "platforms"), carried, count(j.Files, "file", "files"))
	fmt.Fprintf(w, "payload %s (%d bytes); images %s, distinct blobs %s: sharing saved %s (%d bytes)\n",
		progress.HumanBytes(j.PayloadBytes), j.PayloadBytes, progress.HumanBytes(j.ImagesBytes), progress.HumanBytes(j.UniqueBytes), progress.HumanBytes(j.SavedBytes), j.SavedBytes)
}

func compressionName(c string) string {
	if c == "none" {
		return "uncompressed"
	}
	return c + "-compressed"
}
