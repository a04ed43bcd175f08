package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	pushpkg "github.com/airgap-bundle/airgap-bundle/push"
)

type pushFlags struct {
	to             []string
	perHost        bool
	mapping        string
	spec           string
	insecure       bool
	registriesYAML string
	hostsDir       string
	jobs           int
	partialIndex   string
	cacheDir       string
}

func newPushCmd(g *globalFlags) *cobra.Command {
	f := &pushFlags{}
	c := &cobra.Command{
		Use:   "push ARCHIVE|DIR... --to HOST[:PORT][/PREFIX]",
		Short: "Push the images of archives into a registry, digests kept",
		Long: `push copies every image of the archives (ours, and docker save, crane and
skopeo archives) into a registry. Manifests and indexes are pushed byte for
byte, so every digest is the registry's original one; blobs the target has
are skipped, blobs shared between repositories are mounted, uploads run in
parallel (-j) under the global --retries, --response-timeout and
--stall-timeout.

Naming: docker.io/rancher/mirrored-pause:3.6 becomes
TO/rancher/mirrored-pause:3.6 (docker.io's library/ kept), the layout a
containerd or k3s mirror of docker.io asks for; --to HOST/PREFIX puts it
under PREFIX/, --to-per-host under the source host (TO/docker.io/rancher/...).

Credentials and TLS for the target come from --spec's registries table, else
from the standard auth files and credential helpers, never from the command
line. --spec takes a bundle spec, or a file with only [registries."HOST"]
tables (the same keys, checked the same way; airgap-bundle validate FILE
checks it too), for where there is no bundle spec:

  [registries."registry.internal:5000"]
  ca-file = "ca.pem"
  auth = { username = "pusher", password-env = "REGISTRY_PASSWORD" }

--insecure allows plain HTTP or unverified TLS, as insecure = true in a spec.

An index some of whose platforms are neither in the archive nor in the
target (index = "original" with some platforms) is refused by default:
--partial-index=filtered pushes the index of the platforms the archive
holds, under a new digest recorded in the mapping.

A delta directory (build --since) is pushed into a registry that holds its
BASE: every layer a delta archive leaves out is looked for there first (the
image's repository, else another repository of the target, mounted from
there); all those missing are named at once and nothing is pushed.

--mapping writes the source -> target names and digests (JSON);
--registries-yaml a k3s/RKE2 registries.yaml and --hosts-dir containerd
hosts.toml files that make nodes pull the public names from the target.`,
		Example: `  airgap-bundle push dist/ --to registry.internal:5000
  airgap-bundle push dist/calico.tar --to registry.internal/mirror --mapping relocated.json
  airgap-bundle push delta/ --to registry.internal:5000        # a delta, where BASE was pushed
  airgap-bundle push dist/*.tar* --to registry.internal:5000 --hosts-dir certs.d --registries-yaml registries.yaml`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("push: give archives or directories of archives")}
			}
			if len(f.to) == 0 {
				return usageError{errors.New("push: --to HOST[:PORT][/PREFIX] is required")}
			}
			if f.jobs < 1 {
				return usageError{fmt.Errorf("push: --jobs %d: want at least 1", f.jobs)}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			return runPush(c, g, f, args)
		},
	}
	c.Flags().StringArrayVar(&f.to, "to", nil, "target registry HOST[:PORT][/PREFIX] (repeatable: every image goes to each)")
	c.Flags().BoolVar(&f.perHost, "to-per-host", false, "put each source registry's repositories under its host: TO/docker.io/rancher/...")
	c.Flags().StringVar(&f.mapping, "mapping", "", "write the source -> target mapping (JSON, schemas/mapping.schema.json) to this file")
	c.Flags().StringVar(&f.spec, "spec", "", "take the targets' TLS settings and credentials from this file's registries table (a bundle spec, or a file with only [registries.\"HOST\"] tables)")
	c.Flags().BoolVar(&f.insecure, "insecure", false, "allow plain HTTP or unverified TLS to the targets (as insecure = true in a spec)")
	c.Flags().StringVar(&f.registriesYAML, "registries-yaml", "", "write a k3s/RKE2 registries.yaml mirroring the source registries to the targets")
	c.Flags().StringVar(&f.hostsDir, "hosts-dir", "", "write containerd DIR/<source-host>/hosts.toml files mirroring the source registries to the targets")
	c.Flags().IntVarP(&f.jobs, "jobs", "j", pushpkg.DefaultJobs, "blobs pushed in parallel")
	c.Flags().StringVar(&f.partialIndex, "partial-index", "refuse", "an index whose platforms are not all in the archive nor the target: refuse, filtered (push the filtered index: new digest) or original (push it anyway)")
	c.Flags().StringVar(&f.cacheDir, "cache-dir", "", "where .tar.gz and .tar.zst archives are decompressed while pushing (default: $XDG_CACHE_HOME/airgap-bundle)")
	return c
}

// pushJSON is the --json document.
type pushJSON struct {
	pushpkg.Mapping
	Stats          pushpkg.Stats `json:"stats"`
	MappingFile    string        `json:"mapping-file,omitempty"`
	RegistriesYAML string        `json:"registries-yaml,omitempty"`
	HostsFiles     []string      `json:"hosts-files,omitempty"`
}

func runPush(c *cobra.Command, g *globalFlags, f *pushFlags, args []string) error {
	ctx := c.Context()
	var targets []pushpkg.Target
	for _, s := range f.to {
		t, err := pushpkg.ParseTarget(s)
		if err != nil {
			return usageError{err}
		}
		targets = append(targets, t)
	}
	if f.registriesYAML != "" {
		if err := pushpkg.CheckRegistriesYAML(targets); err != nil {
			return usageError{err}
		}
	}
	mode, err := pushpkg.ParsePartialIndex(f.partialIndex)
	if err != nil {
		return usageError{err}
	}
	paths, err := archive.Files(args)
	if err != nil {
		for _, a := range args {
			if errors.Is(err, archive.ErrNoArchive) && delta.IsDir(a) {
				// Every archive unchanged since BASE: the target has them.
				err = fmt.Errorf("%w: %s is a delta in which no archive changed since BASE: nothing to push", err, a)
			}
		}
		return usageError{fmt.Errorf("push: %w", err)}
	}
	var spec *config.Spec
	if f.spec != "" {
		if spec, err = config.LoadRegistries(c.Context(), f.spec); err != nil {
			return err
		}
	}
	res, err := pushpkg.Push(ctx, paths, pushpkg.Options{
		Targets:      targets,
		PerHost:      f.perHost,
		PartialIndex: mode,
		Jobs:         f.jobs,
		CacheDir:     f.cacheDir,
		Spec:         spec,
		Insecure:     f.insecure,
		Registry:     g.registryOptions(),
		Progress:     g.progress(),
	})
	if err != nil {
		return err
	}
	doc := pushJSON{Mapping: res.Mapping, Stats: res.Stats}
	if f.mapping != "" {
		if err := pushpkg.WriteMapping(f.mapping, res.Mapping); err != nil {
			return err
		}
		doc.MappingFile = f.mapping
	}
	if f.registriesYAML != "" {
		b, err := pushpkg.RegistriesYAML(res.SourceHosts, res.Endpoints, f.perHost)
		if err != nil {
			return usageError{err}
		}
		if err := atomicfile.WriteFile(f.registriesYAML, b, 0o644); err != nil {
			return err
		}
		doc.RegistriesYAML = f.registriesYAML
	}
	if f.hostsDir != "" {
		written, err := pushpkg.WriteHostsDir(f.hostsDir, res.SourceHosts, res.Endpoints, f.perHost)
		if err != nil {
			return err
		}
		doc.HostsFiles = written
	}
	if g.json {
		return g.printJSON(c, doc)
	}
	out := g.out(c)
	shown := map[string]bool{}
	for _, e := range res.Mapping.Images {
		// The same image in two archives is one line.
		if k := e.Source + " " + e.Target + " " + e.TargetDigest; shown[k] {
			continue
		} else {
			shown[k] = true
		}
		note := "digest kept"
		if !e.DigestKept {
			note = "NEW DIGEST (" + e.Why + ")"
		}
		fmt.Fprintf(out, "%s -> %s@%s  %s\n", e.Source, e.Target, shortDigest(e.TargetDigest), note)
	}
	s := res.Stats
	leftOut := ""
	if s.BlobsLeftOut > 0 {
		leftOut = fmt.Sprintf(" (%d of them left out of the delta, BASE's)", s.BlobsLeftOut)
	}
	if s.HeadersOnly {
		fmt.Fprintf(out, "already in %s: every one of the %d manifests under its name; nothing pushed (the archives' headers read, no layer)\n",
			strings.Join(res.Mapping.Targets, ", "), s.ManifestsExisting)
	} else {
		fmt.Fprintf(out, "pushed to %s: %d blobs uploaded (%s), %d mounted, %d already there%s; %d manifests put, %d already there\n",
			strings.Join(res.Mapping.Targets, ", "), s.BlobsUploaded, progress.HumanBytes(s.BytesUploaded), s.BlobsMounted, s.BlobsExisting, leftOut, s.ManifestsPut, s.ManifestsExisting)
	}
	for _, p := range append([]string{doc.MappingFile, doc.RegistriesYAML}, doc.HostsFiles...) {
		if p != "" {
			fmt.Fprintf(out, "wrote %s\n", p)
		}
	}
	return nil
}
