package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/hashicorp/go-multierror"
)

func writeSpec(t *testing.T, body string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "bundle.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseValid(t *testing.T) {
	p := writeSpec(t, `
default-registry = "docker.io"
platforms = ["linux/amd64", "linux/arm64/v8", "linux/arm"]
registries."docker.io" = { mirrors = ["mirror.example.com", { location = "m2.example.com:5000/hub", pull-from-mirror = "digest-only" }] }

[registries."mirror.example.com"]
insecure = true
auth = { username = "ci", password-env = "MIRROR_PASSWORD" }

[[group]]
name = "core"
archive = "core.tar.zst"
images = [
  "busybox",
  "docker.io/library/busybox:latest",   # same image: kept once
  "registry.k8s.io/pause:3.9@sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097",
  "quay.io/x/y@sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097",
]
image-lists = ["k3s-images.txt"]

[[group]]
name = "all"
platforms = ["all"]
index = "filtered"
images = ["calico/node:v3.28.0"]
`, map[string]string{"k3s-images.txt": "# k3s\n\ndocker.io/rancher/mirrored-pause:3.6\nrancher/klipper-lb:v0.4.7  # trailing\n"})
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Platforms.String(); got != "linux/amd64, linux/arm64, linux/arm/v7" {
		t.Errorf("platforms = %q", got)
	}
	core := s.Group("core")
	var refs []string
	for _, img := range core.Images {
		refs = append(refs, img.Ref.String())
	}
	want := []string{
		"docker.io/library/busybox:latest",
		"registry.k8s.io/pause:3.9@sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097",
		"quay.io/x/y@sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097",
		"docker.io/rancher/mirrored-pause:3.6",
		"docker.io/rancher/klipper-lb:v0.4.7",
	}
	if strings.Join(refs, "\n") != strings.Join(want, "\n") {
		t.Errorf("refs:\n%s\nwant:\n%s", strings.Join(refs, "\n"), strings.Join(want, "\n"))
	}
	if l := core.Images[4].Pos; filepath.Base(l.File) != "k3s-images.txt" || l.Line != 4 {
		t.Errorf("image-list position = %v", l)
	}
	if l := core.Images[0].Pos.Line; l != 14 {
		t.Errorf("inline image line = %d, want 14", l)
	}
	if core.Archive != "core.tar.zst" || s.Group("all").Archive != "all.tar" {
		t.Errorf("archives: %q %q", core.Archive, s.Group("all").Archive)
	}
	if !s.Group("all").Platforms.All || s.Group("all").Index != image.IndexFiltered || core.Index != image.IndexOriginal {
		t.Errorf("group all: %+v", s.Group("all"))
	}
	d := s.Registries["docker.io"]
	if len(d.Mirrors) != 2 || d.Mirrors[1].PullFromMirror != PullDigestOnly || d.Mirrors[1].Host() != "m2.example.com:5000" {
		t.Errorf("mirrors: %+v", d.Mirrors)
	}
	if a := s.Registries["mirror.example.com"].Auth; a == nil || a.PasswordEnv != "MIRROR_PASSWORD" || a.Username != "ci" {
		t.Errorf("auth: %+v", a)
	}
	if s.OutputDir != filepath.Join(filepath.Dir(p), "dist") {
		t.Errorf("output dir %q", s.OutputDir)
	}
}

// Each case is a spec with one problem; the error must name its line and
// say what is wrong.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name  string
		spec  string
		files map[string]string
		line  int
		want  string
	}{
		{"unknown top key", "plataforms = []\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 1, `unknown key "plataforms"`},
		{"unknown group key", "[[group]]\nname = \"a\"\nimages = [\"x\"]\n\n[[group]]\nname = \"b\"\nimage = [\"x\"]\n", nil, 7, `unknown key "image" in [[group]]`},
		{"wrong type", "platforms = \"linux/amd64\"\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 1, `platforms must be an array of strings, e.g. ["linux/amd64"]`},
		{"syntax", "[[group]\nname = \"a\"\n", nil, 2, "expected"},
		{"bad platform", "[[group]]\nname = \"a\"\nplatforms = [\"linux/amd64\", \"linux/aarch64\"]\nimages = [\"x\"]\n", nil, 3, "did you mean linux/arm64"},
		{"bad variant", "platforms = [\"linux/arm/7\"]\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 1, "not of the form v<number>"},
		{"all mixed", "platforms = [\"all\", \"linux/amd64\"]\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 1, `"all" must stand alone`},
		{"bad reference", "[[group]]\nname = \"a\"\nimages = [\n  \"ok\",\n  \"Not/Valid\",\n]\n", nil, 5, "must be lowercase"},
		{"duplicate group", "[[group]]\nname = \"a\"\nimages = [\"x\"]\n[[group]]\nname = \"a\"\nimages = [\"y\"]\n", nil, 5, `group name "a" is used twice (first at line 2)`},
		{"duplicate archive", "[[group]]\nname = \"a\"\narchive = \"x.tar\"\nimages = [\"x\"]\n[[group]]\nname = \"b\"\narchive = \"x.tar\"\nimages = [\"y\"]\n", nil, 7, `archive "x.tar" is also written by group "a"`},
		{"archive path", "[[group]]\nname = \"a\"\narchive = \"../a.tar\"\nimages = [\"x\"]\n", nil, 3, "plain file name"},
		{"archive ext", "[[group]]\nname = \"a\"\narchive = \"a.zip\"\nimages = [\"x\"]\n", nil, 3, ".tar.zst"},
		{"no images", "[[group]]\nname = \"a\"\n", nil, 1, `group "a" has no images`},
		{"no groups", "platforms = [\"all\"]\n", nil, 0, "no [[group]]"},
		{"missing list", "[[group]]\nname = \"a\"\nimage-lists = [\"nope.txt\"]\n", nil, 3, "nope.txt: no such file"},
		{"bad list line", "[[group]]\nname = \"a\"\nimage-lists = [\"l.txt\"]\n", map[string]string{"l.txt": "ok:1\n\nBAD:x\n"}, 3, "l.txt:3: image reference"},
		{"literal password", "[registries.\"r.example.com\"]\nauth = { username = \"u\", password = \"hunter2\" }\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 2, "literal secrets are not accepted"},
		{"registry password", "[registries.\"r.example.com\"]\npassword = \"hunter2\"\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 2, "auth.password-env"},
		{"two auth sources", "[registries.\"r.example.com\"]\nauth = { file = \"a.json\", helper = \"ecr-login\" }\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 2, "exclude each other"},
		{"password-env without user", "[registries.\"r.example.com\"]\nauth = { password-env = \"P\" }\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 2, "exactly one of username or username-env"},
		{"registry scheme", "[registries.\"https://r.example.com\"]\ninsecure = true\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 1, "not a registry host"},
		{"mirror without location", "registries.\"docker.io\" = { mirrors = [{ insecure = true }] }\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 1, "location is required"},
		{"mirror bad key", "registries.\"docker.io\" = { mirrors = [{ location = \"m.example.com\", tls = false }] }\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 1, `unknown key "tls" in a mirror`},
		{"missing ca", "[registries.\"r.example.com\"]\nca-file = \"ca.pem\"\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 2, "ca.pem: no such file or directory"},
		{"bad index", "index = \"sparse\"\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil, 1, `index = "sparse"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeSpec(t, c.spec, c.files)
			_, err := Load(p)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, errdefs.ErrSpec) {
				t.Errorf("error does not match ErrSpec: %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not contain %q", msg, c.want)
			}
			if c.line > 0 && c.files == nil && !strings.Contains(msg, p+":"+strconv.Itoa(c.line)+":") {
				t.Errorf("error %q does not name %s:%d", msg, p, c.line)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error leaks the secret: %q", msg)
			}
		})
	}
}

// All problems of a spec come in one error, in reading order.
func TestParseGathersAllErrors(t *testing.T) {
	p := writeSpec(t, "platforms = [\"linux/x86_64\"]\n[[group]]\nname = \"a\"\nimages = [\"A\", \"b\", \"C\"]\n[[group]]\nname = \"a\"\n", nil)
	_, err := Load(p)
	var m *multierror.Error
	if !errors.As(err, &m) {
		t.Fatalf("not a multierror: %v", err)
	}
	if len(m.Errors) != 5 { // 1 platform, 2 references, 1 empty group, 1 duplicate name
		t.Fatalf("got %d errors, want 5:\n%v", len(m.Errors), err)
	}
	last := 0
	for _, e := range m.Errors {
		var ce *errdefs.Error
		if !errors.As(e, &ce) || ce.Pos.Line < last {
			t.Fatalf("errors not positioned in order: %v", err)
		}
		last = ce.Pos.Line
	}
	if !strings.HasPrefix(err.Error(), "5 problems:") {
		t.Errorf("summary line: %q", strings.SplitN(err.Error(), "\n", 2)[0])
	}
}

// An unknown key in an inline array of tables used to spin forever in
// findGroupKey: the locator's prefix fallback answered for every index.
func TestParseUnknownKeyInInlineGroupsEnds(t *testing.T) {
	for _, spec := range []string{
		"group = [ { name = \"a\", images = [\"busybox\"], extra = 1 } ]\n",
		"group = [\n  { name = \"a\", images = [\"busybox\"] },\n  { name = \"b\", images = [\"busybox\"], extra = 1 },\n]\n",
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Parse([]byte(spec), "bundle.toml")
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), `unknown key "extra"`) {
				t.Errorf("%q: error %v, want unknown key \"extra\"", spec, err)
			}
			want := "bundle.toml:1:"
			if strings.Count(spec, "\n") > 1 {
				want = "bundle.toml:3:"
			}
			if err != nil && !strings.Contains(err.Error(), want) {
				t.Errorf("%q: error %v does not name %s", spec, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Parse(%q) did not return within 5s", spec)
		}
	}
}

// Every type error of a spec comes at once, each at its line, in the
// spec's words rather than Go's.
func TestParseReportsEveryTypeError(t *testing.T) {
	spec := "platforms = \"linux/amd64\"\n[registries.\"quay.io\"]\ninsecure = \"yes\"\n[[group]]\nname = \"a\"\nimages = \"busybox\"\n"
	_, err := Parse([]byte(spec), "bundle.toml")
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		`bundle.toml:1: platforms must be an array of strings, e.g. ["linux/amd64"]`,
		`bundle.toml:3: registries."quay.io".insecure must be true or false`,
		`bundle.toml:6: group "a": images must be an array of strings, e.g. ["busybox:1.36"]`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "incompatible types") || strings.Contains(msg, "destination has type") {
		t.Errorf("error speaks Go:\n%s", msg)
	}
}

// A syntax error's column lies on the line it names.
func TestParseSyntaxColumnOnTheLine(t *testing.T) {
	for _, spec := range []string{
		"name = \"abc\n",
		"a = \"x\"\nb = 'unterminated\nc = 1\n",
		"[[group]]\nname \"a\"\n",
		"[[group]\nname = \"a\"\n",
		"k = \"\"\"abc\n",
		"a = [1,\n",
	} {
		_, err := Parse([]byte(spec), "b.toml")
		var pe *errdefs.Error
		if !errors.As(err, &pe) {
			t.Fatalf("%q: %v is not positioned", spec, err)
		}
		lines := strings.Split(spec, "\n")
		if pe.Pos.Line < 1 || pe.Pos.Line > len(lines) {
			t.Errorf("%q: line %d is not in the file", spec, pe.Pos.Line)
			continue
		}
		if n := len([]rune(lines[pe.Pos.Line-1])); pe.Pos.Col > n {
			t.Errorf("%q: %v: column %d past the end of line %d (%d characters)", spec, err, pe.Pos.Col, pe.Pos.Line, n)
		}
	}
}

// TestLoadRegistries: push --spec takes a file with only registries, the
// same table as a spec's checked the same way; Load (lock, build) still
// wants a group, and says what such a file is for.
func TestLoadRegistries(t *testing.T) {
	p := writeSpec(t, `# the target, nothing else
[registries."registry.internal:5000"]
ca-file = "certs/ca.pem"
auth = { username = "pusher", password-env = "REGISTRY_PASSWORD" }

[registries."lab.internal"]
insecure = true
`, map[string]string{"certs/ca.pem": "x"})
	s, err := LoadRegistries(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Registries["registry.internal:5000"]
	if !s.RegistriesOnly || len(s.Groups) != 0 || len(s.Registries) != 2 || r == nil || r.CAFile != filepath.Join(filepath.Dir(p), "certs", "ca.pem") ||
		r.Auth == nil || r.Auth.Username != "pusher" || !s.Registries["lab.internal"].Insecure || r.Pos.Line != 2 {
		t.Fatalf("registries file: %+v, %+v", s, r)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "no [[group]]") || !strings.Contains(err.Error(), "push --spec") {
		t.Errorf("Load of a registries file: %v", err)
	}

	// A bundle spec is read whole, as Load reads it.
	full := writeSpec(t, "[registries.\"r.example.com\"]\ninsecure = true\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n", nil)
	if s, err := LoadRegistries(context.Background(), full); err != nil || s.RegistriesOnly || len(s.Groups) != 1 || !s.Registries["r.example.com"].Insecure {
		t.Errorf("LoadRegistries of a spec: %+v, %v", s, err)
	}

	for _, c := range []struct {
		name, spec string
		line       int
		want       string
	}{
		{"literal password", "[registries.\"r.example.com\"]\nauth = { username = \"u\", password = \"hunter2\" }\n", 2, "literal secrets are not accepted"},
		{"unknown key", "[registries.\"r.example.com\"]\ninsecur = true\n", 2, `unknown key "insecur" in registries.r.example.com`},
		{"wrong type", "[registries.\"r.example.com\"]\ninsecure = \"yes\"\n", 2, "insecure must be true or false"},
		{"missing ca", "[registries.\"r.example.com\"]\nca-file = \"ca.pem\"\n", 2, "ca.pem: no such file or directory"},
		{"scheme in the host", "[registries.\"https://r.example.com\"]\ninsecure = true\n", 1, "not a registry host"},
		// Anything but registries makes it a spec, and a spec needs a group.
		{"spec without a group", "platforms = [\"all\"]\n[registries.\"r.example.com\"]\ninsecure = true\n", 0, "no [[group]]"},
		{"empty", "", 0, "no [[group]]"},
		{"empty registries", "[registries]\n", 0, "no [[group]]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeSpec(t, c.spec, nil)
			_, err := LoadRegistries(context.Background(), p)
			if err == nil || !errors.Is(err, errdefs.ErrSpec) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an ErrSpec with %q", err, c.want)
			}
			if c.line > 0 && !strings.Contains(err.Error(), p+":"+strconv.Itoa(c.line)+":") {
				t.Errorf("error %q does not name %s:%d", err, p, c.line)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the secret: %q", err)
			}
		})
	}
}
