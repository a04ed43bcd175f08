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
