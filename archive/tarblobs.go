package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// TarBlob is a blobs/sha256/<hex> entry of an uncompressed tar, found by
// its header alone: what its name and header say, not what its bytes hash
// to.
type TarBlob struct {
	Digest digest.Digest
	// Offset and Size are where its bytes lie in the tar.
	Offset, Size int64
}

// TarBlobs calls fn for each regular blobs/sha256/<hex> entry of the
// uncompressed tar r, in the tar's order, reading only its headers:
// tar.Reader seeks over the data when r is a file, so a tar of many
// gigabytes is listed in the time of a few reads per entry. Nothing is
// hashed: a caller that copies a blob checks its digest then (apply), or
// says that it trusts the names (inventory). Entries whose names are not
// sha256 digests are passed over; Read reports them.
func TarBlobs(ctx context.Context, r io.ReadSeeker, fn func(TarBlob) error) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		hex, ok := strings.CutPrefix(strings.TrimPrefix(hdr.Name, "./"), "blobs/sha256/")
		if !ok || hdr.Typeflag != tar.TypeReg {
			continue
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, hex)
		if d.Validate() != nil {
			continue
		}
		if hdr.Size < 0 {
			return fmt.Errorf("entry %q: negative size", hdr.Name)
		}
		off, err := r.Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		if err := fn(TarBlob{Digest: d, Offset: off, Size: hdr.Size}); err != nil {
			return err
		}
	}
}
