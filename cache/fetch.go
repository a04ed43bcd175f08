package cache

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/internal/iox"
)

// OpenFunc opens a blob's content from byte offset on.
type OpenFunc func(ctx context.Context, offset int64) (io.ReadCloser, error)

// FetchProgress follows a download; either function may be nil.
type FetchProgress struct {
	// Started says where the blob's bytes land and how many of them are
	// there already (resumed), before anything is asked of open. Until
	// Fetch returns nil, what the file holds is not verified.
	Started func(path string, have int64)
	// Received is called with the number of bytes read from open, once
	// they are written to that file.
	Received func(n int64)
}

// Fetch downloads blob d of the given size into the cache through open.
//
// A download that stops midway (a dropped connection, Ctrl-C, kill -9)
// leaves its bytes in tmp/<hex>.partial; the next Fetch of d, in this
// process or a later one, re-hashes that prefix and asks open for the rest
// only. The whole is checked against d and size before it enters the cache;
// a partial proved wrong is deleted. Another process fetching the same blob
// holds a lock on the partial: this one then downloads into a private
// temporary file from the start.
//
// resumed is how many bytes were already on disk.
func (c *Cache) Fetch(ctx context.Context, d digest.Digest, size int64, open OpenFunc, prog FetchProgress) (resumed int64, err error) {
	p, err := c.path(d)
	if err != nil {
		return 0, err
	}
	if size < 0 {
		return 0, errors.New("cache: Fetch needs the blob's size")
	}
	f, shared, err := c.partial(d)
	if err != nil {
		return 0, err
	}
	defer func() {
		// A partial proved wrong is useless, and one that filled the disk
		// holds the very space the user must free: neither is kept. Once
		// the disk is full, neither is any partial cut short (the other
		// downloads of the run, cancelled by that failure).
		if errors.Is(err, syscall.ENOSPC) {
			c.full.Store(true)
		}
		if !shared || err != nil && (errors.Is(err, ErrDigest) || errors.Is(err, syscall.ENOSPC) || c.full.Load()) {
			os.Remove(f.Name())
		}
		f.Close() // releases the lock
	}()

	h := d.Algorithm().Hash()
	offset, err := rehash(f, h, size)
	if err != nil {
		return 0, fmt.Errorf("cache: reading partial %s: %w", f.Name(), err)
	}
	resumed = offset
	if prog.Started != nil {
		prog.Started(f.Name(), offset)
	}
	if offset < size {
		rc, err := open(ctx, offset)
		if err != nil {
			return resumed, err
		}
		buf := copyBufs.Get().(*[]byte)
		n, err := io.CopyBuffer(io.MultiWriter(f, h, countFunc(prog.Received)), iox.ContextReader(ctx, io.LimitReader(rc, size-offset+1)), *buf)
		copyBufs.Put(buf)
		rc.Close()
		offset += n
		if err != nil {
			return resumed, err
		}
		if offset < size {
			return resumed, fmt.Errorf("%w: %s: body ended after %d of %d bytes", io.ErrUnexpectedEOF, d, offset, size)
		}
	}
	if offset != size {
		return resumed, fmt.Errorf("%w: %s: got %d bytes, want %d", ErrDigest, d, offset, size)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return resumed, fmt.Errorf("%w: got %s, want %s", ErrDigest, got, d)
	}
	// No fsync: a cached blob that a crash left short or damaged fails the
	// check every read of an earlier run's blob makes, and is fetched
	// again; syncing every layer would write the bytes to disk before the
	// archive does it a second time. Archives themselves are synced.
	if err := f.Chmod(c.blobMode()); err != nil {
		return resumed, err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return resumed, err
	}
	return resumed, nil
}

// partial opens d's partial download, locked, creating it if needed. When
// another process holds it, a private temporary file is returned instead
// (shared false).
func (c *Cache) partial(d digest.Digest) (f *os.File, shared bool, err error) {
	name := filepath.Join(c.dir, "tmp", d.Encoded()+".partial")
	f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE, c.blobMode())
	if err != nil {
		return nil, false, fmt.Errorf("cache: %w", err)
	}
	if tryLock(f) {
		return f, true, nil
	}
	f.Close()
	f, err = os.CreateTemp(filepath.Join(c.dir, "tmp"), "."+d.Encoded()+".tmp-*")
	if err != nil {
		return nil, false, fmt.Errorf("cache: %w", err)
	}
	return f, false, nil
}

// rehash feeds the partial's bytes to h and leaves f positioned at its end.
// A partial longer than the blob is discarded.
func rehash(f *os.File, h hash.Hash, size int64) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.Copy(h, io.LimitReader(f, size+1))
	if err != nil {
		return 0, err
	}
	if n > size {
		h.Reset()
		if err := f.Truncate(0); err != nil {
			return 0, err
		}
		_, err := f.Seek(0, io.SeekStart)
		return 0, err
	}
	return n, nil
}

// copyBufs are the download buffers: larger than io.Copy's 32 KiB, so a
// fast link costs a quarter of the write calls (and of the hash and
// progress calls that ride along).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

type countFunc func(int64)

func (c countFunc) Write(p []byte) (int, error) {
	if c != nil {
		c(int64(len(p)))
	}
	return len(p), nil
}
