// Package cache is a content-addressed blob store on disk. Every blob is
// checked against its digest and size before it enters, and lands by atomic
// rename, so a crash or a lying registry never leaves a bad entry; reads are
// checked again, so a corrupted disk is caught before it reaches an archive.
package cache

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
)

// blobMode is the mode of every cached blob.
const blobMode = 0o644

// ErrDigest marks content that does not match its digest or size.
var ErrDigest = errors.New("content does not match its digest")

// Cache is a directory of blobs/sha256/<hex> files.
type Cache struct {
	dir string
}

// DefaultDir is $XDG_CACHE_HOME/airgap-bundle (~/.cache/airgap-bundle).
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "airgap-bundle"), nil
}

// Open creates the cache directories if needed.
func Open(dir string) (*Cache, error) {
	for _, d := range []string{filepath.Join(dir, "blobs", "sha256"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	return &Cache{dir: dir}, nil
}

// Dir is the cache's root.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) path(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("cache: unsupported digest algorithm %s", d.Algorithm())
	}
	return filepath.Join(c.dir, "blobs", "sha256", d.Encoded()), nil
}

// Has reports whether a blob of that digest and size is present. A present
// file of the wrong size is treated as absent (and replaced by Put).
func (c *Cache) Has(d digest.Digest, size int64) bool {
	p, err := c.path(d)
	if err != nil {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && (size < 0 || st.Size() == size)
}

// Put streams r into the cache, hashing as it goes. Nothing is kept unless
// the content has exactly digest d and, when size >= 0, that size.
func (c *Cache) Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	p, err := c.path(d)
	if err != nil {
		return err
	}
	// The temporary file is in tmp/, under the cache directory: the same
	// filesystem as blobs/, so the rename is atomic.
	tmp, err := atomicfile.CreateIn(filepath.Join(c.dir, "tmp"), p, blobMode)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer tmp.Close() // removes the temporary file unless committed
	h := d.Algorithm().Hash()
	limit := size
	if limit < 0 {
		limit = 1 << 62
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), iox.ContextReader(ctx, io.LimitReader(r, limit+1)))
	if err != nil {
		return err
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: %s: got %d bytes, want %d", ErrDigest, d, n, size)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return fmt.Errorf("%w: got %s, want %s", ErrDigest, got, d)
	}
	return tmp.Commit()
}

// Open returns a reader of a cached blob that fails at EOF if the content
// no longer matches its digest (the file is then removed, so the next build
// fetches it again).
func (c *Cache) Open(d digest.Digest, size int64) (io.ReadCloser, error) {
	p, err := c.path(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	return &verifyingReader{f: f, path: p, want: d, size: size, h: d.Algorithm().Hash()}, nil
}

type verifyingReader struct {
	f    *os.File
	path string
	want digest.Digest
	size int64
	n    int64
	h    hash.Hash
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want || (v.size >= 0 && v.n != v.size) {
			os.Remove(v.path)
			return n, fmt.Errorf("%w: cached %s is corrupt (got %s, %d bytes); removed it, run again to fetch it anew", ErrDigest, v.want, got, v.n)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.f.Close() }
