package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/bundler"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
)

type verifyFlags struct {
	lockPath string
	output   string
	groups   []string
	base     string
}

func newVerifyCmd(g *globalFlags) *cobra.Command {
	f := &verifyFlags{}
	c := &cobra.Command{
		Use:   "verify SPEC | ARCHIVE... | DELTA_DIR [--base BASE_DIR]",
		Short: "Check built archives against the lockfile, or any archive on its own",
		Long: `verify SPEC checks the archives "build SPEC" wrote (in the output
directory, --output to look elsewhere; --group for some groups only) against
the lockfile: every blob hashes to its name and has its size, index.json and
manifest.json agree with each other and with the blobs, every locked image
and platform is there with the locked digests (the filtered-digest for
index = "filtered" groups), nothing else is (no other image, name, platform
or blob), and SHA256SUMS has each archive's checksum. In a group that
carries signatures, each signature the spec requires is verified with the
spec's keys from the archive's own copies of the signature manifests the
lockfile records (the registry's index of a "filtered" group is not in the
archive: there only platform signatures are checked).

verify ARCHIVE... checks archives on their own (blob hashes, index.json
against manifest.json, every reference resolvable): ours, or what docker
save, skopeo, podman and crane write. A delta archive (one a delta.json
beside it lists) leaves out the layers delta.json names: they are not
reported missing.

verify DELTA_DIR checks a delta (build --since): bundle.lock and each delta
archive are the files delta.json describes and SHA256SUMS lists, and each
delta archive passes the checks of a built archive against bundle.lock's
group, its left-out layers aside. With --base BASE_DIR it checks the union
too: every layer the delta leaves out is in one of BASE's archives and
hashes to its digest there, each archive unchanged since BASE is in BASE
with delta.json's sha256, and BASE's bundle.lock (an earlier apply wrote
it) is the delta's BASE.

Each problem is one line, prefixed with the archive's file name; the exit
code is 1 when there is any, else 0 with one OK line per archive. A
missing lockfile, or one that does not match the spec, exits 3. With
--json, stdout carries one document, problems or not.`,
		Example: `  airgap-bundle verify bundle.toml
  airgap-bundle verify --output /srv/airgap --group calico bundle.toml
  airgap-bundle verify dist/k3s-core.tar.zst            # internal consistency only
  airgap-bundle verify --base /srv/airgap delta/        # a delta, and BASE holding what it leaves out
  airgap-bundle --json verify bundle.toml`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("verify: give the spec file, or archive files")}
			}
			if delta.IsDir(args[0]) {
				if len(args) > 1 || f.lockPath != "" || f.output != "" || len(f.groups) > 0 {
					return usageError{fmt.Errorf("verify: %s is a delta directory: give it alone (with --base BASE_DIR to check the union)", args[0])}
				}
				return nil
			}
			if f.base != "" {
				return usageError{fmt.Errorf("verify: --base goes with a delta directory (one with %s), not with %s", delta.FileName, args[0])}
			}
			if isSpecArg(args[0]) && len(args) > 1 {
				return usageError{errors.New("verify: give one spec file, or archive files, not both")}
			}
			if !isSpecArg(args[0]) && (f.lockPath != "" || f.output != "" || len(f.groups) > 0) {
				return usageError{errors.New("verify: --lockfile, --output and --group go with a spec file")}
			}
			for _, a := range args[1:] {
				if isSpecArg(a) {
					return usageError{fmt.Errorf("verify: %s is a spec: give one spec file, or archive files, not both", a)}
				}
				if delta.IsDir(a) {
					return usageError{fmt.Errorf("verify: %s is a delta directory: give it alone", a)}
				}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if isSpecArg(args[0]) {
				return runVerifySpec(c, g, f, args[0])
			}
			if delta.IsDir(args[0]) {
				return runVerifyDelta(c, g, f, args[0])
			}
			return runVerifyArchives(c, g, args)
		},
	}
	c.Flags().StringVar(&f.lockPath, "lockfile", "", "lockfile path (default: beside the spec, with a .lock extension)")
	c.Flags().StringVarP(&f.output, "output", "o", "", "where the archives are (default: the spec's output-dir)")
	c.Flags().StringArrayVar(&f.groups, "group", nil, "verify only this group (repeatable)")
	c.Flags().StringVar(&f.base, "base", "", "with a delta directory: the site's archives (BASE); checks that they hold what the delta leaves out")
	return c
}

// isSpecArg tells a spec (TOML) from an archive argument.
func isSpecArg(s string) bool {
	return strings.HasSuffix(strings.ToLower(s), ".toml")
}

func runVerifySpec(c *cobra.Command, g *globalFlags, f *verifyFlags, specPath string) error {
	spec, lockPath, lock, err := loadSpecAndLock(c.Context(), specPath, f.lockPath)
	if err != nil {
		return err
	}
	if err := bundler.CheckLock(spec, lockPath, lock); err != nil {
		return fmt.Errorf("the archives cannot match the spec: %w", err)
	}
	outDir := bundler.OutputDir(spec, f.output)
	reports, err := bundler.Verify(c.Context(), spec, lock, bundler.VerifyOptions{OutputDir: outDir, Groups: f.groups})
	if err != nil {
		return err
	}
	return printVerify(c, g, reports, &verifyJSON{Lockfile: lockPath, OutputDir: outDir})
}

func runVerifyArchives(c *cobra.Command, g *globalFlags, paths []string) error {
	var reports []bundler.ArchiveReport
	given, reported := map[string]bool{}, map[string]bool{}
	for _, p := range paths {
		given[filepath.Clean(p)] = true
	}
	for _, p := range paths {
		if err := c.Context().Err(); err != nil {
			return err
		}
		reports = append(reports, bundler.VerifyArchive(c.Context(), p))
		// The parts of a group go together: one not beside the others is
		// reported missing, by name.
		_, _, missing := archive.Siblings(p)
		for _, m := range missing {
			if !given[m] && !reported[m] {
				reported[m] = true
				reports = append(reports, bundler.VerifyArchive(c.Context(), m))
			}
		}
	}
	return printVerify(c, g, reports, &verifyJSON{})
}

func runVerifyDelta(c *cobra.Command, g *globalFlags, f *verifyFlags, dir string) error {
	if f.base != "" {
		if fi, err := os.Stat(f.base); err != nil || !fi.IsDir() {
			return usageError{fmt.Errorf("verify: --base %s: not a directory of archives", f.base)}
		}
	}
	dr, err := bundler.VerifyDelta(c.Context(), dir, f.base)
	if err != nil {
		return err
	}
	j := &verifyJSON{Delta: &verifyDeltaJSON{Dir: dir, Base: f.base, Files: []verifyArchiveJSON{}}}
	return printVerify(c, g, append(slices.Clone(dr.Files), dr.Archives...), j)
}

// verifyJSON is the --json document of verify.
type verifyJSON struct {
	Lockfile  string              `json:"lockfile,omitempty"`   // with a spec
	OutputDir string              `json:"output-dir,omitempty"` // with a spec
	Delta     *verifyDeltaJSON    `json:"delta,omitempty"`      // with a delta directory
	OK        bool                `json:"ok"`
	Problems  int                 `json:"problems"` // in all archives (and the delta's files)
	Archives  []verifyArchiveJSON `json:"archives"`
}

// verifyDeltaJSON is the delta directory verified: its delta.json and
// bundle.lock are files, not archives.
type verifyDeltaJSON struct {
	Dir   string              `json:"dir"`
	Base  string              `json:"base,omitempty"`
	Files []verifyArchiveJSON `json:"files"`
}

// archiveDeltaJSON says what an archive of a delta is.
type archiveDeltaJSON struct {
	Kind string `json:"kind"` // "delta" or "unchanged"
	Of   string `json:"of"`   // the archive of the new version it stands for
	// LeftOut and LeftOutBytes count the blobs a delta archive leaves out
	// (which are not problems); BaseChecked says each was found whole in
	// BASE (--base).
	LeftOut      int   `json:"left-out,omitempty"`
	LeftOutBytes int64 `json:"left-out-bytes,omitempty"`
	BaseChecked  bool  `json:"base-checked,omitempty"`
}

type verifyArchiveJSON struct {
	Group    string        `json:"group,omitempty"`
	Path     string        `json:"path"`
	OK       bool          `json:"ok"`
	Format   string        `json:"format,omitempty"`
	Size     int64         `json:"size"`
	SHA256   string        `json:"sha256,omitempty"` // hex, as in SHA256SUMS
	Images   int           `json:"images"`
	Blobs    int           `json:"blobs"` // under blobs/
	Files    int           `json:"files"`
	Problems []problemJSON `json:"problems"`
	// Delta is set for the archives of a delta (verify DELTA_DIR, or a
	// delta archive given on its own).
	Delta *archiveDeltaJSON `json:"delta,omitempty"`
}

// problemJSON is one problem: its fields, and its line of text (without
// the file name prefix) as message.
type problemJSON struct {
	Kind     string `json:"kind"`
	Image    string `json:"image,omitempty"`
	Platform string `json:"platform,omitempty"`
	Digest   string `json:"digest,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Message  string `json:"message"`
}

// printVerify prints the problem lines (even with --quiet: they are the
// errors) or an OK line per archive, or the JSON document; a problem
// anywhere makes the error that exits 1.
func printVerify(c *cobra.Command, g *globalFlags, reports []bundler.ArchiveReport, j *verifyJSON) error {
	problems, bad := 0, 0
	j.Archives = []verifyArchiveJSON{}
	for _, r := range reports {
		problems += len(r.Problems)
		if !r.OK() {
			bad++
		}
		a := verifyArchiveJSON{Group: r.Group, Path: r.Path, OK: r.OK(), Format: string(r.Format), Size: r.Size, SHA256: r.SHA256, Images: r.Images, Blobs: r.Blobs, Files: r.Files, Problems: []problemJSON{}}
		for _, p := range r.Problems {
			a.Problems = append(a.Problems, problemJSON{Kind: string(p.Kind), Image: p.Image, Platform: p.Platform, Digest: p.Digest.String(), Detail: p.Detail, Message: problemText(p)})
		}
		if d := r.Delta; d != nil && d.Kind == bundler.DeltaFile && j.Delta != nil {
			j.Delta.Files = append(j.Delta.Files, a)
			continue
		} else if d != nil {
			a.Delta = &archiveDeltaJSON{Kind: d.Kind, Of: d.Of, LeftOut: len(d.LeftOut), LeftOutBytes: d.LeftOutBytes, BaseChecked: d.BaseChecked}
		}
		j.Archives = append(j.Archives, a)
	}
	j.OK, j.Problems = problems == 0, problems
	if g.json {
		if err := g.printJSON(c, j); err != nil {
			return err
		}
	} else {
		for _, r := range reports {
			if r.OK() {
				content := count(r.Blobs, "blob", "blobs")
				if r.Format == archive.FormatDocker {
					content = count(r.Files, "file", "files") // no blobs/ directory
				}
				of := ""
				switch d := r.Delta; {
				case d != nil && d.Kind == bundler.DeltaFile:
					fmt.Fprintf(g.out(c), "%s: OK (%s, sha256 %s)\n", r.Name, progress.HumanBytes(r.Size), r.SHA256)
					continue
				case d != nil && d.Kind == bundler.DeltaArchive:
					where := "that BASE holds"
					if d.BaseChecked {
						where = "each in BASE, whole"
					}
					of = fmt.Sprintf("; a delta archive of %s: %s (%s) left out, %s", d.Of, count(len(d.LeftOut), "blob", "blobs"), progress.HumanBytes(d.LeftOutBytes), where)
				case d != nil && d.Kind == bundler.DeltaUnchanged:
					of = fmt.Sprintf("; BASE's %s, unchanged since BASE", d.Of)
				}
				fmt.Fprintf(g.out(c), "%s: OK (%s, %s, %s, sha256 %s%s)\n", r.Name, count(r.Images, "image", "images"), content, progress.HumanBytes(r.Size), r.SHA256, of)
				continue
			}
			for _, p := range r.Problems {
				fmt.Fprintf(c.OutOrStdout(), "%s: %s\n", r.Name, problemText(p))
			}
		}
	}
	if problems > 0 {
		what := count(len(reports), "archive", "archives")
		if j.Delta != nil {
			what = count(len(reports), "file", "files") // delta.json and bundle.lock too
		}
		return fmt.Errorf("%w: %s in %d of %s", errdefs.ErrVerify, count(problems, "problem", "problems"), bad, what)
	}
	return nil
}
