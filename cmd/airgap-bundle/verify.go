package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/bundler"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
)

type verifyFlags struct {
	lockPath string
	output   string
	groups   []string
}

func newVerifyCmd(g *globalFlags) *cobra.Command {
	f := &verifyFlags{}
	c := &cobra.Command{
		Use:   "verify SPEC | ARCHIVE...",
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
save, skopeo, podman and crane write.

Each problem is one line, prefixed with the archive's file name; the exit
code is 1 when there is any, else 0 with one OK line per archive. A
missing lockfile, or one that does not match the spec, exits 3. With
--json, stdout carries one document, problems or not.`,
		Example: `  airgap-bundle verify bundle.toml
  airgap-bundle verify --output /srv/airgap --group calico bundle.toml
  airgap-bundle verify dist/k3s-core.tar.zst            # internal consistency only
  airgap-bundle --json verify bundle.toml`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("verify: give the spec file, or archive files")}
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
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if isSpecArg(args[0]) {
				return runVerifySpec(c, g, f, args[0])
			}
			return runVerifyArchives(c, g, args)
		},
	}
	c.Flags().StringVar(&f.lockPath, "lockfile", "", "lockfile path (default: beside the spec, with a .lock extension)")
	c.Flags().StringVarP(&f.output, "output", "o", "", "where the archives are (default: the spec's output-dir)")
	c.Flags().StringArrayVar(&f.groups, "group", nil, "verify only this group (repeatable)")
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
	for _, p := range paths {
		if err := c.Context().Err(); err != nil {
			return err
		}
		reports = append(reports, bundler.VerifyArchive(c.Context(), p))
	}
	return printVerify(c, g, reports, &verifyJSON{})
}

// verifyJSON is the --json document of verify.
type verifyJSON struct {
	Lockfile  string              `json:"lockfile,omitempty"`   // with a spec
	OutputDir string              `json:"output-dir,omitempty"` // with a spec
	OK        bool                `json:"ok"`
	Problems  int                 `json:"problems"` // in all archives
	Archives  []verifyArchiveJSON `json:"archives"`
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
				fmt.Fprintf(g.out(c), "%s: OK (%s, %s, %s, sha256 %s)\n", r.Name, count(r.Images, "image", "images"), content, progress.HumanBytes(r.Size), r.SHA256)
				continue
			}
			for _, p := range r.Problems {
				fmt.Fprintf(c.OutOrStdout(), "%s: %s\n", r.Name, problemText(p))
			}
		}
	}
	if problems > 0 {
		return fmt.Errorf("%w: %s in %d of %s", errdefs.ErrVerify, count(problems, "problem", "problems"), bad, count(len(reports), "archive", "archives"))
	}
	return nil
}
