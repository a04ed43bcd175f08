package main

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

const (
	dataDir  = "../../testdata/demo"
	demoLock = "../../examples/demo/bundle.lock"
)

// start runs a seeded demo registry on a free loopback port for the test.
func start(t *testing.T) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	if err := probeRegistry(s.Addr, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	return s
}

func ref(t *testing.T, s *Server, r string) name.Reference {
	t.Helper()
	n, err := name.ParseReference(s.Addr+"/"+r, name.StrictValidation, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestServedImages(t *testing.T) {
	s := start(t)

	// (a) the multi-platform OCI index
	idx, err := remote.Index(ref(t, s, "library/hello:1.0"))
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("hello:1.0 media type %s, want %s", mt, types.OCIImageIndex)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("index child %s has no platform", d.Digest)
		}
		plats = append(plats, d.Platform.String())
		if d.ArtifactType != "" {
			t.Errorf("index child %s has artifactType %q; registries' indexes do not", d.Digest, d.ArtifactType)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.Platform().String(); got != d.Platform.String() {
			t.Errorf("child %s: config says %s, index says %s", d.Digest, got, d.Platform)
		}
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(plats, want) {
		t.Errorf("hello:1.0 platforms %v, want %v", plats, want)
	}

	// (b) Docker schema2
	pause, err := remote.Get(ref(t, s, "airgapdemo/pause:3.6"))
	if err != nil {
		t.Fatal(err)
	}
	if pause.MediaType != types.DockerManifestSchema2 {
		t.Errorf("pause:3.6 media type %s, want %s", pause.MediaType, types.DockerManifestSchema2)
	}

	// (d) one image, two tags
	a, err := remote.Head(ref(t, s, "airgapdemo/toolbox:1.2"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := remote.Head(ref(t, s, "airgapdemo/toolbox:stable"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Errorf("toolbox:1.2 is %s but toolbox:stable is %s", a.Digest, b.Digest)
	}
}

// Seeding twice, in two registries, serves the same digests; and the
// digests are those pinned in examples/demo/bundle.lock, which `make demo`
// builds with --locked.
func TestDeterministic(t *testing.T) {
	s1, s2 := start(t), start(t)
	if len(s1.Images) != len(s2.Images) || len(s1.Images) < 5 {
		t.Fatalf("seeded %d and %d images", len(s1.Images), len(s2.Images))
	}
	for i, im := range s1.Images {
		d1, err := remote.Head(ref(t, s1, im.Ref))
		if err != nil {
			t.Fatal(err)
		}
		d2, err := remote.Head(ref(t, s2, im.Ref))
		if err != nil {
			t.Fatal(err)
		}
		if d1.Digest != d2.Digest || d1.Digest.String() != im.Digest || s2.Images[i].Digest != im.Digest {
			t.Errorf("%s: seeded twice as %s and %s (built as %s)", im.Ref, d1.Digest, d2.Digest, im.Digest)
		}
	}
}

func TestDigestsMatchCommittedLock(t *testing.T) {
	imgs, err := Images(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	seeded := map[string]Image{}
	for _, im := range imgs {
		seeded["docker.io/"+im.Ref] = im
	}
	lock, err := lockfile.Read(demoLock)
	if err != nil {
		t.Fatalf("%v (examples/demo/bundle.lock is committed; regenerate it as examples/demo/README.md says)", err)
	}
	n := 0
	for _, g := range lock.Groups {
		for _, li := range g.Images {
			im, ok := seeded[li.Ref]
			if !ok {
				t.Errorf("%s: group %q pins %s, which the demo registry does not serve", demoLock, g.Name, li.Ref)
				continue
			}
			n++
			if li.Digest.String() != im.Digest {
				t.Errorf("%s: %s is pinned at %s, the demo registry serves %s: the demo images changed (testdata/demo or their code), or are not reproducible; regenerate the lock as examples/demo/README.md says", demoLock, li.Ref, li.Digest, im.Digest)
			}
			for _, p := range li.Platforms {
				if got := im.Plats[p.Platform]; got != p.Digest.String() {
					t.Errorf("%s: %s %s is pinned at %s, the demo registry serves %q", demoLock, li.Ref, p.Platform, p.Digest, got)
				}
			}
		}
	}
	if n == 0 {
		t.Errorf("%s pins no images", demoLock)
	}
}

func TestWhiteoutLayer(t *testing.T) {
	s := start(t)
	img, err := remote.Image(ref(t, s, "airgapdemo/webapp:2.0"))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 {
		t.Fatalf("webapp:2.0 has %d layers, want 2", len(layers))
	}
	for i, l := range layers {
		hdrs := entries(t, l)
		names := make([]string, len(hdrs))
		for j, h := range hdrs {
			names[j] = h.Name
			if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(Epoch) {
				t.Errorf("layer %d: %s: uid %d gid %d mtime %s, want 0 0 %s", i, h.Name, h.Uid, h.Gid, h.ModTime, Epoch)
			}
		}
		wantWh := i == 1
		for _, wh := range []string{"etc/webapp/.wh.legacy.conf", "srv/www/.wh..wh..opq"} {
			if slices.Contains(names, wh) != wantWh {
				t.Errorf("layer %d: has %s = %v, want %v; entries %v", i, wh, !wantWh, wantWh, names)
			}
		}
		if i == 0 {
			for _, n := range []string{"etc/webapp/legacy.conf", "srv/www/old/page.html"} {
				if !slices.Contains(names, n) {
					t.Errorf("layer 0 lacks %s, which layer 1 hides; entries %v", n, names)
				}
			}
		}
	}

	// The whiteouts work: the flattened file system has neither the deleted
	// file nor anything of the old srv/www/.
	fs := map[string]string{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		fs[strings.TrimSuffix(h.Name, "/")] = string(b)
	}
	for _, gone := range []string{"etc/webapp/legacy.conf", "srv/www/old", "srv/www/old/page.html"} {
		if _, ok := fs[gone]; ok {
			t.Errorf("flattened webapp:2.0 still has %s", gone)
		}
	}
	if !strings.Contains(fs["srv/www/index.html"], "Version 2") || fs["etc/webapp/webapp.conf"] == "" {
		t.Errorf("flattened webapp:2.0: index.html %q, webapp.conf %q", fs["srv/www/index.html"], fs["etc/webapp/webapp.conf"])
	}
}

func entries(t *testing.T, l v1.Layer) []*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []*tar.Header
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
}

func TestStartRefusesNonLoopbackAndBusyPort(t *testing.T) {
	if _, err := Start("0.0.0.0:0", dataDir, nil); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("Start(0.0.0.0:0): %v, want a loopback-only error", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Start(ln.Addr().String(), dataDir, nil); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("Start on a busy port: %v, want \"already in use\"", err)
	}
	if _, err := Start("127.0.0.1:0", os.DevNull, nil); err == nil {
		t.Error("Start with a data directory that is not one: no error")
	}
}
