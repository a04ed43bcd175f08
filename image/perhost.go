package image

import (
	"strings"

	"go.podman.io/image/v5/docker/reference"
)

// The per-host layout is how one registry holds the images of many: each
// source registry's repositories under one path component named after its
// host. push --to-per-host writes it and serve answers it, so a client that
// can name only repository paths (crane, skopeo, docker, podman: a path
// cannot hold the ":" of a port) reaches every image by the same name in
// both. A registry host has no "_" (the reference grammar allows none), so
// the "_" that stands for the port's ":" is never ambiguous.

// HostComponent is a registry host[:port] as one repository path
// component: lowercase (a repository path is), the port's ":" made "_"
// ("127.0.0.1:5000" is "127.0.0.1_5000", "docker.io" stays "docker.io").
func HostComponent(host string) string {
	return strings.ReplaceAll(strings.ToLower(host), ":", "_")
}

// Path is the repository's path on its registry, without the host
// (docker.io/library/busybox is "library/busybox").
func (r Reference) Path() string { return reference.Path(r.Named) }

// PerHostPath is the repository's path in the per-host layout:
// HostComponent of its registry, then its path on that registry
// ("docker.io/library/busybox", "127.0.0.1_5000/bench/multiarch"). For a
// host without a port or capitals it is the full name.
func (r Reference) PerHostPath() string { return HostComponent(r.Domain()) + "/" + r.Path() }
