// Package image is the project's vocabulary: image references, platforms,
// media types and index modes. Every other package speaks these types, so a
// rule about one of them (what counts as an index, when an index entry is
// an attestation, how a platform is normalised) is written here once.
package image
