package archive

import digest "github.com/opencontainers/go-digest"

// ProblemKind says what is wrong; see the Kind* constants.
type ProblemKind string

// Kinds of problems Check and Strays report (bundler's Verify adds its
// own, of the same type).
const (
	// The OCI layout and the blobs.
	KindLayoutMissing  ProblemKind = "layout-missing"    // no oci-layout
	KindLayoutVersion  ProblemKind = "layout-version"    // Detail: the version found
	KindIndexMissing   ProblemKind = "index-missing"     // no index.json
	KindBlobBadName    ProblemKind = "blob-bad-name"     // Detail: the path
	KindBlobCorrupt    ProblemKind = "blob-corrupt"      // Detail: what the content hashes to
	KindBlobMissing    ProblemKind = "blob-missing"      // Detail: who references it
	KindSizeMismatch   ProblemKind = "size-mismatch"     // Detail: the sizes and the reference
	KindUnreferenced   ProblemKind = "blob-unreferenced" // Detail: the size in bytes
	KindUnexpectedFile ProblemKind = "unexpected-file"   // Detail: the path

	// Documents: indexes, manifests, configs.
	KindDocumentUnreadable ProblemKind = "document-unreadable" // Detail: the whole finding
	KindDocumentInvalid    ProblemKind = "document-invalid"    // Detail: the parse error
	KindNotAnImage         ProblemKind = "not-an-image"        // Detail: the whole finding
	KindIndexTooDeep       ProblemKind = "index-too-deep"      // Detail: where the index is listed
	KindIndexInvalid       ProblemKind = "index-invalid"       // an index.json target; Detail: why
	KindManifestInvalid    ProblemKind = "manifest-invalid"    // Detail: why
	KindConfigInvalid      ProblemKind = "config-invalid"      // Detail: why
	KindDiffIDMismatch     ProblemKind = "diffid-mismatch"     // Detail: the whole finding
	KindPlatformsAbsent    ProblemKind = "platforms-absent"    // Detail: how many the index lists
	KindIndexBadName       ProblemKind = "index-bad-name"      // Detail: the entry and the error

	// index.json against manifest.json, and a Docker archive's files.
	KindDockerBadTag           ProblemKind = "docker-bad-tag"           // Detail: the RepoTag
	KindDockerTagUnknown       ProblemKind = "docker-tag-unknown"       // Detail: the RepoTag
	KindDockerTagMissing       ProblemKind = "docker-tag-missing"       // Image: the index.json name
	KindDockerEntryAmbiguous   ProblemKind = "docker-entry-ambiguous"   // Detail: how many images
	KindDockerEntryDuplicate   ProblemKind = "docker-entry-duplicate"   // Digest: the image's top
	KindDockerEntryUnmatched   ProblemKind = "docker-entry-unmatched"   // Image: "entry N"
	KindDockerEntryMismatch    ProblemKind = "docker-entry-mismatch"    // Digest: the image's top
	KindDockerEntryMissing     ProblemKind = "docker-entry-missing"     // Digest: the image's top
	KindDockerFileMissing      ProblemKind = "docker-file-missing"      // Detail: which file
	KindDockerFileCorrupt      ProblemKind = "docker-file-corrupt"      // Detail: the path
	KindDockerPlatformMismatch ProblemKind = "docker-platform-mismatch" // Detail: the group's first platform
)

// Problem is one finding of Check, Strays or bundler's Verify. The fields
// are what a program needs to act on it; cmd/airgap-bundle turns one into
// its line of text. Image is the image's label (its first name, else its
// digest) and Platform how the platform is named ("linux/amd64", or the
// manifest's digest when unknown); Detail is the part of the finding the
// other fields do not hold, as the comment of its Kind says.
type Problem struct {
	Kind     ProblemKind
	Archive  string // the archive's file name, when known
	Image    string
	Platform string
	Digest   digest.Digest
	Detail   string
}
