package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	release "helm.sh/helm/v4/pkg/release/v1"
)

// The rendering itself is tested through package chart, against a built
// binary: in a test binary Helm's default capabilities are its testing
// ones (Kubernetes 1.20), not the ones airgap-bundle-helm renders with.

func TestServeRefuses(t *testing.T) {
	tests := []struct {
		name, in, kind, want string
	}{
		{"not JSON", `render please`, "request", "not JSON"},
		{"another protocol", `{"protocol":2,"op":"render"}`, "protocol", "protocol 2, this airgap-bundle-helm speaks protocol 1"},
		{"no protocol", `{"op":"version"}`, "protocol", "protocol 0"},
		{"unknown op", `{"protocol":1,"op":"install"}`, "request", `unknown op "install"`},
		{"render without its request", `{"protocol":1,"op":"render"}`, "request", `without "render"`},
		{"package without its request", `{"protocol":1,"op":"package"}`, "request", `without "package"`},
		{"no chart", `{"protocol":1,"op":"render","render":{"releaseName":"r"}}`, "request", "no chart"},
		{"stdin as a values file", `{"protocol":1,"op":"render","render":{"chart":"x.tgz","releaseName":"r","valuesFiles":["-"]}}`, "request", "stdin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := serve(strings.NewReader(tc.in))
			if resp.Protocol != protocol {
				t.Errorf("answered with protocol %d", resp.Protocol)
			}
			if resp.Error == nil {
				t.Fatalf("no error: %+v", resp)
			}
			if resp.Error.Kind != tc.kind || !strings.Contains(resp.Error.Message, tc.want) {
				t.Errorf("error %+v, want kind %q saying %q", resp.Error, tc.kind, tc.want)
			}
			if resp.Render != nil || resp.Package != nil || resp.Version != nil {
				t.Errorf("an error and an answer: %+v", resp)
			}
		})
	}
}

func TestServeVersion(t *testing.T) {
	resp := serve(strings.NewReader(`{"protocol":1,"op":"version"}`))
	if resp.Error != nil || resp.Version == nil || resp.Version.Go == "" {
		t.Fatalf("version answered %+v %+v", resp.Version, resp.Error)
	}
}

// Helm's messages as its engine, its manifest sorter and text/template
// word them; the template is taken from each.
func TestRenderErrorTemplate(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"execution error at (webapp/templates/ingress.yaml:7:15): ingress.host is required", "webapp/templates/ingress.yaml"},
		{"execution error in (webapp/templates/x.yaml): boom", "webapp/templates/x.yaml"},
		{`parse error at (webapp/templates/x.yaml:3): unexpected "}" in operand`, "webapp/templates/x.yaml"},
		{"parse error in (webapp/charts/cache/templates/s.yaml): bad", "webapp/charts/cache/templates/s.yaml"},
		{"YAML parse error on webapp/templates/cm.yaml: error converting YAML to JSON: yaml: line 3: mapping values are not allowed in this context", "webapp/templates/cm.yaml"},
		{"webapp/templates/d.yaml:12:20\n  executing \"webapp/templates/d.yaml\" at <.Values.x.y>:\n    nil pointer evaluating interface {}.y", "webapp/templates/d.yaml"},
		{"template: webapp/templates/d.yaml:4:3: executing \"webapp/templates/d.yaml\" at <include>: error calling include", "webapp/templates/d.yaml"},
		{"chart requires kubeVersion: >=1.25.0-0 which is incompatible with Kubernetes v1.24.0", ""},
		{"values don't meet the specifications of the schema(s) in the following chart(s):\nwebapp:\n- at '/replicas': got string, want integer", ""},
	}
	for _, tc := range tests {
		err := renderError(errors.New(tc.msg))
		var oe *opError
		if !errors.As(err, &oe) || oe.Kind != "render" {
			t.Fatalf("%q: %#v", tc.msg, err)
		}
		if oe.Template != tc.want || oe.Message != tc.msg {
			t.Errorf("%q: template %q message %q, want %q and the message whole", tc.msg, oe.Template, oe.Message, tc.want)
		}
	}
}

func TestManifests(t *testing.T) {
	doc := func(tpl, body string) string { return fmt.Sprintf("---\n# Source: %s\n%s\n", tpl, body) }
	rel := &release.Release{
		// As Helm writes it: sorted by kind, so one template's documents
		// need not be together.
		Manifest: doc("c/templates/svc.yaml", "kind: Service\nmetadata:\n  name: a\n") +
			doc("c/templates/deploy.yaml", "kind: Service\nmetadata:\n  name: b") +
			doc("c/templates/deploy.yaml", "kind: Deployment\nspec:\n  script: |\n    --- indented, so not a separator\n") +
			doc("c/charts/s/templates/a.yaml", "kind: ConfigMap"),
		Hooks: []*release.Hook{
			{Path: "c/templates/deploy.yaml", Manifest: "kind: Job\n"},
			{Path: "c/templates/tests/t.yaml", Manifest: "kind: Pod"},
		},
	}
	got := manifests(rel)
	var tpls []string
	for _, m := range got {
		tpls = append(tpls, m.Template)
	}
	want := []string{"c/charts/s/templates/a.yaml", "c/templates/deploy.yaml", "c/templates/svc.yaml", "c/templates/tests/t.yaml"}
	if strings.Join(tpls, " ") != strings.Join(want, " ") {
		t.Fatalf("templates %q, want %q", tpls, want)
	}
	deploy := got[1].Content
	if !strings.HasPrefix(deploy, "kind: Service\nmetadata:\n  name: b\n---\nkind: Deployment\n") || !strings.HasSuffix(deploy, "---\nkind: Job\n") {
		t.Errorf("deploy.yaml's stream:\n%s", deploy)
	}
	if strings.Contains(deploy, "# Source") {
		t.Errorf("the Source comment is left in:\n%s", deploy)
	}
	if got[3].Content != "kind: Pod\n" {
		t.Errorf("the test hook: %q", got[3].Content)
	}
}
