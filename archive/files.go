package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoArchive is returned by Files for a directory without archives.
var ErrNoArchive = errors.New("no archive")

// Files lists the archives that paths stand for: a file as given, a
// directory for the archives directly in it (regular files whose names
// CompressionFor accepts, hidden ones skipped: a build's temporary files
// start with a dot), in name order.
func Files(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		n := len(out)
		for _, e := range entries {
			name := e.Name()
			if _, err := CompressionFor(name); err == nil && e.Type().IsRegular() && !strings.HasPrefix(name, ".") {
				out = append(out, filepath.Join(p, name))
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("%w in %s (.tar, .tar.gz, .tgz, .tar.zst or .tzst)", ErrNoArchive, p)
		}
	}
	if len(out) == 0 {
		return nil, ErrNoArchive
	}
	return out, nil
}
