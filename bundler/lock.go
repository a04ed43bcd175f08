// Package bundler turns a spec into a lockfile and (in build.go) archives.
package bundler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/registry"

	"golang.org/x/sync/errgroup"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/internal/logs"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/trust"
)

// Resolver resolves one reference for a set of platforms.
type Resolver interface {
	// index is the group's index mode: with image.IndexFiltered the entry
	// also records the digest of the filtered index the archive will hold.
	Resolve(ctx context.Context, ref image.Reference, want image.PlatformSet, index image.IndexMode) (*lockfile.Image, error)
}

// Verifier checks a resolved image's signatures against the requirements
// the spec makes of it and returns what it verified (see package trust).
type Verifier interface {
	Verify(ctx context.Context, ref image.Reference, e *lockfile.Image, reqs []*config.SignatureRequirement) ([]lockfile.Signature, error)
}

// AttachmentFinder finds the artifacts attached to a pinned image (see
// trust.Finder).
type AttachmentFinder interface {
	Attachments(ctx context.Context, ref image.Reference, e *lockfile.Image) ([]lockfile.Artifact, error)
}

// LockOptions say how Lock treats the existing lockfile.
type LockOptions struct {
	// Update re-resolves pinned images and charts: all of them when
	// UpdateImages is empty, else those it names (a chart by its name, or
	// its source as the lockfile records it).
	//
	// Update re-resolves pinned images: all of them when UpdateImages is
	// empty, else those the references name (a name without tag or digest
	// matches every tag of it).
	Update       bool
	UpdateImages []string
	Jobs         int // parallel resolutions; <= 0 means DefaultJobs
	Logger       *slog.Logger
	Progress     progress.Reporter // nil: none
	// Charts fetches and renders the charts that need it; nil when the
	// run cannot (a chart that needs it is then an error).
	Charts ChartSource
}

// LockResult tells what Lock did. Entries are in spec order.
type LockResult struct {
	Lock     *lockfile.Lock
	Resolved []Entry // resolved from a registry (Digest: the new pin)
	Kept     []Entry // taken from the old lockfile
	Removed  []Entry // dropped because the spec no longer has them (Digest: the old pin)
}

// Entry is one image of one group of a lockfile.
type Entry struct {
	Group  string
	Ref    string // canonical
	Digest string
}

// Plan compares a spec with a lockfile without touching the network: which
// images can keep their pins and which must be resolved.
type Plan struct {
	Reuse   map[entryKey]*lockfile.Image
	Resolve []Want
	Removed []Entry
	// Charts is the state of every chart of the spec (see UseLockedCharts);
	// chartDrift says how they differ from the lockfile.
	Charts     []ChartState
	chartDrift []string
}

// Want is one image of one group that needs resolving.
type Want struct {
	Group  *config.Group
	Image  config.Image
	Reason string
	// Pinned, when set, keeps its pin: only its signatures are verified
	// again (the signature policy changed, or the lockfile predates it).
	Pinned *lockfile.Image
}

type entryKey struct{ group, ref string }

// NewPlan works out what Lock would do. old may be nil.
func NewPlan(spec *config.Spec, old *lockfile.Lock, opts LockOptions) (*Plan, error) {
	update, err := updateMatcher(spec, opts)
	if err != nil {
		return nil, err
	}
	p := &Plan{Reuse: map[entryKey]*lockfile.Image{}}
	p.Charts = UseLockedCharts(spec, old)
	p.chartDrift = chartDrift(p.Charts, spec, old)
	if old == nil {
		old = &lockfile.Lock{}
	}
	for _, g := range spec.Groups {
		lg := old.Group(g.Name)
		groupReason := ""
		switch {
		case lg == nil:
			groupReason = "new group"
		case !slices.Equal(lg.Platforms, g.Platforms.Strings()):
			groupReason = fmt.Sprintf("platforms changed from [%s] to [%s]", strings.Join(lg.Platforms, ", "), g.Platforms)
		case lg.Index != g.Index:
			groupReason = fmt.Sprintf("index changed from %q to %q", lg.Index, g.Index)
		}
		for _, img := range g.Images {
			ref := img.Ref.String()
			reason := groupReason
			if reason == "" {
				switch e := lg.Image(ref); {
				case e == nil:
					reason = "not in the lockfile"
				case update(img.Ref):
					reason = "update requested"
				default:
					why := signatureDrift(spec.SignatureRequirements(g, img.Ref), e)
					if why == "" && lg.Attachments != g.CarrySignatures {
						why = fmt.Sprintf("carry-signatures changed to %v", g.CarrySignatures)
					}
					if why != "" {
						p.Resolve = append(p.Resolve, Want{Group: g, Image: img, Reason: why, Pinned: e})
						continue
					}
					p.Reuse[entryKey{g.Name, ref}] = e
					continue
				}
			}
			p.Resolve = append(p.Resolve, Want{Group: g, Image: img, Reason: reason})
		}
	}
	// The images of a chart to render again are not gone: rendering says
	// (and Lock reports those it no longer brings).
	pending := map[entryKey]bool{}
	for _, st := range p.Charts {
		if (st.Stale != "" || st.Chart.Relocked) && st.Locked != nil {
			for _, ci := range st.Locked.Images {
				pending[entryKey{st.Group.Name, ci.Ref}] = true
			}
		}
	}
	for _, lg := range old.Groups {
		sg := spec.Group(lg.Name)
		for _, e := range lg.Images {
			if pending[entryKey{lg.Name, e.Ref}] {
				continue
			}
			if sg == nil || !slices.ContainsFunc(sg.Images, func(i config.Image) bool { return i.Ref.String() == e.Ref }) {
				p.Removed = append(p.Removed, Entry{Group: lg.Name, Ref: e.Ref, Digest: e.Digest.String()})
			}
		}
	}
	return p, nil
}

// Drift lists, one line each, how the lockfile differs from the spec.
func (p *Plan) Drift() []string {
	out := slices.Clone(p.chartDrift)
	for _, w := range p.Resolve {
		out = append(out, fmt.Sprintf("%s: group %q: image %q: %s", w.Image.Pos, w.Group.Name, w.Image.Ref.Written, w.Reason))
	}
	for _, r := range p.Removed {
		out = append(out, fmt.Sprintf("%s: %s: in the lockfile but not in the spec", r.Group, r.Ref))
	}
	return out
}

func updateMatcher(spec *config.Spec, opts LockOptions) (func(image.Reference) bool, error) {
	if !opts.Update {
		return func(image.Reference) bool { return false }, nil
	}
	if len(opts.UpdateImages) == 0 {
		return func(image.Reference) bool { return true }, nil
	}
	type matcher struct {
		ref      image.Reference
		nameOnly bool
	}
	var ms []matcher
	var errs []error
	for _, a := range opts.UpdateImages {
		if chartNamed(spec, a) {
			continue // a chart: lockCharts resolves it again
		}
		r, err := image.ParseReference(a, spec.DefaultRegistry)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: --update: %w", errdefs.ErrUsage, err))
			continue
		}
		last := a[strings.LastIndex(a, "/")+1:]
		m := matcher{ref: r, nameOnly: !strings.ContainsAny(last, ":@")}
		found := false
		for _, g := range spec.Groups {
			for _, img := range g.Images {
				if m.nameOnly && img.Ref.Name() == r.Name() || img.Ref.String() == r.String() {
					found = true
				}
			}
		}
		if !found {
			errs = append(errs, &errdefs.Error{Class: errdefs.ErrUsage, Msg: fmt.Sprintf("--update %s: no such image in the spec", a)})
			continue
		}
		ms = append(ms, m)
	}
	if err := errdefs.List(errs, "problems"); err != nil {
		return nil, err
	}
	return func(r image.Reference) bool {
		for _, m := range ms {
			if m.nameOnly && r.Name() == m.ref.Name() || r.String() == m.ref.String() {
				return true
			}
		}
		return false
	}, nil
}

// Lock resolves what the plan needs and returns the new lockfile. Every
// failed image is reported, with its place in the spec, in one error.
func Lock(ctx context.Context, spec *config.Spec, old *lockfile.Lock, r Resolver, opts LockOptions) (*LockResult, error) {
	// Charts first: their images join their groups before the plan.
	charts, err := lockCharts(ctx, spec, UseLockedCharts(spec, old), opts.Charts, chartUpdater(spec, opts))
	if err != nil {
		return nil, err
	}
	plan, err := NewPlan(spec, old, opts)
	if err != nil {
		return nil, err
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	keys, byKey := lockJobs(spec, plan)

	rep := opts.Progress
	if rep == nil {
		rep = progress.New(nil, progress.Quiet)
	}
	task := progress.Task(nil)
	var outcome error // why the resolve task ended, for its last line
	if len(keys) > 0 {
		task = rep.Task("resolve", int64(len(keys)), progress.Items)
		defer func() { task.Done(outcome) }()
	}
	l := &locker{spec: spec, r: r, log: logs.OrDiscard(opts.Logger), task: task,
		results: map[entryKey]*lockfile.Image{}, dead: map[string]*HostError{}}
	g := new(errgroup.Group) // not WithContext: one failure must not hide the others
	g.SetLimit(jobs)
	for _, k := range keys {
		j := byKey[k]
		g.Go(func() error { l.run(ctx, j); return nil })
	}
	_ = g.Wait()
	for _, h := range l.deadOrder {
		l.errs = append(l.errs, l.dead[h])
	}
	if err := errdefs.List(l.errs, "images failed"); err != nil {
		outcome = err
		if ctx.Err() != nil {
			outcome = ctx.Err()
		}
		return nil, err
	}
	res := lockResult(spec, plan, l.results)
	for i := range res.Lock.Groups {
		res.Lock.Groups[i].Charts = charts[res.Lock.Groups[i].Name]
	}
	res.Removed = append(res.Removed, droppedByCharts(old, res.Lock, plan)...)
	res.Lock.Sort()
	return res, nil
}

// lockJob is one reference to resolve for a set of platforms, with what
// must be verified and carried: the same reference asked for the same
// things in several groups is resolved once, for all its wants.
type lockJob struct {
	ref    image.Reference
	want   image.PlatformSet
	index  image.IndexMode
	pinned *lockfile.Image
	reqs   []*config.SignatureRequirement
	carry  bool
	wants  []Want
}

// lockJobs merges the plan's wants into jobs, in the plan's order.
func lockJobs(spec *config.Spec, plan *Plan) (keys []string, byKey map[string]*lockJob) {
	byKey = map[string]*lockJob{}
	for _, w := range plan.Resolve {
		reqs := spec.SignatureRequirements(w.Group, w.Image.Ref)
		k := jobKey(w.Image.Ref, w.Group) + reqsKey(reqs)
		if w.Pinned != nil {
			k += "|pinned " + w.Pinned.Digest.String()
		}
		k += fmt.Sprintf("|carry %v", w.Group.CarrySignatures)
		j, ok := byKey[k]
		if !ok {
			j = &lockJob{ref: w.Image.Ref, want: w.Group.Platforms, index: w.Group.Index, pinned: w.Pinned, reqs: reqs, carry: w.Group.CarrySignatures}
			byKey[k] = j
			keys = append(keys, k)
		}
		j.wants = append(j.wants, w)
	}
	return keys, byKey
}

// locker runs lock jobs in parallel and gathers their outcomes. A
// registry that cannot be reached fails every image on it the same way:
// after its first connection-level failure the rest of its images fail
// fast, without contacting it, and the failures are reported as one line
// per host.
type locker struct {
	spec *config.Spec
	r    Resolver
	log  *slog.Logger
	task progress.Task

	mu        sync.Mutex
	results   map[entryKey]*lockfile.Image
	errs      []error
	dead      map[string]*HostError
	deadOrder []string
}

// run resolves (or takes the pin of) one job, verifies its signatures and
// finds its attachments, and records the outcome for each of its wants.
func (l *locker) run(ctx context.Context, j *lockJob) {
	host := j.ref.Domain()
	l.mu.Lock()
	he := l.dead[host]
	l.mu.Unlock()
	var img *lockfile.Image
	var err error
	switch {
	case he != nil:
	case rejected(j.ref, j.reqs) != nil:
		err = rejected(j.ref, j.reqs)
	case j.pinned != nil:
		pinned := *j.pinned
		img = &pinned
	default:
		l.log.Info("resolving", "image", j.ref.String(), "platforms", j.want.String())
		img, err = l.r.Resolve(ctx, j.ref, j.want, j.index)
	}
	if he == nil && err == nil {
		err = verifySignatures(ctx, l.r, j.ref, img, j.reqs, l.log)
	}
	if he == nil && err == nil {
		err = findAttachments(ctx, l.r, j.ref, img, j.carry, l.log)
	}
	l.task.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if he == nil && err != nil && !mirrored(l.spec, host) {
		if reason, ok := registry.Unreachable(host, err); ok {
			if he = l.dead[host]; he == nil {
				he = &HostError{Host: host, Reason: reason, Err: err}
				l.dead[host] = he
				l.deadOrder = append(l.deadOrder, host)
			}
		}
	}
	switch {
	case he != nil:
		for _, w := range j.wants {
			he.add(w)
		}
	case err != nil:
		for _, w := range j.wants {
			l.errs = append(l.errs, &ImageError{Pos: w.Image.Pos, Group: w.Group.Name, Image: w.Image.Ref.Written, Err: err})
		}
	default:
		for _, w := range j.wants {
			l.results[entryKey{w.Group.Name, w.Image.Ref.String()}] = img
		}
	}
}

// lockResult assembles the new lockfile in the spec's order: entries the
// plan reuses as they were, the others as resolved.
func lockResult(spec *config.Spec, plan *Plan, results map[entryKey]*lockfile.Image) *LockResult {
	res := &LockResult{Lock: &lockfile.Lock{Version: lockfile.Version}, Removed: plan.Removed}
	for _, sg := range spec.Groups {
		lg := lockfile.Group{Name: sg.Name, Platforms: sg.Platforms.Strings(), Index: sg.Index, Attachments: sg.CarrySignatures}
		for _, img := range sg.Images {
			ref := img.Ref.String()
			if e, ok := plan.Reuse[entryKey{sg.Name, ref}]; ok {
				lg.Images = append(lg.Images, *e)
				res.Kept = append(res.Kept, Entry{Group: sg.Name, Ref: ref, Digest: e.Digest.String()})
				continue
			}
			e := *results[entryKey{sg.Name, ref}]
			e.Ref = ref
			lg.Images = append(lg.Images, e)
			res.Resolved = append(res.Resolved, Entry{Group: sg.Name, Ref: ref, Digest: e.Digest.String()})
		}
		res.Lock.Groups = append(res.Lock.Groups, lg)
	}
	res.Lock.Sort()
	return res
}

func jobKey(ref image.Reference, g *config.Group) string {
	return ref.String() + "|" + g.Platforms.String() + "|" + string(g.Index)
}

// reqsKey tells apart images whose signature requirements differ.
func reqsKey(reqs []*config.SignatureRequirement) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "|%p", r)
	}
	return b.String()
}

// rejected is the refusal of a reject requirement, decided without asking
// the registry.
func rejected(ref image.Reference, reqs []*config.SignatureRequirement) error {
	for _, r := range reqs {
		if r.Require == config.RequireReject {
			return &trust.Error{Image: ref.String(), Registry: ref.Domain(), Requirement: r.String(), Reason: "the policy rejects every image of this scope"}
		}
	}
	return nil
}

// verifySignatures checks img against reqs and records what was verified
// in it. With no requirement it only clears old records.
func verifySignatures(ctx context.Context, r Resolver, ref image.Reference, img *lockfile.Image, reqs []*config.SignatureRequirement, log *slog.Logger) error {
	img.Signatures = nil
	if len(reqs) == 0 {
		return nil
	}
	v, ok := r.(Verifier)
	if !ok {
		return fmt.Errorf("%w: this resolver cannot verify signatures", errdefs.ErrSignature)
	}
	log.Info("verifying signatures", "image", ref.String(), "digest", img.Digest)
	sigs, err := v.Verify(ctx, ref, img, reqs)
	if err != nil {
		return err
	}
	for _, s := range sigs {
		if !slices.Contains(img.Signatures, s) {
			img.Signatures = append(img.Signatures, s)
		}
	}
	return nil
}

// findAttachments pins the artifacts attached to img when its group
// carries them, and clears them otherwise.
func findAttachments(ctx context.Context, r Resolver, ref image.Reference, img *lockfile.Image, carry bool, log *slog.Logger) error {
	img.Artifacts = nil
	if !carry {
		return nil
	}
	f, ok := r.(AttachmentFinder)
	if !ok {
		return errors.New("this resolver cannot find attached artifacts")
	}
	log.Info("finding signatures, SBOMs and attestations", "image", ref.String(), "digest", img.Digest)
	arts, err := f.Attachments(ctx, ref, img)
	if err != nil {
		return fmt.Errorf("finding attached artifacts: %w", err)
	}
	img.Artifacts = arts
	return nil
}

// signatureDrift says why a pinned image's signature records no longer
// answer the spec's requirements, or "" when they do: every manifest a
// requirement covers has a record made with one of its keys (by
// fingerprint, so a renamed key file is the same key) or its identity,
// and no record is left from a requirement that is gone.
func signatureDrift(reqs []*config.SignatureRequirement, e *lockfile.Image) string {
	used := map[int]bool{}
	for _, r := range reqs {
		switch {
		case r.Require == config.RequireReject:
			return "the signature policy rejects it (" + r.Where() + ")"
		case !r.NeedsSignatures():
			continue
		}
		manifests := []digest.Digest{e.Digest}
		if r.VerifyPlatforms {
			manifests = e.Manifests()
		}
		for _, m := range manifests {
			found := false
			for i, s := range e.Signatures {
				if s.Manifest != m {
					continue
				}
				ok := r.Fulcio != nil && s.Identity == r.Fulcio.Identity() ||
					r.Fulcio == nil && slices.ContainsFunc(r.Keys, func(k config.Key) bool { return k.Fingerprint == s.Fingerprint })
				if ok {
					used[i] = true
					found = true
				}
			}
			if !found {
				return "signature of " + m.String() + " not verified for " + r.String()
			}
		}
	}
	if len(used) != len(e.Signatures) {
		return "its signature records do not match the signature policy"
	}
	return ""
}

// ImageError is the failure of one image of one group to resolve. It is
// of class errdefs.ErrRegistry and keeps the cause in its chain.
type ImageError struct {
	Pos   errdefs.Pos
	Group string
	Image string
	Err   error
}

func (e *ImageError) Error() string {
	return fmt.Sprintf("%s: group %q: image %q: %v", e.Pos, e.Group, e.Image, e.Err)
}

// Position implements errdefs.Positioned.
func (e *ImageError) Position() errdefs.Pos { return e.Pos }

func (e *ImageError) Unwrap() []error {
	if errors.Is(e.Err, errdefs.ErrSignature) {
		return []error{e.Err}
	}
	return []error{e.Err, errdefs.ErrRegistry}
}

// HostError is the failure of every image of one registry host that could
// not be reached (connection refused, no such host, a timeout, a failed TLS
// handshake or verification): one error for all of them, positioned at the
// first. It is of class errdefs.ErrRegistry and keeps the first cause in
// its chain.
type HostError struct {
	Host   string
	Reason string // "connection refused", "no such host", …
	Err    error  // the first failure
	Pos    errdefs.Pos
	Images int // images (of groups) not resolved
	Groups []string
}

func (e *HostError) add(w Want) {
	if e.Images == 0 || w.Image.Pos.File == e.Pos.File && w.Image.Pos.Line < e.Pos.Line {
		e.Pos = w.Image.Pos
	}
	e.Images++
	if !slices.Contains(e.Groups, w.Group.Name) {
		e.Groups = append(e.Groups, w.Group.Name)
	}
}

func (e *HostError) Error() string {
	noun := "images"
	if e.Images == 1 {
		noun = "image"
	}
	gs := make([]string, len(e.Groups))
	for i, g := range e.Groups {
		gs[i] = fmt.Sprintf("%q", g)
	}
	slices.Sort(gs)
	what := "group"
	if len(gs) > 1 {
		what = "groups"
	}
	msg := fmt.Sprintf("%s: registry %s is unreachable (%s): %d %s of %s %s not resolved", e.Pos, e.Host, e.Reason, e.Images, noun, what, strings.Join(gs, ", "))
	if errors.Is(e.Err, registry.ErrTLS) {
		// The first failure carries the hint (give the CA).
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Position implements errdefs.Positioned.
func (e *HostError) Position() errdefs.Pos { return e.Pos }

func (e *HostError) Unwrap() []error { return []error{e.Err, errdefs.ErrRegistry} }

// mirrored says whether a registry has mirrors. Its images are then tried
// at several endpoints, and containers/image keeps only the last failure
// (the registry's own) in the error chain: an unreachable registry behind a
// mirror that answered "manifest unknown" is a failure of that image, not
// of the host, so such errors stay per image.
func mirrored(spec *config.Spec, host string) bool {
	r, ok := spec.Registries[host]
	return ok && len(r.Mirrors) > 0
}

// droppedByCharts lists the images of the old lockfile that a chart
// rendered again no longer brings, and nothing else in the group does.
func droppedByCharts(old, now *lockfile.Lock, plan *Plan) []Entry {
	var out []Entry
	if old == nil {
		return nil
	}
	seen := map[entryKey]bool{}
	for _, r := range plan.Removed {
		seen[entryKey{r.Group, r.Ref}] = true
	}
	for _, st := range plan.Charts {
		if st.Locked == nil || (st.Stale == "" && !st.Chart.Relocked) {
			continue
		}
		og, ng := old.Group(st.Group.Name), now.Group(st.Group.Name)
		for _, ci := range st.Locked.Images {
			k := entryKey{st.Group.Name, ci.Ref}
			e := og.Image(ci.Ref)
			if seen[k] || e == nil || (ng != nil && ng.Image(ci.Ref) != nil) {
				continue
			}
			seen[k] = true
			out = append(out, Entry{Group: st.Group.Name, Ref: ci.Ref, Digest: e.Digest.String()})
		}
	}
	return out
}
