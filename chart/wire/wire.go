// Package wire is the protocol between airgap-bundle (package chart) and
// airgap-bundle-helm, in one place for both sides: one JSON Request on the
// companion's stdin, one JSON Response on its stdout. See
// cmd/airgap-bundle-helm for what each operation does.
package wire

// Protocol is bumped whenever a request or response field changes meaning;
// each side refuses the other's number when it differs.
const Protocol = 1

// Request is one operation: Op is "render", "package" or "version", with
// its arguments in Render or Package.
type Request struct {
	Protocol int      `json:"protocol"`
	Op       string   `json:"op"`
	Render   *Render  `json:"render,omitempty"`
	Package  *Package `json:"package,omitempty"`
}

// Render asks for a chart archive's manifests, as helm template renders them.
type Render struct {
	Chart       string         `json:"chart"`
	ValuesFiles []string       `json:"valuesFiles,omitempty"`
	Set         map[string]any `json:"set,omitempty"`
	ReleaseName string         `json:"releaseName"`
	Namespace   string         `json:"namespace,omitempty"`
	KubeVersion string         `json:"kubeVersion,omitempty"`
	APIVersions []string       `json:"apiVersions,omitempty"`
}

// Package asks for a chart directory packaged reproducibly at Out.
type Package struct {
	Dir string `json:"dir"`
	Out string `json:"out"`
}

// Response carries the request's protocol number and one of its fields.
type Response struct {
	Protocol int       `json:"protocol"`
	Render   *Rendered `json:"render,omitempty"`
	Package  *Packaged `json:"package,omitempty"`
	Version  *Version  `json:"version,omitempty"`
	Error    *Error    `json:"error,omitempty"`
}

// Rendered is a chart's manifests, one per template, sorted by template.
type Rendered struct {
	Name       string     `json:"name"`
	Version    string     `json:"version"`
	AppVersion string     `json:"appVersion,omitempty"`
	Manifests  []Manifest `json:"manifests"`
}

// Manifest is one template's rendered documents.
type Manifest struct {
	Template string `json:"template"`
	Content  string `json:"content"`
}

// Packaged names the chart a Package wrote.
type Packaged struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Version is the companion's Helm SDK and Go versions.
type Version struct {
	Helm   string `json:"helm"`
	Go     string `json:"go"`
	Module string `json:"module,omitempty"`
}

// Error is an operation's failure. Kind is "render" (Helm failed to render
// or validate; Template is set when Helm named one), "dependencies"
// (Chart.yaml names a chart charts/ lacks), "protocol" or "request".
type Error struct {
	Kind     string `json:"kind"`
	Template string `json:"template,omitempty"`
	Message  string `json:"message"`
}

func (e *Error) Error() string { return e.Message }
