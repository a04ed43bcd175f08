// Package sums reads and writes SHA256SUMS, the checksum file beside a
// bundle's archives, in the format `sha256sum -c` checks.
//
// A line is "<64 hex digits><space><space or *><name>": two spaces is text
// mode, " *" binary mode, and for SHA-256 both mean the same. The hex may be
// in either case; Parse lower-cases it. Names are file names in the
// directory of the SHA256SUMS file: a name containing "/" or "\", or one
// that is "." or "..", is refused, since it could only lead outside the
// bundle (and GNU sha256sum escapes names with a backslash, which this
// package never writes). Empty lines are ignored. When a name is listed
// twice, the later line wins.
//
// Write produces "<hex>  <name>\n" lines sorted by name, and writes the file
// atomically.
package sums

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
)

// FileName is the name of the checksum file beside the archives.
const FileName = "SHA256SUMS"

// Sums maps a file name to its SHA-256, as lower-case hex.
type Sums map[string]string

// BadLine is a line Parse could not use.
type BadLine struct {
	Line   int    // 1-based
	Text   string // the line, without its line ending
	Reason string
}

func (b BadLine) Error() string {
	return fmt.Sprintf("line %d: %s: %q", b.Line, b.Reason, b.Text)
}

// ErrMissing is Read's error when the file does not exist. It matches
// fs.ErrNotExist.
var ErrMissing error = missingError{}

type missingError struct{}

func (missingError) Error() string        { return "missing from the output directory" }
func (missingError) Is(target error) bool { return target == fs.ErrNotExist }

// Parse reads the lines of a SHA256SUMS file (LF or CRLF line endings). It
// returns the usable lines and, separately, the lines it skipped and why; a
// lenient reader ignores bad, a strict one refuses the file when it is not
// empty.
func Parse(data []byte) (Sums, []BadLine) {
	s := Sums{}
	var bad []BadLine
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		name, sum, err := parseLine(line)
		if err != nil {
			bad = append(bad, BadLine{Line: i + 1, Text: line, Reason: err.Error()})
			continue
		}
		s[name] = sum
	}
	return s, bad
}

func parseLine(line string) (name, sum string, err error) {
	if len(line) < 66 {
		return "", "", errors.New(`not "<sha256 hex>  <name>"`)
	}
	if sep := line[64:66]; sep != "  " && sep != " *" {
		return "", "", errors.New(`not "<sha256 hex>  <name>" or "<sha256 hex> *<name>"`)
	}
	sum, name = strings.ToLower(line[:64]), line[66:]
	if err := checkSum(sum); err != nil {
		return "", "", err
	}
	if err := checkName(name); err != nil {
		return "", "", err
	}
	return name, sum, nil
}

func checkSum(sum string) error {
	if len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
		return fmt.Errorf("checksum %q is not 64 lower-case hex digits", sum)
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty file name")
	case name == "." || name == ".." || strings.ContainsAny(name, `/\`):
		return fmt.Errorf("%q is not a plain file name", name)
	case strings.ContainsAny(name, "\n\r"):
		return fmt.Errorf("file name %q holds a line break", name)
	}
	return nil
}

// Read reads a SHA256SUMS file, skipping the lines Parse reports as bad (as
// `sha256sum -c` skips improperly formatted lines). A missing file gives
// ErrMissing.
func Read(path string) (Sums, error) {
	// It comes across the gap with the archives: within a cap, a regular
	// file only.
	data, err := inputfile.Read(context.Background(), path, inputfile.MaxSums)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrMissing
	}
	if err != nil {
		return nil, err
	}
	s, _ := Parse(data)
	return s, nil
}

// Format renders s as Write writes it: "<hex>  <name>\n" lines, sorted by
// name. It fails if a name or checksum would not parse back.
func Format(s Sums) ([]byte, error) {
	names := make([]string, 0, len(s))
	for n, sum := range s {
		if err := checkName(n); err != nil {
			return nil, err
		}
		if err := checkSum(sum); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&buf, "%s  %s\n", s[n], n)
	}
	return buf.Bytes(), nil
}

// Write replaces the file at path with s, atomically, mode 0644.
func Write(path string, s Sums) error {
	data, err := Format(s)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

// Update rewrites dir's SHA256SUMS after a build: Merge's result, written
// atomically.
func Update(dir string, fresh Sums) error {
	return Write(filepath.Join(dir, FileName), Merge(dir, fresh))
}

// Merge is what dir's SHA256SUMS should hold once the archives of fresh are
// in place: the lines of fresh replace their old lines; the old lines of
// other files stay while those files exist in dir. A missing or unreadable
// old file, and its bad lines, are ignored: they only cost the lines of
// archives not built this time.
func Merge(dir string, fresh Sums) Sums {
	merged := Sums{}
	if data, err := os.ReadFile(filepath.Join(dir, FileName)); err == nil {
		old, _ := Parse(data)
		for name, sum := range old {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				merged[name] = sum
			}
		}
	}
	for name, sum := range fresh {
		merged[name] = sum
	}
	return merged
}

// PendingName is the journal of a commit in progress: the SHA256SUMS that
// will be true once every new archive has been renamed into place.
//
// A build that replaces several archives commits them so that a crash at
// any moment leaves archives and SHA256SUMS that can be made to agree:
//
//  1. WritePending: the new SHA256SUMS content goes, atomically, to
//     PendingName in the output directory;
//  2. the new archives are renamed over the old ones, one by one;
//  3. CommitPending: PendingName is renamed over SHA256SUMS.
//
// A crash before 1 completes changes nothing; after 3, everything is
// done. In between, each archive is either its old file (matching the old
// SHA256SUMS) or its new one (matching the journal), and Recover, run at
// the start of the next build, rewrites SHA256SUMS from what is actually
// on disk.
const PendingName = "." + FileName + ".pending"

// WritePending writes step 1 of the commit protocol (see PendingName).
func WritePending(dir string, s Sums) error {
	return Write(filepath.Join(dir, PendingName), s)
}

// CommitPending is step 3 of the commit protocol: the journal becomes
// SHA256SUMS.
func CommitPending(dir string) error {
	return atomicfile.Rename(filepath.Join(dir, PendingName), filepath.Join(dir, FileName))
}

// Recover finishes or undoes an interrupted commit (see PendingName). With
// no journal in dir it does nothing and returns false. Otherwise, for each
// file named in the journal or in the old SHA256SUMS, it keeps the line that
// matches the file's content: a file listed the same in both is kept without
// hashing while it exists; one listed differently is hashed, and kept with
// its actual checksum when that is the old or the journal's; a file that is
// absent, or matches neither, loses its line. SHA256SUMS is then rewritten
// atomically and the journal removed. Recover reads every changed archive
// once, so it is only as fast as the disk, but it runs only after a crash.
func Recover(dir string) (bool, error) {
	journal, err := os.ReadFile(filepath.Join(dir, PendingName))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	next, _ := Parse(journal)
	old := Sums{}
	if data, err := os.ReadFile(filepath.Join(dir, FileName)); err == nil {
		old, _ = Parse(data)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	agreed := Sums{}
	for _, s := range []Sums{old, next} {
		for name, sum := range s {
			if _, done := agreed[name]; done {
				continue
			}
			p := filepath.Join(dir, name)
			if old[name] == next[name] {
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
					agreed[name] = sum
				}
				continue
			}
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				continue // absent (or not a file): no line
			}
			actual, err := fileSHA256(p)
			if err != nil {
				return false, err
			}
			if actual == old[name] || actual == next[name] {
				agreed[name] = actual
			}
		}
	}
	if err := Write(filepath.Join(dir, FileName), agreed); err != nil {
		return false, err
	}
	if err := os.Remove(filepath.Join(dir, PendingName)); err != nil {
		return false, err
	}
	return true, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Pending is a file written to a temporary name beside its final one,
// waiting to be committed with its SHA256SUMS line.
type Pending struct {
	Name   string // the file name in the directory
	SHA256 string // hex
	What   string // what it is, for messages ("group \"core\"")
	File   interface{ Commit() error }
}

// CommitSet puts a set of files in place in dir, with their SHA256SUMS
// lines (the lines of other files that still exist are kept), as one set:
// the new SHA256SUMS goes to PendingName first, then the files are
// renamed, then the journal becomes SHA256SUMS. A crash or kill -9 half
// way leaves what Recover settles; a rename that fails here runs Recover
// at once, so SHA256SUMS agrees with whatever is in place.
func CommitSet(dir string, set []Pending) error {
	fresh := Sums{}
	for _, p := range set {
		fresh[p.Name] = p.SHA256
	}
	if err := WritePending(dir, Merge(dir, fresh)); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, PendingName), err)
	}
	settle := func(err error) error {
		if _, rerr := Recover(dir); rerr != nil {
			return fmt.Errorf("%w (and SHA256SUMS could not be settled: %w; the next run will retry)", err, rerr)
		}
		return err
	}
	for _, p := range set {
		if err := p.File.Commit(); err != nil {
			return settle(fmt.Errorf("%s: putting %s in place: %w", p.What, filepath.Join(dir, p.Name), err))
		}
	}
	if err := CommitPending(dir); err != nil {
		return settle(fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err))
	}
	return nil
}
