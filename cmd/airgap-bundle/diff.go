package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// errDiffers is what diff --exit-code returns when the lockfiles differ:
// exit 1, as git diff --exit-code.
var errDiffers = errors.New("the lockfiles differ (--exit-code)")

// diffJSON is the --json document of diff.
type diffJSON struct {
	Old string `json:"old"`
	New string `json:"new"`
	*lockfile.Diff
}

func newDiffCmd(g *globalFlags) *cobra.Command {
	var exitCode bool
	c := &cobra.Command{
		Use:   "diff OLD.lock NEW.lock",
		Short: "Show what a lockfile change does: images added, removed, moved, what a rebuild downloads and how big a delta is",
		Long: `diff compares two lockfiles group by group, for a reviewer of a lockfile
change: images added (+), removed (-) and updated (~: the same reference
pinned to a new digest, or a removed and an added tag of one repository in
one group, shown as one move when that pairing is unambiguous), platforms
added, removed or re-pinned, and changes of a group's platforms or index
mode.

It also says how much a rebuild downloads: the compressed size of every
platform manifest (manifest + config + layers) and index the new lockfile
pins and the old one does not, each counted once. The lockfile records
sizes per platform, not per layer, so a layer a new platform shares with an
old one (a base image that did not change) is counted again: the figure is
an upper bound, for a cache that already holds everything the old lockfile
pins.

It also says, per group, how big a delta of NEW against OLD is (build
--since OLD: a changed group's archive without the layers OLD's images
hold): at most the size of each platform manifest OLD does not pin, each
index and each carried signature, SBOM and attestation of the group, each
counted once (a layer shared with OLD is counted although the delta leaves
it out), and the manifest and config of each platform OLD pins, whose
sizes the lockfile does not record (a few KiB each). Each group's delta
archive stands on its own, so the total is the groups' sum.

OLD or NEW may be "-" for standard input (git show main:bundle.lock | ...);
an empty file stands for "no lockfile". diff exits 0 whenever it can compare
(it is a report); with --exit-code it exits 1 when there are differences.`,
		Example: `  airgap-bundle diff old/bundle.lock bundle.lock
  git show origin/main:bundle.lock | airgap-bundle diff - bundle.lock
  airgap-bundle diff --exit-code --json old.lock bundle.lock`,
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			if args[0] == "-" && args[1] == "-" {
				return usageError{errors.New("diff: only one of OLD and NEW can be standard input")}
			}
			oldLock, err := readLockArg(c, args[0])
			if err != nil {
				return err
			}
			newLock, err := readLockArg(c, args[1])
			if err != nil {
				return err
			}
			d := lockfile.Compare(oldLock, newLock)
			if g.json {
				if err := g.printJSON(c, diffJSON{Old: args[0], New: args[1], Diff: d}); err != nil {
					return err
				}
			} else {
				printDiff(g.out(c), d)
			}
			if exitCode && !d.Empty() {
				return errDiffers
			}
			return nil
		},
	}
	c.Flags().BoolVar(&exitCode, "exit-code", false, "exit 1 when the lockfiles differ (as git diff --exit-code)")
	return c
}

// readLockArg reads a lockfile named on the command line: "-" is standard
// input, an empty file is no lockfile. A file that cannot be read is a bad
// command line (exit 2), so that exit 1 means "differ" under --exit-code.
func readLockArg(c *cobra.Command, name string) (*lockfile.Lock, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(c.InOrStdin())
		name = "<stdin>"
	} else {
		data, err = inputfile.Read(c.Context(), name, inputfile.MaxLockfile)
	}
	if err != nil {
		return nil, usageError{fmt.Errorf("diff: %w", err)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	return lockfile.Parse(data, name)
}

// printDiff renders a diff for people, group by group:
//
//	group "calico":
//	  ~ docker.io/calico/node:v3.28.0 -> v3.28.1  sha256:0123456789ab… -> sha256:fedcba987654…  (+312.4 MiB)
//	  + docker.io/calico/csi:v3.28.1  sha256:00112233aabb…  (+12.0 MiB)
//	  - docker.io/calico/pod2daemon-flexvol:v3.28.0
//	  delta (build --since): at most 329.9 MiB, plus the manifests and configs of 2 platforms the old lockfile pins
//	1 group changed: 1 added, 1 removed, 1 updated; a rebuild downloads at most 324.4 MiB; a delta carries at most 329.9 MiB, plus the manifests and configs of 2 platforms the old lockfile pins
//
// Platform lines follow an update unless they would only say that every
// platform moved along with the image. lock --dry-run prints the same
// report, so a dry run and a diff of its result agree.
func printDiff(w io.Writer, d *lockfile.Diff) {
	if d.Empty() {
		fmt.Fprintln(w, "no differences")
		return
	}
	for _, g := range d.Groups {
		switch g.Change {
		case lockfile.Added:
			fmt.Fprintf(w, "group %q (new; %s, index %s):\n", g.Name, strings.Join(g.NewPlatforms, ", "), g.NewIndex)
		case lockfile.Removed:
			fmt.Fprintf(w, "group %q (removed):\n", g.Name)
		default:
			fmt.Fprintf(w, "group %q:\n", g.Name)
			if g.PlatformsChanged() {
				fmt.Fprintf(w, "  platforms: %s -> %s\n", strings.Join(g.OldPlatforms, ", "), strings.Join(g.NewPlatforms, ", "))
			}
			if g.IndexChanged() {
				fmt.Fprintf(w, "  index: %s -> %s\n", g.OldIndex, g.NewIndex)
			}
		}
		for _, c := range g.Charts {
			switch c.Change {
			case lockfile.Added:
				fmt.Fprintf(w, "  + chart %s %s  (%s)\n", c.Name, c.NewVersion, c.Source)
			case lockfile.Removed:
				fmt.Fprintf(w, "  - chart %s %s  (%s)\n", c.Name, c.OldVersion, c.Source)
			default:
				fmt.Fprintf(w, "  ~ chart %s %s -> %s  (%s)\n", c.Name, c.OldVersion, c.NewVersion, c.Source)
			}
			for _, r := range c.Brings {
				fmt.Fprintf(w, "      brings %s\n", r)
			}
			for _, r := range c.Drops {
				fmt.Fprintf(w, "      drops %s\n", r)
			}
		}
		for _, i := range g.Images {
			switch i.Change {
			case lockfile.Added:
				fmt.Fprintf(w, "  + %s  %s  (+%s)\n", i.NewRef, shortDigest(i.NewDigest.String()), progress.HumanBytes(i.DownloadBytes))
			case lockfile.Removed:
				fmt.Fprintf(w, "  - %s\n", i.OldRef)
			case lockfile.Updated:
				ref := i.NewRef
				if i.OldRef != i.NewRef {
					ref = i.OldRef + " -> " + refSuffix(i.NewRef)
				}
				digests := shortDigest(i.NewDigest.String()) + " (same digest)"
				if i.OldDigest != i.NewDigest {
					digests = shortDigest(i.OldDigest.String()) + " -> " + shortDigest(i.NewDigest.String())
				}
				fmt.Fprintf(w, "  ~ %s  %s  (+%s)\n", ref, digests, progress.HumanBytes(i.DownloadBytes))
				if i.OldFilteredDigest != i.NewFilteredDigest {
					fmt.Fprintf(w, "      filtered index: %s -> %s\n", shortDigest(i.OldFilteredDigest.String()), shortDigest(i.NewFilteredDigest.String()))
				}
				none := func(s []string) string {
					if len(s) == 0 {
						return "(none)"
					}
					return strings.Join(s, ", ")
				}
				switch {
				case i.SignaturesChanged && !slices.Equal(i.OldSignedBy, i.NewSignedBy):
					fmt.Fprintf(w, "      signed by: %s -> %s\n", none(i.OldSignedBy), none(i.NewSignedBy))
				case i.SignaturesChanged:
					fmt.Fprintf(w, "      new signatures, signed by: %s\n", none(i.NewSignedBy))
				}
				if i.ArtifactsChanged {
					fmt.Fprintf(w, "      signatures, SBOMs and attestations carried: %d -> %d\n", i.OldArtifacts, i.NewArtifacts)
				}
				if !everyPlatformMoved(i) {
					for _, p := range i.Platforms {
						switch p.Change {
						case lockfile.Added:
							fmt.Fprintf(w, "      + %s  %s  (+%s)\n", p.Platform, shortDigest(p.NewDigest.String()), progress.HumanBytes(p.DownloadBytes))
						case lockfile.Removed:
							fmt.Fprintf(w, "      - %s\n", p.Platform)
						default:
							fmt.Fprintf(w, "      ~ %s  %s -> %s  (+%s)\n", p.Platform, shortDigest(p.OldDigest.String()), shortDigest(p.NewDigest.String()), progress.HumanBytes(p.DownloadBytes))
						}
					}
				}
			}
		}
		if g.Change != lockfile.Removed {
			fmt.Fprintf(w, "  delta (build --since): %s\n", deltaSize(g.DeltaBytes, g.DeltaUnsizedManifests))
		}
	}
	groups := "groups"
	if d.GroupsChanged == 1 {
		groups = "group"
	}
	download := "a rebuild downloads nothing new"
	if d.DownloadBytes > 0 {
		download = "a rebuild downloads at most " + progress.HumanBytes(d.DownloadBytes)
	}
	download += "; a delta carries " + deltaSize(d.DeltaBytes, d.DeltaUnsizedManifests)
	fmt.Fprintf(w, "%d %s changed: %d added, %d removed, %d updated; %s\n", d.GroupsChanged, groups, d.Added, d.Removed, d.Updated, download)
}

// deltaSize says what bounds a delta (lockfile.GroupDiff.DeltaBytes): the
// bytes the lockfile records, and the platforms whose manifest and config
// travel without a recorded size.
func deltaSize(bytes int64, unsized int) string {
	s := "at most " + progress.HumanBytes(bytes)
	switch unsized {
	case 0:
	case 1:
		s += ", plus the manifest and config of 1 platform the old lockfile pins"
	default:
		s += fmt.Sprintf(", plus the manifests and configs of %d platforms the old lockfile pins", unsized)
	}
	return s
}

// everyPlatformMoved is true for the plain version bump: a new top-level
// digest and every platform, the same set on both sides, re-pinned. (A
// single manifest's one platform is the image itself: its update never
// needs a platform line.)
func everyPlatformMoved(i lockfile.ImageDiff) bool {
	if i.OldDigest == i.NewDigest || len(i.UnchangedPlatforms) > 0 {
		return false
	}
	for _, p := range i.Platforms {
		if p.Change != lockfile.Updated {
			return false
		}
	}
	return true
}

// shortDigest is "sha256:" and the first 12 hex digits, marked as cut.
func shortDigest(d string) string {
	if d == "" {
		return "(none)"
	}
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return algo + ":" + hex[:12] + "…"
}

// refSuffix is what follows the repository in a canonical reference: the
// tag, "@digest", or "tag@digest".
func refSuffix(ref string) string {
	r, err := image.ParseReference(ref, "")
	if err != nil || !strings.HasPrefix(ref, r.Name()) {
		return ref
	}
	return strings.TrimPrefix(strings.TrimPrefix(ref, r.Name()), ":")
}
