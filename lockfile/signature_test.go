package lockfile

import (
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/image"
)

func signedSample() *Lock {
	l := sample()
	img := &l.Groups[0].Images[0] // busybox, an index
	img.Signatures = []Signature{
		{Manifest: d("b"), Digest: d("8"), Key: "keys/a.pub", Fingerprint: d("9").String()},
		{Manifest: d("a"), Digest: d("7"), Key: "keys/a.pub", Fingerprint: d("9").String()},
		{Manifest: d("a"), Digest: d("6"), Identity: "issuer=https://i subject=e@x"},
	}
	return l
}

func TestSignaturesRoundTrip(t *testing.T) {
	b1, err := signedSample().Encode("bundle.toml")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(b1, "bundle.lock")
	if err != nil {
		t.Fatalf("%v\n%s", err, b1)
	}
	b2, _ := l.Encode("bundle.toml")
	if string(b1) != string(b2) {
		t.Fatalf("not stable:\n%s\n---\n%s", b1, b2)
	}
	img := l.Group("z").Image("docker.io/library/busybox:latest")
	if len(img.Signatures) != 3 || img.Signatures[0].Manifest != d("a") || img.Signatures[2].Manifest != d("b") {
		t.Errorf("signatures not sorted: %+v", img.Signatures)
	}
	if img.SignatureFor(d("b"), d("9").String(), "") == nil || img.SignatureFor(d("a"), "", "issuer=https://i subject=e@x") == nil || img.SignatureFor(d("d"), d("9").String(), "") != nil {
		t.Error("SignatureFor")
	}
	if !strings.Contains(string(b1), "[[group.image.signature]]") {
		t.Errorf("no signature tables:\n%s", b1)
	}
	// Without signatures the output has no trace of them.
	plain, _ := sample().Encode("bundle.toml")
	if strings.Contains(string(plain), "signature") {
		t.Errorf("unsigned lockfile mentions signatures:\n%s", plain)
	}
}

func TestSignaturesStrict(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Signature)
		want string
	}{
		{"foreign manifest", func(s *Signature) { s.Manifest = d("4") }, "neither the image nor one of its platforms"},
		{"bad digest", func(s *Signature) { s.Digest = "sha256:xyz" }, "signature: digest"},
		{"no key", func(s *Signature) { s.Key = ""; s.Fingerprint = "" }, "key and fingerprint (or identity) are required"},
		{"key and identity", func(s *Signature) { s.Identity = "x" }, "a key or an identity, not both"},
		{"bad fingerprint", func(s *Signature) { s.Fingerprint = "md5:1" }, "fingerprint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := signedSample()
			c.edit(&l.Groups[0].Images[0].Signatures[0])
			b, err := l.Encode("bundle.toml")
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(b, "bundle.lock")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want %q, got %v\n%s", c.want, err, b)
			}
			if !strings.Contains(err.Error(), "bundle.lock:") {
				t.Errorf("no position: %v", err)
			}
		})
	}
	l := signedSample()
	b, _ := l.Encode("bundle.toml")
	bad := strings.Replace(string(b), `identity = "issuer`, `secret = "x"`+"\nidentity = \"issuer", 1)
	if _, err := Parse([]byte(bad), "bundle.lock"); err == nil || !strings.Contains(err.Error(), `unknown key "group.image.signature.secret"`) {
		t.Errorf("unknown key: %v", err)
	}
}

func withArtifacts() *Lock {
	l := signedSample()
	l.Groups[0].Attachments = true
	img := &l.Groups[0].Images[0]
	img.Artifacts = []Artifact{
		{Kind: ArtifactSBOM, Subject: d("a"), Tag: ArtifactTag(d("a"), ArtifactSBOM), Digest: d("5"), MediaType: image.OCIManifest, Size: 9},
		{Kind: ArtifactSignature, Subject: d("a"), Tag: "sha256-" + strings.Repeat("a", 64) + ".sig", Digest: d("7"), MediaType: image.OCIManifest, Size: 9},
		{Kind: ArtifactReferrer, Subject: d("b"), Digest: d("4"), MediaType: image.OCIManifest, ArtifactType: "application/spdx+json", Size: 9},
	}
	return l
}

func TestArtifactsRoundTrip(t *testing.T) {
	b1, err := withArtifacts().Encode("bundle.toml")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(b1, "bundle.lock")
	if err != nil {
		t.Fatalf("%v\n%s", err, b1)
	}
	b2, _ := l.Encode("bundle.toml")
	if string(b1) != string(b2) || !strings.Contains(string(b1), "attachments = true") || !strings.Contains(string(b1), "[[group.image.artifact]]") {
		t.Fatalf("round trip:\n%s\n---\n%s", b1, b2)
	}
	if a := l.Group("z").Image("docker.io/library/busybox:latest").Artifacts; a[0].Kind != ArtifactSBOM || a[1].Kind != ArtifactSignature || a[2].Kind != ArtifactReferrer {
		t.Errorf("order: %+v", a)
	}
}

func TestArtifactsStrict(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Lock)
		want string
	}{
		{"kind", func(l *Lock) { l.Groups[0].Images[0].Artifacts[0].Kind = "sig" }, `kind "sig"`},
		{"subject", func(l *Lock) { l.Groups[0].Images[0].Artifacts[0].Subject = d("3") }, "neither the image nor one of its platforms"},
		{"tag", func(l *Lock) { l.Groups[0].Images[0].Artifacts[0].Tag = "latest" }, `tag "latest"`},
		{"referrer tag", func(l *Lock) { l.Groups[0].Images[0].Artifacts[2].Tag = "x" }, `tag "x"`},
		{"twice", func(l *Lock) { l.Groups[0].Images[0].Artifacts[1].Digest = d("5") }, "listed twice"},
		{"size", func(l *Lock) { l.Groups[0].Images[0].Artifacts[1].Size = 0 }, "size must be positive"},
		{"no attachments", func(l *Lock) { l.Groups[0].Attachments = false }, "artifacts in a group without attachments"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := withArtifacts()
			c.edit(l)
			b, _ := l.Encode("bundle.toml")
			if _, err := Parse(b, "bundle.lock"); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("want %q, got %v", c.want, err)
			}
		})
	}
}

// A lockfile whose pins stay but whose verified key or carried artifacts
// change is an update in a diff, saying who signed before and after.
func TestDiffSignatures(t *testing.T) {
	old := withArtifacts()
	nw := withArtifacts()
	img := &nw.Groups[0].Images[0]
	for i := range img.Signatures {
		if img.Signatures[i].Key != "" {
			img.Signatures[i].Key, img.Signatures[i].Fingerprint = "keys/b.pub", d("c").String()
		}
	}
	img.Artifacts = img.Artifacts[:2]
	diff := Compare(old, nw)
	if diff.Updated != 1 || len(diff.Groups) != 1 || len(diff.Groups[0].Images) != 1 {
		t.Fatalf("diff: %+v", diff)
	}
	id := diff.Groups[0].Images[0]
	if id.OldDigest != id.NewDigest || !id.SignaturesChanged || !id.ArtifactsChanged || id.OldArtifacts != 3 || id.NewArtifacts != 2 {
		t.Errorf("image diff: %+v", id)
	}
	if strings.Join(id.OldSignedBy, ";") != "issuer=https://i subject=e@x;key keys/a.pub ("+d("9").String()+")" || strings.Join(id.NewSignedBy, ";") != "issuer=https://i subject=e@x;key keys/b.pub ("+d("c").String()+")" {
		t.Errorf("signed by: %q -> %q", id.OldSignedBy, id.NewSignedBy)
	}
	if !Compare(old, withArtifacts()).Empty() {
		t.Error("same lockfiles differ")
	}
}
