package bundler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	cimage "go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/push"
	"github.com/airgap-bundle/airgap-bundle/registry"
	"github.com/airgap-bundle/airgap-bundle/trust"
)

// signedRegistry is a docker-registry holding images signed the way cosign
// signs them, with keys made for the test.
type signedRegistry struct {
	reg          *testregistry.Registry
	keyA, keyB   *fixtures.Signer
	app          string   // index digest of signed/app:v1 (linux/amd64, linux/arm64)
	appPlatforms []string // its platform manifests
	appDescs     []v1.Descriptor
	appSigs      map[string]string
	one, oneSig  string // signed/one:v1, a single manifest, and its signature
	unsigned     string // unsigned/x:v1
	other        string // other/y:v1, signed with key B
}

func startSignedRegistry(t *testing.T) *signedRegistry {
	t.Helper()
	testregistry.Isolate(t)
	ctx := context.Background()
	s := &signedRegistry{reg: testregistry.Start(t, testregistry.Options{}), appSigs: map[string]string{}}
	rt := s.reg.Transport()
	var err error
	if s.keyA, err = fixtures.NewSigner(); err != nil {
		t.Fatal(err)
	}
	if s.keyB, err = fixtures.NewSigner(); err != nil {
		t.Fatal(err)
	}
	h := s.reg.Host
	push := func(repo string, obj any) string {
		dg, err := fixtures.Push(ctx, h+"/"+repo+":v1", obj, rt, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return dg
	}
	sign := func(k *fixtures.Signer, repo, dg string) string {
		sd, err := k.PushSignature(ctx, h+"/"+repo, dg, rt)
		if err != nil {
			t.Fatal(err)
		}
		return sd
	}
	idx, err := fixtures.Index("signed-app", true, fixtures.LinuxAMD64, fixtures.LinuxARM64)
	if err != nil {
		t.Fatal(err)
	}
	s.app = push("signed/app", idx)
	im, _ := idx.IndexManifest()
	for _, d := range im.Manifests {
		s.appPlatforms = append(s.appPlatforms, d.Digest.String())
		s.appDescs = append(s.appDescs, d)
	}
	for _, dg := range append([]string{s.app}, s.appPlatforms...) {
		s.appSigs[dg] = sign(s.keyA, "signed/app", dg)
	}
	single := func(seed string) v1.Image {
		img, err := fixtures.Image(seed, fixtures.LinuxAMD64, 1)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	s.one = push("signed/one", single("one"))
	s.oneSig = sign(s.keyA, "signed/one", s.one)
	s.unsigned = push("unsigned/x", single("x"))
	s.other = push("other/y", single("y"))
	sign(s.keyB, "other/y", s.other)
	return s
}

// spec writes the keys beside a spec made of body (%[1]s is the registry
// host) and loads it.
func (s *signedRegistry) spec(t *testing.T, body string) *config.Spec {
	t.Helper()
	return s.specText(t, fmt.Sprintf("[registries.%q]\ninsecure = true\n", s.reg.Host)+fmt.Sprintf(body, s.reg.Host))
}

// specText loads the spec text as it is, with the keys beside it.
func (s *signedRegistry) specText(t *testing.T, text string) *config.Spec {
	t.Helper()
	dir := t.TempDir()
	for name, k := range map[string]*fixtures.Signer{"a.pub": s.keyA, "b.pub": s.keyB} {
		if err := os.WriteFile(filepath.Join(dir, name), k.PublicPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "bundle.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := config.Load(p)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return spec
}

func lockWith(t *testing.T, spec *config.Spec, old *lockfile.Lock) (*LockResult, error) {
	t.Helper()
	sess := NewSession(spec, registry.Options{UserAgent: "signatures-test"})
	defer sess.Close()
	return Lock(context.Background(), spec, old, sess, LockOptions{})
}

const signedSpec = `
[[signatures]]
scope = "%[1]s"
require = "sigstoreSigned"
key = "a.pub"

[[signatures]]
scope = "%[1]s/signed/app"
require = "sigstoreSigned"
keys = ["b.pub", "a.pub"]
verify-platforms = true

[[group]]
name = "ok"
platforms = ["linux/amd64", "linux/arm64"]
images = ["%[1]s/signed/app:v1"]

[[group]]
name = "single"
images = ["%[1]s/signed/one:v1"]
`

func TestLockVerifiesAndRecordsSignatures(t *testing.T) {
	s := startSignedRegistry(t)
	spec := s.spec(t, signedSpec)
	res, err := lockWith(t, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := res.Lock.Group("ok")
	app := g.Image(s.reg.Host + "/signed/app:v1")
	if app.Digest.String() != s.app || len(app.Signatures) != 3 {
		t.Fatalf("app: %+v", app)
	}
	fpA, _ := config.KeyFingerprint(filepath.Join(spec.Dir, "a.pub"))
	for _, sig := range app.Signatures {
		if sig.Key != "a.pub" || sig.Fingerprint != fpA || sig.Identity != "" {
			t.Errorf("app signature %+v: want key a.pub %s", sig, fpA)
		}
		if want := s.appSigs[sig.Manifest.String()]; sig.Digest.String() != want {
			t.Errorf("signature of %s: recorded %s, pushed %s", sig.Manifest, sig.Digest, want)
		}
	}
	one := res.Lock.Group("single").Image(s.reg.Host + "/signed/one:v1")
	if len(one.Signatures) != 1 || one.Signatures[0].Manifest.String() != s.one || one.Signatures[0].Digest.String() != s.oneSig {
		t.Errorf("one: %+v (want signature %s)", one.Signatures, s.oneSig)
	}

	// The lockfile round-trips, and is fresh for the spec.
	b, err := res.Lock.Encode("bundle.toml")
	if err != nil {
		t.Fatal(err)
	}
	lock, err := lockfile.Parse(b, "bundle.lock")
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !strings.Contains(string(b), `key = "a.pub"`) || strings.Contains(string(b), "PRIVATE") {
		t.Errorf("lockfile:\n%s", b)
	}
	if err := CheckLock(spec, "bundle.lock", lock); err != nil {
		t.Fatalf("fresh lock reported out of date: %v", err)
	}

	// A lockfile without the records (an old one) is out of date for a
	// spec that requires signatures; lock verifies again, keeping the pins.
	bare := lockfile.Lock{Version: lock.Version}
	for _, g := range lock.Groups {
		g.Attachments = false
		g.Images = append([]lockfile.Image(nil), g.Images...)
		for i := range g.Images {
			g.Images[i].Signatures, g.Images[i].Artifacts = nil, nil
		}
		bare.Groups = append(bare.Groups, g)
	}
	err = CheckLock(spec, "bundle.lock", &bare)
	if !errors.Is(err, errdefs.ErrLockOutOfDate) || !strings.Contains(err.Error(), "not verified for sigstoreSigned") {
		t.Fatalf("lock without records: %v", err)
	}
	again, err := lockWith(t, spec, &bare)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := again.Lock.Encode("bundle.toml")
	if string(b2) != string(b) {
		t.Errorf("re-verified lock differs:\n%s\n---\n%s", b2, b)
	}

	// The same spec without a signature policy: the records are dropped,
	// the pins kept, and the lockfile is exactly what it was before
	// signatures existed.
	plain := s.spec(t, "[[group]]"+strings.SplitN(signedSpec, "[[group]]", 2)[1])
	if err := CheckLock(plain, "bundle.lock", lock); !errors.Is(err, errdefs.ErrLockOutOfDate) {
		t.Fatalf("records without a policy: %v", err)
	}
	unsigned, err := lockWith(t, plain, lock)
	if err != nil {
		t.Fatal(err)
	}
	b3, _ := unsigned.Lock.Encode("bundle.toml")
	if strings.Contains(string(b3), "signature") || len(unsigned.Resolved) != 2 || unsigned.Lock.Group("ok").Image(s.reg.Host+"/signed/app:v1").Digest.String() != s.app {
		t.Errorf("lock without policy:\n%s", b3)
	}
	if err := CheckLock(plain, "bundle.lock", unsigned.Lock); err != nil {
		t.Error(err)
	}
	if err := CheckLock(plain, "bundle.lock", &bare); err != nil {
		t.Errorf("an old lockfile without records is valid without a policy: %v", err)
	}

	// Another key required: the records no longer answer the policy.
	rekeyed := s.spec(t, strings.Replace(signedSpec, `key = "a.pub"`, `key = "b.pub"`, 1))
	if err := CheckLock(rekeyed, "bundle.lock", lock); !errors.Is(err, errdefs.ErrLockOutOfDate) || !strings.Contains(err.Error(), "b.pub") {
		t.Fatalf("rekeyed: %v", err)
	}
}

// Every unmet requirement is reported at once, each naming the image, the
// registry, the requirement and the key.
func TestLockRefusesUnsignedAndWrongKey(t *testing.T) {
	s := startSignedRegistry(t)
	spec := s.spec(t, `
[[signatures]]
scope = "%[1]s"
require = "sigstoreSigned"
key = "a.pub"

[[signatures]]
scope = "%[1]s/forbidden"
require = "reject"

[[group]]
name = "bad"
images = ["%[1]s/unsigned/x:v1", "%[1]s/other/y:v1", "%[1]s/signed/one:v1", "%[1]s/forbidden/z:v1"]

[[group]]
name = "strict"
platforms = ["linux/amd64", "linux/arm64"]
images = ["%[1]s/signed/app:v1"]
signatures = { require = "sigstoreSigned", key = "b.pub", verify-platforms = true }
`)
	_, err := lockWith(t, spec, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	if !errors.Is(err, errdefs.ErrSignature) {
		t.Errorf("not ErrSignature: %v", err)
	}
	msg := err.Error()
	h := s.reg.Host
	for _, want := range []string{
		"unsigned/x:v1 (" + s.unsigned + ") on registry " + h + `: sigstoreSigned by key a.pub (signatures scope "` + h + `"): no signature`,
		"other/y:v1 (" + s.other + ") on registry " + h + `: sigstoreSigned by key a.pub`,
		"not accepted: key a.pub (sha256:",
		h + "/forbidden/z:v1",
		`group "strict"`,
		`by key b.pub (group "strict" signatures)`,
		"platform linux/arm64",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "signed/one") {
		t.Errorf("the signed image is reported:\n%s", msg)
	}
	// unsigned, other, forbidden, and strict's index and two platforms.
	if !strings.HasPrefix(msg, "4 images failed:") || strings.Count(msg, "by key b.pub") != 3 {
		t.Errorf("not every error at once:\n%s", msg)
	}
	if !strings.Contains(msg, "bundle.toml:") {
		t.Errorf("no positions:\n%s", msg)
	}
}

// The signature, an SBOM, an attestation and an OCI 1.1 referrer of a
// signed image are pinned by lock, written by build as artifacts of the
// archive (out of manifest.json, without names), and checked by verify.
func TestCarrySignaturesSBOMsAttestations(t *testing.T) {
	s := startSignedRegistry(t)
	ctx := context.Background()
	rt := s.reg.Transport()
	repo := s.reg.Host + "/signed/app"
	att, err := fixtures.PushAttachment(ctx, repo, s.app, "att", rt, fixtures.Attachment{MediaType: fixtures.DSSEType, Data: []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`)})
	if err != nil {
		t.Fatal(err)
	}
	sbom, err := fixtures.PushAttachment(ctx, repo, s.app, "sbom", rt, fixtures.Attachment{MediaType: fixtures.SPDXType, Data: []byte(`{"spdxVersion":"SPDX-2.3"}`)})
	if err != nil {
		t.Fatal(err)
	}
	subject := v1.Descriptor{MediaType: s.appDescs[0].MediaType, Digest: s.appDescs[0].Digest, Size: s.appDescs[0].Size}
	refImg, err := fixtures.Referrer(subject, "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3","name":"amd64"}`), "application/spdx+json")
	if err != nil {
		t.Fatal(err)
	}
	referrer, err := fixtures.PushReferrer(ctx, repo, refImg, rt)
	if err != nil {
		t.Fatal(err)
	}

	spec := s.spec(t, signedSpec)
	res, err := lockWith(t, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := res.Lock.Group("ok")
	if !g.Attachments {
		t.Fatal("carry-signatures is not on by default for a signed group")
	}
	app := g.Image(repo + ":v1")
	got := map[string]string{}
	for _, a := range app.Artifacts {
		got[a.Kind+" "+a.Subject.String()] = a.Digest.String()
	}
	want := map[string]string{
		"signature " + s.app:             s.appSigs[s.app],
		"signature " + s.appPlatforms[0]: s.appSigs[s.appPlatforms[0]],
		"signature " + s.appPlatforms[1]: s.appSigs[s.appPlatforms[1]],
		"attestation " + s.app:           att,
		"sbom " + s.app:                  sbom,
		"referrer " + s.appPlatforms[0]:  referrer,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("artifacts:\n got %v\nwant %v", got, want)
	}
	b, _ := res.Lock.Encode("bundle.toml")
	lock, err := lockfile.Parse(b, "bundle.lock")
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}

	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	sess := NewSession(spec, registry.Options{UserAgent: "signatures-test"})
	defer sess.Close()
	results, err := Build(ctx, spec, lock, c, sess, BuildOptions{OutputDir: out})
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Images != 1 {
		t.Errorf("images counted: %d (artifacts are not images)", results[0].Images)
	}
	ct, err := archive.ReadFile(ctx, results[0].Path, archive.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ps := append(ct.Check(), ct.Strays()...); len(ps) > 0 {
		t.Fatalf("archive problems: %v", ps)
	}
	if len(ct.DockerManifest) != 1 {
		t.Errorf("manifest.json has %d entries, want only the image", len(ct.DockerManifest))
	}
	var arts []string
	for _, img := range ct.Images {
		if img.Artifact == nil {
			continue
		}
		if len(img.Names) > 0 || img.Docker != nil || img.Artifact.Image != repo+":v1" {
			t.Errorf("artifact %s: names %v, docker %v, image %q", img.Top.Digest, img.Names, img.Docker, img.Artifact.Image)
		}
		arts = append(arts, img.Artifact.Kind+" "+img.Artifact.Subject.String())
	}
	if len(arts) != 6 {
		t.Errorf("archive artifacts: %v", arts)
	}
	reports, err := Verify(ctx, spec, lock, VerifyOptions{OutputDir: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		if !r.OK() {
			t.Errorf("verify %s: %v", r.Name, r.Problems)
		}
	}

	// Pushed into a second registry: the image, its cosign tags and its
	// referrer arrive byte for byte, and containers/image's policy check
	// accepts the relocated image with the key (the signature names the
	// source repository: exactRepository, as a policy.json inside the gap
	// says for cosign's repository-only identities).
	reg2 := testregistry.Start(t, testregistry.Options{})
	pushSpec := &config.Spec{Registries: map[string]*config.Registry{reg2.Host: {Host: reg2.Host, Insecure: true}}}
	if _, err := push.Push(ctx, []string{results[0].Path}, push.Options{Targets: []push.Target{{Host: reg2.Host}}, Spec: pushSpec, TempDir: t.TempDir(),
		Registry: registry.Options{Policy: registry.Policy{Attempts: 1}}}); err != nil {
		t.Fatal(err)
	}
	inGap := s.specText(t, fmt.Sprintf("[registries.%q]\ninsecure = true\n[[group]]\nname = \"g\"\nimages = [\"%s/signed/app:v1\"]\nsignatures = { require = \"sigstoreSigned\", key = \"a.pub\" }\n", reg2.Host, reg2.Host))
	env2, err := registry.New(inGap, registry.Options{UserAgent: "signatures-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer env2.Close()
	relocated := inGap.Group("g").Images[0].Ref
	moved := &lockfile.Image{Digest: app.Digest, MediaType: app.MediaType, Platforms: app.Platforms}
	found, err := (&trust.Finder{Sys: env2.Sys}).Attachments(ctx, relocated, moved)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, a := range found {
		if a.Digest.String() != want[a.Kind+" "+a.Subject.String()] {
			t.Errorf("pushed %s of %s: %s, want %s", a.Kind, a.Subject, a.Digest, want[a.Kind+" "+a.Subject.String()])
		}
		kinds = append(kinds, a.Kind)
	}
	if len(found) != len(want) { // the referrer too: push keeps the referrers tag schema up to date
		t.Errorf("found at the target: %v", kinds)
	}
	pr, err := signature.NewPRSigstoreSigned(signature.PRSigstoreSignedWithKeyPath(filepath.Join(spec.Dir, "a.pub")),
		signature.PRSigstoreSignedWithSignedIdentity(mustExactRepository(t, repo)))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{pr}})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Destroy()
	named, _ := reference.ParseNormalizedNamed(reg2.Host + "/signed/app@" + app.Digest.String())
	dref, err := docker.NewReference(named)
	if err != nil {
		t.Fatal(err)
	}
	src, err := dref.NewImageSource(ctx, env2.Sys)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if ok, err := pc.IsRunningImageAllowed(ctx, cimage.UnparsedInstance(src, nil)); !ok || err != nil {
		t.Errorf("relocated image not accepted: %v", err)
	}

	// A lockfile that no longer pins one of them: the archive carries
	// something the lockfile does not account for.
	short := *lock
	short.Groups = append([]lockfile.Group(nil), lock.Groups...)
	for gi := range short.Groups {
		if short.Groups[gi].Name == "ok" {
			short.Groups[gi].Images = append([]lockfile.Image(nil), short.Groups[gi].Images...)
			short.Groups[gi].Images[0].Artifacts = short.Groups[gi].Images[0].Artifacts[1:]
		}
	}
	reports, err = Verify(ctx, spec, &short, VerifyOptions{OutputDir: out, Groups: []string{"ok"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || len(reports[0].Problems) != 1 || reports[0].Problems[0].Kind != KindNotInLockfile || !strings.Contains(reports[0].Problems[0].Image, "of "+repo+":v1") {
		t.Errorf("unpinned artifact not reported: %+v", reports)
	}
}

func mustExactRepository(t *testing.T, repo string) signature.PolicyReferenceMatch {
	t.Helper()
	m, err := signature.NewPRMExactRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Issue 15, defect 2: a hand-edited lockfile that points a signed image's
// pin, platform and signature record at an unsigned image of the same
// repository (and drops its artifact block) is refused by build, locked or
// not, before anything is written, and by verify; the error names the
// image, the digest and the key.
func TestEditedLockfileCannotSmuggleAnUnsignedImage(t *testing.T) {
	s := startSignedRegistry(t)
	t.Setenv("TMPDIR", t.TempDir())
	ctx := context.Background()
	h := s.reg.Host
	const groups = `
[[group]]
name = "single"
images = ["%[1]s/signed/one:v1"]
`
	spec := s.spec(t, "[[signatures]]\nscope = \"%[1]s\"\nrequire = \"sigstoreSigned\"\nkey = \"a.pub\"\n"+groups)
	res, err := lockWith(t, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(spec.Dir, "bundle.lock")
	if _, err := WriteLock(spec, lockPath, res.Lock); err != nil {
		t.Fatal(err)
	}

	// An unsigned image in the same repository, and what its pin looks
	// like.
	evil := s.reg.PushImage(t, "signed/one:evil", "evil")
	plain := s.spec(t, "[[group]]\nname = \"p\"\ncarry-signatures = false\nimages = [\"%[1]s/signed/one:evil\"]\n")
	pres, err := lockWith(t, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	unsigned := pres.Lock.Group("p").Images[0]
	if unsigned.Digest.String() != evil {
		t.Fatalf("the unsigned image is pinned at %s, pushed %s", unsigned.Digest, evil)
	}

	// The edit: digest, platform digest, config and size, and the
	// signature record's manifest point at the unsigned image; its
	// artifact block is gone. withArtifacts keeps the signed image's
	// signature manifest as a carried artifact, re-attached to it.
	locked, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(withArtifacts bool) *lockfile.Lock {
		t.Helper()
		l, err := lockfile.Parse(locked, lockPath)
		if err != nil {
			t.Fatal(err)
		}
		e := &l.Groups[0].Images[0]
		e.Digest, e.MediaType, e.Size, e.Platforms = unsigned.Digest, unsigned.MediaType, unsigned.Size, unsigned.Platforms
		e.Signatures[0].Manifest = unsigned.Digest
		if withArtifacts {
			for i := range e.Artifacts {
				e.Artifacts[i].Subject, e.Artifacts[i].Tag = unsigned.Digest, lockfile.ArtifactTag(unsigned.Digest, e.Artifacts[i].Kind)
			}
		} else {
			e.Artifacts = nil
		}
		out, err := l.Encode("bundle.toml")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(lockPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		forged, err := lockfile.Parse(out, lockPath)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return forged
	}
	honest := res.Lock
	forged := forge(false)

	// lock --check compares the lockfile with the spec, offline: every
	// record it needs is there. The proof is checked where content is
	// fetched: build, and verify.
	if err := CheckLock(spec, lockPath, forged); err != nil {
		t.Fatalf("lock --check: %v", err)
	}

	out := t.TempDir()
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// As build --locked does; the lax build below skips the check (its
	// spec has no policy for the records to answer).
	build := func(spec *config.Spec, lock *lockfile.Lock, locked bool) error {
		t.Helper()
		sess := NewSession(spec, registry.Options{UserAgent: "signatures-test", Policy: registry.Policy{Attempts: 1}})
		defer sess.Close()
		if locked {
			if _, _, err := EnsureLocked(ctx, spec, lockPath, lock, sess, RequireLocked, LockOptions{}); err != nil {
				t.Fatalf("build --locked: %v", err)
			}
		}
		_, err := Build(ctx, spec, lock, c, sess, BuildOptions{OutputDir: out})
		return err
	}
	err = build(spec, forged, true)
	if err == nil {
		t.Fatal("build wrote the unsigned image")
	}
	if !errors.Is(err, errdefs.ErrSignature) {
		t.Errorf("not ErrSignature: %v", err)
	}
	for _, want := range []string{"bundle.toml:", `image "` + h + `/signed/one:v1"`, "(" + unsigned.Digest.String() + ")", "key a.pub (sha256:", "does not verify"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) > 0 {
		t.Errorf("the refused build left %v in the output directory", ents)
	}

	// verify, from the carried signatures: archives of both edits, as a
	// build without the spec's signature policy writes them.
	lax := s.spec(t, "[[group]]\nname = \"single\"\ncarry-signatures = true\nimages = [\"%[1]s/signed/one:v1\"]\n")
	for _, withArtifacts := range []bool{false, true} {
		forged := forge(withArtifacts)
		if err := build(lax, forged, false); err != nil {
			t.Fatal(err)
		}
		reports, err := Verify(ctx, spec, forged, VerifyOptions{OutputDir: out})
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, p := range reports[0].Problems {
			found = append(found, string(p.Kind)+": "+p.Detail)
		}
		msg := strings.Join(found, "\n")
		if len(found) != 1 || !strings.Contains(msg, "signature-rejected") || !strings.Contains(msg, unsigned.Digest.String()) || !strings.Contains(msg, "key a.pub") {
			t.Errorf("verify of the edit (artifacts kept: %v):\n%s", withArtifacts, msg)
		}
	}

	// The lockfile as lock wrote it builds and verifies.
	if _, err := WriteLock(spec, lockPath, honest); err != nil {
		t.Fatal(err)
	}
	if err := build(spec, honest, true); err != nil {
		t.Fatal(err)
	}
	reports, err := Verify(ctx, spec, honest, VerifyOptions{OutputDir: out})
	if err != nil || !reports[0].OK() {
		t.Fatalf("honest lockfile: %v %+v", err, reports)
	}
}
