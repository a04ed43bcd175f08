package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// ErrBusy is the class of a prune refused because a build (or another
// command that holds the cache open) is running.
var ErrBusy = errors.New("cache in use")

// Usage is what a cache directory holds, by kind.
type Usage struct {
	Blobs     Count  `json:"blobs"`    // verified blobs (blobs/sha256)
	Partials  Count  `json:"partials"` // downloads cut short, kept to resume (tmp/)
	Unpacked  Count  `json:"unpacked"` // serve's decompressed copies (unpacked/)
	Total     int64  `json:"total-bytes"`
	Directory string `json:"directory"`
}

// Count is a number of files and their bytes.
type Count struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
}

func (c *Count) add(n int64) { c.Files++; c.Bytes += n }

// DiskUsage walks the cache at dir.
func DiskUsage(dir string) (Usage, error) {
	u := Usage{Directory: dir}
	for _, k := range []struct {
		sub string
		c   *Count
	}{{"blobs/sha256", &u.Blobs}, {"tmp", &u.Partials}, {"unpacked", &u.Unpacked}} {
		ents, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(k.sub)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return u, err
		}
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
				k.c.add(fi.Size())
			}
		}
	}
	u.Total = u.Blobs.Bytes + u.Partials.Bytes + u.Unpacked.Bytes
	return u, nil
}

// PruneOptions say what prune removes.
type PruneOptions struct {
	// Keep, when set, keeps the blobs it says yes to; every other blob
	// goes (subject to OlderThan). Nil: blobs go by age alone.
	Keep func(digest.Digest) bool
	// OlderThan, when set, removes only files last written longer ago.
	OlderThan time.Duration
	// DryRun removes nothing and says what would go.
	DryRun bool
}

// Pruned is what prune removed (or, with DryRun, would remove).
type Pruned struct {
	Blobs    Count `json:"blobs"`
	Partials Count `json:"partials"`
	Unpacked Count `json:"unpacked"`
	Kept     Count `json:"kept-blobs"`
}

// Prune removes from the cache at dir the blobs opts does not keep,
// partial downloads no run is resuming, and serve's decompressed copies
// (each subject to OlderThan). It takes the cache's exclusive lock first:
// while a build (any command that opened the cache) runs, it refuses with
// ErrBusy instead of removing a blob from under it.
func Prune(dir string, opts PruneOptions) (Pruned, error) {
	var p Pruned
	if opts.Keep == nil && opts.OlderThan <= 0 {
		return p, errors.New("cache prune: give what to keep, or an age (nothing would be kept)")
	}
	d, err := os.Open(dir)
	if err != nil {
		return p, err
	}
	defer d.Close()
	if !tryLockExclusive(d) {
		return p, fmt.Errorf("%w: %s is held by a running build (or serve, push): prune when it has ended", ErrBusy, dir)
	}
	cutoff := time.Time{}
	if opts.OlderThan > 0 {
		cutoff = time.Now().Add(-opts.OlderThan)
	}
	old := func(fi fs.FileInfo) bool { return cutoff.IsZero() || fi.ModTime().Before(cutoff) }
	remove := func(path string, c *Count, size int64) error {
		if !opts.DryRun {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		c.add(size)
		return nil
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	ents, err := os.ReadDir(blobs)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return p, err
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		dg := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if (opts.Keep != nil && opts.Keep(dg)) || !old(fi) {
			p.Kept.add(fi.Size())
			continue
		}
		if err := remove(filepath.Join(blobs, e.Name()), &p.Blobs, fi.Size()); err != nil {
			return p, err
		}
	}
	// Partial downloads: one a run holds (flock) is left alone.
	tmp := filepath.Join(dir, "tmp")
	ents, _ = os.ReadDir(tmp)
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || !strings.HasSuffix(e.Name(), ".partial") || !old(fi) {
			continue
		}
		f, err := os.Open(filepath.Join(tmp, e.Name()))
		if err != nil {
			continue
		}
		free := tryLock(f)
		f.Close()
		if free {
			if err := remove(filepath.Join(tmp, e.Name()), &p.Partials, fi.Size()); err != nil {
				return p, err
			}
		}
	}
	unpacked := filepath.Join(dir, "unpacked")
	ents, _ = os.ReadDir(unpacked)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && old(fi) {
			if err := remove(filepath.Join(unpacked, e.Name()), &p.Unpacked, fi.Size()); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// ReadSmall reads blob d (a manifest, an index) from the cache at dir,
// without opening the cache (so without its shared lock: prune reads the
// kept manifests this way), up to max bytes; the content is checked.
func ReadSmall(dir string, d digest.Digest, max int64) ([]byte, error) {
	if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("cache: %q is not a sha256 digest", d)
	}
	b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max || digest.FromBytes(b) != d {
		return nil, fmt.Errorf("cache: blob %s is damaged or over %d bytes", d, max)
	}
	return b, nil
}
