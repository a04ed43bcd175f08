// Package bundler turns a spec into a lockfile and (in build.go) archives.
package bundler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// Resolver resolves one reference for a set of platforms.
type Resolver interface {
	// index is the group's index mode: with image.IndexFiltered the entry
	// also records the digest of the filtered index the archive will hold.
	Resolve(ctx context.Context, ref image.Reference, want image.PlatformSet, index image.IndexMode) (*lockfile.Image, error)
}

// ErrLockOutOfDate is returned by a check when the lockfile does not match
// the spec.
var ErrLockOutOfDate = errors.New("lockfile is out of date")

// ErrResolve wraps the failure of one or more images to resolve.
var ErrResolve = errors.New("resolution failed")

// LockOptions say how Lock treats the existing lockfile.
type LockOptions struct {
	// Update re-resolves pinned images: all of them when UpdateImages is
	// empty, else those the references name (a name without tag or digest
	// matches every tag of it).
	Update       bool
	UpdateImages []string
	Jobs         int // parallel resolutions; <= 0 means 4
	Logger       *slog.Logger
	Progress     progress.Reporter // nil: none
}

// LockResult tells what Lock did.
type LockResult struct {
	Lock     *lockfile.Lock
	Resolved []string // "group: ref" resolved from the registry
	Reused   int      // entries taken from the old lockfile
	Removed  []string // "group: ref" dropped because the spec no longer has them
}

// Plan compares a spec with a lockfile without touching the network: which
// images can keep their pins and which must be resolved.
type Plan struct {
	Reuse   map[entryKey]*lockfile.Image
	Resolve []Want
	Removed []string
}

// Want is one image of one group that needs resolving.
type Want struct {
	Group  *config.Group
	Image  config.Image
	Reason string
}

type entryKey struct{ group, ref string }

// NewPlan works out what Lock would do. old may be nil.
func NewPlan(spec *config.Spec, old *lockfile.Lock, opts LockOptions) (*Plan, error) {
	update, err := updateMatcher(spec, opts)
	if err != nil {
		return nil, err
	}
	p := &Plan{Reuse: map[entryKey]*lockfile.Image{}}
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
					p.Reuse[entryKey{g.Name, ref}] = e
					continue
				}
			}
			p.Resolve = append(p.Resolve, Want{Group: g, Image: img, Reason: reason})
		}
	}
	for _, lg := range old.Groups {
		sg := spec.Group(lg.Name)
		for _, e := range lg.Images {
			if sg == nil || !slices.ContainsFunc(sg.Images, func(i config.Image) bool { return i.Ref.String() == e.Ref }) {
				p.Removed = append(p.Removed, lg.Name+": "+e.Ref)
			}
		}
	}
	return p, nil
}

// Drift lists, one line each, how the lockfile differs from the spec.
func (p *Plan) Drift() []string {
	var out []string
	for _, w := range p.Resolve {
		out = append(out, fmt.Sprintf("%s: group %q: image %q: %s", w.Image.Pos, w.Group.Name, w.Image.Ref.Written, w.Reason))
	}
	for _, r := range p.Removed {
		out = append(out, fmt.Sprintf("%s: in the lockfile but not in the spec", r))
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
	var errs *multierror.Error
	for _, a := range opts.UpdateImages {
		r, err := image.ParseReference(a, spec.DefaultRegistry)
		if err != nil {
			errs = multierror.Append(errs, err)
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
			errs = multierror.Append(errs, &config.Error{Msg: fmt.Sprintf("--update %s: no such image in the spec", a)})
			continue
		}
		ms = append(ms, m)
	}
	if errs != nil {
		errs.ErrorFormat = config.ListFormat
		return nil, errs
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
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	plan, err := NewPlan(spec, old, opts)
	if err != nil {
		return nil, err
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 4
	}

	// The same reference asked for the same platforms in several groups is
	// resolved once.
	type job struct {
		ref   image.Reference
		want  image.PlatformSet
		index image.IndexMode
		wants []Want
	}
	jobsByKey := map[string]*job{}
	var order []string
	for _, w := range plan.Resolve {
		k := jobKey(w.Image.Ref, w.Group)
		j, ok := jobsByKey[k]
		if !ok {
			j = &job{ref: w.Image.Ref, want: w.Group.Platforms, index: w.Group.Index}
			jobsByKey[k] = j
			order = append(order, k)
		}
		j.wants = append(j.wants, w)
	}

	rep := opts.Progress
	if rep == nil {
		rep = progress.New(nil, progress.Quiet)
	}
	task := progress.Task(nil)
	if len(order) > 0 {
		task = rep.Task("resolve", int64(len(order)), progress.Items)
		defer task.Done()
	}
	var mu sync.Mutex
	results := map[string]*lockfile.Image{}
	var errs []error
	g := new(errgroup.Group) // not WithContext: one failure must not hide the others
	g.SetLimit(jobs)
	for _, k := range order {
		j := jobsByKey[k]
		g.Go(func() error {
			log.Info("resolving", "image", j.ref.String(), "platforms", j.want.String())
			img, err := r.Resolve(ctx, j.ref, j.want, j.index)
			task.Add(1)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				for _, w := range j.wants {
					errs = append(errs, &ImageError{Pos: w.Image.Pos, Group: w.Group.Name, Image: w.Image.Ref.Written, Err: err})
				}
				return nil
			}
			results[k] = img
			return nil
		})
	}
	_ = g.Wait()
	if len(errs) > 0 {
		sort.SliceStable(errs, func(a, b int) bool { return errs[a].(*ImageError).less(errs[b].(*ImageError)) })
		return nil, &multierror.Error{Errors: errs, ErrorFormat: imageErrorsFormat}
	}

	res := &LockResult{Lock: &lockfile.Lock{Version: lockfile.Version}, Removed: plan.Removed}
	for _, sg := range spec.Groups {
		lg := lockfile.Group{Name: sg.Name, Platforms: sg.Platforms.Strings(), Index: sg.Index}
		for _, img := range sg.Images {
			ref := img.Ref.String()
			if e, ok := plan.Reuse[entryKey{sg.Name, ref}]; ok {
				lg.Images = append(lg.Images, *e)
				res.Reused++
				continue
			}
			e := *results[jobKey(img.Ref, sg)]
			e.Ref = ref
			lg.Images = append(lg.Images, e)
			res.Resolved = append(res.Resolved, sg.Name+": "+ref)
		}
		res.Lock.Groups = append(res.Lock.Groups, lg)
	}
	res.Lock.Sort()
	return res, nil
}

func jobKey(ref image.Reference, g *config.Group) string {
	return ref.String() + "|" + g.Platforms.String() + "|" + string(g.Index)
}

// ImageError is the failure of one image of one group.
type ImageError struct {
	Pos   config.Pos
	Group string
	Image string
	Err   error
}

func (e *ImageError) Error() string {
	return fmt.Sprintf("%s: group %q: image %q: %v", e.Pos, e.Group, e.Image, e.Err)
}

func (e *ImageError) Unwrap() []error { return []error{e.Err, ErrResolve} }

func (e *ImageError) less(o *ImageError) bool {
	if e.Pos.File != o.Pos.File {
		return e.Pos.File < o.Pos.File
	}
	return e.Pos.Line < o.Pos.Line
}

func imageErrorsFormat(errs []error) string {
	if len(errs) == 1 {
		return errs[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d images failed:", len(errs))
	for _, e := range errs {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}
