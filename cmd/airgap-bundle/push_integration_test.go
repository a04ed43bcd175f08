package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/airgap-bundle/airgap-bundle/internal/faultproxy"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/schemas"
)

// skopeoBin is skopeo, or a skip (a failure under the integration
// requirement).
func skopeoBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Getenv(testregistry.RequireEnv) == "1" {
			t.Fatalf("skopeo is not installed and %s=1", testregistry.RequireEnv)
		}
		t.Skip("skopeo is not installed")
	}
	return p
}

// rawManifest is skopeo inspect --raw of ref: the bytes the registry
// serves.
func rawManifest(t *testing.T, ref string, flags ...string) []byte {
	t.Helper()
	args := append([]string{"inspect", "--raw"}, flags...)
	cmd := exec.Command(skopeoBin(t), append(args, "docker://"+ref)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_REGISTRIES_CONF="+writeFile(t, t.TempDir(), "registries.conf", ""))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw %s: %v\n%s", ref, err, stderr.String())
	}
	return out
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// checkSchema validates the JSON file p against a schema of package
// schemas and returns its bytes.
func checkSchema(t *testing.T, p, id string, schema []byte) []byte {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	sdoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(id, sdoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("%s does not follow %s: %v\n%s", p, id, err, b)
	}
	return b
}

// checkMapping validates a mapping file against schemas/mapping.schema.json
// and decodes it.
func checkMapping(t *testing.T, p string) mappingDoc {
	t.Helper()
	b := checkSchema(t, p, schemas.MappingID, schemas.Mapping())
	var m mappingDoc
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

type mappingEntry struct {
	Archive, Source, Target, Why string
	SourceDigest                 string `json:"source-digest"`
	TargetDigest                 string `json:"target-digest"`
	DigestKept                   bool   `json:"digest-kept"`
}

type mappingDoc struct {
	Targets []string
	Images  []mappingEntry
}

func (m mappingDoc) entry(t *testing.T, target string) mappingEntry {
	t.Helper()
	for _, e := range m.Images {
		if e.Target == target {
			return e
		}
	}
	t.Fatalf("no mapping entry for %s in %+v", target, m.Images)
	return mappingEntry{}
}

type pushStats struct {
	Stats struct {
		BlobsUploaded     int   `json:"blobs-uploaded"`
		BytesUploaded     int64 `json:"bytes-uploaded"`
		BlobsMounted      int   `json:"blobs-mounted"`
		BlobsExisting     int   `json:"blobs-existing"`
		ManifestsPut      int   `json:"manifests-put"`
		ManifestsExisting int   `json:"manifests-existing"`
		HeadersOnly       bool  `json:"headers-only"`
	}
}

func pushJSONRun(t *testing.T, args ...string) pushStats {
	t.Helper()
	out, stderr, code := runSplit(t, "", append([]string{"--json", "push"}, args...)...)
	if code != 0 {
		t.Fatalf("push %v: exit %d\n%s%s", args, code, out, stderr)
	}
	oneJSON(t, out)
	var s pushStats
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPushPlainRegistry pushes built archives (.tar, .tar.zst, .tar.gz),
// a docker save and a crane tarball into a real docker-registry, through
// a counting proxy, and pulls them back by their original digests.
func TestPushPlainRegistry(t *testing.T) {
	spec, dist, std := builtBundle(t)
	source := regHostOf(t, spec)
	reg := testregistry.Start(t, testregistry.Options{})
	px := faultproxy.Start(t, reg.Host)
	to := px.Host
	dir := t.TempDir()
	cache := t.TempDir()
	multi, tags, filtered := filepath.Join(dist, "multi.tar"), filepath.Join(dist, "tags.tar.zst"), filepath.Join(dist, "filtered.tar.gz")
	base := []string{"--insecure", "--cache-dir", cache}

	// The original index of multi-oci lists linux/arm/v7 and an
	// attestation, which multi.tar does not hold: refused, all at once,
	// before anything is sent.
	out, stderr, code := runSplit(t, "", append([]string{"push", "--to", to, multi}, base...)...)
	if code != exitFailure || !strings.Contains(stderr, "multi.tar: registry.test/fixtures/multi-oci:v1 -> "+to+"/fixtures/multi-oci") ||
		!strings.Contains(stderr, "--partial-index=filtered") || !strings.Contains(stderr, "linux/arm/v7, attestation manifest") {
		t.Fatalf("partial index: exit %d\n%s%s", code, out, stderr)
	}
	if s := px.Stats(); s.Count("PUT", "manifests") != 0 || s.Count("POST", "uploads") != 0 {
		t.Errorf("a refused push sent something: %s", s)
	}

	// What distribution does with the original index anyway.
	_, stderr, code = runSplit(t, "", append([]string{"push", "--to", to + "/original", "--partial-index", "original", multi}, base...)...)
	if code != exitFailure || !strings.Contains(stderr, "MANIFEST_BLOB_UNKNOWN") {
		t.Fatalf("--partial-index=original: exit %d\n%s", code, stderr)
	}

	// Everything else, with the filtered index for multi-oci.
	mapping := filepath.Join(dir, "mapping.json")
	px.ResetCounters()
	first := pushJSONRun(t, append([]string{"--to", to, "--partial-index", "filtered", "--mapping", mapping, multi, tags}, base...)...)
	m := checkMapping(t, mapping)
	if first.Stats.BlobsUploaded == 0 || first.Stats.ManifestsPut == 0 {
		t.Errorf("first push: %+v", first.Stats)
	}
	list := m.entry(t, to+"/fixtures/multi-docker:v1")
	if !list.DigestKept || list.TargetDigest != std.DockerList.Digest || list.SourceDigest != std.DockerList.Digest {
		t.Errorf("multi-docker: %+v, registry digest %s", list, std.DockerList.Digest)
	}
	oci := m.entry(t, to+"/fixtures/multi-oci:v1")
	if oci.DigestKept || oci.Why != "filtered-index" || oci.SourceDigest != std.MultiOCI.Digest || oci.TargetDigest == std.MultiOCI.Digest {
		t.Errorf("multi-oci: %+v", oci)
	}
	for _, tag := range []string{"a", "b"} {
		if e := m.entry(t, to+"/fixtures/twotags:"+tag); !e.DigestKept || e.TargetDigest != std.TwoTags.Digest {
			t.Errorf("twotags:%s: %+v", tag, e)
		}
	}

	// Pulled back by the original digests, the bytes are the source
	// registry's.
	tlsOff := "--tls-verify=false"
	for _, c := range []struct{ repo, digest string }{
		{"fixtures/multi-docker", std.DockerList.Digest},
		{"fixtures/multi-docker", std.DockerList.Platforms["linux/arm64"].Digest},
		{"fixtures/multi-oci", std.MultiOCI.Platforms["linux/amd64"].Digest},
		{"fixtures/single", std.SingleOCI.Digest},
		{"fixtures/twotags", std.TwoTags.Digest},
	} {
		got := rawManifest(t, to+"/"+c.repo+"@"+c.digest, tlsOff)
		want := rawManifest(t, source+"/"+c.repo+"@"+c.digest, tlsOff)
		if !bytes.Equal(got, want) || sha256Digest(got) != c.digest {
			t.Errorf("%s@%s: pushed bytes differ from the source's (sha256 %s)", c.repo, c.digest, sha256Digest(got))
		}
	}
	if got := rawManifest(t, to+"/fixtures/multi-oci:v1", tlsOff); sha256Digest(got) != oci.TargetDigest {
		t.Errorf("multi-oci:v1 is %s, the mapping says %s", sha256Digest(got), oci.TargetDigest)
	}

	// Again: every manifest is found under its name (the filtered index
	// too), so the archives' headers are all that is read; nothing is
	// uploaded or PUT.
	px.ResetCounters()
	again := pushJSONRun(t, append([]string{"--to", to, "--partial-index", "filtered", multi, tags}, base...)...)
	s := px.Stats()
	if s.Count("POST", "uploads") != 0 || s.Count("PATCH", "uploads") != 0 || s.Count("PUT", "uploads") != 0 || s.Count("PUT", "manifests") != 0 {
		t.Errorf("second push sent data: %s\n%s", s, px.LogString())
	}
	if again.Stats.BlobsUploaded != 0 || again.Stats.ManifestsPut != 0 || !again.Stats.HeadersOnly || again.Stats.ManifestsExisting != first.Stats.ManifestsPut || s.Count("HEAD", faultproxy.KindBlobs) != 0 {
		t.Errorf("second push: %+v (first %+v)", again.Stats, first.Stats)
	}

	// Two targets on one registry: the second one's blobs are mounted
	// from the first's repositories. A .tar.gz and a .tar.zst.
	px.ResetCounters()
	two := pushJSONRun(t, append([]string{"--to", to + "/a", "--to", to + "/b", tags, filtered}, base...)...)
	if two.Stats.BlobsMounted == 0 || two.Stats.BlobsMounted != two.Stats.BlobsUploaded {
		t.Errorf("two targets: %+v", two.Stats)
	}
	if !strings.Contains(reg.Log(), "mount=sha256") {
		t.Errorf("no mount in the registry's log")
	}
	if got := rawManifest(t, to+"/b/fixtures/single:v1", tlsOff); sha256Digest(got) != std.SingleOCI.Digest {
		t.Errorf("b/fixtures/single:v1 is %s", sha256Digest(got))
	}
	// The decompressed copies of the .tar.zst and .tar.gz are gone.
	if left, err := os.ReadDir(filepath.Join(cache, "tmp")); err != nil || len(left) != 0 {
		t.Errorf("cache tmp/ after push: %v %v", left, err)
	}

	// Docker archives carry no manifest: one is made, its digest new, and
	// layers shared between repositories are mounted.
	mapping = filepath.Join(dir, "docker.json")
	made := pushJSONRun(t, append([]string{"--to", to + "/docker", "--mapping", mapping, filepath.Join("testdata", "docker-save.tar"), filepath.Join("testdata", "crane.tar")}, base...)...)
	m = checkMapping(t, mapping)
	if len(m.Images) != 7 {
		t.Errorf("docker archives: %d entries, want 7: %+v", len(m.Images), m.Images)
	}
	for _, e := range m.Images {
		if e.DigestKept || e.Why != "made-manifest" || e.SourceDigest != "" {
			t.Errorf("docker archive entry %+v", e)
		}
		if got := rawManifest(t, e.Target, tlsOff); sha256Digest(got) != e.TargetDigest {
			t.Errorf("%s is %s, the mapping says %s", e.Target, sha256Digest(got), e.TargetDigest)
		}
	}
	if made.Stats.BlobsMounted == 0 {
		t.Errorf("docker archives: no shared layer mounted: %+v", made.Stats)
	}
}

// TestPushPartialIndexCompleteInTarget: when the target already holds the
// platforms an archive lacks, the original index is complete there and is
// pushed as it is, digest kept, without any option.
func TestPushPartialIndexCompleteInTarget(t *testing.T) {
	_, dist, std := builtBundle(t)
	reg := testregistry.Start(t, testregistry.Options{})
	idx, err := fixtures.Index("multi-oci", true, fixtures.LinuxAMD64, fixtures.LinuxARM64, fixtures.LinuxARMv7)
	if err != nil {
		t.Fatal(err)
	}
	if idx, err = fixtures.WithAttestation(idx, fixtures.LinuxAMD64); err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.Push(context.Background(), reg.Host+"/fixtures/multi-oci:other", idx, reg.Transport(), "", ""); err != nil {
		t.Fatal(err)
	}
	mapping := filepath.Join(t.TempDir(), "m.json")
	pushJSONRun(t, "--insecure", "--cache-dir", t.TempDir(), "--to", reg.Host, "--mapping", mapping, filepath.Join(dist, "multi.tar"))
	e := checkMapping(t, mapping).entry(t, reg.Host+"/fixtures/multi-oci:v1")
	if !e.DigestKept || e.TargetDigest != std.MultiOCI.Digest {
		t.Errorf("multi-oci: %+v", e)
	}
}

// TestPushTLSAndAuth pushes into a TLS registry with basic auth, its CA and
// credentials from the spec (the password from the environment), writes
// the node configuration, and never shows the password.
func TestPushTLSAndAuth(t *testing.T) {
	_, dist, std := builtBundle(t)
	const user, pass = "pusher", "s3cret-push-pw"
	reg := testregistry.Start(t, testregistry.Options{TLS: true, Users: map[string]string{user: pass}})
	dir := t.TempDir()
	t.Setenv("PUSH_TEST_PASSWORD", pass)
	spec := writeFile(t, dir, "target.toml", fmt.Sprintf(`[registries.%q]
ca-file = %q
auth = { username = %q, password-env = "PUSH_TEST_PASSWORD" }

# A bundle spec: push reads only its registries table.
[[group]]
name = "unused"
images = ["registry.test/fixtures/single:v1"]
`, reg.Host, reg.CAFile, user))
	ry, hd := filepath.Join(dir, "registries.yaml"), filepath.Join(dir, "certs.d")
	args := []string{"push", "--spec", spec, "--cache-dir", t.TempDir(), "--to", reg.Host + "/mirror",
		"--registries-yaml", ry, "--hosts-dir", hd, filepath.Join(dist, "tags.tar.zst")}
	out, stderr, code := runSplit(t, "", args...)
	if code != 0 {
		t.Fatalf("push: exit %d\n%s%s", code, out, stderr)
	}
	creds := "--creds=" + user + ":" + pass
	for _, ref := range []string{"/mirror/fixtures/single@" + std.SingleOCI.Digest, "/mirror/fixtures/twotags:a"} {
		got := rawManifest(t, reg.Host+ref, "--cert-dir", reg.CertDir, creds)
		if d := sha256Digest(got); d != std.SingleOCI.Digest && d != std.TwoTags.Digest {
			t.Errorf("%s: %s", ref, d)
		}
	}

	yml, err := os.ReadFile(ry)
	if err != nil {
		t.Fatal(err)
	}
	hostsFile := filepath.Join(hd, "registry.test", "hosts.toml")
	ht, err := os.ReadFile(hostsFile)
	if err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]string{"output": out + stderr, "registries.yaml": string(yml), "hosts.toml": string(ht)} {
		if strings.Contains(s, pass) {
			t.Errorf("the password is in the %s", what)
		}
	}
	// registries.yaml and hosts.toml say the same: registry.test is
	// mirrored by https://HOST under mirror/.
	var ryDoc struct {
		Mirrors map[string]struct {
			Endpoint []string
			Rewrite  map[string]string
		}
		Configs map[string]struct {
			TLS struct {
				CAFile string `yaml:"ca_file"`
			}
			Auth struct{ Username, Password string }
		}
	}
	if err := yaml.Unmarshal(yml, &ryDoc); err != nil {
		t.Fatalf("registries.yaml: %v\n%s", err, yml)
	}
	var htDoc struct {
		Server string
		Host   map[string]struct {
			Capabilities []string
			OverridePath bool `toml:"override_path"`
			CA           string
		}
	}
	if _, err := toml.Decode(string(ht), &htDoc); err != nil {
		t.Fatalf("hosts.toml: %v\n%s", err, ht)
	}
	mir := ryDoc.Mirrors["registry.test"]
	if len(mir.Endpoint) != 1 || mir.Endpoint[0] != "https://"+reg.Host || mir.Rewrite["^(.*)$"] != "mirror/$1" {
		t.Errorf("registries.yaml mirror: %+v\n%s", mir, yml)
	}
	cfg := ryDoc.Configs[reg.Host]
	if cfg.Auth.Username != user || cfg.Auth.Password != "REPLACE-WITH-PASSWORD" || cfg.TLS.CAFile == "" {
		t.Errorf("registries.yaml configs: %+v\n%s", cfg, yml)
	}
	h, ok := htDoc.Host["https://"+reg.Host+"/v2/mirror"]
	if !ok || !h.OverridePath || h.CA == "" || len(h.Capabilities) != 2 || htDoc.Server != "https://registry.test" {
		t.Fatalf("hosts.toml: %+v\n%s", htDoc, ht)
	}
	// k3s's rewrite applied to the endpoint is the host URL of hosts.toml.
	if strings.TrimSuffix(mir.Endpoint[0], "/")+"/v2/"+strings.TrimSuffix(mir.Rewrite["^(.*)$"], "/$1") != "https://"+reg.Host+"/v2/mirror" {
		t.Errorf("registries.yaml and hosts.toml disagree")
	}
	ca, err := os.ReadFile(filepath.Join(filepath.Dir(hostsFile), h.CA))
	if err != nil || !bytes.Equal(ca, mustReadBytes(t, reg.CAFile)) {
		t.Errorf("hosts.toml's ca %s: %v", h.CA, err)
	}

	// Credentials from the standard auth file when the spec has no auth.
	caOnly := writeFile(t, dir, "ca-only.toml", fmt.Sprintf(`[registries.%q]
ca-file = %q

[[group]]
name = "unused"
images = ["registry.test/fixtures/single:v1"]
`, reg.Host, reg.CAFile))
	authFile := writeFile(t, dir, "auth.json", fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, base64.StdEncoding.EncodeToString([]byte(user+":"+pass))))
	t.Setenv("REGISTRY_AUTH_FILE", authFile)
	if out, stderr, code := runSplit(t, "", "push", "--spec", caOnly, "--cache-dir", t.TempDir(), "--to", reg.Host+"/std", filepath.Join(dist, "tags.tar.zst")); code != 0 || strings.Contains(out+stderr, pass) {
		t.Errorf("push with credentials from REGISTRY_AUTH_FILE: exit %d\n%s%s", code, out, stderr)
	}
	t.Setenv("REGISTRY_AUTH_FILE", "")

	// Without the spec, TLS is verified against the system's roots only,
	// and credentials come from the standard files: refused.
	if _, stderr, code := runSplit(t, "", "push", "--cache-dir", t.TempDir(), "--to", reg.Host, filepath.Join(dist, "tags.tar.zst")); code != exitFailure || strings.Contains(stderr, pass) {
		t.Errorf("push without the spec's CA: exit %d\n%s", code, stderr)
	}
}

func mustReadBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPushUsage: bad command lines exit 2.
func TestPushUsage(t *testing.T) {
	dir := emptyArchiveDir(t)
	for _, args := range [][]string{
		{"push", dir},
		{"push", "--to", "https://x:5000", dir},
		{"push", "--to", "x:5000/Bad", dir},
		{"push", "--to", "127.0.0.1:99999", dir},
		{"push", "--to", "x:0", dir},
		{"push", "--to", "x:5000", "--partial-index", "maybe", dir},
		{"push", "--to", "x:5000"},
		{"push", "--to", "x:5000/a", "--to", "y:5000/b", "--registries-yaml", filepath.Join(t.TempDir(), "r.yaml"), dir},
	} {
		if _, stderr, code := runSplit(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, stderr)
		}
	}
}

// TestPushRetriesTransientFaults: 503s on uploads and on a manifest PUT,
// and a request that hangs, are retried under --retries and
// --response-timeout; a registry that keeps failing fails the push (exit 1).
func TestPushRetriesTransientFaults(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	px := faultproxy.Start(t, reg.Host)
	crane := filepath.Join("testdata", "crane.tar")
	args := []string{"--retries", "4", "--retry-backoff", "1ms", "--response-timeout", "2s", "push", "--insecure", "--cache-dir", t.TempDir(), "--to", px.Host}
	uploads := px.Add(faultproxy.Rule{Method: "PATCH", Path: "/blobs/uploads/", When: faultproxy.First(2), Fault: faultproxy.Status(503)})
	hang := px.Add(faultproxy.Rule{Method: "POST", Path: "/blobs/uploads/", When: faultproxy.Nth(1), Fault: faultproxy.Hang()})
	manifests := px.Add(faultproxy.Rule{Method: "PUT", Path: "/manifests/", When: faultproxy.Nth(1), Fault: faultproxy.Status(502)})
	if out, stderr, code := runSplit(t, "", append(args, crane)...); code != 0 {
		t.Fatalf("push through faults: exit %d\n%s%s\n%s", code, out, stderr, px.LogString())
	}
	if uploads.Fired() != 2 || hang.Fired() != 1 || manifests.Fired() != 1 {
		t.Errorf("faults fired: uploads %d, hang %d, manifests %d", uploads.Fired(), hang.Fired(), manifests.Fired())
	}
	if got := rawManifest(t, px.Host+"/crane/two:v1", "--tls-verify=false"); len(got) == 0 {
		t.Error("crane/two:v1 not pushed")
	}

	px.ClearRules()
	px.Add(faultproxy.Rule{Method: "PUT", Path: "/manifests/", Fault: faultproxy.Status(503)})
	args[len(args)-1] = px.Host + "/again"
	if _, stderr, code := runSplit(t, "", append(args, crane)...); code != exitFailure || !strings.Contains(stderr, "gave up after 4 attempts") {
		t.Errorf("persistent 503: exit %d\n%s", code, stderr)
	}
}
