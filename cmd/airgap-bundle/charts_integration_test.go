package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	helmregistry "helm.sh/helm/v4/pkg/registry"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/chart"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

var (
	helmOnce sync.Once
	helmBin  string
	helmErr  error
)

// helmPlugin builds airgap-bundle-helm once for the package's tests and
// points chart.Render at it.
func helmPlugin(t *testing.T) {
	t.Helper()
	helmOnce.Do(func() {
		dir, err := os.MkdirTemp("", "airgap-bundle-helm-")
		if err != nil {
			helmErr = err
			return
		}
		helmBin = filepath.Join(dir, "airgap-bundle-helm")
		cmd := exec.Command("go", "build", "-tags", "containers_image_openpgp", "-o", helmBin, "../airgap-bundle-helm")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			helmErr = fmt.Errorf("building airgap-bundle-helm: %v\n%s", err, out)
		}
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	t.Setenv("AIRGAP_BUNDLE_HELM", helmBin)
}

// chartRepo is a chart repository over HTTPS with basic auth: index.yaml
// and the archives of the charts given, packaged from testdata.
type chartRepo struct {
	srv      *httptest.Server
	URL      string
	CAFile   string
	mu       sync.Mutex
	archives map[string][]byte // file name -> bytes
	index    []string          // index.yaml's entries of each chart, in order
	requests []string
}

func startChartRepo(t *testing.T, dir, user, pass string, charts map[string]string) *chartRepo {
	t.Helper()
	r := &chartRepo{archives: map[string][]byte{}}
	for _, src := range charts {
		cname, _ := r.add(t, dir, src)
		// A newer version whose archive is gone must not be chosen by a
		// constraint that excludes it; an older one is there too.
		r.index = append(r.index,
			fmt.Sprintf("  - name: %s\n    version: 9.0.0\n    urls: [gone/%s-9.0.0.tgz]\n", cname, cname),
			fmt.Sprintf("  - name: %s\n    version: 0.0.1\n    urls: [gone/%s-0.0.1.tgz]\n", cname, cname))
	}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests = append(r.requests, req.URL.Path)
		if u, p, ok := req.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="charts"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		switch p := strings.TrimPrefix(req.URL.Path, "/charts/"); {
		case p == "index.yaml":
			// one chart per test repository: its entries under its name
			name := strings.TrimPrefix(strings.SplitN(r.index[0], "\n", 2)[0], "  - name: ")
			fmt.Fprintf(w, "apiVersion: v1\nentries:\n  %s:\n%s", name, strings.Join(r.index, ""))
		case r.archives[p] != nil:
			w.Write(r.archives[p])
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(r.srv.Close)
	r.URL = r.srv.URL + "/charts"
	pem := certPEM(r.srv.Certificate().Raw)
	r.CAFile = filepath.Join(dir, "repo-ca.pem")
	if err := os.WriteFile(r.CAFile, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// add packages the chart directory src and serves it.
func (r *chartRepo) add(t *testing.T, dir, src string) (name, version string) {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(src)+".tgz")
	name, version, err := chart.Package(context.Background(), src, out)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	file := name + "-" + version + ".tgz"
	sum := sha256.Sum256(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.archives[file] = data
	r.index = append(r.index, fmt.Sprintf("  - name: %s\n    version: %s\n    urls: [%s]\n    digest: %s\n", name, version, file, hex.EncodeToString(sum[:])))
	return name, version
}

func (r *chartRepo) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// pushOCIChart pushes a packaged chart to reg as helm push does and
// returns the manifest's digest.
func pushOCIChart(t *testing.T, reg *testregistry.Registry, repo string, tgz []byte) digest.Digest {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "c.tgz")
	if err := os.WriteFile(p, tgz, 0o644); err != nil {
		t.Fatal(err)
	}
	meta, err := chart.ReadMetadata(p)
	if err != nil {
		t.Fatal(err)
	}
	manifest, cfg, err := meta.Manifest(digest.FromBytes(tgz), int64(len(tgz)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.NewRepository(reg.Host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithTransport(reg.Transport()), remote.WithAuth(authn.Anonymous)}
	for _, l := range []struct {
		b  []byte
		mt types.MediaType
	}{{cfg, chart.ConfigMediaType}, {tgz, chart.ContentMediaType}} {
		if err := remote.WriteLayer(r, static.NewLayer(l.b, l.mt), opts...); err != nil {
			t.Fatal(err)
		}
	}
	tag := r.Tag(strings.ReplaceAll(meta.Version, "+", "_"))
	if err := remote.Put(tag, chartManifest{manifest}, opts...); err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(manifest)
}

type chartManifest struct{ b []byte }

func (m chartManifest) RawManifest() ([]byte, error) { return m.b, nil }
func (m chartManifest) MediaType() (types.MediaType, error) {
	return types.OCIManifestSchema1, nil
}

// Charts end to end: a chart from an HTTPS repository with basic auth, a
// subchart, values files and set, and an OCI chart from the real
// registry, rendered with api-versions and kube-version. lock pins both
// and exactly the images their templates name (each with its template),
// build carries the charts beside the archive and inside it, and an
// unchanged spec locks again without a request.
func TestChartsLockAndBuild(t *testing.T) {
	helmPlugin(t)
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	dir := t.TempDir()
	repo := startChartRepo(t, dir, "chartuser", "s3cret", map[string]string{"webapp": "../../testdata/charts/webapp"})
	opTgz := filepath.Join(dir, "operator.tgz")
	if _, _, err := chart.Package(context.Background(), "../../testdata/charts/operator", opTgz); err != nil {
		t.Fatal(err)
	}
	opData, err := os.ReadFile(opTgz)
	if err != nil {
		t.Fatal(err)
	}
	opDigest := pushOCIChart(t, reg, "charts/operator", opData)

	// What the charts pull, under the mirror of registry.example.
	want := map[string]string{
		"registry.example/acme/webapp:1.2.1":         "webapp/templates/deployment.yaml",
		"registry.example/acme/webapp-migrate:1.2.0": "webapp/templates/deployment.yaml",
		"registry.example/tools/cleaner:3.1.0":       "webapp/templates/cronjob.yaml",
		"registry.example/acme/webapp-dbinit:1.2.0":  "webapp/templates/hooks/db-init.yaml",
		"registry.example/tools/curl:8.5.0":          "webapp/templates/tests/test-connection.yaml",
		"registry.example/acme/cache:7.4.0":          "webapp/charts/cache/templates/statefulset.yaml",
		"registry.example/acme/extra:1.0":            lockfile.FromExtraImages,
	}
	// Kubernetes 1.30: the log shipper is a native sidecar (an init
	// container) of the newer build; the Prometheus it asks for, through
	// a custom resource no finder reads, is listed in extra-images.
	opWant := map[string]string{
		"registry.example/acme/operator:2.5.1":           "operator/templates/deployment.yaml",
		"registry.example/acme/log-shipper:1.4.0":        "operator/templates/deployment.yaml",
		"registry.example/prometheus/prometheus:v2.53.0": lockfile.FromExtraImages,
	}
	for ref := range merge(want, opWant) {
		reg.PushImage(t, strings.TrimPrefix(ref, "registry.example/"), ref)
	}
	writeFile(t, dir, "values-prod.yaml", mustRead(t, "../../testdata/charts/values-prod.yaml"))
	spec := writeFile(t, dir, "bundle.toml", fmt.Sprintf(`
[registries."registry.example"]
mirrors = [{ location = "%[1]s", insecure = true }]

[registries."%[1]s"]
insecure = true

[registries."%[2]s"]
ca-file = %[3]q
auth = { username = "chartuser", password-env = "CHART_REPO_PASSWORD" }

[[group]]
name = "apps"

[[group.charts]]
repo = %[4]q
name = "webapp"
version = "~1.2"
values = ["values-prod.yaml"]
set = { cache = { enabled = true } }
extra-images = ["registry.example/acme/extra:1.0"]

[[group.charts]]
oci = "oci://%[1]s/charts/operator"
version = "0.3.x"
api-versions = ["monitoring.coreos.com/v1"]
kube-version = "1.30.0"
extra-images = ["registry.example/prometheus/prometheus:v2.53.0"]
`, reg.Host, strings.TrimPrefix(repo.srv.URL, "https://"), repo.CAFile, repo.URL))
	t.Setenv("CHART_REPO_PASSWORD", "s3cret")
	cacheDir := filepath.Join(dir, "cache")

	out, code := run(t, "lock", "--cache-dir", cacheDir, spec)
	if code != 0 {
		t.Fatalf("lock: exit %d\n%s", code, out)
	}
	lock, err := lockfile.Read(lockfile.Path(spec))
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SHOW_LOCK") != "" {
		t.Log(mustRead(t, lockfile.Path(spec)))
	}
	g := lock.Group("apps")
	if len(g.Charts) != 2 {
		t.Fatalf("lock pins %d charts, want 2: %+v", len(g.Charts), g.Charts)
	}
	web, op := g.Chart(repo.URL+"#webapp"), g.Chart("oci://"+reg.Host+"/charts/operator")
	if web == nil || op == nil {
		t.Fatalf("chart entries: %+v", g.Charts)
	}
	sum := sha256.Sum256(repo.archives["webapp-1.2.0.tgz"])
	if web.Version != "1.2.0" || web.Digest.Encoded() != hex.EncodeToString(sum[:]) || web.Archive != web.Digest {
		t.Errorf("webapp pinned as %s %s, want 1.2.0 sha256:%x", web.Version, web.Digest, sum)
	}
	if op.Version != "0.3.0" || op.Digest != opDigest || op.Archive != digest.FromBytes(opData) {
		t.Errorf("operator pinned as %s %s (archive %s), want 0.3.0 %s", op.Version, op.Digest, op.Archive, opDigest)
	}
	checkChartImages(t, "webapp", web, want)
	checkChartImages(t, "operator", op, opWant)
	for ref := range merge(want, opWant) {
		if g.Image(ref) == nil {
			t.Errorf("image %s of a chart is not pinned in the group", ref)
		}
	}
	if len(g.Images) != len(want)+len(opWant) {
		t.Errorf("the group pins %d images, want %d", len(g.Images), len(want)+len(opWant))
	}

	// Unchanged: no request to the chart repository, nothing rewritten.
	before := len(repo.Requests())
	if out, code := run(t, "lock", "--cache-dir", cacheDir, spec); code != 0 {
		t.Fatalf("second lock: exit %d\n%s", code, out)
	}
	if n := len(repo.Requests()) - before; n != 0 {
		t.Errorf("an unchanged lock asked the chart repository %d times: %v", n, repo.Requests()[before:])
	}
	if out, code := run(t, "lock", "--check", spec); code != 0 {
		t.Errorf("lock --check of a fresh lock: exit %d\n%s", code, out)
	}

	// The repository publishes 1.2.7: lock keeps 1.2.0; lock --update
	// naming the chart takes the newer version its constraint allows.
	newer := filepath.Join(dir, "webapp-new")
	if err := os.CopyFS(newer, os.DirFS("../../testdata/charts/webapp")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, newer, "Chart.yaml", strings.Replace(mustRead(t, filepath.Join(newer, "Chart.yaml")), "version: 1.2.0", "version: 1.2.7", 1))
	if err := os.Remove(filepath.Join(newer, "templates", "cronjob.yaml")); err != nil { // 1.2.7 drops the cleaner
		t.Fatal(err)
	}
	if _, v := repo.add(t, dir, newer); v != "1.2.7" {
		t.Fatalf("the new chart is version %s", v)
	}
	relock := func(args ...string) string {
		t.Helper()
		if out, code := run(t, append(append([]string{"lock", "--cache-dir", cacheDir}, args...), spec)...); code != 0 {
			t.Fatalf("lock %v: exit %d\n%s", args, code, out)
		}
		l, err := lockfile.Read(lockfile.Path(spec))
		if err != nil {
			t.Fatal(err)
		}
		return l.Group("apps").Chart(repo.URL + "#webapp").Version
	}
	if v := relock(); v != "1.2.0" {
		t.Errorf("lock without --update moved the chart to %s", v)
	}
	lockBefore := mustRead(t, lockfile.Path(spec))
	out, code = run(t, "lock", "--cache-dir", cacheDir, "--update", spec, "webapp")
	if code != 0 || !strings.Contains(out, "removed   apps: registry.example/tools/cleaner:3.1.0") {
		t.Fatalf("lock --update webapp: exit %d, want the cleaner the new version drops reported removed\n%s", code, out)
	}
	if v := relock(); v != "1.2.7" {
		t.Errorf("lock --update webapp: the chart is at %s, want 1.2.7", v)
	}
	if l, _ := lockfile.Read(lockfile.Path(spec)); l.Group("apps").Image("registry.example/tools/cleaner:3.1.0") != nil {
		t.Error("the image 1.2.7 no longer brings is still pinned")
	}
	if out, code := run(t, "lock", "--check", spec); code != 0 {
		t.Errorf("lock --check after lock --update of the chart: exit %d\n%s", code, out)
	}
	// back to the lockfile of 1.2.0 for the build below
	writeFile(t, filepath.Dir(spec), filepath.Base(lockfile.Path(spec)), lockBefore)

	outDir := filepath.Join(dir, "dist")
	if out, code := run(t, "build", "--locked", "--cache-dir", cacheDir, "--output", outDir, spec); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, out)
	}
	got, err := os.ReadFile(filepath.Join(outDir, "charts", "webapp-1.2.0.tgz"))
	if err != nil || !slices.Equal(got, repo.archives["webapp-1.2.0.tgz"]) {
		t.Errorf("charts/webapp-1.2.0.tgz is not the repository's archive (err %v)", err)
	}
	if got, err := os.ReadFile(filepath.Join(outDir, "charts", "operator-0.3.0.tgz")); err != nil || !slices.Equal(got, opData) {
		t.Errorf("charts/operator-0.3.0.tgz is not the registry's chart (err %v)", err)
	}
	sums := mustRead(t, filepath.Join(outDir, "charts", "SHA256SUMS"))
	for _, f := range []string{"webapp-1.2.0.tgz", "operator-0.3.0.tgz"} {
		if !strings.Contains(sums, "  "+f+"\n") {
			t.Errorf("charts/SHA256SUMS lacks %s:\n%s", f, sums)
		}
	}
	c, err := archive.ReadFile(context.Background(), filepath.Join(outDir, "apps.tar"), archive.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var carried []string
	for _, img := range c.Images {
		if a := img.Artifact; a != nil && a.Kind == archive.KindChart {
			carried = append(carried, a.Image)
			if a.Image == "operator:0.3.0" && img.Top.Digest != opDigest {
				t.Errorf("the OCI chart is carried as %s, not the registry's manifest %s", img.Top.Digest, opDigest)
			}
		}
	}
	sort.Strings(carried)
	if !slices.Equal(carried, []string{"operator:0.3.0", "webapp:1.2.0"}) {
		t.Errorf("the archive carries charts %v", carried)
	}
	if out, code := run(t, "inspect", filepath.Join(outDir, "apps.tar")); code != 0 || !strings.Contains(out, "chart webapp:1.2.0") || !strings.Contains(out, "chart operator:0.3.0") {
		t.Errorf("inspect does not list the charts (exit %d):\n%s", code, out)
	}
	if out, code := run(t, "verify", "--output", outDir, spec); code != 0 {
		t.Errorf("verify: exit %d\n%s", code, out)
	}

	// serve gives the charts at charts/NAME:VERSION, the OCI one under
	// the registry's own digest.
	url, cancel, done := startServe(t, outDir)
	served := strings.TrimPrefix(url, "http://")
	if got := sha256Digest(rawManifest(t, served+"/charts/operator:0.3.0", "--tls-verify=false")); got != opDigest.String() {
		t.Errorf("serve's charts/operator:0.3.0 is %s, want %s", got, opDigest)
	}
	if got := rawManifest(t, served+"/charts/webapp:1.2.0", "--tls-verify=false"); !strings.Contains(string(got), digest.FromBytes(repo.archives["webapp-1.2.0.tgz"]).String()) {
		t.Errorf("serve's charts/webapp:1.2.0 does not name the chart's archive: %s", got)
	}
	cancel()
	<-done

	// Inside the gap: push puts each chart at TARGET/charts/NAME:VERSION,
	// where a registry client (helm pull's) finds the chart layer, and the
	// OCI chart under the registry's own manifest digest.
	site := testregistry.Start(t, testregistry.Options{})
	if out, code := run(t, "push", "--insecure", filepath.Join(outDir, "apps.tar"), "--to", site.Host+"/site"); code != 0 {
		t.Fatalf("push: exit %d\n%s", code, out)
	}
	for _, cc := range []struct {
		repo, tag string
		archive   digest.Digest
		manifest  digest.Digest
	}{
		{"site/charts/webapp", "1.2.0", digest.FromBytes(repo.archives["webapp-1.2.0.tgz"]), ""},
		{"site/charts/operator", "0.3.0", digest.FromBytes(opData), opDigest},
	} {
		ref, err := name.ParseReference(site.Host+"/"+cc.repo+":"+cc.tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(ref, remote.WithTransport(site.Transport()))
		if err != nil {
			t.Errorf("the pushed chart %s:%s: %v", cc.repo, cc.tag, err)
			continue
		}
		if cc.manifest != "" && desc.Digest.String() != cc.manifest.String() {
			t.Errorf("%s:%s is %s, not the source registry's %s", cc.repo, cc.tag, desc.Digest, cc.manifest)
		}
		img, err := desc.Image()
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Config.MediaType) != chart.ConfigMediaType || len(m.Layers) != 1 || m.Layers[0].Digest.String() != cc.archive.String() {
			t.Errorf("%s:%s: config %s, layers %v: want a Helm chart whose layer is %s", cc.repo, cc.tag, m.Config.MediaType, m.Layers, cc.archive)
		}
		// helm pull oci://… (the Helm SDK's own registry client) takes it:
		// the manifest digest the registry serves and the chart's archive.
		hc, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP())
		if err != nil {
			t.Fatal(err)
		}
		res, err := hc.Pull(site.Host + "/" + cc.repo + ":" + cc.tag)
		if err != nil {
			t.Errorf("helm pull of %s:%s: %v", cc.repo, cc.tag, err)
			continue
		}
		if res.Manifest.Digest != desc.Digest.String() || res.Chart.Digest != cc.archive.String() || res.Chart.Meta.Version != cc.tag {
			t.Errorf("helm pull of %s:%s: manifest %s, chart %s, version %s; want %s, %s, %s", cc.repo, cc.tag,
				res.Manifest.Digest, res.Chart.Digest, res.Chart.Meta.Version, desc.Digest, cc.archive, cc.tag)
		}
	}
}

func checkChartImages(t *testing.T, which string, l *lockfile.Chart, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, ci := range l.Images {
		got[ci.Ref] = ci.Template
	}
	for ref, tpl := range want {
		if got[ref] != tpl {
			t.Errorf("chart %s: image %s: template %q, want %q", which, ref, got[ref], tpl)
		}
	}
	for ref := range got {
		if _, ok := want[ref]; !ok {
			t.Errorf("chart %s brings %s (from %s), which it should not", which, ref, got[ref])
		}
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// Chart problems come all at once, each at its spec line: a chart that
// does not render names its template and Helm's message, an unreachable
// chart repository is one line, a version no tag matches says so; no
// lockfile is written. A values file that does not exist is a spec error
// at its line. Then a lockfile is made, and lock --check reports a chart
// whose values moved (exit 3).
func TestChartErrorsAndDrift(t *testing.T) {
	helmPlugin(t)
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	dir := t.TempDir()
	writeFile(t, dir, "values-prod.yaml", mustRead(t, "../../testdata/charts/values-prod.yaml"))
	webapp, err := filepath.Abs("../../testdata/charts/webapp")
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf(`
[registries."registry.example"]
mirrors = [{ location = "%[1]s", insecure = true }]

[registries."%[1]s"]
insecure = true

[[group]]
name = "apps"
`, reg.Host)

	missing := writeFile(t, dir, "missing.toml", head+fmt.Sprintf(`
[[group.charts]]
path = %q
values = ["values-prod.yaml", "nope.yaml"]
`, webapp))
	out, code := run(t, "lock", "--cache-dir", filepath.Join(dir, "cache"), missing)
	if code == 0 || !strings.Contains(out, "missing.toml:13") || !strings.Contains(out, "nope.yaml") {
		t.Errorf("a missing values file: exit %d, want its spec line and name:\n%s", code, out)
	}

	bad := writeFile(t, dir, "bundle.toml", head+fmt.Sprintf(`
[[group.charts]]
path = %q

[[group.charts]]
repo = "https://127.0.0.1:1/charts"
name = "webapp"

[[group.charts]]
oci = "oci://%s/charts/nothing"
version = "1.0.0"
`, webapp, reg.Host))
	out, code = run(t, "lock", "--cache-dir", filepath.Join(dir, "cache"), bad)
	if code == 0 {
		t.Fatalf("lock of charts that cannot be locked: exit 0\n%s", out)
	}
	for _, want := range []string{
		"bundle.toml:11", "webapp/templates/ingress.yaml", "ingress.host is required", // does not render
		"bundle.toml:14", "127.0.0.1:1", // unreachable
		"bundle.toml:18", "charts/nothing", // nothing there
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lock's error lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "127.0.0.1:1"); n > 2 {
		t.Errorf("the unreachable repository takes %d mentions, want one line:\n%s", n, out)
	}
	if _, err := os.Stat(lockfile.Path(bad)); err == nil {
		t.Error("a failed lock wrote a lockfile")
	}

	// Locked with its values; then the values change.
	for ref := range map[string]bool{"acme/webapp:1.2.1": true, "acme/webapp-migrate:1.2.0": true, "tools/cleaner:3.1.0": true,
		"acme/webapp-dbinit:1.2.0": true, "tools/curl:8.5.0": true, "acme/cache:7.4.0": true} {
		reg.PushImage(t, ref, ref)
	}
	good := writeFile(t, dir, "good.toml", head+fmt.Sprintf(`
[[group.charts]]
path = %q
values = ["values-prod.yaml"]
`, webapp))
	if out, code := run(t, "lock", "--cache-dir", filepath.Join(dir, "cache"), good); code != 0 {
		t.Fatalf("lock: exit %d\n%s", code, out)
	}
	if out, code := run(t, "lock", "--check", good); code != 0 {
		t.Fatalf("lock --check after lock: exit %d\n%s", code, out)
	}
	cache := filepath.Join(dir, "cache")
	base := filepath.Join(dir, "base")
	if out, code := run(t, "build", "--locked", "--cache-dir", cache, "--output", base, good); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, out)
	}
	v1 := writeFile(t, dir, "v1.lock", mustRead(t, lockfile.Path(good)))

	// A values change that brings a new image.
	reg.PushImage(t, "acme/webapp:1.3.0", "acme/webapp:1.3.0")
	writeFile(t, dir, "values-prod.yaml", mustRead(t, "../../testdata/charts/values-prod.yaml")+"\nreplicaCount: 3\n")
	out, code = run(t, "lock", "--check", good)
	if code != 3 || !strings.Contains(out, "values, set or render options changed") || !strings.Contains(out, "good.toml:11") || strings.Contains(out, "not in the spec") {
		t.Errorf("lock --check after a values change: exit %d, want 3 naming the chart at its line:\n%s", code, out)
	}
	good = writeFile(t, dir, "good.toml", mustRead(t, good)+"set = { image = { tag = \"1.3.0\" } }\n")
	out, code = run(t, "lock", "--cache-dir", cache, good)
	if code != 0 {
		t.Fatalf("lock after the change: exit %d\n%s", code, out)
	}
	if d, code := run(t, "diff", v1, lockfile.Path(good)); code != 0 || !strings.Contains(d, "brings registry.example/acme/webapp:1.3.0") || !strings.Contains(d, "drops registry.example/acme/webapp:1.2.1") {
		t.Errorf("diff of the chart's change: exit %d\n%s", code, d)
	}

	// The bump as a delta, applied inside: the charts travel in the delta
	// archive, and apply rebuilds the archive byte for byte.
	next := filepath.Join(dir, "next")
	if out, code := run(t, "build", "--locked", "--cache-dir", cache, "--output", next, "--since", v1, good); code != 0 {
		t.Fatalf("build --since: exit %d\n%s", code, out)
	}
	applied := filepath.Join(dir, "applied")
	if out, code := run(t, "apply", filepath.Join(next, "delta"), "--base", base, "-o", applied); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	if sha(t, filepath.Join(applied, "apps.tar")) != sha(t, filepath.Join(next, "apps.tar")) {
		t.Error("apply's archive differs from build's")
	}
	// and writes the charts beside it, as build does, from the archive
	for _, f := range []string{"webapp-1.2.0.tgz", "SHA256SUMS"} {
		if got, want := mustRead(t, filepath.Join(applied, "charts", f)), mustRead(t, filepath.Join(next, "charts", f)); got != want {
			t.Errorf("apply's charts/%s differs from build's", f)
		}
	}
}
