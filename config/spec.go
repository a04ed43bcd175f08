// Package config reads and checks a bundle spec (bundle.toml).
//
// Decoding is strict and reports every problem it finds with file:line, so
// a spec is fixed in one round.
package config

import (
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
)

// Defaults of the spec's optional keys.
const (
	DefaultRegistry  = "docker.io"
	DefaultOutputDir = "dist"
)

// DefaultPlatforms is used when neither the spec nor the group names any.
var DefaultPlatforms = image.PlatformSet{List: []image.Platform{{OS: "linux", Arch: "amd64"}}}

// Spec is a decoded, checked bundle spec.
type Spec struct {
	Path            string // the spec file as given
	Dir             string // its directory; relative paths are resolved against it
	DefaultRegistry string
	Platforms       image.PlatformSet
	Index           image.IndexMode
	OutputDir       string // absolute, or relative to the working directory
	// MaxSize is the top level's max-size, every group's default (0: none).
	MaxSize int64
	// NoCache is cache = false: build keeps no blob cache (build
	// --no-cache).
	NoCache    bool
	Registries map[string]*Registry
	Groups     []*Group
	// Signatures are the [[signatures]] entries, in spec order.
	Signatures []*SignatureRequirement
	// RegistriesOnly marks a registries file (LoadRegistries): Registries
	// is all it gives; it has no groups.
	RegistriesOnly bool
}

// Registry holds the settings of one registry host.
type Registry struct {
	Host     string
	Mirrors  []Mirror
	Insecure bool
	CAFile   string // resolved against the spec's directory
	Auth     *Auth  // nil: the standard credential locations
	Pos      errdefs.Pos
}

// Pull-from-mirror values, as in containers-registries.conf(5).
const (
	PullAll        = "all"
	PullDigestOnly = "digest-only"
	PullTagOnly    = "tag-only"
)

// Mirror is a location tried before its registry.
type Mirror struct {
	Location       string // host[:port][/path]
	PullFromMirror string
	Insecure       bool
}

// Host is the mirror's host[:port].
func (m Mirror) Host() string {
	if i := indexByte(m.Location, '/'); i >= 0 {
		return m.Location[:i]
	}
	return m.Location
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// Auth says where a registry's credentials come from. Exactly one of
// PasswordEnv, File and Helper is set. Secrets themselves are never held
// in the spec.
type Auth struct {
	Username    string // literal user name, with PasswordEnv
	UsernameEnv string
	PasswordEnv string
	File        string // Docker config.json or containers auth.json
	Helper      string // docker-credential-<Helper>
}

// Group is one archive.
type Group struct {
	Name      string
	Archive   string
	Platforms image.PlatformSet
	Index     image.IndexMode
	Images    []Image
	// Signatures, when set, is required of every image of the group on
	// top of the spec's [[signatures]].
	Signatures *SignatureRequirement
	// CarrySignatures bundles each image's signatures, SBOMs and
	// attestations (default: on when the group's own requirement reads
	// signatures).
	CarrySignatures bool
	// MaxSize bounds each archive file of the group (0: no bound): a group
	// over it is written as parts, each a complete archive of whole images.
	MaxSize int64
	// SplitOversize cuts an image larger than MaxSize into byte chunks
	// (rejoined with cat or airgap-bundle join) instead of refusing it.
	SplitOversize bool
	// Charts are Helm charts whose rendered images lock adds to Images.
	Charts []*Chart
	Pos    errdefs.Pos
}

// Image is one reference of a group and where it was written.
type Image struct {
	Ref image.Reference
	Pos errdefs.Pos
	// Chart is the chart that brought the image (its lockfile entry, or
	// its rendering); nil for an image the spec lists.
	Chart *Chart
}

// Group returns the group of that name, or nil.
func (s *Spec) Group(name string) *Group {
	for _, g := range s.Groups {
		if g.Name == name {
			return g
		}
	}
	return nil
}
