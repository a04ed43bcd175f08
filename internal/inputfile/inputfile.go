// Package inputfile reads the files a user names as input (the spec, the
// lockfile, image lists, Kubernetes manifests, keys, CA certificates, auth
// files): only regular files, never more than a stated number of bytes, and
// never past the end of the run's context. A spec arrives by pull request,
// so "manifests = [\"/dev/zero\"]" or a FIFO must be an error, not a hang or
// an out-of-memory kill.
package inputfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/airgap-bundle/airgap-bundle/internal/iox"
)

// The caps, one per kind of input. Each is far above any real file of its
// kind (the largest Kubernetes CRD bundles are a few MiB) and far below
// what would hurt a build machine. They are documented in the README.
const (
	MaxSpec      = 4 << 20  // bundle.toml, or a registries-only spec
	MaxLockfile  = 64 << 20 // bundle.lock: hundreds of images with signatures
	MaxImageList = 16 << 20 // one image-lists file
	MaxManifest  = 16 << 20 // one Kubernetes YAML file
	MaxSmall     = 1 << 20  // a public key, a CA certificate bundle, an auth file
	MaxSums      = 16 << 20 // a SHA256SUMS beside archives: ~100 bytes a line
)

// ErrNotRegular is the class of a path that is not a regular file after
// symlinks (a device, FIFO, socket or directory).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is the class of a file over its cap.
var ErrTooLarge = errors.New("file too large")

// Read returns the contents of the regular file at path (symlinks
// followed), at most limit bytes. A larger file is an ErrTooLarge error
// naming the file and the cap; the read stops with ctx's error when ctx
// ends.
func Read(ctx context.Context, path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	if size > limit {
		return nil, tooLarge(path, limit)
	}
	// Files under /proc say 0 bytes and hold more: the cap, not the size,
	// bounds the read.
	data, err := io.ReadAll(io.LimitReader(iox.ContextReader(ctx, f), limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(path, limit)
	}
	return data, nil
}

// Check reports whether path is a regular file (symlinks followed) of at
// most limit bytes by its size, without reading it: for files another
// library reads after us.
func Check(path string, limit int64) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return notRegular(path, st.Mode())
	}
	if st.Size() > limit {
		return tooLarge(path, limit)
	}
	return nil
}

// Open opens path for reading if it is a regular file. The file is opened
// non-blocking, so a FIFO swapped in after the check cannot block the
// open, and checked again through its descriptor.
func Open(path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(path, st.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, err
		}
		return nil, notRegular(path, st.Mode())
	}
	return f, nil
}

// The errors are *fs.PathErrors, as os.Open's are, so that a caller that
// names the file itself can unwrap them.
func notRegular(path string, m fs.FileMode) error {
	return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (a %s): name a regular file", ErrNotRegular, TypeName(m))}
}

func tooLarge(path string, limit int64) error {
	return &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: over the %s cap for this kind of input", ErrTooLarge, Size(limit))}
}

// TypeName names a file's type for a person: "directory", "FIFO",
// "socket", "character device", "block device", "symlink"; "regular file".
func TypeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "file of mode " + m.String()
}

// Size renders a cap as people write it ("16 MiB").
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
