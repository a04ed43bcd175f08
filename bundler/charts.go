package bundler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/chart"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// charts.go: a group's Helm charts become images. A chart whose lockfile
// entry still answers the spec (same version constraint, same values and
// render options) brings the images the entry records, without the
// network or Helm; any other chart is fetched, pinned and rendered by
// Lock, and the images of its rendered manifests are found by the same
// finder as manifests = [...].

// ChartSource fetches and renders charts for Lock (see chart.Fetcher and
// chart.Render).
type ChartSource interface {
	Resolve(ctx context.Context, c *config.Chart) (*chart.Pin, error)
	Archive(ctx context.Context, c *config.Chart, l *lockfile.Chart) (string, error)
	Render(ctx context.Context, req chart.RenderRequest) (*chart.Rendered, error)
}

// ChartState is what a spec's chart is against the lockfile.
type ChartState struct {
	Group *config.Group
	Chart *config.Chart
	// Locked is the lockfile's entry; Stale says why it cannot be used as
	// it is ("" when it can).
	Locked *lockfile.Chart
	Stale  string
}

// UseLockedCharts adds to each group of spec the images its charts'
// lockfile entries record, for the charts whose entries answer the spec,
// and returns the state of every chart. Every command that compares a
// spec with its lockfile calls it first (lock may be nil).
func UseLockedCharts(spec *config.Spec, lock *lockfile.Lock) []ChartState {
	var out []ChartState
	for _, g := range spec.Groups {
		var lg *lockfile.Group
		if lock != nil {
			lg = lock.Group(g.Name)
		}
		for _, c := range g.Charts {
			st := ChartState{Group: g, Chart: c}
			if lg != nil {
				st.Locked = lg.Chart(c.Source())
			}
			switch l := st.Locked; {
			case c.Relocked:
				// lock rendered it again this run: its images are in the
				// group already, the entry's are the old ones
			case l == nil:
				st.Stale = "not in the lockfile"
			case l.Constraint != c.Version:
				st.Stale = fmt.Sprintf("version changed from %q to %q", l.Constraint, c.Version)
			case l.Inputs != c.Inputs:
				st.Stale = "values, set or render options changed"
			default:
				addChartImages(g, c, l.Images)
			}
			out = append(out, st)
		}
	}
	return out
}

// addChartImages adds a chart's images to its group (each once), at the
// chart's line of the spec.
func addChartImages(g *config.Group, c *config.Chart, imgs []lockfile.ChartImage) {
	for _, ci := range imgs {
		if slices.ContainsFunc(g.Images, func(i config.Image) bool { return i.Ref.String() == ci.Ref }) {
			continue
		}
		ref, err := image.ParseReference(ci.Ref, "")
		if err != nil {
			continue // lockfile.Parse checked it
		}
		g.Images = append(g.Images, config.Image{Ref: ref, Pos: c.Pos, Chart: c})
	}
}

// chartDrift lists, one line each, the charts whose entries cannot be
// used, and the lockfile's charts the spec no longer has.
func chartDrift(states []ChartState, spec *config.Spec, lock *lockfile.Lock) []string {
	var out []string
	for _, st := range states {
		if st.Stale != "" {
			out = append(out, fmt.Sprintf("%s: group %q: %s: %s", st.Chart.Pos, st.Group.Name, st.Chart.Label(), st.Stale))
		}
	}
	if lock == nil {
		return out
	}
	for _, lg := range lock.Groups {
		sg := spec.Group(lg.Name)
		for _, lc := range lg.Charts {
			if sg == nil || !slices.ContainsFunc(sg.Charts, func(c *config.Chart) bool { return c.Source() == lc.Source }) {
				out = append(out, fmt.Sprintf("%s: chart %s %s: in the lockfile but not in the spec", lg.Name, lc.Source, lc.Version))
			}
		}
	}
	return out
}

// lockCharts pins and renders the charts that need it (all with update)
// and adds their images to their groups. It returns every chart's entry
// by group. All failures are gathered into one error.
func lockCharts(ctx context.Context, spec *config.Spec, states []ChartState, src ChartSource, update func(*config.Chart) bool) (map[string][]lockfile.Chart, error) {
	out := map[string][]lockfile.Chart{}
	var errs []error
	for _, st := range states {
		if st.Stale == "" && !update(st.Chart) {
			out[st.Group.Name] = append(out[st.Group.Name], *st.Locked)
			continue
		}
		if src == nil {
			errs = append(errs, fmt.Errorf("%s: group %q: %s: %s, and this run cannot fetch charts", st.Chart.Pos, st.Group.Name, st.Chart.Label(), st.Stale))
			continue
		}
		// An updated chart may drop images: the ones its old entry
		// brought go, and come back if it still renders them.
		st.Group.Images = slices.DeleteFunc(st.Group.Images, func(i config.Image) bool { return i.Chart == st.Chart })
		e, err := lockChart(ctx, spec, st, src)
		if err != nil {
			// A chart that does not render is the spec's to fix (values);
			// one that cannot be fetched is like an image's registry.
			class := errdefs.ErrRegistry
			var re *chart.RenderError
			if errors.As(err, &re) || errors.Is(err, errdefs.ErrSpec) {
				class = errdefs.ErrSpec
			}
			errs = append(errs, &errdefs.Error{Class: class, Pos: st.Chart.Pos, Msg: fmt.Sprintf("group %q: %v", st.Group.Name, err), Err: err})
			continue
		}
		addChartImages(st.Group, st.Chart, e.Images)
		st.Chart.Relocked = true
		out[st.Group.Name] = append(out[st.Group.Name], *e)
	}
	if err := errdefs.List(errs, "charts failed"); err != nil {
		return nil, err
	}
	return out, nil
}

// lockChart pins one chart and finds its images: rendered again only when
// the chart or its inputs moved.
func lockChart(ctx context.Context, spec *config.Spec, st ChartState, src ChartSource) (*lockfile.Chart, error) {
	c := st.Chart
	pin, err := src.Resolve(ctx, c)
	if err != nil {
		return nil, err
	}
	e := &lockfile.Chart{Source: c.Source(), Name: pin.Name, Constraint: c.Version, Version: pin.Version,
		Digest: pin.Digest, Archive: pin.Archive, Size: pin.Size, URL: pin.URL, Inputs: c.Inputs}
	if l := st.Locked; l != nil && l.Digest == e.Digest && l.Inputs == e.Inputs {
		e.Images = l.Images
		return e, nil
	}
	path, err := src.Archive(ctx, c, e)
	if err != nil {
		return nil, err
	}
	r, err := src.Render(ctx, chart.RenderRequest{Chart: path, ValuesFiles: c.Values, Set: c.Set,
		ReleaseName: c.ReleaseName, Namespace: c.Namespace, KubeVersion: c.KubeVersion, APIVersions: c.APIVersions})
	if err != nil {
		var re *chart.RenderError
		if errors.As(err, &re) {
			where := "" // Helm's message names the template (and line) itself
			if re.Template != "" && !strings.Contains(re.Message, re.Template) {
				where = " template " + re.Template + ":"
			}
			return nil, specError{fmt.Errorf("%s %s does not render:%s %s", c.Label(), e.Version, where, re.Message)}
		}
		return nil, fmt.Errorf("%s %s: %w", c.Label(), e.Version, err)
	}
	var bad []error
	seen := map[lockfile.ChartImage]bool{}
	for _, m := range r.Manifests {
		imgs, err := config.FindImages([]byte(m.Content), m.Template, spec.DefaultRegistry)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		for _, img := range imgs {
			ci := lockfile.ChartImage{Ref: img.Ref.String(), Template: m.Template}
			if !seen[ci] {
				seen[ci] = true
				e.Images = append(e.Images, ci)
			}
		}
	}
	for _, img := range c.ExtraImages {
		e.Images = append(e.Images, lockfile.ChartImage{Ref: img.Ref.String(), Template: lockfile.FromExtraImages})
	}
	if len(bad) > 0 {
		return nil, specError{fmt.Errorf("%s %s: its rendered manifests: %w", c.Label(), e.Version, errors.Join(bad...))}
	}
	if len(e.Images) == 0 {
		return nil, specError{fmt.Errorf("%s %s renders no workload with a container image; list what it pulls in extra-images", c.Label(), e.Version)}
	}
	return e, nil
}

// specError is a chart problem the spec must fix (class errdefs.ErrSpec)
// whose message says it all.
type specError struct{ error }

func (e specError) Is(target error) bool { return target == errdefs.ErrSpec }
func (e specError) Unwrap() error        { return e.error }

// chartNamed reports whether a lock --update argument names a chart of
// the spec: by its name, or by its source as the lockfile records it.
func chartNamed(spec *config.Spec, arg string) bool {
	for _, g := range spec.Groups {
		for _, c := range g.Charts {
			if arg == c.Name || arg == c.Source() {
				return true
			}
		}
	}
	return false
}

// chartUpdater says which charts lock --update resolves again: every one
// with no names given, else those named.
func chartUpdater(spec *config.Spec, opts LockOptions) func(*config.Chart) bool {
	return func(c *config.Chart) bool {
		if !opts.Update {
			return false
		}
		if len(opts.UpdateImages) == 0 {
			return true
		}
		return slices.Contains(opts.UpdateImages, c.Name) || slices.Contains(opts.UpdateImages, c.Source())
	}
}

// ChartFetcher is the ChartSource of a run: chart.Fetcher through registry
// settings of its own, made on first use (a lock whose charts are all
// pinned reads no credentials), and the Helm companion for rendering.
type ChartFetcher struct {
	spec  *config.Spec
	opts  registry.Options
	cache *cache.Cache

	once sync.Once
	env  *registry.Env
	f    *chart.Fetcher
	err  error
}

// NewChartFetcher returns the chart source of a run that keeps charts in c.
func NewChartFetcher(spec *config.Spec, opts registry.Options, c *cache.Cache) *ChartFetcher {
	return &ChartFetcher{spec: spec, opts: opts, cache: c}
}

func (s *ChartFetcher) start() error {
	s.once.Do(func() {
		env, err := registry.New(s.spec, s.opts)
		if err != nil {
			s.err = err
			return
		}
		s.env = env
		policy := s.opts.Policy
		s.f = &chart.Fetcher{Cache: s.cache, Policy: policy, Target: func(host string) (*registry.Target, error) { return env.Target(host, policy) }}
	})
	return s.err
}

// Resolve implements ChartSource.
func (s *ChartFetcher) Resolve(ctx context.Context, c *config.Chart) (*chart.Pin, error) {
	if err := s.start(); err != nil {
		return nil, err
	}
	return s.f.Resolve(ctx, c)
}

// Archive implements ChartSource.
func (s *ChartFetcher) Archive(ctx context.Context, c *config.Chart, l *lockfile.Chart) (string, error) {
	if err := s.start(); err != nil {
		return "", err
	}
	return s.f.Archive(ctx, c, l)
}

// OCI returns an OCI chart's manifest and config (see chart.Fetcher.OCI).
func (s *ChartFetcher) OCI(ctx context.Context, c *config.Chart, l *lockfile.Chart) ([]byte, []byte, error) {
	if err := s.start(); err != nil {
		return nil, nil, err
	}
	return s.f.OCI(ctx, c, l)
}

// Render implements ChartSource.
func (s *ChartFetcher) Render(ctx context.Context, req chart.RenderRequest) (*chart.Rendered, error) {
	return chart.Render(ctx, req)
}

// Close removes the run's registry settings.
func (s *ChartFetcher) Close() error { return s.env.Close() }

// HasCharts reports whether any group of spec has charts.
func HasCharts(spec *config.Spec) bool {
	return slices.ContainsFunc(spec.Groups, func(g *config.Group) bool { return len(g.Charts) > 0 })
}
