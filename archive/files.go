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

// ErrMissingPart is returned by Files for a directory that holds some
// parts of an archive and not the others.
var ErrMissingPart = errors.New("missing part")

// archiveExts are the extensions of archive names, the longest first.
var archiveExts = []string{".tar.gz", ".tar.zst", ".tgz", ".tzst", ".tar"}

// PartName is the file name of part i of n of an archive written as
// parts (a group over its max-size): "core.tar.zst" is
// "core.part-1-of-3.tar.zst". Each part is a complete archive.
func PartName(archiveName string, i, n int) string {
	base, ext := splitExt(archiveName)
	return fmt.Sprintf("%s.part-%d-of-%d%s", base, i, n, ext)
}

// SplitPart reads a part's file name: the archive it is a part of, its
// number and the number of parts. ok is false for any other name.
func SplitPart(file string) (archiveName string, i, n int, ok bool) {
	base, ext := splitExt(file)
	k := strings.LastIndex(base, ".part-")
	if k < 0 || ext == "" {
		return "", 0, 0, false
	}
	if _, err := fmt.Sscanf(base[k+len(".part-"):], "%d-of-%d", &i, &n); err != nil {
		return "", 0, 0, false
	}
	archiveName = base[:k] + ext
	if i < 1 || i > n || PartName(archiveName, i, n) != file {
		return "", 0, 0, false
	}
	return archiveName, i, n, true
}

// Siblings says, for a path that is one part of an archive, which part it
// is, of how many, and the paths of the other parts that are not on disk
// beside it (a part present only as chunks counts as there). Zero parts
// for any other path.
func Siblings(path string) (part, parts int, missing []string) {
	name, i, n, ok := SplitPart(filepath.Base(path))
	if !ok {
		return 0, 0, nil
	}
	for j := 1; j <= n; j++ {
		if j == i {
			continue
		}
		p := filepath.Join(filepath.Dir(path), PartName(name, j, n))
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if _, err := os.Stat(ChecksumName(p)); err == nil {
			continue
		}
		missing = append(missing, p)
	}
	return i, n, missing
}

// splitExt splits an archive name at its archive extension.
func splitExt(name string) (base, ext string) {
	for _, e := range archiveExts {
		if strings.HasSuffix(name, e) {
			return strings.TrimSuffix(name, e), e
		}
	}
	return name, ""
}

// missingParts names, all at once, the parts of archives that a set of
// files holds some parts of and not others.
func missingParts(files []string) error {
	type set struct {
		dir, name string
		n         int
		have      map[int]bool
	}
	sets := map[string]*set{}
	var order []string
	for _, f := range files {
		name, i, n, ok := SplitPart(filepath.Base(f))
		if !ok {
			continue
		}
		key := filepath.Join(filepath.Dir(f), name) + fmt.Sprintf("\x00%d", n)
		if sets[key] == nil {
			sets[key] = &set{dir: filepath.Dir(f), name: name, n: n, have: map[int]bool{}}
			order = append(order, key)
		}
		sets[key].have[i] = true
	}
	var missing []string
	for _, k := range order {
		s := sets[k]
		for i := 1; i <= s.n; i++ {
			if !s.have[i] {
				p := filepath.Join(s.dir, PartName(s.name, i, s.n))
				what := fmt.Sprintf("%s (part %d of the %d of %s", p, i, s.n, s.name)
				if _, err := os.Stat(ChecksumName(p)); err == nil {
					what += ", cut into chunks: run airgap-bundle join " + p
				}
				missing = append(missing, what+")")
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s: every part of an archive goes together (each loads alone, but the group's images are spread over them)", ErrMissingPart, strings.Join(missing, ", "))
	}
	return nil
}

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
		if err := missingParts(out[n:]); err != nil {
			return nil, skipped, err
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
