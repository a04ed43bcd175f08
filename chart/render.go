// Package chart holds airgap-bundle's Helm chart support that needs no
// Helm code: rendering and packaging are done by the companion program
// airgap-bundle-helm, which this package finds and runs (Render, Package),
// so the Helm SDK, three times the size of the rest of airgap-bundle, is
// only on the machines that bundle charts.
package chart

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// RenderRequest says what `helm template` would be told: the chart, the
// values and the cluster to render for.
type RenderRequest struct {
	// Chart is the path of a packaged chart (.tgz), subcharts vendored in
	// it; see Package for a chart directory.
	Chart string
	// ValuesFiles are merged in order, like helm template -f a -f b.
	ValuesFiles []string
	// Set is merged last, over the files, like one more values file:
	// nested maps merge key by key, and nothing is parsed the way --set
	// parses its strings.
	Set         map[string]any
	ReleaseName string
	// Namespace is .Release.Namespace; "" is "default", as helm template
	// has it without -n and without a kubeconfig.
	Namespace string
	// KubeVersion is .Capabilities.KubeVersion ("1.30.2", "v1.30.2");
	// "" is the default of the Helm SDK airgap-bundle-helm is built with.
	KubeVersion string
	// APIVersions are added to Helm's default .Capabilities.APIVersions
	// ("monitoring.coreos.com/v1", or "GROUP/VERSION/KIND").
	APIVersions []string
}

// Rendered is a chart's rendered manifests.
type Rendered struct {
	Name, Version, AppVersion string // from the chart's Chart.yaml
	// Manifests are sorted by Template, one for each template that
	// rendered to at least one document.
	Manifests []Manifest
}

// Manifest is what one template rendered to.
type Manifest struct {
	// Template is the template's name as Helm gives it: the chart's name,
	// then the path in it ("webapp/templates/deployment.yaml",
	// "webapp/charts/cache/templates/statefulset.yaml").
	Template string
	// Content is a YAML stream of the template's documents, in the order
	// helm template prints them, separated by "---" lines; empty
	// documents are left out. Hooks are included: helm template prints
	// them, and installing the chart runs their images. NOTES.txt and
	// partials (_*.tpl) are not manifests and are left out.
	Content string
}

// RenderError is Helm failing to render the chart: a template's error
// (a required value missing, a failing fail), a template that is not
// valid YAML, values the chart's schema refuses, a cluster version the
// chart does not support.
type RenderError struct {
	// Template is the template Helm named, "" when it named none.
	Template string
	// Message is Helm's message; it names the template again, with the
	// line and column, when Helm gives them.
	Message string
}

func (e *RenderError) Error() string {
	if e.Template != "" && !strings.Contains(e.Message, e.Template) {
		return fmt.Sprintf("rendering %s: %s", e.Template, e.Message)
	}
	return "rendering: " + e.Message
}

// Render renders a packaged chart as helm template would, by running
// airgap-bundle-helm, offline: lookup finds nothing, and the cluster's
// version and APIs are the request's. Helm failing to render is a
// *RenderError; airgap-bundle-helm not being found is ErrNoPlugin.
// Cancelling ctx kills airgap-bundle-helm.
func Render(ctx context.Context, req RenderRequest) (*Rendered, error) {
	if req.Chart == "" {
		return nil, errors.New("render: no chart given")
	}
	if req.ReleaseName == "" {
		return nil, errors.New("render: no release name given")
	}
	wire := &wireRender{
		Set:         req.Set,
		ReleaseName: req.ReleaseName,
		Namespace:   req.Namespace,
		KubeVersion: req.KubeVersion,
		APIVersions: req.APIVersions,
	}
	// Absolute, so what the child reads does not hang on its working
	// directory, and "-" is a file named "-", not helm's stdin.
	var err error
	if wire.Chart, err = filepath.Abs(req.Chart); err != nil {
		return nil, err
	}
	for _, f := range req.ValuesFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		wire.ValuesFiles = append(wire.ValuesFiles, abs)
	}
	resp, err := call(ctx, &wireRequest{Op: "render", Render: wire})
	if err != nil {
		return nil, err
	}
	if resp.Render == nil {
		return nil, errors.New(`airgap-bundle-helm answered the render with no "render"`)
	}
	out := &Rendered{
		Name:       resp.Render.Name,
		Version:    resp.Render.Version,
		AppVersion: resp.Render.AppVersion,
		Manifests:  make([]Manifest, 0, len(resp.Render.Manifests)),
	}
	for _, m := range resp.Render.Manifests {
		out.Manifests = append(out.Manifests, Manifest{Template: m.Template, Content: m.Content})
	}
	// The order is this package's promise, whatever built the companion.
	slices.SortStableFunc(out.Manifests, func(a, b Manifest) int { return strings.Compare(a.Template, b.Template) })
	return out, nil
}
