package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/internal/tomlpos"
)

var specSeeds = []string{
	"[[signatures]]\nrequire = \"insecureAcceptAnything\"\n[[signatures]]\nscope = \"r.example.com/team\"\nrequire = \"sigstoreSigned\"\nkeys = [\"a.pub\", \"b.pub\"]\nverify-platforms = true\n[[signatures]]\nscope = \"quay.io\"\nrequire = \"reject\"\n[[group]]\nname = \"a\"\nimages = [\"r.example.com/team/x:1\"]\nsignatures = { require = \"sigstoreSigned\", fulcio-ca = \"ca.pem\", oidc-issuer = \"https://i\", subject-email = \"e@x\", rekor-key = \"r.pub\" }\ncarry-signatures = true\n",
	"[[group]]\nname = \"a\"\nimages = [\"busybox\"]\n",
	"default-registry = \"docker.io\"\nplatforms = [\"linux/amd64\", \"linux/arm64/v8\"]\nregistries.\"docker.io\" = { mirrors = [\"m.example.com\", { location = \"m2.example.com:5000/hub\", pull-from-mirror = \"digest-only\" }] }\n\n[registries.\"r.example.com\"]\ninsecure = true\nauth = { username = \"ci\", password-env = \"P\" }\n\n[[group]]\nname = \"core\"\narchive = \"core.tar.zst\"\nimages = [\n  \"busybox\",   # c\n  'alpine:3.19',\n]\n",
	"group = [ { name = \"a\", images = [\"busybox\"], extra = 1 } ]\n",
	"platforms = \"linux/amd64\"\n[[group]]\nname = \"a\"\nimages = \"busybox\"\n",
	"[[group]\nname = \"a\"\n",
	"name = \"abc\n",
	"k = \"\"\"abc\n",
	"[group]\nname = \"g\"\nimages = [\"busybox\"]\n",
	"a.b.\"c\" = { d = [1, 2.5, 1979-05-27T07:32:00Z, [\"x\"]] }\n",
	// Files that are not regular files: refused, never read (a read of
	// /dev/zero ran until the kernel killed the process).
	"[[signatures]]\nrequire = \"sigstoreSigned\"\nkey = \"/dev/zero\"\n[[group]]\nname = \"a\"\nmanifests = [\"/dev/zero\"]\nimage-lists = [\"/dev/zero\", \"/dev/stdin\"]\n",
	"[registries.\"r.example.com\"]\nca-file = \"/dev/zero\"\n[[group]]\nname = \"a\"\nimages = [\"busybox\"]\nsignatures = { require = \"sigstoreSigned\", fulcio-ca = \"/dev/urandom\", oidc-issuer = \"https://i\", subject-email = \"e@x\", rekor-key = \"/dev/zero\" }\n",
	"[registries.\"registry.internal:5000\"]\nca-file = \"ca.pem\"\nauth = { username = \"pusher\", password-env = \"P\" }\n",
	// Helm charts, of every source, and a values file that is no file.
	"cache = false\n[[group]]\nname = \"apps\"\n[[group.charts]]\nrepo = \"https://charts.example.com/x\"\nname = \"web\"\nversion = \"~1.2\"\nvalues = [\"/dev/zero\"]\nset = { a = { b = [1, \"x\"] } }\nkube-version = \"1.31\"\napi-versions = [\"monitoring.coreos.com/v1\"]\nextra-images = [\"busybox\"]\n[[group.charts]]\noci = \"oci://r.example.com:5000/c/op\"\n[[group.charts]]\npath = \"charts/x.tgz\"\nrelease-name = \"X\"\n",
	"[[group]]\nname = \"apps\"\ncharts = [ { repo = \"ftp://x\", oci = \"oci://a/b:1\" }, 1 ]\n",
}

// Parse never hangs or panics, and each of its errors is a spec error with
// a place: a line inside the file and a column inside that line. The same
// holds for ParseRegistries, which accepts no groups only for a file with
// nothing but registries.
func FuzzParse(f *testing.F) {
	for _, s := range specSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParsed(t, data, false)
		checkParsed(t, data, true)
	})
}

func checkParsed(t *testing.T, data []byte, registriesFile bool) {
	t.Helper()
	spec, err := parse(context.Background(), data, "bundle.toml", registriesFile)
	if err == nil {
		switch {
		case spec == nil:
			t.Fatal("no spec and no error")
		case spec.RegistriesOnly && (!registriesFile || len(spec.Groups) > 0 || len(spec.Registries) == 0):
			t.Fatalf("a registries file that is not one: %+v", spec)
		case !spec.RegistriesOnly && len(spec.Groups) == 0:
			t.Fatalf("accepted a spec without groups: %+v", spec)
		}
		return
	}
	if !errors.Is(err, errdefs.ErrSpec) {
		t.Fatalf("error is not ErrSpec: %v", err)
	}
	lines := strings.Split(string(data), "\n")
	for _, e := range unwrapAll(err) {
		var pe *errdefs.Error
		if !errors.As(e, &pe) {
			t.Fatalf("error without a place: %v", e)
		}
		if pe.Pos.File == "bundle.toml" && pe.Pos.Line > len(lines) {
			t.Fatalf("%v: line %d of a %d-line file", e, pe.Pos.Line, len(lines))
		}
		if pe.Pos.Col > 0 && (pe.Pos.Line < 1 || pe.Pos.Col > len([]rune(lines[pe.Pos.Line-1]))) {
			t.Fatalf("%v: column %d is not on line %d", e, pe.Pos.Col, pe.Pos.Line)
		}
	}
}

func unwrapAll(err error) []error {
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		return m.Unwrap()
	}
	if m, ok := err.(interface{ WrappedErrors() []error }); ok {
		return m.WrappedErrors()
	}
	return []error{err}
}

// The position scanner ends on any text and only reports lines that exist.
func FuzzLocator(f *testing.F) {
	for _, s := range specSeeds {
		f.Add(s, "group", 0, "images")
	}
	f.Fuzz(func(t *testing.T, src, a string, i int, b string) {
		l := tomlpos.New(src)
		n := strings.Count(src, "\n") + 1
		for _, p := range [][]any{{a}, {a, i}, {a, i, b}, {a, b}} {
			if line := l.Line(p...); line < 0 || line > n {
				t.Fatalf("Line(%v) = %d, file has %d lines", p, line, n)
			}
			if line, ok := l.Exact(p...); ok && (line < 1 || line > n) {
				t.Fatalf("Exact(%v) = %d, file has %d lines", p, line, n)
			}
		}
		if i >= 0 && i < 1000 && len(src) < 4096 {
			for j := 0; j <= i; j++ { // a loop over entries must end
				if _, ok := l.Exact(a, j); !ok {
					break
				}
			}
		}
		if c := tomlpos.Column(src, i, len(src)/2); c < 0 {
			t.Fatalf("negative column %d", c)
		}
	})
}

// The image-list reader gives each image its own line, and each problem
// too.
func FuzzImageList(f *testing.F) {
	f.Add([]byte("# k3s\n\ndocker.io/rancher/mirrored-pause:3.6\nrancher/klipper-lb:v0.4.7  # trailing\n"))
	f.Add([]byte("ok:1\n\nBAD:x\n"))
	f.Add([]byte("busybox\r\nRancher/Pause:3.6\n"))
	f.Add([]byte("quay.io/x/y@sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var errs errorList
		imgs := parseImageList(data, "l.txt", "docker.io", &errs)
		n := strings.Count(string(data), "\n") + 1
		for _, img := range imgs {
			if img.Pos.File != "l.txt" || img.Pos.Line < 1 || img.Pos.Line > n {
				t.Fatalf("image %s at %v in a %d-line file", img.Ref, img.Pos, n)
			}
			if img.Ref.String() == "" {
				t.Fatalf("empty reference at %v", img.Pos)
			}
		}
		for _, e := range errs.errs {
			var pe *errdefs.Error
			if !errors.As(e, &pe) || pe.Pos.Line < 1 || pe.Pos.Line > n {
				t.Fatalf("problem without a line in the file: %v", e)
			}
		}
	})
}

// The manifest reader never hangs or panics, gives each image a line of
// the file, and each problem too.
func FuzzManifestImages(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "specs", "valid", "k8s", "*.yaml"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("kind: Pod\nspec:\n  containers:\n  - name: a\n    image: 42\n  - image: \"UPPER/case\"\n"))
	f.Add([]byte("kind: Pod\nspec: {containers: [{image: ok}]\n  bad: indent\n"))
	f.Add([]byte("a: &x {kind: Pod}\nb: *x\n---\nkind: List\nitems: [&p {kind: Pod, spec: {containers: [{image: busybox}]}}, *p]\n"))
	f.Add(aliasBomb(8, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		var errs errorList
		imgs := parseManifests(data, "m.yaml", "docker.io", &errs)
		// Each container is read once however many aliases name it, so
		// no more images come out than image keys went in.
		if keys := strings.Count(string(data), "image"); len(imgs) > keys {
			t.Fatalf("%d images from %d image keys: aliased nodes were read more than once", len(imgs), keys)
		}
		n := strings.Count(string(data), "\n") + 1
		for _, img := range imgs {
			if img.Pos.File != "m.yaml" || img.Pos.Line < 1 || img.Pos.Line > n {
				t.Fatalf("image %s at %v in a %d-line file", img.Ref, img.Pos, n)
			}
			if img.Ref.String() == "" {
				t.Fatalf("empty reference at %v", img.Pos)
			}
		}
		for _, e := range errs.errs {
			var pe *errdefs.Error
			if !errors.As(e, &pe) || !errors.Is(e, errdefs.ErrSpec) || pe.Pos.File != "m.yaml" || pe.Pos.Line < 1 || pe.Pos.Line > n {
				t.Fatalf("problem without a line in the file: %v", e)
			}
		}
	})
}
