package bundler

import "github.com/airgap-bundle/airgap-bundle/archive"

// Kinds of problems Verify finds beyond archive.Contents.Check's: the
// archive file and its checksum, and the archive against its lockfile
// group. Only verify reports them, so they live here, not in archive.
const (
	// The archive file.
	KindArchiveMissing      archive.ProblemKind = "archive-missing"
	KindArchiveUnreadable   archive.ProblemKind = "archive-unreadable"   // Detail: the error
	KindCompressionMismatch archive.ProblemKind = "compression-mismatch" // Detail: the whole finding
	KindFormatUnexpected    archive.ProblemKind = "format-unexpected"    // Detail: the format
	KindChecksumUnreadable  archive.ProblemKind = "checksum-unreadable"  // Detail: the error
	KindChecksumMissing     archive.ProblemKind = "checksum-missing"
	KindChecksumMismatch    archive.ProblemKind = "checksum-mismatch" // Digest: the file's; Detail: SHA256SUMS's hex

	// The archive against its lockfile group.
	KindLockfileInvalid archive.ProblemKind = "lockfile-invalid" // Detail: the error
	KindImageMissing    archive.ProblemKind = "image-missing"
	KindDigestMismatch  archive.ProblemKind = "digest-mismatch" // Digest: the archive's; Detail: the lockfile's
	KindLockMismatch    archive.ProblemKind = "lock-mismatch"   // Detail: what differs
	KindNotInLockfile   archive.ProblemKind = "not-in-lockfile"
	KindBlobExtra       archive.ProblemKind = "blob-extra" // Detail: the size in bytes
	// A signature the lockfile records that the archive's carried
	// signatures do not prove. Digest: the signed manifest; Detail: the
	// whole finding.
	KindSignatureRejected archive.ProblemKind = "signature-rejected"
)

// Kinds of problems of a delta (verify DELTA_DIR, verify --base BASE_DIR
// DELTA_DIR, and verify of a delta archive on its own).
const (
	// delta.json cannot be read, or does not parse. Detail: the error.
	KindDeltaInvalid archive.ProblemKind = "delta-invalid"
	// A file is not the one delta.json describes: a delta archive's or
	// bundle.lock's size or sha256, BASE's copy of an unchanged archive,
	// BASE's bundle.lock. Detail: the whole finding.
	KindDeltaMismatch archive.ProblemKind = "delta-mismatch"
	// An archive named like a delta archive, or in a delta directory,
	// that delta.json does not list: its left-out layers cannot be told
	// from missing ones. Detail: the whole finding.
	KindDeltaUnlisted archive.ProblemKind = "delta-unlisted"
	// A blob the delta leaves out that no archive of BASE holds. Digest:
	// the blob; Detail: where delta.json says BASE holds it.
	KindBaseBlobMissing archive.ProblemKind = "base-blob-missing"
	// A blob the delta leaves out that BASE holds only damaged. Digest:
	// the blob; Detail: the BASE archive and what its copy hashes to (or
	// its size).
	KindBaseBlobCorrupt archive.ProblemKind = "base-blob-corrupt"
)
