package bundler

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/image"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// memFetcher serves blobs and manifests from memory.
type memFetcher map[digest.Digest][]byte

func (m memFetcher) Manifest(_ context.Context, _ image.Reference, _, d digest.Digest) ([]byte, error) {
	if b, ok := m[d]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("no manifest %s", d)
}

func (m memFetcher) Blob(_ context.Context, _ image.Reference, _, d digest.Digest, _, offset int64) (io.ReadCloser, error) {
	if b, ok := m[d]; ok {
		return io.NopCloser(bytes.NewReader(b[offset:])), nil
	}
	return nil, fmt.Errorf("no blob %s", d)
}

func (m memFetcher) Close() error { return nil }

func (m memFetcher) addImage(t *testing.T, img v1.Image) {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	m[digest.FromBytes(raw)] = raw
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	m[digest.FromBytes(cfg)] = cfg
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		m[digest.FromBytes(b)] = b
	}
}

// lockEntry pins obj (a fixture image or index) for platforms, as the
// resolver would.
func lockEntry(t *testing.T, ref string, obj any, platforms ...string) lockfile.Image {
	t.Helper()
	p, err := fixtures.Describe(obj)
	if err != nil {
		t.Fatal(err)
	}
	size, err := p.TotalSize(platforms...)
	if err != nil {
		t.Fatal(err)
	}
	e := lockfile.Image{Ref: ref, Digest: digest.Digest(p.Digest), MediaType: p.MediaType, Size: size}
	for _, pl := range platforms {
		pd := p.Platforms[pl]
		e.Platforms = append(e.Platforms, lockfile.Platform{Platform: pl, Digest: digest.Digest(pd.Digest), MediaType: pd.MediaType, Config: digest.Digest(pd.Config), Size: pd.Size})
	}
	return e
}

const verifySpecBody = `
[[group]]
name = "apps"
archive = "apps.tar"
platforms = ["linux/arm64", "linux/amd64"]
images = ["registry.test/multi:v1", "registry.test/single:v1", "registry.test/single:v2"]

[[group]]
name = "filtered"
archive = "filtered.tar.zst"
platforms = ["linux/arm/v7"]
index = "filtered"
images = ["registry.test/multi:v1"]
`

type verifyWorld struct {
	spec     *config.Spec
	lock     *lockfile.Lock
	out      string
	multi    fixtures.Pushed
	single   fixtures.Pushed
	filtered string // digest of the filtered index
	cache    *cache.Cache
	fetch    memFetcher
}

// buildVerifyWorld builds the two groups of verifySpecBody with Build from
// in-memory fixtures.
func buildVerifyWorld(t *testing.T) *verifyWorld {
	t.Helper()
	multi, err := fixtures.Index("multi", true, fixtures.LinuxAMD64, fixtures.LinuxARM64, fixtures.LinuxARMv7)
	if err != nil {
		t.Fatal(err)
	}
	single, err := fixtures.Image("single", fixtures.LinuxAMD64, 2)
	if err != nil {
		t.Fatal(err)
	}
	f := memFetcher{}
	rawIdx, _ := multi.RawManifest()
	f[digest.FromBytes(rawIdx)] = rawIdx
	im, _ := multi.IndexManifest()
	for _, d := range im.Manifests {
		child, err := multi.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		f.addImage(t, child)
	}
	f.addImage(t, single)

	w := &verifyWorld{spec: loadSpec(t, verifySpecBody), out: t.TempDir()}
	w.multi, _ = fixtures.Describe(multi)
	w.single, _ = fixtures.Describe(single)
	fidx, err := image.FilterIndex(rawIdx, w.multi.MediaType, []digest.Digest{digest.Digest(w.multi.Platforms["linux/arm/v7"].Digest)})
	if err != nil {
		t.Fatal(err)
	}
	w.filtered = digest.FromBytes(fidx).String()
	filteredEntry := lockEntry(t, "registry.test/multi:v1", multi, "linux/arm/v7")
	filteredEntry.FilteredDigest = digest.Digest(w.filtered)
	w.lock = &lockfile.Lock{Version: lockfile.Version, Groups: []lockfile.Group{
		{Name: "apps", Platforms: []string{"linux/arm64", "linux/amd64"}, Index: "original", Images: []lockfile.Image{
			lockEntry(t, "registry.test/multi:v1", multi, "linux/arm64", "linux/amd64"),
			lockEntry(t, "registry.test/single:v1", single, "linux/amd64"),
			lockEntry(t, "registry.test/single:v2", single, "linux/amd64"),
		}},
		{Name: "filtered", Platforms: []string{"linux/arm/v7"}, Index: "filtered", Images: []lockfile.Image{filteredEntry}},
	}}
	// The lockfile must be one the spec accepts.
	if plan, err := NewPlan(w.spec, w.lock, LockOptions{}); err != nil || len(plan.Drift()) > 0 {
		t.Fatalf("test lockfile drifts from the spec: %v %v", err, plan.Drift())
	}
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.cache, w.fetch = c, f
	if _, err := Build(context.Background(), w.spec, w.lock, c, f, BuildOptions{OutputDir: w.out}); err != nil {
		t.Fatal(err)
	}
	return w
}

func allProblems(reports []ArchiveReport) []archive.Problem {
	var out []archive.Problem
	for _, r := range reports {
		out = append(out, r.Problems...)
	}
	return out
}

func TestVerifyGoodBuild(t *testing.T) {
	w := buildVerifyWorld(t)
	reports, err := Verify(context.Background(), w.spec, w.lock, VerifyOptions{OutputDir: w.out})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 2 {
		t.Fatalf("%d reports", len(reports))
	}
	if p := allProblems(reports); len(p) > 0 {
		t.Fatalf("problems in a fresh build:\n%+v", p)
	}
	r := reports[0]
	if r.Group != "apps" || r.Name != "apps.tar" || r.Images != 2 || r.Format != archive.FormatOCIDocker || len(r.SHA256) != 64 {
		t.Errorf("report %+v", r)
	}
	// --group picks one.
	reports, err = Verify(context.Background(), w.spec, w.lock, VerifyOptions{OutputDir: w.out, Groups: []string{"filtered"}})
	if err != nil || len(reports) != 1 || reports[0].Group != "filtered" || !reports[0].OK() {
		t.Errorf("--group filtered: %v %+v", err, reports)
	}
	// Internal consistency alone.
	for _, a := range []string{"apps.tar", "filtered.tar.zst"} {
		if r := VerifyArchive(context.Background(), filepath.Join(w.out, a)); !r.OK() {
			t.Errorf("VerifyArchive(%s): %v", a, r.Problems)
		}
	}
	// A lockfile without the group is an error, not a problem.
	if _, err := Verify(context.Background(), w.spec, &lockfile.Lock{Version: 1}, VerifyOptions{OutputDir: w.out}); err == nil {
		t.Error("Verify with an empty lockfile: no error")
	}
}

// TestVerifyAgainstLock changes the lockfile (or the output directory)
// after a good build: each change must give exactly its own lines.
func TestVerifyAgainstLock(t *testing.T) {
	w := buildVerifyWorld(t)
	amd := w.multi.Platforms["linux/amd64"]
	arm := w.multi.Platforms["linux/arm64"]
	for _, tc := range []struct {
		name   string
		change func(l *lockfile.Lock, out string)
		want   []archive.Problem // a checksum-mismatch without Digest matches any
	}{
		{
			name: "another digest pinned",
			change: func(l *lockfile.Lock, _ string) {
				l.Groups[0].Images[1].Digest = digest.FromString("other")
			},
			want: []archive.Problem{{Kind: KindDigestMismatch, Archive: "apps.tar", Image: "registry.test/single:v1", Digest: digest.Digest(w.single.Digest), Detail: "pins " + digest.FromString("other").String()}},
		},
		{
			name: "another filtered digest",
			change: func(l *lockfile.Lock, _ string) {
				l.Groups[1].Images[0].FilteredDigest = digest.Digest(w.multi.Digest)
			},
			want: []archive.Problem{{Kind: KindDigestMismatch, Archive: "filtered.tar.zst", Image: "registry.test/multi:v1", Digest: digest.Digest(w.filtered), Detail: "has the filtered index " + w.multi.Digest}},
		},
		{
			name: "a platform the lockfile does not list",
			change: func(l *lockfile.Lock, _ string) {
				l.Groups[0].Images[0].Platforms = l.Groups[0].Images[0].Platforms[:1]
			},
			want: []archive.Problem{{Kind: KindNotInLockfile, Archive: "apps.tar", Image: "registry.test/multi:v1", Platform: "linux/amd64", Digest: digest.Digest(amd.Digest)}},
		},
		{
			name: "a platform the archive lacks",
			change: func(l *lockfile.Lock, _ string) {
				arm7 := w.multi.Platforms["linux/arm/v7"]
				l.Groups[0].Images[0].Platforms = append(l.Groups[0].Images[0].Platforms, lockfile.Platform{Platform: "linux/arm/v7", Digest: digest.Digest(arm7.Digest), MediaType: arm7.MediaType, Config: digest.Digest(arm7.Config), Size: arm7.Size})
			},
			want: []archive.Problem{{Kind: KindLockMismatch, Archive: "apps.tar", Image: "registry.test/multi:v1", Platform: "linux/arm/v7", Detail: fmt.Sprintf("manifest %s is missing", w.multi.Platforms["linux/arm/v7"].Digest)}},
		},
		{
			name: "another config",
			change: func(l *lockfile.Lock, _ string) {
				l.Groups[0].Images[0].Platforms[1].Config = digest.Digest(arm.Config)
			},
			want: []archive.Problem{{Kind: KindLockMismatch, Archive: "apps.tar", Image: "registry.test/multi:v1", Platform: "linux/amd64", Detail: fmt.Sprintf("config %s, the lockfile %s", amd.Config, arm.Config)}},
		},
		{
			name: "another size",
			change: func(l *lockfile.Lock, _ string) {
				l.Groups[0].Images[2].Platforms[0].Size++
			},
			want: []archive.Problem{{Kind: KindLockMismatch, Archive: "apps.tar", Image: "registry.test/single:v2", Platform: "linux/amd64", Detail: fmt.Sprintf("%d bytes, the lockfile %d", w.single.Platforms["linux/amd64"].Size, w.single.Platforms["linux/amd64"].Size+1)}},
		},
		{
			name: "an image name the lockfile does not list",
			change: func(l *lockfile.Lock, _ string) {
				l.Groups[0].Images = l.Groups[0].Images[:2]
			},
			want: []archive.Problem{{Kind: KindNotInLockfile, Archive: "apps.tar", Image: "registry.test/single:v2", Digest: digest.Digest(w.single.Digest)}},
		},
		{
			name: "another first platform",
			change: func(l *lockfile.Lock, _ string) {
				ps := l.Groups[0].Images[0].Platforms
				ps[0], ps[1] = ps[1], ps[0]
			},
			want: []archive.Problem{{Kind: archive.KindDockerPlatformMismatch, Archive: "apps.tar", Image: "registry.test/multi:v1", Platform: "linux/arm64", Detail: "linux/amd64"}},
		},
		{
			name: "no archive",
			change: func(_ *lockfile.Lock, out string) {
				os.Remove(filepath.Join(out, "apps.tar"))
			},
			want: []archive.Problem{{Kind: KindArchiveMissing, Archive: "apps.tar"}},
		},
		{
			name: "no SHA256SUMS",
			change: func(_ *lockfile.Lock, out string) {
				os.Remove(filepath.Join(out, SumsFile))
			},
			want: []archive.Problem{
				{Kind: KindChecksumUnreadable, Archive: "apps.tar", Detail: "missing from the output directory"},
				{Kind: KindChecksumUnreadable, Archive: "filtered.tar.zst", Detail: "missing from the output directory"},
			},
		},
		{
			name: "a stray blob",
			change: func(_ *lockfile.Lock, out string) {
				appendToTar(t, filepath.Join(out, "apps.tar"), "blobs/sha256/"+digest.FromString("stray").Encoded(), "stray")
			},
			want: []archive.Problem{
				{Kind: archive.KindUnreferenced, Archive: "apps.tar", Digest: digest.FromString("stray"), Detail: "5"},
				{Kind: KindChecksumMismatch, Archive: "apps.tar"},
			},
		},
		{
			name: "not an archive",
			change: func(_ *lockfile.Lock, out string) {
				os.WriteFile(filepath.Join(out, "apps.tar"), []byte("hello"), 0o644)
			},
			want: []archive.Problem{
				{Kind: KindArchiveUnreadable, Archive: "apps.tar", Detail: "archive: reading tar: unexpected EOF"},
				{Kind: KindChecksumMismatch, Archive: "apps.tar"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := cloneLock(t, w.lock)
			out := t.TempDir()
			for _, name := range []string{"apps.tar", "filtered.tar.zst", SumsFile} {
				b, err := os.ReadFile(filepath.Join(w.out, name))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(out, name), b, 0o644)
			}
			tc.change(l, out)
			reports, err := Verify(context.Background(), w.spec, l, VerifyOptions{OutputDir: out})
			if err != nil {
				t.Fatal(err)
			}
			got := allProblems(reports)
			ok := len(got) == len(tc.want)
			for i := 0; ok && i < len(got); i++ {
				want := tc.want[i]
				if want.Kind == KindChecksumMismatch && want.Digest == "" {
					// The file's sum is whatever it is; SHA256SUMS has the build's.
					want.Digest, want.Detail = got[i].Digest, got[i].Detail
					ok = got[i].Detail != "" && got[i].Digest.Encoded() != got[i].Detail
				}
				ok = ok && got[i] == want
			}
			if !ok {
				t.Errorf("problems:\n%+v\nwant:\n%+v", got, tc.want)
			}
		})
	}
}

// appendToTar rewrites an uncompressed tar with one more file.
func appendToTar(t *testing.T, p, name, body string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(h)
		io.Copy(tw, tr)
	}
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
	tw.Write([]byte(body))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// Consistent on its own: only Verify, which knows what build writes,
	// minds the stray.
	if r := VerifyArchive(context.Background(), p); !r.OK() {
		t.Errorf("VerifyArchive after adding %s: %v", name, r.Problems)
	}
}

func cloneLock(t *testing.T, l *lockfile.Lock) *lockfile.Lock {
	t.Helper()
	b, err := l.Encode("bundle.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := lockfile.Parse(b, "bundle.lock")
	if err != nil {
		t.Fatal(err)
	}
	// Encode sorts; keep the order the test indexes by.
	slices.SortFunc(c.Groups, func(a, b lockfile.Group) int { return strings.Compare(a.Name, b.Name) })
	return c
}
