package archive

import (
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// TestReadOffsets: in an uncompressed archive, [Offset, Offset+Size) of the
// file is each file's content, so a blob can be read in place (serve).
func TestReadOffsets(t *testing.T) {
	w := newWorld(t)
	out := writeArchive(t, w.images, w.blobs, Options{})
	c := mustRead(t, out)
	if len(c.Blobs) == 0 {
		t.Fatal("no blobs read")
	}
	for d, b := range c.Blobs {
		f := c.Files[b.Path]
		got := out[f.Offset : f.Offset+f.Size]
		if digest.FromBytes(got) != d {
			t.Errorf("%s: bytes at [%d, +%d) hash to %s", b.Path, f.Offset, f.Size, digest.FromBytes(got))
		}
	}
	// Long names (PAX headers) and several files in a row.
	long := strings.Repeat("d/", 80) + "file"
	raw := tarOf(t, reg("oci-layout", okLayout), reg("index.json", okIndex), reg("a", "first"), reg(long, "second body"), reg("b", ""), reg("c", strings.Repeat("x", 1000)))
	c = mustRead(t, raw)
	for p, want := range map[string]string{"a": "first", long: "second body", "b": "", "c": strings.Repeat("x", 1000)} {
		f := c.Files[p]
		if f == nil {
			t.Fatalf("%s not read", p)
		}
		if got := string(raw[f.Offset : f.Offset+f.Size]); got != want {
			t.Errorf("%s at %d: %q, want %q", p, f.Offset, got, want)
		}
	}
}
