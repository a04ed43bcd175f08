package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// build --locked checks every field of the lockfile against the documents
// its digests pin, and refuses before writing anything: a tampered lockfile
// must not give an archive that verify then rejects.
func TestBuildLockedRefusesTamperedLockfile(t *testing.T) {
	spec, dist, _ := builtBundle(t)
	lockPath := lockfile.Path(spec)
	good, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	archives := []string{"multi.tar", "tags.tar.zst", "filtered.tar.gz", "SHA256SUMS"}
	before := map[string]string{}
	for _, a := range archives {
		before[a] = sha(t, filepath.Join(dist, a))
	}
	img := func(l *lockfile.Lock, group, ref string) *lockfile.Image {
		e := l.Group(group).Image(ref)
		if e == nil {
			t.Fatalf("no %s in group %s", ref, group)
		}
		return e
	}
	cases := []struct {
		name   string
		tamper func(l *lockfile.Lock)
		want   string
	}{
		{"platform config", func(l *lockfile.Lock) {
			e := img(l, "multi", "registry.test/fixtures/multi-oci:v1")
			e.Platforms[0].Config = digest.Digest("sha256:" + strings.Repeat("0", 64))
		}, "the lockfile's config of platform linux/arm64"},
		{"platform size", func(l *lockfile.Lock) {
			img(l, "multi", "registry.test/fixtures/multi-docker:v1").Platforms[1].Size++
		}, "the lockfile's size of platform linux/amd64"},
		{"image size", func(l *lockfile.Lock) {
			img(l, "multi", "registry.test/fixtures/multi-oci:v1").Size--
		}, "the lockfile's size is"},
		{"single image size", func(l *lockfile.Lock) {
			e := img(l, "tags", "registry.test/fixtures/single:v1")
			e.Size++
			e.Platforms[0].Size++
		}, "the lockfile's size of platform"},
		{"platform digests swapped", func(l *lockfile.Lock) {
			p := img(l, "multi", "registry.test/fixtures/multi-oci:v1").Platforms
			p[0].Digest, p[1].Digest = p[1].Digest, p[0].Digest
			p[0].Config, p[1].Config = p[1].Config, p[0].Config
			p[0].Size, p[1].Size = p[1].Size, p[0].Size
		}, "the lockfile's platform of"},
		{"single image platform", func(l *lockfile.Lock) {
			img(l, "tags", "registry.test/fixtures/single:v1").Platforms[0].Platform = "linux/s390x"
		}, "the lockfile's platform is linux/s390x"},
		{"platform media type", func(l *lockfile.Lock) {
			e := img(l, "multi", "registry.test/fixtures/multi-oci:v1")
			e.Platforms[0].MediaType = image.DockerManifest
		}, "the lockfile's media-type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := lockfile.Parse(good, lockPath)
			if err != nil {
				t.Fatal(err)
			}
			c.tamper(l)
			data, err := l.Encode(filepath.Base(spec))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(lockPath, data, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.WriteFile(lockPath, good, 0o644) })
			out, code := run(t, "build", "--locked", "--cache-dir", t.TempDir(), spec)
			if code != exitUsage || !strings.Contains(out, c.want) {
				t.Fatalf("build --locked with a tampered lockfile: exit %d, want %d and %q:\n%s", code, exitUsage, c.want, out)
			}
			for _, a := range archives {
				if got := sha(t, filepath.Join(dist, a)); got != before[a] {
					t.Errorf("%s changed", a)
				}
			}
			entries, _ := os.ReadDir(dist)
			if len(entries) != len(archives) {
				t.Errorf("output directory holds %d entries, want %d", len(entries), len(archives))
			}
		})
	}
}
