package image

import (
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker/reference"
)

// Reference is an image reference normalised against the default registry.
type Reference struct {
	Named   reference.Named // fully qualified; tagged, digested or both
	Written string          // as the user wrote it
}

// String is the canonical form recorded in lockfiles and archive names,
// e.g. docker.io/rancher/mirrored-pause:3.6.
func (r Reference) String() string { return r.Named.String() }

// Name is the repository without tag or digest.
func (r Reference) Name() string { return r.Named.Name() }

// Domain is the registry host[:port].
func (r Reference) Domain() string { return reference.Domain(r.Named) }

// Tag returns the tag, or "" for a digest-only reference.
func (r Reference) Tag() string {
	if t, ok := r.Named.(reference.Tagged); ok {
		return t.Tag()
	}
	return ""
}

// Digest returns the pinned digest, or "".
func (r Reference) Digest() string {
	if d, ok := r.Named.(reference.Digested); ok {
		return d.Digest().String()
	}
	return ""
}

// ParseReference normalises s. Names without a registry host are placed on
// defaultRegistry; on docker.io single names get "library/", as docker does.
// A name with neither tag nor digest gets ":latest".
func ParseReference(s, defaultRegistry string) (Reference, error) {
	if strings.TrimSpace(s) != s || s == "" {
		return Reference{}, fmt.Errorf("image reference %q: empty or surrounded by spaces", s)
	}
	full := s
	if defaultRegistry != "" && defaultRegistry != "docker.io" && !hasDomain(s) {
		full = defaultRegistry + "/" + s
	}
	named, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return Reference{}, fmt.Errorf("image reference %q: %v", s, err)
	}
	// "my_registry.local/x" parses as a path with no registry: a host may
	// not contain "_". Refuse it rather than guess.
	if reference.Domain(named) == "" {
		return Reference{}, fmt.Errorf("image reference %q: %q is not a valid registry host", s, strings.SplitN(s, "/", 2)[0])
	}
	return Reference{Named: reference.TagNameOnly(named), Written: s}, nil
}

// hasDomain mirrors the rule of the reference grammar: the first path
// component is a registry when it has a dot or a port, or is localhost.
func hasDomain(s string) bool {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return false
	}
	first := s[:i]
	return strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first
}

// StoredName is the name an image is stored under in an archive: name:tag,
// or name@digest for a digest-only reference. (A reference with both keeps
// the tag: the digest is the pin, recorded in the lockfile.)
func (r Reference) StoredName() string {
	if t := r.Tag(); t != "" {
		return r.Name() + ":" + t
	}
	return r.Name() + "@" + r.Digest()
}
