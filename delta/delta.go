// Package delta is the delta bundle: what a version bump carries across the
// gap instead of every archive again. A delta directory holds, for each
// group whose archive changed, a delta archive (the group's archive without
// the layers the site already holds: manifests, indexes, configs and
// carried artefacts stay, so it reads, and k3s imports it beside its base),
// the new lockfile, delta.json (this package's Manifest) and SHA256SUMS.
// Apply rebuilds every full archive of the new version from the site's
// archives and the deltas, byte for byte what build wrote outside.
package delta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
)

// FileName is the delta's description, beside its archives.
const FileName = "delta.json"

// LockfileName is the new lockfile, carried beside the deltas.
const LockfileName = "bundle.lock"

// Version is the delta.json format this code reads and writes.
const Version = 1

// ErrDelta is the class of a delta that cannot be applied: made against
// another BASE, damaged, or a BASE that lacks what the delta needs.
var ErrDelta = errors.New("delta cannot be applied")

// Manifest is delta.json.
type Manifest struct {
	Version int `json:"version"`
	// Base is what the delta was made against.
	Base Base `json:"base"`
	// LockfileSHA256 is the sha256 of the new lockfile (bundle.lock here).
	LockfileSHA256 string `json:"lockfile-sha256"`
	// Archives are every full archive of the new version, in the spec's
	// group order.
	Archives []Archive `json:"archives"`
	// RemovedGroups are BASE's groups the new version no longer has.
	RemovedGroups []string `json:"removed-groups,omitempty"`
}

// Base says what the site must already hold.
type Base struct {
	// Source is how build --since named it: a lockfile path, git:REV, or
	// an inventory file.
	Source string `json:"source"`
	// LockfileSHA256 is the sha256 of BASE's lockfile ("" for an
	// inventory).
	LockfileSHA256 string `json:"lockfile-sha256,omitempty"`
}

// Archive is one full archive of the new version.
type Archive struct {
	Group  string `json:"group"`
	Name   string `json:"name"` // file name, as build writes it
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Unchanged says BASE has this archive as it is: no delta archive,
	// apply takes BASE's file (found by name, or by its sha256 in BASE's
	// SHA256SUMS) and checks it.
	Unchanged bool `json:"unchanged,omitempty"`
	// Delta is the delta archive, when the archive changed.
	Delta *File `json:"delta,omitempty"`
	// FromBase are the blobs of the full archive that the delta leaves
	// out, each with where BASE holds it.
	FromBase []Blob `json:"from-base,omitempty"`
}

// File is a file of the delta directory.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Blob is a blob the delta expects BASE to hold.
type Blob struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	// Where is BASE's group (or, for an inventory, archive or registry)
	// that holds it, for messages.
	Where string `json:"where"`
}

// DeltaName is the delta archive's name for an archive: "core.tar.zst" is
// "core.delta.tar.zst", with the same compression.
func DeltaName(archive string) string {
	for _, ext := range []string{".tar.gz", ".tar.zst", ".tgz", ".tzst", ".tar"} {
		if strings.HasSuffix(archive, ext) {
			return strings.TrimSuffix(archive, ext) + ".delta" + ext
		}
	}
	return archive + ".delta"
}

// Read reads and checks delta.json in dir.
func Read(ctx context.Context, dir string) (*Manifest, error) {
	p := filepath.Join(dir, FileName)
	data, err := inputfile.Read(ctx, p, inputfile.MaxLockfile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDelta, err)
	}
	return Parse(data, p)
}

// Parse checks a delta.json read from path: every name a plain file name,
// every digest and sha256 well formed.
func Parse(data []byte, path string) (*Manifest, error) {
	var m Manifest
	if err := decodeStrict(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDelta, path, err)
	}
	// An empty list is no list, as Encode writes it (omitempty): the
	// value read is the value written.
	if len(m.RemovedGroups) == 0 {
		m.RemovedGroups = nil
	}
	for i := range m.Archives {
		if len(m.Archives[i].FromBase) == 0 {
			m.Archives[i].FromBase = nil
		}
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if m.Version != Version {
		bad("version %d: this airgap-bundle reads delta version %d", m.Version, Version)
	}
	if !isHex(m.LockfileSHA256) {
		bad("lockfile-sha256 %q is not a sha256", m.LockfileSHA256)
	}
	names := map[string]bool{}
	for i, a := range m.Archives {
		what := fmt.Sprintf("archives[%d] (%s)", i, a.Name)
		if !plainName(a.Name) || names[a.Name] {
			bad("%s: name is not a plain file name, or is listed twice", what)
		}
		names[a.Name] = true
		if !isHex(a.SHA256) || a.Size <= 0 {
			bad("%s: sha256 or size is not valid", what)
		}
		switch {
		case a.Unchanged && (a.Delta != nil || len(a.FromBase) > 0):
			bad("%s: an unchanged archive has no delta", what)
		case !a.Unchanged && a.Delta == nil:
			bad("%s: a changed archive needs its delta", what)
		case a.Delta != nil && (!plainName(a.Delta.Name) || names[a.Delta.Name] || !isHex(a.Delta.SHA256) || a.Delta.Size <= 0):
			bad("%s: delta %q is not a plain file name with a valid size and sha256, or is listed twice", what, a.Delta.Name)
		}
		if a.Delta != nil {
			names[a.Delta.Name] = true
		}
		for _, b := range a.FromBase {
			if b.Digest.Validate() != nil || b.Size < 0 {
				bad("%s: from-base blob %q is not a valid digest and size", what, b.Digest)
			}
		}
	}
	for _, n := range []string{FileName, LockfileName, "SHA256SUMS"} {
		if names[n] {
			bad("an archive may not be named %s", n)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s: %w", ErrDelta, path, errors.Join(errs...))
	}
	return &m, nil
}

// Encode is delta.json's bytes: indented, in a fixed order, so the same
// delta gives the same file.
func (m *Manifest) Encode() ([]byte, error) {
	for i := range m.Archives {
		slices.SortFunc(m.Archives[i].FromBase, func(a, b Blob) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// plainName is a file name that stays in its directory and fits on a
// SHA256SUMS line: no separator, no control character (a newline would
// forge a line of its own).
func plainName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, `/\`) && n == filepath.Base(n) &&
		!strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func isHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// LeftOut is the archive's from-base blobs by digest: what its delta
// archive leaves out and expects the site to hold.
func (a *Archive) LeftOut() map[digest.Digest]Blob {
	out := make(map[digest.Digest]Blob, len(a.FromBase))
	for _, b := range a.FromBase {
		out[b.Digest] = b
	}
	return out
}

// LeftOutBytes is the size of the blobs the delta archive leaves out.
func (a *Archive) LeftOutBytes() int64 {
	var n int64
	for _, b := range a.FromBase {
		n += b.Size
	}
	return n
}

// IsDir says whether dir is a delta directory (it holds delta.json).
func IsDir(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, FileName))
	return err == nil && fi.Mode().IsRegular()
}

// NamedLikeDelta says whether a file name is that of a delta archive
// (DeltaName's pattern: NAME.delta.tar[.gz|.zst|...]). The name alone does
// not make a delta archive: only delta.json says which blobs it leaves out
// (ForArchive); a name without it is worth a hint in a message.
func NamedLikeDelta(name string) bool {
	name = filepath.Base(name)
	for _, ext := range []string{".tar.gz", ".tar.zst", ".tgz", ".tzst", ".tar"} {
		if strings.HasSuffix(name, ".delta"+ext) {
			return true
		}
	}
	return false
}

// Of is the delta an archive file belongs to.
type Of struct {
	// Dir is the delta directory, Manifest its delta.json.
	Dir      string
	Manifest *Manifest
	// Archive is delta.json's entry whose delta archive the file is.
	Archive *Archive
}

// ForArchive finds the delta an archive file belongs to: a delta.json in
// the same directory that lists the file's name as a delta archive. It is
// delta.json, not the file's name, that makes a delta archive: only it says
// which blobs are left out on purpose (and so are not missing). nil, nil
// when there is no delta.json beside the file or it does not list it; an
// error when the delta.json there cannot be read.
func ForArchive(ctx context.Context, path string) (*Of, error) {
	dir := filepath.Dir(path)
	if !IsDir(dir) {
		return nil, nil
	}
	m, err := Read(ctx, dir)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	for i := range m.Archives {
		if a := &m.Archives[i]; a.Delta != nil && a.Delta.Name == name {
			return &Of{Dir: dir, Manifest: m, Archive: a}, nil
		}
	}
	return nil, nil
}
