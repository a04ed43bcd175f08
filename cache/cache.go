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
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/iox"
)

// ErrDigest marks content that does not match its digest or size.
var ErrDigest = errors.New("content does not match its digest")

// Cache is a directory of blobs/sha256/<hex> files.
type Cache struct {
	dir    string
	shared bool
	// full is set once a write into the cache ran out of space: from then
	// on no partial download is kept, not even one cut short by the
	// cancellation that follows (it would hold space the user must free).
	full atomic.Bool
	// held is the cache directory, open with a shared flock for the life
	// of the process: prune takes the exclusive one, so it never removes
	// a blob from under a running build.
	held *os.File
}

// DefaultDir is $XDG_CACHE_HOME/airgap-bundle (~/.cache/airgap-bundle).
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "airgap-bundle"), nil
}

// Open creates the cache directories if needed, and removes the temporary
// files of puts whose process died (see atomicfile.RemoveStale).
//
// The cache is private by default: the blobs are layers of possibly private
// images, so directories are 0700 and blobs 0600, and an existing cache's
// top directory readable by others (older versions made it 0755) is
// tightened to 0700. A cache is shared deliberately by giving its top
// directory the setgid bit and a group (chgrp team DIR; chmod 2770 DIR):
// then directories are created 2770 and blobs 0640, readable by the group
// and never by others. Blobs are verified on every read, so a group member
// cannot slip bad content into another's archive.
func Open(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Cache{dir: dir, shared: st.Mode()&os.ModeSetgid != 0}
	dirMode := os.FileMode(0o700)
	if c.shared {
		dirMode = 0o770 | os.ModeSetgid
		if st.Mode().Perm()&0o007 != 0 {
			if err := os.Chmod(dir, st.Mode().Perm()&^0o007|os.ModeSetgid); err != nil {
				return nil, fmt.Errorf("cache: making %s private to its group: %w", dir, err)
			}
		}
	} else if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cache: making %s private: %w", dir, err)
		}
	}
	for _, d := range []string{filepath.Join(dir, "blobs"), filepath.Join(dir, "blobs", "sha256"), filepath.Join(dir, "tmp")} {
		if err := os.Mkdir(d, dirMode.Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("cache: %w", err)
		} else if err == nil && c.shared {
			// Mkdir's mode passes through the umask; a shared cache needs
			// the group bits whatever the umask.
			if err := os.Chmod(d, dirMode); err != nil {
				return nil, fmt.Errorf("cache: %w", err)
			}
		}
	}
	if c.held, err = os.Open(dir); err == nil {
		if err := lockShared(c.held); err != nil {
			c.held.Close()
			c.held = nil
		}
	}
	if _, err := atomicfile.RemoveStale(filepath.Join(dir, "tmp")); err != nil {
		return nil, fmt.Errorf("cache: removing stale temporary files: %w", err)
	}
	return c, nil
}

// Dir is the cache's root.
func (c *Cache) Dir() string { return c.dir }

// Close releases the cache's shared lock (see held); the cache is not to
// be used after.
func (c *Cache) Close() error {
	if c.held == nil {
		return nil
	}
	err := c.held.Close()
	c.held = nil
	return err
}

// TempDir is the cache's tmp/: private, on the cache's filesystem, and
// swept of what killed runs left by the next Open. Other packages' scratch
// files (push's decompressed archives) go there too.
func (c *Cache) TempDir() string { return filepath.Join(c.dir, "tmp") }

func (c *Cache) path(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("cache: unsupported digest algorithm %s", d.Algorithm())
	}
	return filepath.Join(c.dir, "blobs", "sha256", d.Encoded()), nil
}

// blobMode is the mode of a cached blob: private, or readable by the
// group of a deliberately shared cache.
func (c *Cache) blobMode() os.FileMode {
	if c.shared {
		return 0o640
	}
	return 0o600
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
	tmp, err := atomicfile.CreateIn(filepath.Join(c.dir, "tmp"), p, c.blobMode())
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
	// Not synced, as in Fetch: reads of an earlier run's entries verify them.
	return tmp.Publish()
}

// OpenVerified returns a reader of a cached blob without hashing it again:
// for a blob this process put in the cache a moment ago, already checked
// on the way in.
func (c *Cache) OpenVerified(d digest.Digest) (*os.File, error) {
	p, err := c.path(d)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
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
