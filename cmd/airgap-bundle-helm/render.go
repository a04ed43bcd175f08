package main

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	ci "helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/getter"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
)

// render is `helm template NAME CHART.tgz -n NS -f ... --kube-version ...
// --api-versions ...` done through the same SDK calls, so the documents
// are the ones helm template prints, hooks (tests included) and all;
// CRDs in crds/ are left out, as helm template leaves them out without
// --include-crds.
func render(req *renderRequest) (*renderResponse, error) {
	if req.Chart == "" {
		return nil, errorf("request", "no chart given")
	}
	if err := chartutil.ValidateReleaseName(req.ReleaseName); err != nil {
		return nil, errorf("request", "release name %q: %v", req.ReleaseName, err)
	}
	ns := req.Namespace
	if ns == "" {
		// What helm template uses without -n and without a kubeconfig.
		ns = "default"
	}
	var kubeVersion *common.KubeVersion
	if req.KubeVersion != "" {
		kv, err := common.ParseKubeVersion(req.KubeVersion)
		if err != nil {
			return nil, errorf("request", "invalid kube version %q: %v", req.KubeVersion, err)
		}
		kubeVersion = kv
	}
	vals, err := mergeValues(req)
	if err != nil {
		return nil, err
	}
	ch, err := loadArchive(req.Chart)
	if err != nil {
		return nil, err
	}
	if err := checkInstallable(ch); err != nil {
		return nil, err
	}
	if err := checkDependencies(ch); err != nil {
		return nil, err
	}

	client := action.NewInstall(action.NewConfiguration())
	client.DryRunStrategy = action.DryRunClient
	client.ReleaseName = req.ReleaseName
	client.Namespace = ns
	client.Replace = true
	client.KubeVersion = kubeVersion
	client.APIVersions = common.VersionSet(req.APIVersions)
	rr, err := client.RunWithContext(context.Background(), ch, vals)
	if err != nil {
		return nil, renderError(err)
	}
	var rel *release.Release
	switch r := rr.(type) {
	case *release.Release:
		rel = r
	case release.Release:
		rel = &r
	default:
		return nil, errorf("render", "helm returned a release of type %T", rr)
	}
	return &renderResponse{
		Name:       ch.Metadata.Name,
		Version:    ch.Metadata.Version,
		AppVersion: ch.Metadata.AppVersion,
		Manifests:  manifests(rel),
	}, nil
}

// mergeValues merges the values files and then Set through helm's own -f
// and --set-json code: a JSON object given to --set-json is merged like a
// values file, which is what Set promises (no --set string parsing).
func mergeValues(req *renderRequest) (map[string]any, error) {
	opts := values.Options{ValueFiles: req.ValuesFiles}
	for _, f := range req.ValuesFiles {
		// "-" is stdin to helm, which here is the request, already read.
		if strings.TrimSpace(f) == "-" {
			return nil, errorf("request", `values file "-" (stdin) cannot be read here; give a path`)
		}
	}
	if len(req.Set) > 0 {
		b, err := json.Marshal(req.Set)
		if err != nil {
			return nil, errorf("request", "encoding set values: %v", err)
		}
		opts.JSONValues = []string{string(b)}
	}
	// No getters: a values file is a local path, never a URL to fetch.
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		return nil, errorf("request", "values: %v", err)
	}
	return vals, nil
}

func loadArchive(path string) (*chart.Chart, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, errorf("request", "chart: %v", err)
	}
	if fi.IsDir() {
		return nil, errorf("request", "chart %s is a directory; render takes a packaged chart (.tgz), which package makes from a directory", path)
	}
	ch, err := loader.LoadFile(path)
	if err != nil {
		return nil, errorf("request", "loading chart %s: %v", path, err)
	}
	return ch, nil
}

// checkInstallable refuses what helm template refuses: library charts
// hold only partials for other charts to include.
func checkInstallable(ch *chart.Chart) error {
	switch ch.Metadata.Type {
	case "", "application":
		return nil
	}
	return errorf("request", "chart %s is a %s chart, which is not installable (helm template refuses it too)", ch.Metadata.Name, ch.Metadata.Type)
}

// checkDependencies is helm template's check: every dependency Chart.yaml
// names must be vendored in charts/, since nothing here downloads one.
func checkDependencies(ch ci.Charter) error {
	ac, err := ci.NewAccessor(ch)
	if err != nil {
		return errorf("request", "%v", err)
	}
	reqs := ac.MetaDependencies()
	if len(reqs) == 0 {
		return nil
	}
	if err := action.CheckDependencies(ch, reqs); err != nil {
		return errorf("dependencies", "chart %s: %v; vendor them into the chart with 'helm dependency build' before bundling", ac.Name(), err)
	}
	return nil
}

// manifests turns the release into one Manifest per template: the
// non-hook documents of rel.Manifest, which Helm writes as
// "---\n# Source: TEMPLATE\n<document>\n" each, then the hooks, as helm
// template prints them; documents of one template stay in Helm's order.
func manifests(rel *release.Release) []manifest {
	var order []string
	docs := map[string][]string{}
	add := func(tpl, doc string) {
		doc = strings.TrimRight(doc, "\n")
		if strings.TrimSpace(doc) == "" {
			return
		}
		if _, ok := docs[tpl]; !ok {
			order = append(order, tpl)
		}
		docs[tpl] = append(docs[tpl], doc+"\n")
	}
	// rel.Manifest was joined from documents that SplitManifests itself
	// cut, so splitting it again gives back exactly those documents.
	split := releaseutil.SplitManifests(rel.Manifest)
	keys := make([]string, 0, len(split))
	for k := range split {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	for _, k := range keys {
		first, rest, _ := strings.Cut(split[k], "\n")
		tpl, ok := strings.CutPrefix(first, "# Source: ")
		if !ok {
			continue
		}
		add(tpl, rest)
	}
	for _, h := range rel.Hooks {
		add(h.Path, h.Manifest)
	}
	slices.Sort(order)
	out := make([]manifest, 0, len(order))
	for _, tpl := range order {
		out = append(out, manifest{Template: tpl, Content: strings.Join(docs[tpl], "---\n")})
	}
	return out
}

// Helm names the failing template in several shapes, by where it failed:
//
//	execution error at (web/templates/a.yaml:5:12): ingress.host is required
//	parse error at (web/templates/a.yaml:3): unexpected "}" in operand
//	YAML parse error on web/templates/a.yaml: error converting YAML to JSON: ...
//	web/templates/a.yaml:5:3\n  executing "web/templates/a.yaml" at <...>: ...
var templateInError = []*regexp.Regexp{
	regexp.MustCompile(`(?:execution|parse) error (?:at|in) \(([^()\s]+?)(?::\d+)*\)`),
	regexp.MustCompile(`YAML parse error on ([^\s:]+)`),
	regexp.MustCompile(`(?m)^template: ([^\s:]+):\d+`),
	regexp.MustCompile(`(?m)^([^\s:]+/templates/[^\s:]+):\d+(?::\d+)?$`),
}

func renderError(err error) error {
	msg := err.Error()
	e := &opError{Kind: "render", Message: msg}
	for _, re := range templateInError {
		if m := re.FindStringSubmatch(msg); m != nil {
			e.Template = m[1]
			break
		}
	}
	return e
}
