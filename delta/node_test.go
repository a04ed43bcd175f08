package delta

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
)

type memBlobs map[digest.Digest][]byte

func (m memBlobs) add(b []byte) digest.Digest {
	d := digest.FromBytes(b)
	m[d] = b
	return d
}

func (m memBlobs) Open(_ context.Context, d image.Descriptor) (io.ReadCloser, error) {
	b, ok := m[d.Digest]
	if !ok {
		return nil, fmt.Errorf("no blob %s", d.Digest)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// fakeNode is a content store that holds exactly the listed blobs.
type fakeNode struct {
	blobs []digest.Digest
	err   error
}

func (f fakeNode) ListContent(context.Context) ([]digest.Digest, error) { return f.blobs, f.err }

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// nodeDelta writes a delta directory: core.delta.tar holds the index
// app:v2 (linux/amd64 and linux/arm64, two layers each) without the
// first layer of each platform, which delta.json says BASE's group "core"
// holds; extra.tar is unchanged. It returns the directory and the two
// left-out layers, amd64's first.
func nodeDelta(t *testing.T) (string, []digest.Digest) {
	t.Helper()
	idx, err := fixtures.Index("node", true, fixtures.LinuxAMD64, fixtures.LinuxARM64)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := idx.RawManifest()
	im, _ := idx.IndexManifest()
	blobs := memBlobs{}
	top := image.Descriptor{MediaType: image.OCIIndex, Digest: blobs.add(raw), Size: int64(len(raw))}
	var ms []image.Manifest
	var leftOut []digest.Digest
	for _, d := range im.Manifests {
		child, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		mraw, _ := child.RawManifest()
		blobs.add(mraw)
		cfg, _ := child.RawConfigFile()
		blobs.add(cfg)
		layers, _ := child.Layers()
		for i, l := range layers {
			rc, _ := l.Compressed()
			b, _ := io.ReadAll(rc)
			if d := blobs.add(b); i == 0 {
				leftOut = append(leftOut, d)
			}
		}
		m, err := image.ParseManifest(mraw, image.MediaType(d.MediaType))
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	var buf bytes.Buffer
	imgs := []archive.Image{{Names: []string{"registry.test/app:v2"}, Top: top, Manifests: ms}}
	if err := archive.Write(context.Background(), &buf, imgs, blobs, archive.Options{Omit: func(d digest.Digest) bool { return slices.Contains(leftOut, d) }}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "core.delta.tar"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var from []Blob
	for _, d := range leftOut {
		from = append(from, Blob{Digest: d, Size: int64(len(blobs[d])), Where: `group "core"`})
	}
	m := &Manifest{
		Version:        Version,
		Base:           Base{Source: "v1/bundle.lock", LockfileSHA256: sha([]byte("v1"))},
		LockfileSHA256: sha([]byte("v2")),
		Archives: []Archive{
			{Group: "core", Name: "core.tar", Size: 1 << 20, SHA256: sha([]byte("core")),
				Delta: &File{Name: "core.delta.tar", Size: int64(buf.Len()), SHA256: sha(buf.Bytes())}, FromBase: from},
			{Group: "extra", Name: "extra.tar", Size: 1 << 10, SHA256: sha([]byte("extra")), Unchanged: true},
		},
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, leftOut
}

func TestCheckNode(t *testing.T) {
	dir, leftOut := nodeDelta(t)
	amd64, arm64 := leftOut[0], leftOut[1]
	other := digest.FromString("something else the node holds")
	ctx := context.Background()

	t.Run("holds every left-out layer", func(t *testing.T) {
		r, err := CheckNode(ctx, dir, fakeNode{blobs: []digest.Digest{other, arm64, amd64}})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || r.Held != 3 || r.Needed != 2 || r.Missing != 0 || len(r.Archives) != 1 {
			t.Fatalf("report %+v", r)
		}
		if a := r.Archives[0]; a.Delta != "core.delta.tar" || a.Archive != "core.tar" || a.LeftOut != 2 || len(a.Missing) != 0 || len(a.Incomplete) != 0 {
			t.Fatalf("archive %+v", a)
		}
	})

	// Every platform counts (k3s imports them all): the arm64 layer
	// alone missing makes app:v2 incomplete, for that platform.
	t.Run("lacks another platform's layer", func(t *testing.T) {
		r, err := CheckNode(ctx, dir, fakeNode{blobs: []digest.Digest{amd64, other}})
		if err != nil {
			t.Fatal(err)
		}
		a := r.Archives[0]
		if r.OK() || r.Missing != 1 || len(a.Missing) != 1 || a.Missing[0].Digest != arm64 || a.Missing[0].Where != `group "core"` {
			t.Fatalf("report %+v", r)
		}
		want := []NodeImage{{Name: "registry.test/app:v2", Platforms: []string{"linux/arm64"}, Layers: 1}}
		if fmt.Sprint(a.Incomplete) != fmt.Sprint(want) || a.ImagesError != "" {
			t.Fatalf("incomplete %+v (%s), want %+v", a.Incomplete, a.ImagesError, want)
		}
	})

	t.Run("empty node", func(t *testing.T) {
		r, err := CheckNode(ctx, dir, fakeNode{})
		if err != nil {
			t.Fatal(err)
		}
		a := r.Archives[0]
		want := []NodeImage{{Name: "registry.test/app:v2", Platforms: []string{"linux/amd64", "linux/arm64"}, Layers: 2}}
		if r.OK() || r.Held != 0 || r.Missing != 2 || fmt.Sprint(a.Incomplete) != fmt.Sprint(want) {
			t.Fatalf("report %+v, archive %+v", r, a)
		}
	})

	// Without the delta archive the images cannot be named; what is
	// missing is still known from delta.json.
	t.Run("delta archive absent", func(t *testing.T) {
		moved := t.TempDir()
		for _, n := range []string{FileName} {
			b, _ := os.ReadFile(filepath.Join(dir, n))
			os.WriteFile(filepath.Join(moved, n), b, 0o644)
		}
		r, err := CheckNode(ctx, moved, fakeNode{blobs: []digest.Digest{amd64}})
		if err != nil {
			t.Fatal(err)
		}
		a := r.Archives[0]
		if r.Missing != 1 || len(a.Incomplete) != 0 || !strings.Contains(a.ImagesError, "core.delta.tar") {
			t.Fatalf("archive %+v", a)
		}
	})

	t.Run("the node cannot be asked", func(t *testing.T) {
		boom := errors.New("ctr: connection refused")
		if _, err := CheckNode(ctx, dir, fakeNode{err: boom}); !errors.Is(err, boom) {
			t.Fatalf("err %v", err)
		}
		if _, err := CheckNode(ctx, t.TempDir(), fakeNode{}); !errors.Is(err, ErrDelta) {
			t.Fatalf("no delta.json: %v", err)
		}
	})
}
