package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// TarBlobs finds each blob's bytes by headers alone, past PAX headers and
// "./" prefixes, and passes over what is not a sha256 blob: links,
// directories, other algorithms, names that are not digests.
func TestTarBlobs(t *testing.T) {
	first, second := "first blob", strings.Repeat("y", 1500)
	d1, d2 := digest.FromString(first), digest.FromString(second)
	long := "blobs/sha256/" + strings.Repeat("z", 120) // a PAX header, not a digest
	raw := tarOf(t,
		tent{name: "blobs/", typ: tar.TypeDir},
		reg("blobs/sha256/"+d1.Encoded(), first),
		reg(long, "not a blob"),
		reg("blobs/sha512/"+strings.Repeat("a", 128), "other algorithm"),
		tent{name: "blobs/sha256/" + strings.Repeat("b", 64), typ: tar.TypeSymlink, link: d1.Encoded()},
		reg("./blobs/sha256/"+d2.Encoded(), second),
		reg("index.json", "{}"),
	)
	var got []TarBlob
	err := TarBlobs(context.Background(), bytes.NewReader(raw), func(b TarBlob) error {
		got = append(got, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Digest != d1 || got[1].Digest != d2 {
		t.Fatalf("TarBlobs found %+v, want %s and %s", got, d1, d2)
	}
	for _, b := range got {
		if body := raw[b.Offset : b.Offset+b.Size]; digest.FromBytes(body) != b.Digest {
			t.Errorf("%s: bytes at [%d, +%d) hash to %s", b.Digest, b.Offset, b.Size, digest.FromBytes(body))
		}
	}
	if err := TarBlobs(context.Background(), bytes.NewReader([]byte("not a tar at all, but long enough to be read as a header block"+strings.Repeat("\x01", 600))), func(TarBlob) error { return nil }); err == nil {
		t.Error("TarBlobs of a file that is no tar: no error")
	}
}
