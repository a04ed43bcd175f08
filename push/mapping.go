package push

import (
	"encoding/json"
	"sort"

	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
)

// Why a target digest differs from the source's.
const (
	// WhyFilteredIndex: the original index lists platforms the archive
	// lacks; the filtered index was pushed (--partial-index=filtered).
	WhyFilteredIndex = "filtered-index"
	// WhyMadeManifest: a Docker archive holds no manifest; push made one
	// from the config and layers.
	WhyMadeManifest = "made-manifest"
)

// MappingVersion is the version of the mapping format.
const MappingVersion = 1

// Mapping is the mapping file (--mapping) and the core of push --json: one
// entry per source name and target.
type Mapping struct {
	Version int            `json:"version"`
	Targets []string       `json:"targets"`
	Images  []MappingEntry `json:"images"`
}

// MappingEntry maps one source name to its target name.
type MappingEntry struct {
	Archive string `json:"archive"`
	// Source is the name in the archive, fully qualified.
	Source string `json:"source"`
	// SourceDigest is the digest the source name points at: the
	// registry's manifest or index. Absent for a Docker archive, which
	// holds no manifest.
	SourceDigest string `json:"source-digest,omitempty"`
	Target       string `json:"target"`
	TargetDigest string `json:"target-digest"`
	MediaType    string `json:"media-type"`
	DigestKept   bool   `json:"digest-kept"`
	// Why is set when the digest is not kept: filtered-index or
	// made-manifest.
	Why string `json:"why,omitempty"`
	// AbsentPlatforms are the platforms (and attestation manifests) the
	// source index lists that the archive does not hold.
	AbsentPlatforms []string `json:"absent-platforms,omitempty"`
}

func mapping(clients []*client, units []*unit) Mapping {
	m := Mapping{Version: MappingVersion, Targets: []string{}, Images: []MappingEntry{}}
	for _, c := range clients {
		m.Targets = append(m.Targets, c.target.String())
	}
	for _, u := range units {
		top := u.docs[len(u.docs)-1]
		var absent []string
		for _, a := range u.img.absent {
			p := a.Platform
			if a.Attestation {
				p = "attestation " + a.Digest.String()
			} else if p == "" {
				p = a.Digest.String()
			}
			absent = append(absent, p)
		}
		for _, n := range u.names {
			e := MappingEntry{
				Archive:         u.img.archive,
				Source:          n.String(),
				TargetDigest:    top.desc.Digest.String(),
				MediaType:       string(top.desc.MediaType),
				DigestKept:      u.kept,
				Why:             u.why,
				AbsentPlatforms: absent,
			}
			if !u.img.made {
				e.SourceDigest = u.img.top().desc.Digest.String()
			}
			switch {
			case n.Tag() != "":
				e.Target = u.repo.String() + ":" + n.Tag()
			default:
				e.Target = u.repo.String() + "@" + top.desc.Digest.String()
			}
			m.Images = append(m.Images, e)
		}
	}
	sort.SliceStable(m.Images, func(i, j int) bool {
		a, b := m.Images[i], m.Images[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.Source < b.Source
	})
	return m
}

// WriteMapping writes m to path, atomically.
func WriteMapping(path string, m Mapping) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}
