// Package atomicfile writes files so that a reader sees either the old file
// or the complete new one, never half of it, even after a crash: the bytes go
// to a hidden temporary file, which is flushed to disk, given its mode and
// renamed over the target, and the directory is then flushed so the rename
// itself survives a crash. On any error, and when a File is closed without
// Commit, the temporary file is removed and the target is left untouched.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// tmpMarker separates a temporary file's target name from its writer's PID.
const tmpMarker = ".tmp-p"

// ErrClosed is returned by Write and Commit after Commit or Abort.
var ErrClosed = errors.New("atomicfile: file already committed or aborted")

// File is a file being written in place of path. Its zero value is not
// usable; get one from Create or CreateIn. A File is not safe for
// concurrent use.
type File struct {
	tmp    *os.File
	path   string
	mode   fs.FileMode
	err    error // first Write error: Commit refuses to publish a short file
	synced bool  // Sync succeeded: the temporary file is complete and closed
	done   bool
	// written and flushed track the early writeback of large files.
	written, flushed int64
	// With SyncAhead, the data is also made durable in the background:
	// dsynced is where the last background fdatasync started, syncing is
	// closed when it ends (nil: none ran).
	ahead   bool
	dsynced int64
	syncing chan struct{}
}

// writebackChunk is how much is written before the kernel is asked to start
// putting it on disk.
const writebackChunk = 8 << 20

// syncAheadChunk is how much SyncAhead lets pile up before a background
// fdatasync. Measured on a 250 MB archive (ext4 on a virtio disk): the
// final fsync took 110-125 ms however early the writeback had started (the
// cost is the flush, not the writing); with a background fdatasync every
// 32 MiB it took 15 ms, and writing was no slower.
const syncAheadChunk = 32 << 20

// SyncAhead makes the file's data durable in the background while it is
// written, so that the final Sync (or Commit) has little left to flush.
// For large files that will be synced anyway; a scratch file would only
// cost disk writes.
func (f *File) SyncAhead() { f.ahead = true }

// waitSyncing waits for the background fdatasync, if one runs.
func (f *File) waitSyncing() {
	if f.syncing != nil {
		<-f.syncing
	}
}

// Create starts writing a file that will replace path on Commit. The
// temporary file is ".<base>.tmp-p<PID>-*" in path's directory: the PID of
// the writer, so that RemoveStale can tell a crashed writer's leftover from
// a file another process is still writing.
func Create(path string, mode fs.FileMode) (*File, error) {
	return CreateIn("", path, mode)
}

// CreateIn is Create with the temporary file in tmpDir instead of path's
// directory ("" means path's directory). tmpDir must be on the same
// filesystem as path, or Commit's rename fails.
func CreateIn(tmpDir, path string, mode fs.FileMode) (*File, error) {
	if tmpDir == "" {
		tmpDir = filepath.Dir(path)
	}
	tmp, err := os.CreateTemp(tmpDir, "."+filepath.Base(path)+tmpMarker+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return nil, err
	}
	return &File{tmp: tmp, path: path, mode: mode}, nil
}

// Name is the path of the temporary file.
func (f *File) Name() string { return f.tmp.Name() }

// Write writes to the temporary file. After a failed Write, Commit fails.
func (f *File) Write(p []byte) (int, error) {
	if f.done || f.synced {
		return 0, ErrClosed
	}
	n, err := f.tmp.Write(p)
	if err != nil && f.err == nil {
		f.err = err
	}
	f.written += int64(n)
	if f.written-f.flushed >= writebackChunk {
		startWriteback(f.tmp, f.flushed, f.written-f.flushed)
		f.flushed = f.written
	}
	if f.ahead && f.written-f.dsynced >= syncAheadChunk {
		select {
		case <-f.syncing:
			f.syncing = nil
		default:
		}
		if f.syncing == nil { // one at a time: the next starts when this one is done
			f.dsynced = f.written
			done := make(chan struct{})
			f.syncing = done
			go func(fd *os.File) {
				defer close(done)
				_ = dataSync(fd) // an optimisation: the final Sync reports errors
			}(f.tmp)
		}
	}
	return n, err
}

// Sync finishes the temporary file without publishing it: it sets the
// file's mode, flushes it to disk and closes it. A later Commit only renames
// it; Abort (or Close) still removes it. This lets a caller write several
// files completely before replacing any target. If a step fails, the
// temporary file is removed and the error returned. After Sync, Write
// fails; a second Sync is a no-op.
func (f *File) Sync() error {
	if f.done {
		return ErrClosed
	}
	if f.synced {
		return nil
	}
	f.waitSyncing()
	err := f.err
	if err == nil {
		err = f.tmp.Chmod(f.mode)
	}
	if err == nil {
		err = f.tmp.Sync()
	}
	if cerr := f.tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		f.done = true
		os.Remove(f.tmp.Name())
		return err
	}
	f.synced = true
	return nil
}

// Commit sets the file's mode, flushes it to disk and renames it over the
// target (Sync, then rename), then flushes the target's directory. If any
// step up to the rename fails, the temporary file is removed, the target is
// untouched and the error is returned. The directory flush is best effort:
// some filesystems refuse fsync on a directory, and the target is already
// in place by then.
func (f *File) Commit() error {
	if err := f.Sync(); err != nil {
		return err
	}
	f.done = true
	if err := os.Rename(f.tmp.Name(), f.path); err != nil {
		os.Remove(f.tmp.Name())
		return err
	}
	syncDir(filepath.Dir(f.path))
	return nil
}

// Publish renames the file over its target like Commit, but flushes
// nothing to disk: for content-addressed files whose every read is
// verified (the blob cache), where a file a crash left short is caught and
// fetched again, and an fsync per file would cost more than the refetch.
func (f *File) Publish() error {
	if f.done || f.synced {
		return ErrClosed
	}
	f.done = true
	f.waitSyncing()
	err := f.err
	if err == nil {
		err = f.tmp.Chmod(f.mode)
	}
	if cerr := f.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.tmp.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.tmp.Name())
	}
	return err
}

// Abort discards the temporary file. It is a no-op after Commit or Abort.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	if !f.synced {
		f.waitSyncing() // the descriptor stays open until it is done
		f.tmp.Close()
	}
	return os.Remove(f.tmp.Name())
}

// Close is Abort: deferring it right after Create cleans up every path that
// does not reach Commit.
func (f *File) Close() error { return f.Abort() }

// WriteFile atomically replaces path with data, with the given mode.
func WriteFile(path string, data []byte, mode fs.FileMode) error {
	f, err := Create(path, mode)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// Rename renames oldpath to newpath (replacing it atomically) and flushes
// newpath's directory, so that the rename survives a crash.
func Rename(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	syncDir(filepath.Dir(newpath))
	return nil
}

// syncDir flushes a directory, so that a rename into it is durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// RemoveStale removes the temporary files that Create and CreateIn left in
// dir when their process died before Commit or Abort (kill -9, a crash, a
// power cut): ".<name>.tmp-p<PID>-*" regular files whose PID is no longer a
// running process. Files of live processes (a concurrent run) are left
// alone; a PID reused since the crash only delays removal to a later run.
// It returns the paths removed; a missing dir is not an error.
func RemoveStale(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range es {
		pid, ok := tempPID(e.Name())
		if !ok || !e.Type().IsRegular() || PIDAlive(pid) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// tempPID reads the writer's PID from a temporary file's name.
func tempPID(name string) (int, bool) {
	if !strings.HasPrefix(name, ".") {
		return 0, false
	}
	i := strings.LastIndex(name, tmpMarker)
	if i < 0 {
		return 0, false
	}
	digits, _, ok := strings.Cut(name[i+len(tmpMarker):], "-")
	pid, err := strconv.Atoi(digits)
	return pid, ok && err == nil && pid > 0
}
