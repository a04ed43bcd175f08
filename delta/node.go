package delta

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
)

// A delta archive can go straight into a k3s or RKE2 node's images
// directory: k3s imports it with containerd's Import(WithAllPlatforms,
// WithSkipMissing), which takes the delta's manifests and configs and
// skips the layers it leaves out. The images are complete when the node's
// content store already holds those layers (the node imported BASE's
// archives), and incomplete otherwise, yet the import still exits 0 and
// pods only fail when they start (measured in e2e/delta_test.go).
// CheckNode is the guard an operator runs before that: does the node
// hold every blob the delta leaves out?

// ContentLister lists the blobs of a containerd content store, as seen
// from the namespace the node's images live in (k8s.io for k3s and RKE2).
// The command asks the node's own ctr (the containerd client stays out of
// this module); tests give a fake.
type ContentLister interface {
	ListContent(ctx context.Context) ([]digest.Digest, error)
}

// NodeReport is what CheckNode found.
type NodeReport struct {
	// Held is the number of blobs in the node's content store.
	Held int `json:"held"`
	// Needed and Missing count the distinct blobs the delta archives
	// leave out, and those of them the node lacks.
	Needed  int `json:"needed"`
	Missing int `json:"missing"`
	// Archives are the changed archives, in delta.json's order.
	Archives []NodeArchive `json:"archives"`
}

// OK says the node holds every blob the delta archives leave out:
// importing them gives complete images.
func (r *NodeReport) OK() bool { return r.Missing == 0 }

// NodeArchive is one delta archive as the node sees it.
type NodeArchive struct {
	Group   string `json:"group"`
	Archive string `json:"archive"` // the full archive the delta stands for
	Delta   string `json:"delta"`   // the delta archive's file name
	// LeftOut is the number of blobs the delta leaves out (delta.json's
	// from-base).
	LeftOut int `json:"left-out"`
	// Missing are those the node lacks, with BASE's group that held them.
	Missing []Blob `json:"missing,omitempty"`
	// Incomplete are the delta's images that reference a missing blob:
	// importing the delta would leave them incomplete.
	Incomplete []NodeImage `json:"incomplete,omitempty"`
	// ImagesError says why the images could not be named (the delta
	// archive could not be read); Missing is still right.
	ImagesError string `json:"images-error,omitempty"`
}

// NodeImage is an image a delta archive would leave incomplete.
type NodeImage struct {
	Name string `json:"name"`
	// Platforms are those whose manifests reference a missing blob.
	Platforms []string `json:"platforms"`
	// Layers is the number of missing blobs it references.
	Layers int `json:"layers"`
}

// CheckNode compares the blobs the delta in dir leaves out (delta.json's
// from-base, for every changed archive) with the node's content store,
// and names the images of each delta archive that would be incomplete.
// Every platform counts: k3s imports every platform an archive holds.
func CheckNode(ctx context.Context, dir string, node ContentLister) (*NodeReport, error) {
	m, err := Read(ctx, dir)
	if err != nil {
		return nil, err
	}
	list, err := node.ListContent(ctx)
	if err != nil {
		return nil, err
	}
	held := make(map[digest.Digest]bool, len(list))
	for _, d := range list {
		held[d] = true
	}
	r := &NodeReport{Held: len(held)}
	needed, missing := map[digest.Digest]bool{}, map[digest.Digest]bool{}
	for _, a := range m.Archives {
		if a.Delta == nil {
			continue // unchanged: the node keeps importing BASE's own archive
		}
		na := NodeArchive{Group: a.Group, Archive: a.Name, Delta: a.Delta.Name, LeftOut: len(a.FromBase)}
		lacks := map[digest.Digest]bool{}
		for _, b := range a.FromBase {
			needed[b.Digest] = true
			if !held[b.Digest] {
				missing[b.Digest] = true
				lacks[b.Digest] = true
				na.Missing = append(na.Missing, b)
			}
		}
		if len(lacks) > 0 {
			na.Incomplete, err = incompleteImages(ctx, filepath.Join(dir, a.Delta.Name), lacks)
			if err != nil {
				na.ImagesError = err.Error()
			}
		}
		r.Archives = append(r.Archives, na)
	}
	r.Needed, r.Missing = len(needed), len(missing)
	return r, nil
}

// incompleteImages reads a delta archive and names its images whose
// manifests reference a blob of lacks.
func incompleteImages(ctx context.Context, path string, lacks map[digest.Digest]bool) ([]NodeImage, error) {
	c, err := archive.ReadFile(ctx, path, archive.ReadOptions{})
	if err != nil {
		return nil, fmt.Errorf("naming the incomplete images: %w", err)
	}
	var out []NodeImage
	for _, img := range c.Images {
		if img.Artifact != nil {
			continue // signatures and SBOMs travel whole
		}
		ni := NodeImage{Name: img.Label()}
		seen := map[digest.Digest]bool{}
		for _, man := range img.Manifests {
			hit := false
			for _, l := range man.Layers {
				if lacks[l.Digest] {
					hit = true
					if !seen[l.Digest] {
						seen[l.Digest] = true
						ni.Layers++
					}
				}
			}
			if hit {
				p := man.Platform
				if p == "" {
					p = "manifest " + man.Digest.String()
				}
				ni.Platforms = append(ni.Platforms, p)
			}
		}
		if ni.Layers > 0 {
			out = append(out, ni)
		}
	}
	slices.SortFunc(out, func(a, b NodeImage) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
