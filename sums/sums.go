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
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
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
	data, err := os.ReadFile(path)
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

// Update rewrites dir's SHA256SUMS after a build: the lines of fresh (the
// archives just written) replace their old lines; the old lines of other
// files stay while those files exist in dir. A missing or unreadable old
// file, and its bad lines, are ignored: they only cost the lines of
// archives not built this time.
func Update(dir string, fresh Sums) error {
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
	return Write(filepath.Join(dir, FileName), merged)
}
