package push

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]Target{
		"registry.internal:5000":          {Host: "registry.internal:5000"},
		"registry.internal/mirror/":       {Host: "registry.internal", Prefix: "mirror"},
		"127.0.0.1:5000/a/b-c":            {Host: "127.0.0.1:5000", Prefix: "a/b-c"},
		"localhost:5000/docker.io_mirror": {Host: "localhost:5000", Prefix: "docker.io_mirror"},
	} {
		got, err := ParseTarget(in)
		if err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "https://r:5000", "r:5000/Upper", "r:5000//x", "R.example", "r:port"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q): no error", bad)
		}
	}
}

func TestRepoPath(t *testing.T) {
	ref := func(s string) image.Reference {
		r, err := image.ParseReference(s, "")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	to := Target{Host: "reg:5000"}
	pre := Target{Host: "reg:5000", Prefix: "mirror"}
	for _, c := range []struct {
		t       Target
		src     string
		perHost bool
		want    string
	}{
		{to, "docker.io/rancher/mirrored-pause:3.6", false, "rancher/mirrored-pause"},
		{to, "busybox:1.36", false, "library/busybox"},
		{pre, "docker.io/rancher/mirrored-pause:3.6", false, "mirror/rancher/mirrored-pause"},
		{to, "quay.io/calico/node:v3", true, "quay.io/calico/node"},
		{pre, "localhost:5000/x/y:1", true, "mirror/localhost_5000/x/y"},
		{to, "127.0.0.1:5000/bench/multiarch:1.0", true, "127.0.0.1_5000/bench/multiarch"},
		{to, "harbor.corp:8443/team/app:1", true, "harbor.corp_8443/team/app"},
		{to, "harbor.corp:8443/team/app:1", false, "team/app"},
	} {
		if got := repoPath(c.t, ref(c.src), c.perHost); got != c.want {
			t.Errorf("repoPath(%s, %s, %v) = %q, want %q", c.t, c.src, c.perHost, got, c.want)
		}
		// serve answers the per-host path of the same rule.
		if c.perHost && c.t.Prefix == "" && c.want != ref(c.src).PerHostPath() {
			t.Errorf("%s: push writes %s, serve answers %s", c.src, c.want, ref(c.src).PerHostPath())
		}
	}
}

func TestNodeConfig(t *testing.T) {
	eps := []Endpoint{{Target: Target{Host: "reg.internal:5000", Prefix: "mirror"}, Scheme: "https", CAFile: "/x/ca.pem", HasCredentials: true, Username: "ci"}}
	ht := string(HostsTOML("docker.io", eps, false))
	for _, want := range []string{`server = "https://registry-1.docker.io"`, `[host."https://reg.internal:5000/v2/mirror"]`, `override_path = true`, `ca = "ca-reg.internal_5000.pem"`} {
		if !strings.Contains(ht, want) {
			t.Errorf("hosts.toml lacks %s:\n%s", want, ht)
		}
	}
	ry, err := RegistriesYAML([]string{"quay.io", "docker.io"}, eps, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"docker.io":`, `"^(.*)$": "mirror/docker.io/$1"`, `"^(.*)$": "mirror/quay.io/$1"`, `ca_file: "/etc/rancher/k3s/ca-reg.internal_5000.pem"`, `username: "ci"`, `password: "REPLACE-WITH-PASSWORD"`} {
		if !strings.Contains(string(ry), want) {
			t.Errorf("registries.yaml lacks %s:\n%s", want, ry)
		}
	}
	two := append(eps, Endpoint{Target: Target{Host: "other:5000"}, Scheme: "http"})
	if _, err := RegistriesYAML([]string{"docker.io"}, two, false); err == nil {
		t.Error("two targets with different prefixes: no error for registries.yaml")
	}
}

// TestMadeManifest: a crane tarball has no manifest; the one made lists
// its config and its gzip layers with Docker media types.
func TestMadeManifest(t *testing.T) {
	src, problems, err := openSource(context.Background(), filepath.Join("..", "cmd", "airgap-bundle", "testdata", "crane.tar"), t.TempDir(), false)
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	defer src.close()
	if len(src.images) != 2 {
		t.Fatalf("%d images", len(src.images))
	}
	for _, img := range src.images {
		if !img.made || len(img.docs) != 1 {
			t.Fatalf("%s: made %v, %d docs", img.label, img.made, len(img.docs))
		}
		var m struct {
			MediaType string
			Config    struct{ MediaType string }
			Layers    []struct{ MediaType string }
		}
		if err := json.Unmarshal(img.docs[0].raw, &m); err != nil {
			t.Fatal(err)
		}
		if m.MediaType != string(image.DockerManifest) || m.Config.MediaType != dockerConfig || len(m.Layers) == 0 || m.Layers[0].MediaType != dockerLayer {
			t.Errorf("%s: %s", img.label, img.docs[0].raw)
		}
	}
}

// TestPushLibrary pushes the committed docker save fixture into a real
// registry twice: the second time everything is found, nothing sent.
func TestPushLibrary(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{})
	testregistry.Isolate(t)
	spec := &config.Spec{Registries: map[string]*config.Registry{reg.Host: {Host: reg.Host, Insecure: true}}}
	opts := Options{Targets: []Target{{Host: reg.Host}}, Spec: spec, TempDir: t.TempDir(), Registry: registry.Options{Policy: registry.Policy{Attempts: 1}}}
	archive := filepath.Join("..", "cmd", "airgap-bundle", "testdata", "docker-save.tar")
	res, err := Push(context.Background(), []string{archive}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.BlobsUploaded == 0 || res.Stats.BlobsMounted == 0 || res.Stats.ManifestsPut != 5 /* 4 images, one of them under 2 tags */ || len(res.Mapping.Images) != 5 {
		t.Errorf("first push: %+v, %d names", res.Stats, len(res.Mapping.Images))
	}
	if len(res.Endpoints) != 1 || res.Endpoints[0].Scheme != "http" || strings.Join(res.SourceHosts, ",") != "registry.test" {
		t.Errorf("endpoints %+v, sources %v", res.Endpoints, res.SourceHosts)
	}
	again, err := Push(context.Background(), []string{archive}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s := again.Stats; s.BlobsUploaded != 0 || s.BlobsMounted != 0 || s.ManifestsPut != 0 || s.BlobsExisting != res.Stats.BlobsUploaded+res.Stats.BlobsMounted {
		t.Errorf("second push: %+v (first %+v)", s, res.Stats)
	}
	if again.Mapping.Images[0].TargetDigest != res.Mapping.Images[0].TargetDigest {
		t.Error("a made manifest is not the same twice")
	}

	// Without insecure, plain HTTP is refused.
	opts.Spec = nil
	if _, err := Push(context.Background(), []string{archive}, opts); err == nil || !errors.Is(err, errdefs.ErrRegistry) {
		t.Errorf("plain HTTP without insecure: %v", err)
	}
	// A file that is not an archive: reported with its name, nothing pushed.
	bad := filepath.Join(t.TempDir(), "bad.tar")
	os.WriteFile(bad, []byte("not a tar"), 0o644)
	opts.Spec = spec
	if _, err := Push(context.Background(), []string{bad, archive}, opts); err == nil || !strings.Contains(err.Error(), "bad.tar") {
		t.Errorf("bad archive: %v", err)
	}
}

// TestPartialErrorNamesRemedies: the refusal names the archive, the image,
// the absent platforms and what to do, in both forms.
func TestPartialErrorNamesRemedies(t *testing.T) {
	top := doc{desc: archiveDescriptor(image.OCIIndex, "index")}
	filtered := doc{desc: archiveDescriptor(image.OCIIndex, "filtered")}
	ref, _ := image.ParseReference("docker.io/x/y:1", "")
	repo, _ := name.NewRepository("reg:5000/x/y")
	u := &unit{img: &sourceImage{archive: "dist/a.tar", docs: []doc{top}, filtered: &filtered}, repo: repo, names: []image.Reference{ref}}
	err := partialError(u, []string{"linux/arm64"}, false)
	msg := err.Error()
	for _, want := range []string{"dist/a.tar: docker.io/x/y:1 -> reg:5000/x/y", "linux/arm64", `platforms = ["all"]`, "--partial-index=filtered", filtered.desc.Digest.String(), top.desc.Digest.String()} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if !errors.Is(err, ErrPartialIndex) || !errors.Is(err, errdefs.ErrRegistry) {
		t.Errorf("classes: %v", err)
	}
	if msg := partialError(u, []string{"attestation manifest"}, true).Error(); !strings.Contains(msg, "never bundled") {
		t.Errorf("attestation: %s", msg)
	}
}

// TestTagConflicts: two images under one target tag are refused; the same
// image twice is not. --to-per-host is suggested only where it separates
// them: for names from different source registries.
func TestTagConflicts(t *testing.T) {
	ref := func(s string) image.Reference {
		r, err := image.ParseReference(s, "")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	repo, _ := name.NewRepository("reg:5000/x/y")
	a := &unit{img: &sourceImage{archive: "a.tar", label: "a"}, repo: repo, names: []image.Reference{ref("quay.io/x/y:1")}, tags: []string{"1"}, docs: []doc{{desc: archiveDescriptor(image.OCIManifest, "a")}}}
	a2 := &unit{img: &sourceImage{archive: "a2.tar", label: "a"}, repo: repo, names: a.names, tags: []string{"1"}, docs: a.docs}
	b := &unit{img: &sourceImage{archive: "b.tar", label: "b"}, repo: repo, names: []image.Reference{ref("docker.io/x/y:1"), ref("docker.io/x/y:2")}, tags: []string{"1", "2"}, docs: []doc{{desc: archiveDescriptor(image.OCIManifest, "b")}}}
	if errs := tagConflicts([]*unit{a, a2}); len(errs) != 0 {
		t.Errorf("same image twice: %v", errs)
	}
	errs := tagConflicts([]*unit{a, b})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "reg:5000/x/y:1") || !strings.Contains(errs[0].Error(), "use --to-per-host") {
		t.Errorf("conflict between quay.io and docker.io: %v", errs)
	}

	// One source name, two contents (archives built at different times):
	// a directory per source host cannot tell them apart.
	old := &unit{img: &sourceImage{archive: "old.tar", label: "quay.io/x/y:1"}, repo: repo, names: a.names, tags: []string{"1"}, docs: []doc{{desc: archiveDescriptor(image.OCIManifest, "old")}}}
	errs = tagConflicts([]*unit{a, old})
	if len(errs) != 1 || strings.Contains(errs[0].Error(), "use --to-per-host") || !strings.Contains(errs[0].Error(), "--to-per-host cannot") || !strings.Contains(errs[0].Error(), "quay.io/x/y:1") || !strings.Contains(errs[0].Error(), "old.tar") || !strings.Contains(errs[0].Error(), "a.tar") {
		t.Errorf("conflict within quay.io: %v", errs)
	}
}

func archiveDescriptor(mt image.MediaType, content string) image.Descriptor {
	return image.Descriptor{MediaType: mt, Digest: digest.FromString(content), Size: int64(len(content))}
}

// Every default is applied in one place, and --insecure marks the
// targets insecure in a copy: the caller's spec is never changed.
func TestOptionsDefaults(t *testing.T) {
	spec := &config.Spec{Registries: map[string]*config.Registry{"reg.example:5000": {Host: "reg.example:5000", CAFile: "ca.pem"}}}
	cacheDir := t.TempDir()
	o, err := Options{
		Targets:  []Target{{Host: "reg.example:5000"}, {Host: "other.example"}},
		Spec:     spec,
		Insecure: true,
		CacheDir: cacheDir,
	}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Jobs != DefaultJobs || o.PartialIndex != PartialRefuse || o.Progress == nil || o.Registry.Logger == nil || o.Registry.Policy.Attempts == 0 {
		t.Errorf("defaults not applied: %+v", o)
	}
	if o.TempDir != filepath.Join(cacheDir, "tmp") {
		t.Errorf("TempDir = %s, want the cache's tmp/", o.TempDir)
	}
	if r := o.Spec.Registries["reg.example:5000"]; !r.Insecure || r.CAFile != "ca.pem" {
		t.Errorf("target with a table: %+v, want insecure with its ca-file kept", r)
	}
	if r := o.Spec.Registries["other.example"]; r == nil || !r.Insecure {
		t.Errorf("target without a table: %+v, want insecure", r)
	}
	if spec.Registries["reg.example:5000"].Insecure || len(spec.Registries) != 1 {
		t.Error("the caller's spec was changed")
	}
	if _, err := (Options{}).withDefaults(); !errors.Is(err, errdefs.ErrUsage) {
		t.Errorf("no target: %v, want a usage error", err)
	}
}

func TestCheckRegistriesYAML(t *testing.T) {
	same := []Target{{Host: "a:5000", Prefix: "m"}, {Host: "b:5000", Prefix: "m"}}
	if err := CheckRegistriesYAML(same); err != nil {
		t.Errorf("same prefix: %v", err)
	}
	if err := CheckRegistriesYAML([]Target{{Host: "a:5000", Prefix: "m"}, {Host: "b:5000"}}); err == nil || !strings.Contains(err.Error(), "different path prefixes") {
		t.Errorf("different prefixes: %v", err)
	}
}
