package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
)

// ErrNoArchive is returned by Files for a directory without archives.
var ErrNoArchive = errors.New("no archive")

// Files lists the archives that paths stand for: a file as given, a
// directory for the archives directly in it (regular files whose names
// CompressionFor accepts, or symlinks to regular files, hidden ones
// skipped: a build's temporary files start with a dot), in name order.
func Files(paths []string) ([]string, error) {
	files, _, err := ListFiles(paths)
	return files, err
}

// ListFiles is Files, and says which entries of the directories were
// passed over although named like archives, and why: a symlink that leads
// nowhere, or to no regular file.
func ListFiles(paths []string) (files, skipped []string, err error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, skipped, err
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, skipped, err
		}
		n, nskipped := len(out), len(skipped)
		for _, e := range entries {
			name := e.Name()
			if _, err := CompressionFor(name); err != nil || strings.HasPrefix(name, ".") {
				continue
			}
			full := filepath.Join(p, name)
			switch {
			case e.Type().IsRegular():
				out = append(out, full)
			case e.Type()&fs.ModeSymlink != 0:
				// An archive linked into a served directory (from a
				// larger dist, a mounted medium) is the archive.
				switch target, err := os.Stat(full); {
				case err != nil:
					skipped = append(skipped, fmt.Sprintf("%s: a symlink that leads nowhere (%v)", full, err))
				case !target.Mode().IsRegular():
					skipped = append(skipped, fmt.Sprintf("%s: a symlink to a %s, not to a regular file", full, inputfile.TypeName(target.Mode())))
				default:
					out = append(out, full)
				}
			}
		}
		if len(out) == n {
			if len(skipped) > nskipped {
				return nil, skipped, fmt.Errorf("%w in %s (.tar, .tar.gz, .tgz, .tar.zst or .tzst): %s", ErrNoArchive, p, strings.Join(skipped[nskipped:], "; "))
			}
			return nil, skipped, fmt.Errorf("%w in %s (.tar, .tar.gz, .tgz, .tar.zst or .tzst)", ErrNoArchive, p)
		}
	}
	if len(out) == 0 {
		return nil, skipped, ErrNoArchive
	}
	return out, skipped, nil
}
