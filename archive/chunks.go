package archive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
)

// An archive of one image larger than its group's max-size (with
// split-oversize) is cut into byte chunks NAME.chunk-J-of-K, each at most
// max-size, and NAME.sha256 holds the joined archive's checksum in
// `sha256sum -c` form. Rejoin with `cat NAME.chunk-* > NAME` in order (the
// names sort in order up to 9 chunks; `airgap-bundle join NAME` needs no
// care) and check with `sha256sum -c NAME.sha256`. A chunk is no archive:
// no consumer takes it.

// ErrMissingChunk is the class of a cut archive some of whose chunks are
// not there.
var ErrMissingChunk = errors.New("missing chunk")

// ChunkName is the file name of chunk j of k of the archive whole.
func ChunkName(whole string, j, k int) string {
	return fmt.Sprintf("%s.chunk-%d-of-%d", whole, j, k)
}

// ChecksumName is the file holding a cut archive's joined checksum.
func ChecksumName(whole string) string { return whole + ".sha256" }

// SplitChunk reads a chunk's file name: the archive it is cut from, its
// number and the number of chunks.
func SplitChunk(file string) (whole string, j, k int, ok bool) {
	i := strings.LastIndex(file, ".chunk-")
	if i < 0 {
		return "", 0, 0, false
	}
	if _, err := fmt.Sscanf(file[i+len(".chunk-"):], "%d-of-%d", &j, &k); err != nil {
		return "", 0, 0, false
	}
	whole = file[:i]
	if j < 1 || j > k || ChunkName(whole, j, k) != file {
		return "", 0, 0, false
	}
	return whole, j, k, true
}

// Chunks lists, in order, the chunks of the archive at path (which need
// not exist), and reads the joined checksum from its .sha256 file. ok is
// false when the archive is not cut (no .sha256 file); every missing chunk
// is an ErrMissingChunk error naming it.
func Chunks(path string) (chunks []string, sum string, ok bool, err error) {
	data, err := inputfile.Read(context.Background(), ChecksumName(path), inputfile.MaxSmall)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", true, err
	}
	line := strings.TrimSpace(string(data))
	hexsum, name, found := strings.Cut(line, "  ")
	if !found || name != filepath.Base(path) || len(hexsum) != 64 {
		return nil, "", true, fmt.Errorf("%s: not a checksum of %s", ChecksumName(path), filepath.Base(path))
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, "", true, err
	}
	k := 0
	have := map[int]bool{}
	for _, e := range ents {
		if w, j, n, ok := SplitChunk(e.Name()); ok && w == base {
			if k != 0 && n != k {
				return nil, "", true, fmt.Errorf("%s: chunks of %s cut two ways (of %d and of %d)", dir, base, k, n)
			}
			k = n
			have[j] = true
		}
	}
	var missing []string
	for j := 1; j <= max(k, 1); j++ {
		if !have[j] {
			missing = append(missing, ChunkName(base, j, max(k, 1)))
		}
		chunks = append(chunks, filepath.Join(dir, ChunkName(base, j, max(k, 1))))
	}
	if len(missing) > 0 {
		return nil, "", true, fmt.Errorf("%w: %s in %s", ErrMissingChunk, strings.Join(missing, ", "), dir)
	}
	return chunks, strings.ToLower(hexsum), true, nil
}

// OpenChunks is a reader of a cut archive's chunks, joined, in order.
func OpenChunks(chunks []string) (io.ReadCloser, error) {
	var rs []io.Reader
	var fs []*os.File
	for _, c := range chunks {
		f, err := os.Open(c)
		if err != nil {
			for _, f := range fs {
				f.Close()
			}
			return nil, err
		}
		fs = append(fs, f)
		rs = append(rs, bufio.NewReaderSize(f, 256<<10))
	}
	return &joined{Reader: io.MultiReader(rs...), files: fs}, nil
}

type joined struct {
	io.Reader
	files []*os.File
}

func (j *joined) Close() error {
	for _, f := range j.files {
		f.Close()
	}
	return nil
}

// Join writes the cut archive at path from its chunks, checks it against
// its .sha256 file and puts it in place; the chunks stay.
func Join(ctx context.Context, path string) (sum string, err error) {
	chunks, want, cut, err := Chunks(path)
	if err != nil {
		return "", err
	}
	if !cut {
		return "", fmt.Errorf("%s: no %s beside it: not an archive cut into chunks", path, filepath.Base(ChecksumName(path)))
	}
	r, err := OpenChunks(chunks)
	if err != nil {
		return "", err
	}
	defer r.Close()
	tmp, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return "", err
	}
	defer tmp.Close() // removes the temporary file unless committed
	tmp.SyncAhead()
	h := sha256.New()
	if _, err := io.CopyBuffer(io.MultiWriter(tmp, h), iox.ContextReader(ctx, r), make([]byte, 256<<10)); err != nil {
		return "", err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if sum != want {
		return "", fmt.Errorf("%s joined from %d chunks has sha256 %s, not %s (%s): a chunk is damaged (sha256sum -c SHA256SUMS says which)", path, len(chunks), sum, want, filepath.Base(ChecksumName(path)))
	}
	return sum, tmp.Commit()
}
