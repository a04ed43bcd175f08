package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-multierror"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
)

// pubKeyPEM makes a fresh P-256 public key, PEM-encoded as cosign writes
// cosign.pub.
func pubKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

const sigSpec = `
[[signatures]]
require = "insecureAcceptAnything"

[[signatures]]
scope = "registry.example.com"
require = "sigstoreSigned"
key = "keys/a.pub"

[[signatures]]
scope = "registry.example.com/team/app"
require = "sigstoreSigned"
keys = ["keys/a.pub", "keys/b.pub"]
verify-platforms = true

[[signatures]]
scope = "quay.io/bad"
require = "reject"

[[group]]
name = "core"
images = ["registry.example.com/team/app:v1", "registry.example.com/other:v1", "busybox", "quay.io/bad/x:1", "quay.io/badly/x:1"]

[[group]]
name = "extra"
images = ["busybox"]
signatures = { require = "sigstoreSigned", fulcio-ca = "fulcio.pem", oidc-issuer = "https://issuer.example.com", subject-email = "rel@example.com", rekor-key = "keys/rekor.pub" }
carry-signatures = false

[[group]]
name = "plain"
images = ["busybox"]
`

func TestParseSignatures(t *testing.T) {
	files := map[string]string{"keys/a.pub": pubKeyPEM(t), "keys/b.pub": pubKeyPEM(t), "keys/rekor.pub": pubKeyPEM(t), "fulcio.pem": "ca"}
	p := writeSpec(t, sigSpec, files)
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Signatures) != 4 {
		t.Fatalf("signatures: %d", len(s.Signatures))
	}
	core := s.Group("core")
	req := func(g *Group, r string) string {
		ref, err := image.ParseReference(r, "docker.io")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, q := range s.SignatureRequirements(g, ref) {
			out = append(out, q.String())
		}
		return strings.Join(out, "; ")
	}
	for _, c := range []struct{ g, ref, want string }{
		{"core", "registry.example.com/team/app:v1", `sigstoreSigned by one of the keys keys/a.pub, keys/b.pub (signatures scope "registry.example.com/team/app")`},
		{"core", "registry.example.com/team/application:v1", `sigstoreSigned by key keys/a.pub (signatures scope "registry.example.com")`},
		{"core", "registry.example.com/other:v1", `sigstoreSigned by key keys/a.pub (signatures scope "registry.example.com")`},
		{"core", "busybox", ``},
		{"core", "quay.io/bad/x:1", `reject (signatures scope "quay.io/bad")`},
		{"core", "quay.io/badly/x:1", ``},
		{"extra", "busybox", `sigstoreSigned by Fulcio CA fulcio.pem for issuer=https://issuer.example.com subject=rel@example.com (group "extra" signatures)`},
	} {
		if got := req(s.Group(c.g), c.ref); got != c.want {
			t.Errorf("%s %s:\n got %s\nwant %s", c.g, c.ref, got, c.want)
		}
	}
	team := s.Signatures[2]
	if !team.VerifyPlatforms || team.Keys[0].Path != filepath.Join(filepath.Dir(p), "keys/a.pub") || !strings.HasPrefix(team.Keys[1].Fingerprint, "sha256:") || team.Keys[0].Fingerprint == team.Keys[1].Fingerprint {
		t.Errorf("team requirement: %+v", team)
	}
	if team.Pos.Line != 10 {
		t.Errorf("team position %v", team.Pos)
	}
	if !core.CarrySignatures || s.Group("extra").CarrySignatures || s.Group("plain").CarrySignatures {
		t.Errorf("carry-signatures: core %v extra %v plain %v", core.CarrySignatures, s.Group("extra").CarrySignatures, s.Group("plain").CarrySignatures)
	}
	if got := strings.Join(s.SigstoreHosts(), ","); got != "docker.io,registry.example.com" {
		t.Errorf("sigstore hosts %q", got)
	}
}

func TestParseSignatureErrors(t *testing.T) {
	key := pubKeyPEM(t)
	g := "\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n"
	cases := []struct {
		name, spec, want string
		line             int
	}{
		{"no require", "[[signatures]]\nkey = \"k.pub\"\n" + g, "require is missing", 1},
		{"bad require", "[[signatures]]\nrequire = \"sigstoresigned\"\nkey = \"k.pub\"\n" + g, `did you mean "sigstoreSigned"`, 2},
		{"gpg", "[[signatures]]\nrequire = \"signedBy\"\n" + g, "GPG signatures are not supported", 2},
		{"no key", "[[signatures]]\nrequire = \"sigstoreSigned\"\n" + g, "needs key, keys", 1},
		{"missing key file", "[[signatures]]\nrequire = \"sigstoreSigned\"\nkey = \"nope.pub\"\n" + g, "key nope.pub: no such file", 3},
		{"not a key", "[[signatures]]\nrequire = \"sigstoreSigned\"\nkey = \"bundle.toml\"\n" + g, "not a PEM file", 3},
		{"key and keys", "[[signatures]]\nrequire = \"sigstoreSigned\"\nkey = \"k.pub\"\nkeys = [\"k.pub\"]\n" + g, "exclude each other", 4},
		{"same key twice", "[[signatures]]\nrequire = \"sigstoreSigned\"\nkeys = [\"k.pub\", \"./k.pub\"]\n" + g, "twice", 3},
		{"key on reject", "[[signatures]]\nrequire = \"reject\"\nkey = \"k.pub\"\n" + g, `key goes with require = "sigstoreSigned" only`, 3},
		{"bad scope", "[[signatures]]\nscope = \"https://r.example.com\"\nrequire = \"reject\"\n" + g, "not host[:port]", 2},
		{"scope with tag", "[[signatures]]\nscope = \"r.example.com/a:v1\"\nrequire = \"reject\"\n" + g, "not host[:port]", 2},
		{"duplicate scope", "[[signatures]]\nscope = \"r.example.com\"\nrequire = \"reject\"\n[[signatures]]\nscope = \"r.example.com\"\nrequire = \"reject\"\n" + g, "also given at line 1", 4},
		{"fulcio without rekor", "[[signatures]]\nrequire = \"sigstoreSigned\"\nfulcio-ca = \"k.pub\"\noidc-issuer = \"i\"\nsubject-email = \"e\"\n" + g, "needs rekor-key", 1},
		{"fulcio partial", "[[signatures]]\nrequire = \"sigstoreSigned\"\nfulcio-ca = \"k.pub\"\nrekor-key = \"k.pub\"\n" + g, "oidc-issuer is missing", 1},
		{"wrong type", "[[signatures]]\nrequire = \"sigstoreSigned\"\nkeys = \"k.pub\"\n" + g, `keys must be an array of strings, e.g. ["keys/a.pub", "keys/b.pub"]`, 3},
		{"not array", "[signatures]\nrequire = \"reject\"\n" + g, "write each entry as [[signatures]]", 1},
		{"unknown key", "[[signatures]]\nrequire = \"reject\"\nkye = \"k.pub\"\n" + g, `unknown key "kye" in [[signatures]]`, 3},
		{"group scope", "[[group]]\nname = \"a\"\nimages = [\"x\"]\nsignatures = { scope = \"r.example.com\", require = \"reject\" }\n", "scope belongs in a top-level", 4},
		{"group unknown key", "[[group]]\nname = \"a\"\nimages = [\"x\"]\nsignatures = { require = \"reject\", kye = 1 }\n", `unknown key "kye" in a group's signatures`, 4},
		{"carry type", "[[group]]\nname = \"a\"\nimages = [\"x\"]\ncarry-signatures = \"yes\"\n", "carry-signatures must be true or false", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeSpec(t, c.spec, map[string]string{"k.pub": key})
			_, err := Load(p)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, errdefs.ErrSpec) {
				t.Errorf("not ErrSpec: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if !strings.Contains(err.Error(), p+":"+strconv.Itoa(c.line)+":") {
				t.Errorf("error %q does not name line %d", err, c.line)
			}
		})
	}
}

// Every bad requirement is reported at once.
func TestParseSignatureErrorsGathered(t *testing.T) {
	spec := "[[signatures]]\nrequire = \"sigstoreSigned\"\nkey = \"a.pub\"\n[[signatures]]\nscope = \"r.example.com\"\nrequire = \"nope\"\n[[group]]\nname = \"a\"\nimages = [\"x\"]\nsignatures = { require = \"sigstoreSigned\", keys = [\"b.pub\"] }\n"
	_, err := Load(writeSpec(t, spec, nil))
	var m *multierror.Error
	if !errors.As(err, &m) || len(m.Errors) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
}

func TestKeyFingerprintStable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k.pub")
	if err := os.WriteFile(p, []byte(pubKeyPEM(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err1 := KeyFingerprint(p)
	b, err2 := KeyFingerprint(p)
	if err1 != nil || err2 != nil || a != b || len(a) != len("sha256:")+64 {
		t.Fatalf("%q %q %v %v", a, b, err1, err2)
	}
}

// A scope is read as an image reference written the same way: "busybox"
// and "docker.io/busybox" are docker.io/library/busybox, so a reject
// there refuses busybox:1.36. Issue 15, defect 3: they matched nothing.
func TestScopesAreNormalisedAsReferences(t *testing.T) {
	p := writeSpec(t, `
[[signatures]]
scope = "docker.io/busybox"
require = "reject"

[[signatures]]
scope = "nginx"
require = "reject"

[[signatures]]
scope = "library/redis"
require = "reject"

[[signatures]]
scope = "index.docker.io/untrusted"
require = "reject"

[[signatures]]
scope = "index.docker.io"
require = "sigstoreSigned"
key = "k.pub"

[[signatures]]
scope = "localhost:5000"
require = "reject"

[[group]]
name = "g"
images = ["busybox:1.36", "docker.io/library/busybox@sha256:`+strings.Repeat("a", 64)+`", "nginx", "redis:7", "untrusted:1", "docker.io/untrusted/x:1", "alpine:3", "docker.io/busyboxer/x:1", "docker.io/busybox/tools:1", "docker.io/nginx/nginx-ingress:1", "localhost:5000/x:1"]
`, map[string]string{"k.pub": pubKeyPEM(t)})
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	g := s.Group("g")
	want := map[string]string{
		"busybox:1.36": "reject (signatures scope \"docker.io/busybox\" (docker.io/library/busybox))",
		"docker.io/library/busybox@sha256:" + strings.Repeat("a", 64): "reject (signatures scope \"docker.io/busybox\" (docker.io/library/busybox))",
		"nginx":   "reject (signatures scope \"nginx\" (docker.io/library/nginx))",
		"redis:7": "reject (signatures scope \"library/redis\" (docker.io/library/redis))",
		// "docker.io/untrusted" is the official image and, as the README's
		// example means it, the namespace.
		"untrusted:1":               "reject (signatures scope \"index.docker.io/untrusted\" (docker.io/library/untrusted))",
		"docker.io/untrusted/x:1":   "reject (signatures scope \"index.docker.io/untrusted\" (docker.io/library/untrusted))",
		"docker.io/busybox/tools:1": "reject (signatures scope \"docker.io/busybox\" (docker.io/library/busybox))",
		// Not covered by a more specific scope: the registry's.
		"alpine:3":                        "sigstoreSigned by key k.pub (signatures scope \"index.docker.io\" (docker.io))",
		"docker.io/busyboxer/x:1":         "sigstoreSigned by key k.pub (signatures scope \"index.docker.io\" (docker.io))",
		"docker.io/nginx/nginx-ingress:1": "sigstoreSigned by key k.pub (signatures scope \"index.docker.io\" (docker.io))",
		"localhost:5000/x:1":              "reject (signatures scope \"localhost:5000\")",
	}
	for _, img := range g.Images {
		var got []string
		for _, r := range s.SignatureRequirements(g, img.Ref) {
			got = append(got, r.String())
		}
		if w, ok := want[img.Ref.Written]; !ok || strings.Join(got, "; ") != w {
			t.Errorf("%s (%s):\n got %q\nwant %q", img.Ref.Written, img.Ref, got, w)
		}
	}
	if got := strings.Join(s.SigstoreHosts(), ","); got != "docker.io" {
		t.Errorf("sigstore hosts %q", got)
	}

	// On another default registry, a scope without a host is there, as
	// the spec's images are.
	p = writeSpec(t, "default-registry = \"registry.corp:5000\"\n[[signatures]]\nscope = \"team/app\"\nrequire = \"reject\"\n[[group]]\nname = \"g\"\nimages = [\"team/app:1\", \"team/application:1\", \"docker.io/team/app:1\"]\n", nil)
	if s, err = Load(p); err != nil {
		t.Fatal(err)
	}
	for _, img := range s.Group("g").Images {
		rejected := len(s.SignatureRequirements(s.Group("g"), img.Ref)) > 0
		if rejected != (img.Ref.Written == "team/app:1") {
			t.Errorf("%s (%s): rejected %v", img.Ref.Written, img.Ref, rejected)
		}
	}
}

// Two scopes that name the same repository are one scope written twice,
// reported at the second with the line of the first; a scope that no
// image reference could have is refused at its line.
func TestScopeErrorsAfterNormalising(t *testing.T) {
	g := "\n[[group]]\nname = \"a\"\nimages = [\"x\"]\n"
	for _, c := range []struct {
		name, spec, want string
		line             int
	}{
		{"same image", "[[signatures]]\nscope = \"busybox\"\nrequire = \"reject\"\n[[signatures]]\nscope = \"docker.io/library/busybox\"\nrequire = \"reject\"\n" + g,
			`scope "docker.io/library/busybox" is also given at line 1`, 4},
		{"same registry", "[[signatures]]\nscope = \"docker.io\"\nrequire = \"reject\"\n[[signatures]]\nscope = \"index.docker.io\"\nrequire = \"reject\"\n" + g,
			`scope "index.docker.io" (docker.io) is also given at line 1`, 4},
		{"uppercase path", "[[signatures]]\nscope = \"Registry.example.com/Team\"\nrequire = \"reject\"\n" + g, "not host[:port]", 2},
		{"name too long", "[[signatures]]\nscope = \"" + strings.Repeat("a", 300) + "\"\nrequire = \"reject\"\n" + g, "names no repository an image could have", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeSpec(t, c.spec, nil)
			_, err := Load(p)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, errdefs.ErrSpec) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p+":"+strconv.Itoa(c.line)+":") {
				t.Errorf("error %q: want %q at line %d", err, c.want, c.line)
			}
		})
	}
}
