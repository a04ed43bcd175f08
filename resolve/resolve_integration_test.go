package resolve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// sysFor builds the SystemContext the CLI would use for a spec whose
// registry section is regs (TOML), through the project's registry package.
func sysFor(t *testing.T, regs string) *types.SystemContext {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.toml")
	body := regs + "\n[[group]]\nname = \"g\"\nimages = [\"example.com/unused:v1\"]\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := config.Load(path)
	if err != nil {
		t.Fatalf("spec:\n%s\n%v", body, err)
	}
	env, err := registry.New(s, registry.Options{UserAgent: "resolve-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return env.Sys
}

func ref(t *testing.T, s string) image.Reference {
	t.Helper()
	r, err := image.ParseReference(s, "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func platforms(t *testing.T, s string) image.PlatformSet {
	t.Helper()
	set, errs := image.ParsePlatformSet(strings.Split(s, ","))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return set
}

// plainRegistry starts a plain-HTTP docker-registry for t and pushes the
// standard fixtures to it.
func plainRegistry(t *testing.T) (*testregistry.Registry, *fixtures.Standard) {
	t.Helper()
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	std, err := fixtures.PushStandard(context.Background(), reg.Host, reg.Transport(), "", "")
	if err != nil {
		t.Fatalf("pushing fixtures: %v", err)
	}
	return reg, std
}

// rawManifest fetches a manifest straight from the registry, without
// containers/image, and checks its digest.
func rawManifest(t *testing.T, reg *testregistry.Registry, repo, dg string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, reg.URL()+"/v2/"+repo+"/manifests/"+dg, nil)
	req.Header.Set("Accept", strings.Join([]string{
		string(image.OCIIndex), string(image.DockerList), string(image.OCIManifest), string(image.DockerManifest),
	}, ", "))
	resp, err := (&http.Client{Transport: reg.Transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest %s@%s: %v %s", repo, dg, err, resp.Status)
	}
	if got := digest.FromBytes(b).String(); got != dg {
		t.Fatalf("registry served %s for %s", got, dg)
	}
	return b
}

func TestResolveAgainstRegistry(t *testing.T) {
	reg, std := plainRegistry(t)
	h := reg.Host
	sys := sysFor(t, fmt.Sprintf("[registries.%q]\ninsecure = true\n", h))
	r := &Resolver{Sys: sys}

	// The expected FilteredDigest: what image.FilterIndex makes of the
	// index bytes the registry serves, keeping the given platforms' entries.
	filtered := func(p fixtures.Pushed, keys ...string) string {
		raw := rawManifest(t, reg, p.Repo, p.Digest)
		keep := make([]digest.Digest, len(keys))
		for i, k := range keys {
			keep[i] = digest.Digest(p.Platforms[k].Digest)
		}
		out, err := image.FilterIndex(raw, p.MediaType, keep)
		if err != nil {
			t.Fatal(err)
		}
		return digest.FromBytes(out).String()
	}

	cases := []struct {
		name  string
		ref   string
		want  string // platforms, comma-separated, or "all"
		index image.IndexMode
		img   fixtures.Pushed
		plats []string // expected platforms, in lock order
		// filteredKeys: FilteredDigest must be FilterIndex of these; nil: empty.
		filteredKeys []string
	}{
		{name: "single image, platform from its config", ref: std.SingleOCI.Ref(h), want: "linux/amd64",
			img: std.SingleOCI, plats: []string{"linux/amd64"}},
		{name: "single image, all", ref: std.SingleOCI.Ref(h), want: "all",
			img: std.SingleOCI, plats: []string{"linux/amd64"}},
		{name: "single image, filtered index mode is moot", ref: std.SingleOCI.Ref(h), want: "linux/amd64", index: image.IndexFiltered,
			img: std.SingleOCI, plats: []string{"linux/amd64"}},
		{name: "OCI index, subset in the order asked", ref: std.MultiOCI.Ref(h), want: "linux/arm/v7,linux/amd64",
			img: std.MultiOCI, plats: []string{"linux/arm/v7", "linux/amd64"}},
		{name: "OCI index, all skips the attestation", ref: std.MultiOCI.Ref(h), want: "all",
			img: std.MultiOCI, plats: []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}},
		{name: "OCI index, filtered subset", ref: std.MultiOCI.Ref(h), want: "linux/arm64", index: image.IndexFiltered,
			img: std.MultiOCI, plats: []string{"linux/arm64"}, filteredKeys: []string{"linux/arm64"}},
		{name: "OCI index, filtered all", ref: std.MultiOCI.Ref(h), want: "all", index: image.IndexFiltered,
			img: std.MultiOCI, plats: []string{"linux/amd64", "linux/arm64", "linux/arm/v7"},
			filteredKeys: []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}},
		{name: "OCI index, original", ref: std.MultiOCI.Ref(h), want: "linux/arm64", index: image.IndexOriginal,
			img: std.MultiOCI, plats: []string{"linux/arm64"}},
		{name: "Docker list, subset", ref: std.DockerList.Ref(h), want: "linux/arm64",
			img: std.DockerList, plats: []string{"linux/arm64"}},
		{name: "Docker list, all", ref: std.DockerList.Ref(h), want: "all",
			img: std.DockerList, plats: []string{"linux/amd64", "linux/arm64"}},
		{name: "Docker list, filtered", ref: std.DockerList.Ref(h), want: "linux/amd64", index: image.IndexFiltered,
			img: std.DockerList, plats: []string{"linux/amd64"}, filteredKeys: []string{"linux/amd64"}},
		{name: "digest pin", ref: h + "/" + std.MultiOCI.Repo + "@" + std.MultiOCI.Digest, want: "linux/amd64",
			img: std.MultiOCI, plats: []string{"linux/amd64"}},
		// The tag does not exist: only a pull by digest can succeed.
		{name: "tag and digest pulls by digest", ref: h + "/" + std.SingleOCI.Repo + ":no-such-tag@" + std.SingleOCI.Digest, want: "linux/amd64",
			img: std.SingleOCI, plats: []string{"linux/amd64"}},
		{name: "second tag of one image", ref: h + "/" + std.TwoTags.Repo + ":b", want: "all",
			img: std.TwoTags, plats: []string{"linux/amd64"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			index := c.index
			if index == "" {
				index = image.IndexOriginal
			}
			rf := ref(t, c.ref)
			got, err := r.Resolve(context.Background(), rf, platforms(t, c.want), index)
			if err != nil {
				t.Fatal(err)
			}
			size, err := c.img.TotalSize(c.plats...)
			if err != nil {
				t.Fatal(err)
			}
			want := lockfile.Image{Ref: rf.String(), Digest: digest.Digest(c.img.Digest), MediaType: c.img.MediaType, Size: size}
			if c.filteredKeys != nil {
				want.FilteredDigest = digest.Digest(filtered(c.img, c.filteredKeys...))
				if want.FilteredDigest.String() == c.img.Digest && len(c.filteredKeys) < len(c.img.Platforms) {
					t.Fatalf("test is vacuous: filtering changed nothing")
				}
			}
			for _, k := range c.plats {
				p := c.img.Platforms[k]
				want.Platforms = append(want.Platforms, lockfile.Platform{Platform: k, Digest: digest.Digest(p.Digest), MediaType: p.MediaType, Config: digest.Digest(p.Config), Size: p.Size})
			}
			if g, w := fmt.Sprintf("%+v", *got), fmt.Sprintf("%+v", want); g != w {
				t.Errorf("lock entry\n got %s\nwant %s", g, w)
			}
			for _, a := range c.img.Attestations {
				for _, p := range got.Platforms {
					if p.Digest.String() == a.Digest {
						t.Errorf("attestation %s taken as platform %s", a.Digest, p.Platform)
					}
				}
			}
		})
	}

	errCases := []struct {
		name     string
		ref      string
		want     string
		platform bool     // errors.Is(err, ErrPlatform)
		msg      []string // substrings of the error
	}{
		{"single image, platform mismatch", std.SingleOCI.Ref(h), "linux/arm64,linux/amd64", true,
			[]string{"linux/arm64 (a single-platform image; it has only linux/amd64)"}},
		{"OCI index, missing platform", std.MultiOCI.Ref(h), "linux/amd64,linux/s390x", true,
			[]string{"linux/s390x (the image has linux/amd64, linux/arm64, linux/arm/v7)"}},
		{"Docker list, missing platform", std.DockerList.Ref(h), "linux/arm/v7", true,
			[]string{"linux/arm/v7 (the image has linux/amd64, linux/arm64)"}},
		{"nonexistent tag", h + "/" + std.SingleOCI.Repo + ":nope", "all", false,
			[]string{"reading manifest nope in " + h + "/fixtures/single: manifest unknown"}},
		{"nonexistent repository", h + "/fixtures/nothing-here:v1", "all", false,
			[]string{"reading manifest v1 in " + h + "/fixtures/nothing-here: manifest unknown"}},
		{"digest pin nobody has", h + "/" + std.SingleOCI.Repo + "@" + digest.FromString("nothing").String(), "all", false,
			[]string{"reading manifest " + digest.FromString("nothing").String() + " in " + h + "/fixtures/single: manifest unknown"}},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := r.Resolve(context.Background(), ref(t, c.ref), platforms(t, c.want), image.IndexOriginal)
			if err == nil {
				t.Fatalf("resolved to %+v, want an error", got)
			}
			if got != nil {
				t.Errorf("an entry %+v along with the error", got)
			}
			if errors.Is(err, ErrPlatform) != c.platform {
				t.Errorf("errors.Is(err, ErrPlatform) = %v, want %v: %v", !c.platform, c.platform, err)
			}
			if errors.Is(err, registry.ErrAuth) || errors.Is(err, registry.ErrTLS) || strings.Contains(err.Error(), "hint:") {
				t.Errorf("a hint that does not apply: %v", err)
			}
			for _, m := range c.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error lacks %q: %v", m, err)
				}
			}
		})
	}

	// Without insecure = true the plain-HTTP registry is refused, with the
	// hint that says which setting to change.
	t.Run("plain HTTP without insecure", func(t *testing.T) {
		strict := &Resolver{Sys: sysFor(t, "")}
		_, err := strict.Resolve(context.Background(), ref(t, std.SingleOCI.Ref(h)), platforms(t, "all"), image.IndexOriginal)
		want := fmt.Sprintf("hint: registry %s speaks plain HTTP; if that is intended (a loopback or lab registry), set registries.%q.insecure = true", h, h)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want the hint %q", err, want)
		}
	})
}

func TestSourceByDigest(t *testing.T) {
	reg, std := plainRegistry(t)
	h := reg.Host
	sys := sysFor(t, fmt.Sprintf("[registries.%q]\ninsecure = true\n", h))
	for _, s := range []string{
		h + "/" + std.MultiOCI.Repo + "@" + std.MultiOCI.Digest,
		h + "/" + std.MultiOCI.Repo + ":v1@" + std.MultiOCI.Digest,
		h + "/" + std.MultiOCI.Repo + ":no-such-tag@" + std.MultiOCI.Digest,
	} {
		t.Run(s, func(t *testing.T) {
			src, err := Source(context.Background(), sys, ref(t, s))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if got, want := src.Reference().DockerReference().String(), h+"/"+std.MultiOCI.Repo+"@"+std.MultiOCI.Digest; got != want {
				t.Errorf("source reference %s, want %s", got, want)
			}
			blob, mt, err := src.GetManifest(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if digest.FromBytes(blob).String() != std.MultiOCI.Digest || mt != string(std.MultiOCI.MediaType) {
				t.Errorf("manifest %s %s, want %s %s", digest.FromBytes(blob), mt, std.MultiOCI.Digest, std.MultiOCI.MediaType)
			}
		})
	}
	t.Run("by tag", func(t *testing.T) {
		src, err := Source(context.Background(), sys, ref(t, h+"/"+std.TwoTags.Repo+":b"))
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if got, want := src.Reference().DockerReference().String(), h+"/"+std.TwoTags.Repo+":b"; got != want {
			t.Errorf("source reference %s, want %s", got, want)
		}
		blob, _, err := src.GetManifest(context.Background(), nil)
		if err != nil || digest.FromBytes(blob).String() != std.TwoTags.Digest {
			t.Errorf("manifest %s (%v), want %s", digest.FromBytes(blob), err, std.TwoTags.Digest)
		}
	})
}

// TLS and credentials: the errors users meet carry the hint for them.
func TestResolveTLSAndAuthHints(t *testing.T) {
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{TLS: true, Users: map[string]string{"ci": "s3cret-pw"}})
	std, err := fixtures.PushStandard(context.Background(), reg.Host, reg.Transport(), "ci", "s3cret-pw")
	if err != nil {
		t.Fatal(err)
	}
	h := reg.Host
	rf := ref(t, std.SingleOCI.Ref(h))
	size, _ := std.SingleOCI.TotalSize("linux/amd64")
	t.Setenv("REG_PASSWORD", "s3cret-pw")
	t.Setenv("REG_WRONG", "wrong")
	cases := []struct {
		name string
		regs string
		is   error
		msg  string
	}{
		{"CA and credentials", fmt.Sprintf("[registries.%q]\nca-file = %q\nauth = { username = \"ci\", password-env = \"REG_PASSWORD\" }\n", h, reg.CAFile), nil, ""},
		{"no CA", fmt.Sprintf("[registries.%q]\nauth = { username = \"ci\", password-env = \"REG_PASSWORD\" }\n", h), registry.ErrTLS,
			fmt.Sprintf("hint: give the registry's CA with registries.%q.ca-file", h)},
		{"no credentials", fmt.Sprintf("[registries.%q]\nca-file = %q\n", h, reg.CAFile), registry.ErrAuth,
			fmt.Sprintf("hint: registry %s refused the credentials; set registries.%q.auth", h, h)},
		{"wrong password", fmt.Sprintf("[registries.%q]\nca-file = %q\nauth = { username = \"ci\", password-env = \"REG_WRONG\" }\n", h, reg.CAFile), registry.ErrAuth,
			fmt.Sprintf("hint: registry %s refused the credentials", h)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &Resolver{Sys: sysFor(t, c.regs)}
			got, err := r.Resolve(context.Background(), rf, platforms(t, "linux/amd64"), image.IndexOriginal)
			if c.is == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got.Digest.String() != std.SingleOCI.Digest || got.Size != size {
					t.Errorf("got %s size %d, want %s size %d", got.Digest, got.Size, std.SingleOCI.Digest, size)
				}
				return
			}
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want %v with %q", err, c.is, c.msg)
			}
		})
	}
}
