package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// chartsDir is the repository's test charts, which others' end-to-end
// tests use too.
var chartsDir = filepath.Join("..", "testdata", "charts")

// companion is the airgap-bundle-helm TestMain built into testDir, which
// it removes after the tests.
var companion, testDir string

// fakeModeEnv makes this test binary play a broken or slow companion; see
// fakePlugin.
const fakeModeEnv = "CHART_TEST_FAKE_PLUGIN"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeModeEnv); mode != "" {
		fakePlugin(mode)
		return
	}
	if os.Getenv(helperEnv) != "" {
		os.Exit(m.Run())
	}
	var err error
	testDir, err = os.MkdirTemp("", "chart-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(testDir)
		companion = filepath.Join(testDir, exeName())
		gobin := filepath.Join(runtimeGOROOT(), "bin", "go")
		build := exec.Command(gobin, "build", "-o", companion, "github.com/airgap-bundle/airgap-bundle/cmd/airgap-bundle-helm")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building airgap-bundle-helm: %v\n%s", err, out)
			return 1
		}
		os.Setenv(pluginEnv, companion)
		return m.Run()
	}()
	os.Exit(code)
}

func runtimeGOROOT() string {
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return os.Getenv("GOROOT")
}

// fakePlugin is the companion gone wrong, for what the real one never
// does: hang, crash, speak another protocol.
func fakePlugin(mode string) {
	io.Copy(io.Discard, os.Stdin)
	switch mode {
	case "hang":
		// Its pid, for the test to see it killed; then it waits to be.
		os.WriteFile(os.Getenv("CHART_TEST_PIDFILE"), fmt.Appendf(nil, "%d", os.Getpid()), 0o644)
		time.Sleep(90 * time.Second)
		os.Exit(0)
	case "protocol":
		fmt.Println(`{"protocol":99,"error":{"kind":"protocol","message":"the request speaks protocol 1, this airgap-bundle-helm speaks protocol 99"}}`)
		os.Exit(0)
	case "crash":
		fmt.Fprintln(os.Stderr, "panic: the companion fell over")
		os.Exit(2)
	case "chatty":
		// More stderr than is kept, then a good answer: the stderr must
		// neither block it nor be kept whole.
		os.Stderr.Write(bytes.Repeat([]byte("warning: noise\n"), 20000))
		fmt.Println(`{"protocol":1,"package":{"name":"x","version":"1.0.0"}}`)
		os.Exit(0)
	}
	os.Exit(3)
}

// useFake makes Render and Package run this test binary as a fake
// companion in mode.
func useFake(t *testing.T, mode string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(pluginEnv, exe)
	t.Setenv(fakeModeEnv, mode)
}

// packagedOnce maps a chart's name to the func packaging it once, into
// testDir.
var packagedOnce sync.Map

// packaged is the test chart name packaged once for all tests.
func packaged(t *testing.T, name string) string {
	t.Helper()
	f, _ := packagedOnce.LoadOrStore(name, sync.OnceValues(func() (string, error) {
		out := filepath.Join(testDir, name+".tgz")
		_, _, err := Package(context.Background(), filepath.Join(chartsDir, name), out)
		return out, err
	}))
	out, err := f.(func() (string, error))()
	if err != nil {
		t.Fatalf("packaging %s: %v", name, err)
	}
	return out
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func readTgz(t *testing.T, path string) (*gzip.Header, []tarEntry) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []tarEntry
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, b})
	}
	return &zr.Header, out
}

func names(es []tarEntry) []string {
	var n []string
	for _, e := range es {
		n = append(n, e.hdr.Name)
	}
	return n
}

func TestPackageReproducible(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	src := filepath.Join(chartsDir, "webapp")
	a, b := filepath.Join(tmp, "a.tgz"), filepath.Join(tmp, "b.tgz")
	name, version, err := Package(ctx, src, a)
	if err != nil {
		t.Fatal(err)
	}
	if name != "webapp" || version != "1.2.0" {
		t.Errorf("Package = %q %q, want webapp 1.2.0", name, version)
	}
	if _, _, err := Package(ctx, src, b); err != nil {
		t.Fatal(err)
	}
	want := sha(t, a)
	if got := sha(t, b); got != want {
		t.Fatalf("two packagings of one directory differ: %s, %s", want, got)
	}

	// Elsewhere, with other mtimes: the same bytes.
	cp := filepath.Join(tmp, "copy", "webapp")
	copyDir(t, src, cp)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	filepath.WalkDir(cp, func(p string, _ fs.DirEntry, _ error) error { return os.Chtimes(p, old, old) })
	c := filepath.Join(tmp, "c.tgz")
	if _, _, err := Package(ctx, cp, c); err != nil {
		t.Fatal(err)
	}
	if got := sha(t, c); got != want {
		t.Errorf("a copy with other mtimes packages to %s, the original to %s", got, want)
	}

	// A file .helmignore leaves out changes nothing.
	if err := os.WriteFile(filepath.Join(cp, "values.yaml.orig"), []byte("image: {tag: changed}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Package(ctx, cp, c); err != nil {
		t.Fatal(err)
	}
	if got := sha(t, c); got != want {
		t.Errorf("changing an ignored file changed the archive: %s, was %s", got, want)
	}

	// A file of the chart changes the bytes, and the new file is the one
	// inside.
	for _, f := range []string{"templates/configmap.yaml", "charts/cache/values.yaml"} {
		p := filepath.Join(cp, f)
		orig, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		changed := append(slices.Clone(orig), []byte("# changed\n")...)
		if err := os.WriteFile(p, changed, 0o644); err != nil {
			t.Fatal(err)
		}
		d := filepath.Join(tmp, "d.tgz")
		if _, _, err := Package(ctx, cp, d); err != nil {
			t.Fatal(err)
		}
		if got := sha(t, d); got == want {
			t.Errorf("changing %s left the archive as it was", f)
		}
		_, es := readTgz(t, d)
		i := slices.IndexFunc(es, func(e tarEntry) bool { return e.hdr.Name == "webapp/"+f })
		if i < 0 || !bytes.Equal(es[i].data, changed) {
			t.Errorf("the archive does not hold the changed %s", f)
		}
		if err := os.WriteFile(p, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPackageForm(t *testing.T) {
	gz, es := readTgz(t, packaged(t, "webapp"))
	if gz.Name != "" || !gz.ModTime.IsZero() || gz.Comment != "" || len(gz.Extra) != 0 {
		t.Errorf("gzip header has name %q, mtime %v, comment %q, extra %q; want none", gz.Name, gz.ModTime, gz.Comment, gz.Extra)
	}
	got := names(es)
	want := []string{
		"webapp/.helmignore",
		"webapp/Chart.yaml",
		"webapp/charts/cache/Chart.yaml",
		"webapp/charts/cache/templates/statefulset.yaml",
		"webapp/charts/cache/values.yaml",
		"webapp/templates/NOTES.txt",
		"webapp/templates/_helpers.tpl",
		"webapp/templates/configmap.yaml",
		"webapp/templates/cronjob.yaml",
		"webapp/templates/deployment.yaml",
		"webapp/templates/hooks/db-init.yaml",
		"webapp/templates/ingress.yaml",
		"webapp/templates/tests/test-connection.yaml",
		"webapp/values.yaml",
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries:\n%s\nwant (sorted, values.yaml.orig and scratch/ ignored):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	epoch := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, e := range es {
		h := e.hdr
		if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || !h.ModTime.Equal(epoch) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: type %q mode %o mtime %v owner %d:%d %q:%q; want a file, 0644, %v, 0:0, no names",
				h.Name, h.Typeflag, h.Mode, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname, epoch)
		}
		if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || len(h.PAXRecords) != 0 {
			t.Errorf("%s: atime %v ctime %v pax %v; want none", h.Name, h.AccessTime, h.ChangeTime, h.PAXRecords)
		}
	}
	// The templates are the directory's bytes (Chart.yaml is helm's own
	// rewrite, as helm package has it).
	i := slices.IndexFunc(es, func(e tarEntry) bool { return e.hdr.Name == "webapp/templates/deployment.yaml" })
	src, err := os.ReadFile(filepath.Join(chartsDir, "webapp", "templates", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(es[i].data, src) {
		t.Error("deployment.yaml in the archive is not the directory's")
	}
}

// A subchart vendored as a .tgz goes into the archive as helm package puts
// it: expanded under charts/NAME/, so the result is the same files as with
// the subchart vendored as a directory.
func TestPackageSubchartArchive(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	cp := filepath.Join(tmp, "webapp")
	copyDir(t, filepath.Join(chartsDir, "webapp"), cp)
	if _, _, err := Package(ctx, filepath.Join(cp, "charts", "cache"), filepath.Join(cp, "charts", "cache-0.1.0.tgz")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(cp, "charts", "cache")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "webapp.tgz")
	if _, _, err := Package(ctx, cp, out); err != nil {
		t.Fatal(err)
	}
	_, fromTgz := readTgz(t, out)
	_, fromDir := readTgz(t, packaged(t, "webapp"))
	if !slices.Equal(names(fromTgz), names(fromDir)) {
		t.Errorf("with cache vendored as a .tgz:\n%s\nas a directory:\n%s", strings.Join(names(fromTgz), "\n"), strings.Join(names(fromDir), "\n"))
	}
	r, err := Render(ctx, RenderRequest{Chart: out, ReleaseName: "r", Set: map[string]any{"ingress": map[string]any{"host": "h.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := imagesOf(t, r)["webapp/charts/cache/templates/statefulset.yaml"]; !slices.Equal(got, []string{"registry.example/acme/cache:7.2.4"}) {
		t.Errorf("the .tgz subchart renders %q", got)
	}
}

func TestPackageMissingDependency(t *testing.T) {
	tmp := t.TempDir()
	cp := filepath.Join(tmp, "webapp")
	copyDir(t, filepath.Join(chartsDir, "webapp"), cp)
	if err := os.RemoveAll(filepath.Join(cp, "charts")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "webapp.tgz")
	_, _, err := Package(context.Background(), cp, out)
	if err == nil {
		t.Fatal("packaging a chart whose dependency is not vendored succeeded")
	}
	for _, want := range []string{"cache", "helm dependency build"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed packaging left %s (%v)", out, err)
	}
}

// imagesOf is every image: value in each manifest, read as YAML.
func imagesOf(t *testing.T, r *Rendered) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range r.Manifests {
		dec := yaml.NewDecoder(strings.NewReader(m.Content))
		var imgs []string
		for {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s is not YAML: %v\n%s", m.Template, err, m.Content)
			}
			imgs = append(imgs, findImages(&doc)...)
		}
		slices.Sort(imgs)
		out[m.Template] = imgs
	}
	return out
}

func findImages(n *yaml.Node) []string {
	var out []string
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "image" && v.Kind == yaml.ScalarNode {
				out = append(out, v.Value)
			}
		}
	}
	for _, c := range n.Content {
		out = append(out, findImages(c)...)
	}
	return out
}

func writeValues(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRender(t *testing.T) {
	prod := filepath.Join(chartsDir, "values-prod.yaml")
	host := map[string]any{"ingress": map[string]any{"host": "webapp.example"}}
	// What webapp renders with its defaults (and the required host).
	webappDefault := map[string][]string{
		"webapp/charts/cache/templates/statefulset.yaml": {"registry.example/acme/cache:7.2.4"},
		"webapp/templates/configmap.yaml":                nil,
		"webapp/templates/cronjob.yaml":                  {"registry.example/tools/cleaner:3.1.0"},
		"webapp/templates/deployment.yaml":               {"registry.example/acme/webapp-migrate:1.2.0", "registry.example/acme/webapp:1.2.0"},
		"webapp/templates/hooks/db-init.yaml":            {"registry.example/acme/webapp-dbinit:1.2.0"},
		"webapp/templates/ingress.yaml":                  nil,
		"webapp/templates/tests/test-connection.yaml":    {"registry.example/tools/curl:8.5.0"},
	}
	with := func(base map[string][]string, changes map[string][]string) map[string][]string {
		out := map[string][]string{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(out, k)
				continue
			}
			out[k] = v
		}
		return out
	}
	operatorDeployment := "operator/templates/deployment.yaml"
	tests := []struct {
		name     string
		chart    string
		req      RenderRequest
		want     map[string][]string
		contains map[string]string // template -> a string its content has
	}{
		{
			name:  "webapp defaults",
			chart: "webapp",
			req:   RenderRequest{Set: host},
			want:  webappDefault,
		},
		{
			name:  "webapp values-prod.yaml",
			chart: "webapp",
			req:   RenderRequest{ValuesFiles: []string{prod}},
			want: with(webappDefault, map[string][]string{
				"webapp/templates/deployment.yaml":               {"registry.example/acme/webapp-migrate:1.2.0", "registry.example/acme/webapp:1.2.1"},
				"webapp/charts/cache/templates/statefulset.yaml": {"registry.example/acme/cache:7.4.0"},
			}),
			contains: map[string]string{"webapp/templates/ingress.yaml": "host: webapp.prod.example"},
		},
		{
			name:  "set over the files, merged key by key",
			chart: "webapp",
			req: RenderRequest{
				ValuesFiles: []string{prod},
				Set:         map[string]any{"image": map[string]any{"tag": "1.2.2"}, "cleaner": map[string]any{"image": "registry.example/tools/cleaner:3.2.0"}},
			},
			want: with(webappDefault, map[string][]string{
				"webapp/templates/deployment.yaml":               {"registry.example/acme/webapp-migrate:1.2.0", "registry.example/acme/webapp:1.2.2"},
				"webapp/templates/cronjob.yaml":                  {"registry.example/tools/cleaner:3.2.0"},
				"webapp/charts/cache/templates/statefulset.yaml": {"registry.example/acme/cache:7.4.0"},
			}),
		},
		{
			name:  "later files win",
			chart: "webapp",
			req: RenderRequest{ValuesFiles: []string{
				prod,
				writeValues(t, "image:\n  registry: mirror.example\ncache:\n  image:\n    repository: mirror.example/cache\n"),
			}},
			want: with(webappDefault, map[string][]string{
				"webapp/templates/deployment.yaml":               {"mirror.example/acme/webapp:1.2.1", "registry.example/acme/webapp-migrate:1.2.0"},
				"webapp/charts/cache/templates/statefulset.yaml": {"mirror.example/cache:7.4.0"},
			}),
		},
		{
			name:  "subchart disabled by its condition",
			chart: "webapp",
			req:   RenderRequest{Set: map[string]any{"ingress": map[string]any{"host": "h.example"}, "cache": map[string]any{"enabled": false}}},
			want:  with(webappDefault, map[string][]string{"webapp/charts/cache/templates/statefulset.yaml": nil}),
		},
		{
			name:     "operator defaults",
			chart:    "operator",
			req:      RenderRequest{Namespace: "ops"},
			want:     map[string][]string{operatorDeployment: {"registry.example/acme/log-shipper:1.4.0", "registry.example/acme/operator:2.5.1"}},
			contains: map[string]string{operatorDeployment: "--namespace=ops"},
		},
		{
			name:  "operator before Kubernetes 1.29",
			chart: "operator",
			req:   RenderRequest{KubeVersion: "1.28.4"},
			want:  map[string][]string{operatorDeployment: {"registry.example/acme/log-shipper:1.3.9", "registry.example/acme/operator:2.5.1"}},
			// Without -n, helm template's namespace.
			contains: map[string]string{operatorDeployment: "--namespace=default"},
		},
		{
			name:  "operator where monitoring.coreos.com/v1 is served",
			chart: "operator",
			req:   RenderRequest{KubeVersion: "v1.31.0", APIVersions: []string{"monitoring.coreos.com/v1"}},
			want: map[string][]string{
				operatorDeployment:                   {"registry.example/acme/log-shipper:1.4.0", "registry.example/acme/operator:2.5.1"},
				"operator/templates/monitoring.yaml": {"registry.example/prometheus/prometheus:v2.53.0"},
			},
			contains: map[string]string{"operator/templates/monitoring.yaml": "kind: ServiceMonitor"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Chart = packaged(t, tc.chart)
			req.ReleaseName = "rel"
			r, err := Render(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			got := imagesOf(t, r)
			for tpl, want := range tc.want {
				g, ok := got[tpl]
				if !ok {
					t.Errorf("%s did not render", tpl)
					continue
				}
				if !slices.Equal(g, want) {
					t.Errorf("%s: images %q, want %q", tpl, g, want)
				}
			}
			for tpl := range got {
				if _, ok := tc.want[tpl]; !ok {
					t.Errorf("%s rendered, unexpected", tpl)
				}
			}
			for tpl, s := range tc.contains {
				i := slices.IndexFunc(r.Manifests, func(m Manifest) bool { return m.Template == tpl })
				if i < 0 || !strings.Contains(r.Manifests[i].Content, s) {
					t.Errorf("%s does not have %q", tpl, s)
				}
			}
			if !slices.IsSortedFunc(r.Manifests, func(a, b Manifest) int { return strings.Compare(a.Template, b.Template) }) {
				t.Error("manifests are not sorted by template")
			}
			wantVersion := map[string][3]string{"webapp": {"webapp", "1.2.0", "1.2.0"}, "operator": {"operator", "0.3.0", "2.5.1"}}[tc.chart]
			if got := [3]string{r.Name, r.Version, r.AppVersion}; got != wantVersion {
				t.Errorf("chart %q, want %q", got, wantVersion)
			}
		})
	}
}

// The documents of one template are one Manifest, in one YAML stream.
func TestRenderMultiDocument(t *testing.T) {
	r, err := Render(context.Background(), RenderRequest{
		Chart: packaged(t, "webapp"), ReleaseName: "rel",
		Set: map[string]any{"ingress": map[string]any{"host": "h.example"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(r.Manifests, func(m Manifest) bool { return m.Template == "webapp/templates/deployment.yaml" })
	if i < 0 {
		t.Fatal("no deployment.yaml")
	}
	var kinds []string
	dec := yaml.NewDecoder(strings.NewReader(r.Manifests[i].Content))
	for {
		var doc struct{ Kind string }
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, doc.Kind)
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"Deployment", "Service"}) {
		t.Errorf("deployment.yaml's documents are %q", kinds)
	}
}

func TestRenderErrors(t *testing.T) {
	webapp := packaged(t, "webapp")
	host := map[string]any{"ingress": map[string]any{"host": "h.example"}}
	tests := []struct {
		name         string
		req          RenderRequest
		wantTemplate string   // "" for an error that is not a *RenderError
		wantIn       []string // in the message
	}{
		{
			name:         "required value missing",
			req:          RenderRequest{Chart: webapp},
			wantTemplate: "webapp/templates/ingress.yaml",
			wantIn:       []string{"ingress.host is required", "ingress.yaml:"},
		},
		{
			name:         "required value blanked by a later file",
			req:          RenderRequest{Chart: webapp, ValuesFiles: []string{filepath.Join(chartsDir, "values-prod.yaml"), writeValues(t, "ingress:\n  host: \"\"\n")}},
			wantTemplate: "webapp/templates/ingress.yaml",
			wantIn:       []string{"ingress.host is required"},
		},
		{
			name:   "malformed kube version",
			req:    RenderRequest{Chart: webapp, Set: host, KubeVersion: "one.thirty"},
			wantIn: []string{"kube version", "one.thirty"},
		},
		{
			name:   "missing values file",
			req:    RenderRequest{Chart: webapp, ValuesFiles: []string{"/nonexistent/values.yaml"}},
			wantIn: []string{"/nonexistent/values.yaml"},
		},
		{
			name:   "chart directory instead of an archive",
			req:    RenderRequest{Chart: filepath.Join(chartsDir, "webapp"), Set: host},
			wantIn: []string{"directory", ".tgz"},
		},
		{
			name:   "invalid release name",
			req:    RenderRequest{Chart: webapp, Set: host, ReleaseName: "Not_A_Name"},
			wantIn: []string{"Not_A_Name"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			if req.ReleaseName == "" {
				req.ReleaseName = "rel"
			}
			r, err := Render(context.Background(), req)
			if err == nil {
				t.Fatalf("rendered %d manifests, want an error", len(r.Manifests))
			}
			var re *RenderError
			isRE := errors.As(err, &re)
			if tc.wantTemplate != "" {
				if !isRE {
					t.Fatalf("error %q (%T) is not a *RenderError", err, err)
				}
				if re.Template != tc.wantTemplate {
					t.Errorf("template %q, want %q", re.Template, tc.wantTemplate)
				}
			} else if isRE {
				t.Errorf("error %q is a *RenderError; want another error", err)
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if errors.Is(err, ErrNoPlugin) {
				t.Errorf("error %q is ErrNoPlugin", err)
			}
		})
	}
}

// The chart says which Kubernetes it runs on: Helm refuses the others.
func TestRenderChartKubeVersion(t *testing.T) {
	_, err := Render(context.Background(), RenderRequest{Chart: packaged(t, "operator"), ReleaseName: "rel", KubeVersion: "1.24.0"})
	var re *RenderError
	if !errors.As(err, &re) || !strings.Contains(re.Message, ">=1.25.0-0") {
		t.Fatalf("error %v, want a *RenderError naming the chart's kubeVersion", err)
	}
}

// An archive whose Chart.yaml names a dependency its charts/ lacks, as a
// chart repository might serve one: render says to vendor it.
func TestRenderMissingDependency(t *testing.T) {
	_, es := readTgz(t, packaged(t, "webapp"))
	out := filepath.Join(t.TempDir(), "webapp-nodeps.tgz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range es {
		if strings.HasPrefix(e.hdr.Name, "webapp/charts/") {
			continue
		}
		if err := tw.WriteHeader(e.hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Render(context.Background(), RenderRequest{Chart: out, ReleaseName: "rel", Set: map[string]any{"ingress": map[string]any{"host": "h.example"}}})
	if err == nil {
		t.Fatal("rendered a chart with a missing dependency")
	}
	var re *RenderError
	if errors.As(err, &re) {
		t.Errorf("error %q is a *RenderError", err)
	}
	for _, s := range []string{"cache", "missing", "helm dependency build"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func TestNoPlugin(t *testing.T) {
	hints := []string{
		"go install github.com/airgap-bundle/airgap-bundle/cmd/airgap-bundle-helm@",
		"beside airgap-bundle",
		"AIRGAP_BUNDLE_HELM=/path",
	}
	check := func(t *testing.T, err error, more ...string) {
		t.Helper()
		if !errors.Is(err, ErrNoPlugin) {
			t.Fatalf("error %v is not ErrNoPlugin", err)
		}
		for _, s := range append(hints, more...) {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %q", err, s)
			}
		}
	}
	t.Run("env names nothing", func(t *testing.T) {
		t.Setenv(pluginEnv, "/nonexistent/airgap-bundle-helm")
		_, err := Render(context.Background(), RenderRequest{Chart: "x.tgz", ReleaseName: "r"})
		check(t, err, "/nonexistent/airgap-bundle-helm")
		_, _, err = Package(context.Background(), ".", "x.tgz")
		check(t, err)
	})
	t.Run("env names a file that is not executable", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "airgap-bundle-helm")
		os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644)
		t.Setenv(pluginEnv, p)
		_, err := Render(context.Background(), RenderRequest{Chart: "x.tgz", ReleaseName: "r"})
		check(t, err, "not executable")
	})
	t.Run("nowhere", func(t *testing.T) {
		t.Setenv(pluginEnv, "")
		t.Setenv("PATH", t.TempDir())
		_, err := Render(context.Background(), RenderRequest{Chart: "x.tgz", ReleaseName: "r"})
		check(t, err, "$PATH")
	})
	t.Run("on PATH", func(t *testing.T) {
		t.Setenv(pluginEnv, "")
		t.Setenv("PATH", filepath.Dir(companion))
		if _, err := pluginVersion(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// helperEnv runs this test binary, copied beside a companion, to see the
// companion found there with neither $AIRGAP_BUNDLE_HELM nor $PATH.
const helperEnv = "CHART_TEST_DISCOVERY_HELPER"

func TestDiscoveryHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("run by TestBesideExecutable")
	}
	p, err := findPlugin()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("found=%s\n", p)
}

func TestBesideExecutable(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for src, dst := range map[string]string{exe: "airgap-bundle", companion: exeName()} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(filepath.Join(dir, "airgap-bundle"), "-test.run=^TestDiscoveryHelper$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1", pluginEnv+"=", "PATH="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := "found=" + filepath.Join(dir, exeName()); !strings.Contains(string(out), want) {
		t.Errorf("the helper says\n%s\nwant %s", out, want)
	}
}

func TestPluginVersion(t *testing.T) {
	v, err := pluginVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "v4.") {
		t.Errorf("Helm SDK %q, want v4.x", v)
	}
}

func TestProtocolMismatch(t *testing.T) {
	useFake(t, "protocol")
	_, err := Render(context.Background(), RenderRequest{Chart: "x.tgz", ReleaseName: "r"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"protocol 99", "protocol 1", "go install"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func TestPluginCrash(t *testing.T) {
	useFake(t, "crash")
	_, _, err := Package(context.Background(), ".", "x.tgz")
	if err == nil || !strings.Contains(err.Error(), "the companion fell over") || !strings.Contains(err.Error(), "exit status 2") {
		t.Errorf("error %v, want the exit status and the companion's stderr", err)
	}
}

func TestPluginStderrKept(t *testing.T) {
	useFake(t, "chatty")
	name, _, err := Package(context.Background(), ".", "x.tgz")
	if err != nil || name != "x" {
		t.Errorf("Package = %q, %v; want the answer despite the stderr", name, err)
	}
	b := &headBuffer{max: 10}
	b.Write([]byte("0123456"))
	b.Write([]byte("789abc"))
	if got := b.text(); !strings.Contains(got, "0123456789\n[stderr cut at 10 bytes]") {
		t.Errorf("stderr kept as %q", got)
	}
}

func TestPluginStdoutCap(t *testing.T) {
	old := maxPluginStdout
	maxPluginStdout = 1024
	defer func() { maxPluginStdout = old }()
	_, err := Render(context.Background(), RenderRequest{
		Chart: packaged(t, "webapp"), ReleaseName: "rel",
		Set: map[string]any{"ingress": map[string]any{"host": "h.example"}},
	})
	if err == nil || !strings.Contains(err.Error(), "over 1024 bytes") {
		t.Errorf("error %v, want the answer refused as too long", err)
	}
}
