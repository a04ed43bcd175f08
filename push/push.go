// Package push copies the images of archives into a registry: every
// manifest and index byte for byte (so every digest stays the registry's
// original one), blobs before the manifests that list them and children
// before their parents, blobs that the target already has skipped, blobs
// already pushed to another repository of the same registry mounted, and
// uploads run in parallel under the run's retry and timeout Policy.
//
// Archives are read only through archive.Read's model; blobs are read in
// place from an uncompressed .tar (by offset), and from a decompressed
// temporary copy of a .tar.gz or .tar.zst.
package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/logs"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// PartialIndex is what to do with an index some of whose children are
// neither in the archive nor already in the target repository (an archive
// built with index = "original" and only some platforms; attestation
// manifests, which are never bundled).
type PartialIndex string

const (
	// PartialRefuse (the default) refuses such images, each with an
	// error naming both remedies, before anything is pushed.
	PartialRefuse PartialIndex = "refuse"
	// PartialFiltered pushes the index of the children the archive holds
	// (the one index = "filtered" would have bundled): a new digest,
	// recorded in the mapping.
	PartialFiltered PartialIndex = "filtered"
	// PartialOriginal pushes the original index anyway, for a registry
	// that takes an index whose children are absent. Distribution 2.8
	// refuses it (MANIFEST_BLOB_UNKNOWN).
	PartialOriginal PartialIndex = "original"
)

// ParsePartialIndex reads a --partial-index value.
func ParsePartialIndex(s string) (PartialIndex, error) {
	switch p := PartialIndex(s); p {
	case PartialRefuse, PartialFiltered, PartialOriginal:
		return p, nil
	case "":
		return PartialRefuse, nil
	}
	return "", fmt.Errorf("--partial-index %q: want refuse, filtered or original", s)
}

// ErrPartialIndex marks an image refused because its index lists children
// that the target cannot get from the archive.
var ErrPartialIndex = errors.New("partial index")

// ErrDigestNotKept marks a manifest the registry stored under another
// digest than that of the bytes pushed.
var ErrDigestNotKept = errors.New("digest not kept")

// Options tune Push.
type Options struct {
	// Targets are the registries to push to; every image goes to each.
	Targets []Target
	// PerHost puts each source registry's repositories under a path
	// component of its own: <target>/<source-host>/<path>.
	PerHost bool
	// PartialIndex: see the constants (default PartialRefuse).
	PartialIndex PartialIndex
	// Jobs is the number of blobs (and images' manifests) pushed at once
	// (default DefaultJobs).
	Jobs int
	// TempDir receives the decompressed copies of compressed archives
	// (private: it must be the user's own). Default: the tmp/ of the cache
	// at CacheDir, where the next run removes what a killed one left.
	TempDir string
	// CacheDir is the cache whose tmp/ is the default TempDir; "" is the
	// user's default cache (cache.DefaultDir).
	CacheDir string
	// Spec gives the targets' TLS settings and credentials (its registries
	// table); nil: verified TLS and the standard credential locations.
	// Push never changes it.
	Spec *config.Spec
	// Insecure allows plain HTTP or unverified TLS to every target, as
	// insecure = true in the spec's table of the target's host would.
	Insecure bool
	// Registry carries the user agent, logger and the retry Policy.
	Registry registry.Options
	// Progress reports bytes pushed, per target; nil reports nothing.
	Progress progress.Reporter
}

// DefaultJobs is how many blobs a push sends at once when Options.Jobs
// says nothing.
const DefaultJobs = 4

// withDefaults applies every default of Options in one place: the
// partial-index mode, the job count, the progress reporter, the logger,
// the temporary directory (from the cache's layout), and --insecure as a
// copy of the spec with the targets' hosts marked insecure.
func (o Options) withDefaults() (Options, error) {
	if len(o.Targets) == 0 {
		return o, fmt.Errorf("%w: push: no target (--to)", errdefs.ErrUsage)
	}
	if o.PartialIndex == "" {
		o.PartialIndex = PartialRefuse
	}
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	if o.Progress == nil {
		o.Progress = progress.New(nil, progress.Quiet)
	}
	o.Registry.Logger = logs.OrDiscard(o.Registry.Logger)
	o.Registry.Policy = o.Registry.Policy.WithDefaults()
	if o.TempDir == "" {
		dir := o.CacheDir
		if dir == "" {
			var err error
			if dir, err = cache.DefaultDir(); err != nil {
				return o, err
			}
		}
		c, err := cache.Open(dir)
		if err != nil {
			return o, err
		}
		o.TempDir = c.TempDir()
	}
	spec := &config.Spec{Registries: map[string]*config.Registry{}}
	if o.Spec != nil {
		copied := *o.Spec
		spec = &copied
		spec.Registries = maps.Clone(o.Spec.Registries)
		if spec.Registries == nil {
			spec.Registries = map[string]*config.Registry{}
		}
	}
	if o.Insecure {
		for _, t := range o.Targets {
			r := &config.Registry{Host: t.Host}
			if old, ok := spec.Registries[t.Host]; ok {
				copied := *old
				r = &copied
			}
			r.Insecure = true
			spec.Registries[t.Host] = r
		}
	}
	o.Spec = spec
	return o, nil
}

// Result is what a push did: the mapping from source to target names and
// digests, the counts of what was sent, and the targets as the run
// reached them (for the node configuration).
type Result struct {
	Mapping   Mapping
	Stats     Stats
	Endpoints []Endpoint
	// SourceHosts are the registries the images came from, sorted.
	SourceHosts []string
}

// Stats counts what happened over every target. Uploads count blobs whose
// bytes were read from the archive into a request the registry accepted,
// wherever it had them sent (a Location on another host included), and
// those bytes; a manifest counts as put only once the registry's answer, or
// a HEAD after it, showed the pushed digest.
type Stats struct {
	BlobsUploaded int64 `json:"blobs-uploaded"`
	BytesUploaded int64 `json:"bytes-uploaded"`
	BlobsMounted  int64 `json:"blobs-mounted"`
	BlobsExisting int64 `json:"blobs-existing"`
	// BlobsLeftOut counts the blobs a delta leaves out that the target
	// held: in the image's repository (also counted as existing), or in
	// another one, mounted from there (also counted as mounted).
	BlobsLeftOut      int64 `json:"blobs-left-out,omitempty"`
	ManifestsPut      int64 `json:"manifests-put"`
	ManifestsExisting int64 `json:"manifests-existing"`
	// HeadersOnly says the target already held every manifest under its
	// name: the archives were read by their headers only, and nothing was
	// hashed or sent.
	HeadersOnly bool `json:"headers-only,omitempty"`
}

// Endpoint is one target registry as the run reached it.
type Endpoint struct {
	Target Target
	// Scheme is "https", or "http" for an insecure registry that answered
	// only over plain HTTP.
	Scheme   string
	Insecure bool
	// CAFile is the spec's ca-file for the host ("" for none).
	CAFile string
	// HasCredentials says whether the run used credentials for the host;
	// Username is the spec's literal auth.username, if any. Passwords are
	// never kept here.
	HasCredentials bool
	Username       string
}

// URL is the endpoint's scheme://host.
func (e Endpoint) URL() string { return e.Scheme + "://" + e.Target.Host }

// client is one target registry's connection.
type client struct {
	log      *slog.Logger
	target   Target
	endpoint *Endpoint
	pusher   *remote.Pusher
	puller   *remote.Puller
	obs      *observer
	// uploaded and sent count the blobs whose bytes went to the registry
	// and were accepted, and those bytes; leftOut the blobs a delta left
	// out that the target held (Stats.BlobsLeftOut).
	uploaded, sent, leftOut atomic.Int64
}

// unit is one image going into one repository of one target.
type unit struct {
	c    *client
	img  *sourceImage
	repo name.Repository
	// names are the image's source names that go into repo.
	names []image.Reference
	tags  []string
	// docs are pushed in order; the last is the top.
	docs []doc
	kept bool
	why  string
	// fromBase says where each blob the delta leaves out comes from
	// (resolveFromBase).
	fromBase map[digest.Digest]baseBlob
}

// Push pushes every image of the archives at paths to every target. It
// reads and plans everything first (archives, names, which indexes the
// targets can take): any problem there is reported, all at once, before
// anything is pushed. Errors are classed errdefs.ErrRegistry (exit 1),
// bad options errdefs.ErrUsage.
func Push(ctx context.Context, paths []string, opts Options) (*Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	log, policy := opts.Registry.Logger, opts.Registry.Policy

	// 0. Pushed before: when the target holds every manifest under its
	// name, there is nothing to send, and the archives' headers say so.
	if res, ok := pushedBefore(ctx, paths, opts); ok {
		return res, nil
	}

	// 1. The archives, each read once.
	sources, problems, err := openSources(ctx, paths, opts.TempDir, false)
	defer func() {
		for _, s := range sources {
			if err := s.close(); err != nil {
				log.Warn("closing an archive", "archive", s.path, "error", err)
			}
		}
	}()
	if err != nil {
		return nil, err
	}

	// 2. One registry set-up for every target: TLS and credentials as for
	// sources.
	env, clientList, err := connect(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer env.Close()

	// 3. The plan: each image into each repository of each target.
	units, sourceHosts := plan(clientList, sources, opts.PerHost, &problems)

	// 4. Blobs a delta leaves out: in another archive of the push, or
	// already in the target; every one that is not is a problem.
	if err := resolveFromBase(ctx, clientList, units, sources, opts, policy, &problems); err != nil {
		if len(problems) == 0 || ctx.Err() != nil {
			return nil, err
		}
		problems = append(problems, err)
	}

	// 5. Partial indexes: the absent children may already be in the target
	// (pushed from another archive); else the user's choice applies.
	if err := checkPartial(ctx, units, opts.PartialIndex, opts.Jobs, policy, &problems); err != nil {
		if len(problems) == 0 || ctx.Err() != nil {
			return nil, err
		}
		problems = append(problems, err)
	}
	problems = append(problems, tagConflicts(units)...)
	if len(problems) > 0 {
		return nil, errdefs.List(problems, "problems; nothing was pushed")
	}

	// 6. Blobs, then manifests.
	if err := pushBlobs(ctx, clientList, units, opts, policy, log); err != nil {
		return nil, err
	}
	var stats Stats
	if err := pushManifests(ctx, units, opts.Jobs, policy, &stats); err != nil {
		return nil, err
	}
	return result(clientList, units, sourceHosts, stats), nil
}

// openSources reads each archive once; an archive that cannot be read is
// a problem of its own, reported with the others before anything is sent.
func openSources(ctx context.Context, paths []string, tmpDir string, unhashed bool) (sources []*source, problems []error, err error) {
	for _, p := range paths {
		src, probs, err := openSource(ctx, p, tmpDir, unhashed)
		if err != nil {
			if ctx.Err() != nil {
				return sources, nil, ctx.Err()
			}
			problems = append(problems, errdefs.Errorf(errdefs.ErrRegistry, errdefs.Pos{File: p}, "%w", err))
			continue
		}
		sources = append(sources, src)
		for _, e := range probs {
			problems = append(problems, errdefs.Errorf(errdefs.ErrRegistry, errdefs.Pos{File: p}, "%w", e))
		}
	}
	return sources, problems, nil
}

// connect sets up one registry environment for every target and a client
// per target.
func connect(ctx context.Context, opts Options) (*registry.Env, []*client, error) {
	var hosts []string
	for _, t := range opts.Targets {
		if !slices.Contains(hosts, t.Host) {
			hosts = append(hosts, t.Host)
		}
	}
	ropts := opts.Registry
	ropts.Hosts = hosts
	env, err := registry.New(opts.Spec, ropts)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errdefs.ErrRegistry, err)
	}
	var clients []*client
	for _, t := range opts.Targets {
		c, err := newClient(ctx, env, t, opts.Registry.Policy, opts.Registry.UserAgent, opts.Spec)
		if err != nil {
			env.Close()
			return nil, nil, fmt.Errorf("%w: %s: %w", errdefs.ErrRegistry, t, err)
		}
		c.log = opts.Registry.Logger
		clients = append(clients, c)
	}
	return env, clients, nil
}

// plan makes a unit of each image in each target repository it goes to
// (an image whose names share a repository is one unit with their tags),
// and lists the source registries for the node configuration.
func plan(clients []*client, sources []*source, perHost bool, problems *[]error) ([]*unit, map[string]bool) {
	var units []*unit
	sourceHosts := map[string]bool{}
	for _, c := range clients {
		for _, s := range sources {
			for _, img := range s.images {
				byRepo := map[string]*unit{}
				for _, n := range img.names {
					sourceHosts[n.Domain()] = true
					rp := repoPath(c.target, n, perHost)
					u := byRepo[rp]
					if u == nil {
						repo, err := name.NewRepository(c.target.Host+"/"+rp, name.StrictValidation)
						if err != nil {
							*problems = append(*problems, errdefs.Errorf(errdefs.ErrRegistry, errdefs.Pos{File: s.path}, "%s: target repository %s/%s: %w", n, c.target.Host, rp, err))
							continue
						}
						u = &unit{c: c, img: img, repo: repo, docs: img.docs, kept: !img.made}
						if img.made {
							u.why = WhyMadeManifest
						}
						byRepo[rp] = u
						units = append(units, u)
					}
					u.names = append(u.names, n)
					if t := n.Tag(); t != "" && !slices.Contains(u.tags, t) {
						u.tags = append(u.tags, t)
					}
				}
			}
		}
	}
	return units, sourceHosts
}

// result gathers what the clients counted and where they pushed.
func result(clients []*client, units []*unit, sourceHosts map[string]bool, stats Stats) *Result {
	for _, c := range clients {
		stats.BlobsUploaded += c.uploaded.Load()
		stats.BytesUploaded += c.sent.Load()
		stats.BlobsMounted += c.obs.mounted.Load()
		stats.BlobsExisting += c.obs.existing.Load()
		stats.BlobsLeftOut += c.leftOut.Load()
	}
	res := &Result{Stats: stats, Mapping: mapping(clients, units)}
	for _, c := range clients {
		if s := c.obs.scheme(); s != "" {
			c.endpoint.Scheme = s
		}
		res.Endpoints = append(res.Endpoints, *c.endpoint)
	}
	for h := range sourceHosts {
		res.SourceHosts = append(res.SourceHosts, h)
	}
	sort.Strings(res.SourceHosts)
	return res
}

func newClient(ctx context.Context, env *registry.Env, t Target, policy registry.Policy, ua string, spec *config.Spec) (*client, error) {
	rt, err := env.Target(t.Host, policy)
	if err != nil {
		return nil, err
	}
	obs := &observer{base: rt.Transport}
	// go-containerregistry's own retries are off: the run's Policy retries
	// each whole operation (registry.Policy.Do), with its backoff, its
	// Retry-After handling and its log lines.
	opts := []remote.Option{
		remote.WithAuth(rt.Auth),
		remote.WithTransport(obs),
		remote.WithContext(ctx),
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithRetryStatusCodes(),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}
	if ua != "" {
		opts = append(opts, remote.WithUserAgent(ua))
	}
	pusher, err := remote.NewPusher(opts...)
	if err != nil {
		return nil, err
	}
	puller, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, err
	}
	ep := &Endpoint{Target: t, Scheme: "https", Insecure: rt.Insecure, CAFile: rt.CAFile, HasCredentials: rt.HasCredentials}
	if r, ok := spec.Registries[t.Host]; ok && r.Auth != nil && r.Auth.UsernameEnv == "" {
		ep.Username = r.Auth.Username
	}
	return &client{target: t, endpoint: ep, pusher: pusher, puller: puller, obs: obs}, nil
}

// checkPartial decides, for each unit whose top index lists children
// absent from its archive, which index is pushed. The absent children are
// looked up in the target repository first (HEAD): when all are there (an
// earlier push of the other platforms), the original index is complete
// there and pushed as it is.
func checkPartial(ctx context.Context, units []*unit, mode PartialIndex, jobs int, policy registry.Policy, problems *[]error) error {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, u := range units {
		if len(u.img.absent) == 0 {
			continue
		}
		g.Go(func() error {
			var missing []string
			attestation := false
			for _, m := range u.img.absent {
				ok, err := u.c.hasManifest(gctx, policy, u.repo.Digest(m.Digest.String()), m.Digest)
				if err != nil {
					return fmt.Errorf("%w: %s: %w", errdefs.ErrRegistry, u.repo, u.c.reach(err))
				}
				if !ok {
					p := m.Platform
					if m.Attestation {
						p, attestation = "attestation manifest", true
					}
					if p == "" {
						p = m.Digest.String()
					}
					missing = append(missing, p)
				}
			}
			if len(missing) == 0 {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			switch mode {
			case PartialFiltered:
				f := *u.img.filtered
				u.docs = append(slices.Clone(u.img.docs[:len(u.img.docs)-1]), f)
				u.kept, u.why = false, WhyFilteredIndex
			case PartialOriginal:
				// pushed as it is; the registry decides.
			default:
				*problems = append(*problems, partialError(u, missing, attestation))
			}
			return nil
		})
	}
	return g.Wait()
}

func partialError(u *unit, missing []string, attestation bool) error {
	top := u.img.top().desc.Digest
	keep := `To keep ` + top.String() + `, bundle every platform of the image (platforms = ["all"] for its group, then build again), or first push an archive that holds the missing platforms`
	if attestation {
		keep = `Attestation manifests are never bundled, so the index keeps ` + top.String() + ` only where the target already holds them (copy the image there from its registry first)`
	}
	filtered := ""
	if u.img.filtered != nil {
		filtered = " " + u.img.filtered.desc.Digest.String()
	}
	return errdefs.Errorf(errdefs.ErrRegistry, errdefs.Pos{File: u.img.archive},
		"%s -> %s: its index %s lists %s, in neither the archive nor the target (%w), and distribution refuses such an index (MANIFEST_BLOB_UNKNOWN). %s; or push with --partial-index=filtered: the index of the platforms the archive holds, under a new digest%s recorded in the mapping",
		u.names[0], u.repo, top, strings.Join(missing, ", "), ErrPartialIndex, keep, filtered)
}

// tagConflicts finds two images pushed under one target tag.
func tagConflicts(units []*unit) []error {
	type owner struct {
		d digest.Digest
		u *unit
	}
	seen := map[string]owner{}
	var out []error
	for _, u := range units {
		top := u.docs[len(u.docs)-1].desc.Digest
		for _, t := range u.tags {
			k := u.repo.String() + ":" + t
			if o, ok := seen[k]; ok && o.d != top {
				// --to-per-host separates source registries, nothing else:
				// one name with two contents (archives built at different
				// times) clashes under it just the same.
				if src := sourceNames(u, t); slices.Equal(src, sourceNames(o.u, t)) {
					out = append(out, errdefs.Errorf(errdefs.ErrRegistry, errdefs.Pos{File: u.img.archive},
						"%s and %s (%s) would both be pushed as %s, with different contents (%s, %s): both are %s, so --to-per-host cannot keep them apart; push the archives to different targets (--to HOST/PREFIX), or leave out the outdated one",
						u.img.label, o.u.img.label, o.u.img.archive, k, top, o.d, strings.Join(src, ", ")))
					continue
				}
				out = append(out, errdefs.Errorf(errdefs.ErrRegistry, errdefs.Pos{File: u.img.archive},
					"%s and %s (%s) would both be pushed as %s: push them to different targets, or use --to-per-host to keep each source registry's repositories apart",
					u.img.label, o.u.img.label, o.u.img.archive, k))
				continue
			}
			seen[k] = owner{top, u}
		}
	}
	return out
}

// reach says why the target could not be reached, when that is what err
// is (registry.Reach).
func (c *client) reach(err error) error { return registry.Reach(c.target.Host, err) }

// sourceNames are the names of u's image that go to its repository under
// tag, sorted.
func sourceNames(u *unit, tag string) []string {
	var out []string
	for _, n := range u.names {
		if n.Tag() == tag {
			out = append(out, n.String())
		}
	}
	sort.Strings(out)
	return out
}

// hasManifest reports whether ref resolves to d in the target.
func (c *client) hasManifest(ctx context.Context, policy registry.Policy, ref name.Reference, d digest.Digest) (bool, error) {
	got, err := c.resolve(ctx, policy, ref)
	return got == d.String(), err
}

// resolve returns the digest ref resolves to in the target (HEAD), "" when
// it is not there.
func (c *client) resolve(ctx context.Context, policy registry.Policy, ref name.Reference) (string, error) {
	var got string
	err := policy.Do(ctx, "HEAD "+ref.String(), func(ctx context.Context) error {
		desc, err := c.puller.Head(ctx, ref)
		if err != nil {
			var te *transport.Error
			if errors.As(err, &te) && te.StatusCode == 404 {
				got = ""
				return nil
			}
			return err
		}
		got = desc.Digest.String()
		return nil
	})
	return got, err
}

// blobJob is one blob for one target registry: the repositories that need
// it, in the order they were planned.
type blobJob struct {
	c    *client
	d    digest.Digest
	size int64
	mt   image.MediaType
	// src is where the bytes lie; none (file nil) for a blob a delta
	// leaves out, which is mounted from another repository of the
	// target (from).
	src   blobSource
	from  *name.Repository
	repos []name.Repository
}

func pushBlobs(ctx context.Context, clients []*client, units []*unit, opts Options, policy registry.Policy, log *slog.Logger) error {
	var jobs []*blobJob
	byKey := map[string]*blobJob{}
	totals := map[*client]int64{}
	add := func(u *unit, b image.Descriptor, src blobSource, from *name.Repository) {
		k := u.c.target.Host + "@" + b.Digest.String()
		j := byKey[k]
		if j == nil {
			j = &blobJob{c: u.c, d: b.Digest, size: b.Size, mt: b.MediaType, from: from}
			byKey[k] = j
			jobs = append(jobs, j)
		}
		if j.src.file == nil && src.file != nil {
			j.src, j.size = src, src.size
			totals[u.c] += src.size
		}
		if !slices.ContainsFunc(j.repos, func(r name.Repository) bool { return r.String() == u.repo.String() }) {
			j.repos = append(j.repos, u.repo)
		}
	}
	for _, u := range units {
		for _, b := range u.img.blobs {
			add(u, b, sourceOf(u.img, b.Digest), nil)
		}
		for _, b := range u.img.fromBase {
			// A blob the delta leaves out: pushed from another archive
			// of the push, nothing to do where the repository holds it,
			// else mounted from the repository that does.
			if fb := u.fromBase[b.Digest]; !fb.present {
				add(u, b, fb.src, fb.from)
			}
		}
	}
	// One task per registry host: blobs of several targets on one host are
	// uploaded once and mounted for the others.
	tasks := map[*client]progress.Task{}
	for _, c := range clients {
		if _, ok := totals[c]; ok {
			tasks[c] = opts.Progress.Task("push "+c.target.Host, totals[c], progress.Bytes)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Jobs)
	for _, j := range jobs {
		g.Go(func() error {
			err := j.push(gctx, policy, tasks[j.c])
			if err != nil {
				return fmt.Errorf("%w: blob %s -> %s: %w", errdefs.ErrRegistry, j.d, j.repos[0], j.c.reach(err))
			}
			return nil
		})
	}
	err := g.Wait()
	for _, t := range tasks {
		t.Done(err)
	}
	opts.Progress.Wait()
	return err
}

// sourceOf finds where a blob of img lies.
func sourceOf(img *sourceImage, d digest.Digest) blobSource {
	return img.src.blobs[d]
}

// push uploads the blob into its first repository (skipped when there,
// HEAD) and mounts it into the others from there, falling back to an
// upload where the registry does not mount.
func (j *blobJob) push(ctx context.Context, policy registry.Policy, task progress.Task) error {
	var counted atomic.Int64
	for i, repo := range j.repos {
		l := &blobLayer{d: j.d, size: j.size, mt: j.mt, src: j.src}
		if i == 0 {
			l.read = func(n int64) {
				// A retry sends the blob again: count only new bytes.
				if c := counted.Add(n); c > j.size {
					counted.Add(-n)
					return
				}
				task.Add(n)
			}
		}
		var layer = remoteLayer(l)
		switch {
		case i > 0:
			layer = &remote.MountableLayer{Layer: l, Reference: j.repos[0].Digest(j.d.String())}
		case j.from != nil:
			layer = &remote.MountableLayer{Layer: l, Reference: j.from.Digest(j.d.String())}
		}
		what := fmt.Sprintf("blob %s -> %s", j.d.Encoded()[:12], repo)
		if err := policy.Do(ctx, what, func(ctx context.Context) error {
			return j.c.pusher.Upload(ctx, repo, layer)
		}); err != nil {
			if j.src.file == nil && j.from != nil {
				return fmt.Errorf("the delta leaves it out, and mounting it from %s failed: %w; push BASE into %s first, then the delta", j.from, err, repo)
			}
			return err
		}
		if i == 0 && j.src.file != nil {
			task.Add(j.size - counted.Load())
		}
		sent := l.sent.Load()
		if sent > 0 {
			j.c.uploaded.Add(1)
			j.c.sent.Add(sent)
		}
		j.c.log.Info("blob pushed", "digest", j.d, "repository", repo.String(), "sent", sent)
	}
	return nil
}

func pushManifests(ctx context.Context, units []*unit, jobs int, policy registry.Policy, stats *Stats) error {
	var done sync.Map // repo@digest -> *onceErr
	var put, existing atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, u := range units {
		g.Go(func() error {
			return u.pushManifests(gctx, policy, &done, &put, &existing)
		})
	}
	err := g.Wait()
	stats.ManifestsPut, stats.ManifestsExisting = put.Load(), existing.Load()
	return err
}

type onceErr struct {
	once sync.Once
	err  error
}

// refs are the names document i of the unit goes under: the top under
// each of its tags (by digest when it has none), the others by digest.
func (u *unit) refs(i int) []name.Reference {
	var refs []name.Reference
	if i == len(u.docs)-1 {
		for _, t := range u.tags {
			refs = append(refs, u.repo.Tag(t))
		}
	}
	if len(refs) == 0 {
		refs = []name.Reference{u.repo.Digest(u.docs[i].desc.Digest.String())}
	}
	return refs
}

func (u *unit) pushManifests(ctx context.Context, policy registry.Policy, done *sync.Map, put, existing *atomic.Int64) error {
	for i, d := range u.docs {
		for _, ref := range u.refs(i) {
			v, _ := done.LoadOrStore(ref.String()+"|"+d.desc.Digest.String(), &onceErr{})
			o := v.(*onceErr)
			o.once.Do(func() {
				o.err = u.putManifest(ctx, policy, ref, d, put, existing)
			})
			if o.err != nil {
				return o.err
			}
		}
	}
	return nil
}

// putManifest PUTs a manifest byte for byte, unless ref already resolves
// to its digest.
func (u *unit) putManifest(ctx context.Context, policy registry.Policy, ref name.Reference, d doc, put, existing *atomic.Int64) error {
	ok, err := u.c.hasManifest(ctx, policy, ref, d.desc.Digest)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errdefs.ErrRegistry, ref, u.c.reach(err))
	}
	if ok {
		existing.Add(1)
		u.c.log.Info("manifest already there", "ref", ref.String(), "digest", d.desc.Digest)
		return nil
	}
	pctx, answer := expectManifest(ctx, ref)
	err = policy.Do(pctx, "PUT "+ref.String(), func(ctx context.Context) error {
		return u.c.pusher.Put(ctx, ref, rawManifest(d))
	})
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && slices.ContainsFunc(te.Errors, func(e transport.Diagnostic) bool { return e.Code == transport.ManifestBlobUnknownErrorCode }) && d.desc.MediaType.IsIndex() && len(u.img.absent) > 0 {
			return errdefs.Errorf(errdefs.ErrRegistry, errdefs.Pos{File: u.img.archive}, "%s: %w: the registry refused the original index, whose platforms are not all in the archive (MANIFEST_BLOB_UNKNOWN): push with --partial-index=filtered, or bundle every platform", ref, err)
		}
		return errdefs.Errorf(errdefs.ErrRegistry, errdefs.Pos{File: u.img.archive}, "%s: %w", ref, u.c.reach(err))
	}
	// The mapping says "digest kept" only if the registry holds these very
	// bytes under ref: its answer is checked, or, when it gave none, what
	// ref resolves to now.
	got, how := answer.answered(), "answered the manifest PUT with Docker-Content-Digest"
	if got == "" {
		if got, err = u.c.resolve(ctx, policy, ref); err != nil {
			return errdefs.Errorf(errdefs.ErrRegistry, errdefs.Pos{File: u.img.archive}, "%s: after its PUT: %w", ref, u.c.reach(err))
		}
		how = "sent no Docker-Content-Digest, and after the PUT resolves it to"
		if got == "" {
			got = "nothing (not found)"
		}
	}
	if got != d.desc.Digest.String() {
		return errdefs.Errorf(errdefs.ErrRegistry, errdefs.Pos{File: u.img.archive},
			"%s -> %s: %w: pushed %s byte for byte, but the registry %s %s: it did not store the manifest as pushed (does it convert manifests?), so the image cannot be pulled there by its digest; push to a registry that stores manifests unchanged",
			u.names[0], ref, ErrDigestNotKept, d.desc.Digest, how, got)
	}
	put.Add(1)
	u.c.log.Info("manifest put", "ref", ref.String(), "digest", d.desc.Digest)
	return nil
}

// pushedBefore is a push that finds its work done: it reads the archives
// by their headers (nothing hashed: for an uncompressed archive, only its
// tar headers and documents), plans as Push does, and asks the target for
// every manifest under every name it would put there. When each one
// resolves to the archive's digest, the registry holds the images whole
// (a registry takes a manifest only once it holds what it names), so the
// push is done without reading a layer: the second push of unchanged
// archives. Anything else (a manifest missing, a delta, a problem, an
// error) returns false, and Push does the full work, reporting what it
// meets (the HEADs it made here are a few milliseconds).
func pushedBefore(ctx context.Context, paths []string, opts Options) (*Result, bool) {
	sources, problems, err := openSources(ctx, paths, opts.TempDir, true)
	defer func() {
		for _, s := range sources {
			s.close()
		}
	}()
	if err != nil || len(problems) > 0 {
		return nil, false
	}
	for _, s := range sources {
		if s.delta != nil || len(s.leftOut) > 0 {
			return nil, false
		}
	}
	env, clients, err := connect(ctx, opts)
	if err != nil {
		return nil, false
	}
	defer env.Close()
	units, sourceHosts := plan(clients, sources, opts.PerHost, &problems)
	if len(problems) > 0 || len(tagConflicts(units)) > 0 {
		return nil, false
	}
	policy := opts.Registry.Policy
	// Partial indexes as Push treats them: the index pushed before, the
	// original or (--partial-index filtered) the filtered one, is what is
	// looked for.
	if err := checkPartial(ctx, units, opts.PartialIndex, opts.Jobs, policy, &problems); err != nil || len(problems) > 0 {
		return nil, false
	}
	var there atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Jobs)
	for _, u := range units {
		for i, d := range u.docs {
			for _, ref := range u.refs(i) {
				g.Go(func() error {
					ok, err := u.c.hasManifest(gctx, policy, ref, d.desc.Digest)
					if err != nil || !ok {
						return errNotThere
					}
					there.Add(1)
					return nil
				})
			}
		}
	}
	if g.Wait() != nil {
		return nil, false
	}
	opts.Registry.Logger.Info("every manifest is already at the target: nothing to push", "manifests", there.Load())
	return result(clients, units, sourceHosts, Stats{ManifestsExisting: there.Load(), HeadersOnly: true}), true
}

var errNotThere = errors.New("not at the target")
