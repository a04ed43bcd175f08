package lockfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
)

func d(n string) digest.Digest { return digest.Digest("sha256:" + strings.Repeat(n, 64)) }

func sample() *Lock {
	return &Lock{Version: 1, Groups: []Group{
		{Name: "z", Platforms: []string{"linux/arm64", "linux/amd64"}, Index: "original", Images: []Image{
			{Ref: "docker.io/library/busybox:latest", Digest: d("a"), MediaType: image.OCIIndex, Size: 30, Platforms: []Platform{
				{Platform: "linux/arm64", Digest: d("b"), MediaType: image.OCIManifest, Config: d("c"), Size: 10},
				{Platform: "linux/amd64", Digest: d("d"), MediaType: image.OCIManifest, Config: d("e"), Size: 10},
			}},
			{Ref: "docker.io/library/alpine:3.19", Digest: d("f"), MediaType: image.DockerManifest, Size: 5, Platforms: []Platform{
				{Platform: "linux/amd64", Digest: d("f"), MediaType: image.DockerManifest, Config: d("1"), Size: 5},
			}},
		}},
		{Name: "a", Platforms: []string{"all"}, Index: "filtered", Images: []Image{
			{Ref: "quay.io/x/y:1", Digest: d("2"), MediaType: image.OCIManifest, Size: 5, Platforms: []Platform{
				{Platform: "linux/s390x", Digest: d("2"), MediaType: image.OCIManifest, Config: d("3"), Size: 5},
			}},
		}},
	}}
}

func TestEncodeRoundTrip(t *testing.T) {
	b1, err := sample().Encode("bundle.toml")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(b1, "bundle.lock")
	if err != nil {
		t.Fatalf("own output does not parse: %v\n%s", err, b1)
	}
	b2, _ := l.Encode("bundle.toml")
	if string(b1) != string(b2) {
		t.Fatalf("encode is not stable:\n%s\n---\n%s", b1, b2)
	}
	s := string(b1)
	// Groups and images sorted; platforms keep the group's order.
	if strings.Index(s, `name = "a"`) > strings.Index(s, `name = "z"`) ||
		strings.Index(s, "alpine") > strings.Index(s, "busybox") ||
		strings.Index(s, "linux/arm64") > strings.Index(s, "linux/amd64\"\ndigest") {
		t.Errorf("order wrong:\n%s", s)
	}
	for _, bad := range []string{"T00:", "UTC", "\t"} {
		if strings.Contains(s, bad) {
			t.Errorf("output contains %q", bad)
		}
	}
}

func TestParseRejectsHandEdits(t *testing.T) {
	good, _ := sample().Encode("bundle.toml")
	cases := []struct{ name, from, to, want string }{
		{"short digest", d("b").String(), "sha256:bbbb", "digest"},
		{"sha512", d("a").String(), "sha512:" + strings.Repeat("a", 128), "unsupported digest algorithm"},
		{"media type", `media-type = "application/vnd.docker.distribution.manifest.v2+json"` + "\nsize = 5\n\n[[group.image.platform]]", `media-type = "text/plain"` + "\nsize = 5\n\n[[group.image.platform]]", "media-type"},
		{"not canonical", "docker.io/library/alpine:3.19", "alpine:3.19", "not canonical"},
		{"unknown key", "version = 1", "version = 1\nextra = true", `unknown key "extra"`},
		{"version", "version = 1", "version = 2", "lockfile version 1"},
		{"syntax", "[[group]]\nname = \"a\"", "[[group]\nname = \"a\"", "expected"},
		{"bad platform", `platform = "linux/s390x"`, `platform = "linux/s390"`, "unknown architecture"},
		{"negative size", "size = 30", "size = -30", "size must be positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := strings.Replace(string(good), c.from, c.to, 1)
			if in == string(good) {
				t.Fatalf("edit %q did not apply", c.from)
			}
			_, err := Parse([]byte(in), "bundle.lock")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bundle.lock:") {
				t.Errorf("error %q: want %q with a bundle.lock:LINE place", err, c.want)
			}
			if !errors.Is(err, errdefs.ErrLockfile) {
				t.Errorf("error is not a spec-class error")
			}
		})
	}
}

func TestWriteKeepsIdenticalFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bundle.lock")
	data, _ := sample().Encode("bundle.toml")
	if changed, err := Write(p, data); err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	st1, _ := os.Stat(p)
	if changed, err := Write(p, data); err != nil || changed {
		t.Fatalf("second write changed=%v err=%v", changed, err)
	}
	st2, _ := os.Stat(p)
	if !st1.ModTime().Equal(st2.ModTime()) {
		t.Error("identical write touched the file")
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestPath(t *testing.T) {
	for in, want := range map[string]string{"bundle.toml": "bundle.lock", "x/k3s-airgap.toml": "x/k3s-airgap.lock", "spec": "spec.lock"} {
		if got := Path(in); got != want {
			t.Errorf("Path(%q) = %q, want %q", in, got, want)
		}
	}
}

// An unknown key is reported once, at its own line: BurntSushi's
// Undecoded lists it under every array entry, without indices.
func TestParseUnknownKeyOnceAtItsLine(t *testing.T) {
	good, _ := sample().Encode("bundle.toml")
	for _, c := range []struct{ header, key, name string }{
		{"[[group.image.platform]]", `arch = "amd64"`, "group.image.platform.arch"},
		{"[[group]]", "bogus = 1", "group.bogus"},
		{"[[group.image]]", "note = \"x\"", "group.image.note"},
	} {
		lines := strings.Split(string(good), "\n")
		last := -1
		for i, l := range lines {
			if l == c.header {
				last = i
			}
		}
		if last < 0 {
			t.Fatalf("sample has no %s", c.header)
		}
		lines = append(lines[:last+1], append([]string{c.key}, lines[last+1:]...)...)
		_, err := Parse([]byte(strings.Join(lines, "\n")), "bundle.lock")
		if err == nil {
			t.Fatal("accepted")
		}
		want := fmt.Sprintf(`bundle.lock:%d: unknown key %q`, last+2, c.name)
		if n := strings.Count(err.Error(), "unknown key"); n != 1 || !strings.Contains(err.Error(), want) {
			t.Errorf("got %d unknown-key errors, want one %q:\n%v", n, want, err)
		}
	}
}
