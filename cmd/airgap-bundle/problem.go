package main

import (
	"fmt"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/bundler"
)

// problemText is the one place a problem becomes its line of text (without
// the archive's file name, which printVerify puts in front).
func problemText(p archive.Problem) string {
	switch p.Kind {
	case archive.KindLayoutMissing:
		return "oci-layout is missing"
	case archive.KindLayoutVersion:
		return fmt.Sprintf("oci-layout: imageLayoutVersion %q, want %q", p.Detail, "1.0.0")
	case archive.KindIndexMissing:
		return "index.json is missing"
	case archive.KindBlobBadName:
		return p.Detail + " is under blobs/ but not named by a digest"
	case archive.KindBlobCorrupt:
		return fmt.Sprintf("blob %s: content hashes to %s", p.Digest, p.Detail)
	case archive.KindBlobMissing:
		return fmt.Sprintf("blob %s (%s) is missing", p.Digest, p.Detail)
	case archive.KindSizeMismatch:
		return fmt.Sprintf("blob %s %s", p.Digest, p.Detail)
	case archive.KindUnreferenced:
		return fmt.Sprintf("blob %s (%s bytes) is not referenced by index.json or manifest.json", p.Digest, p.Detail)
	case archive.KindUnexpectedFile:
		return "unexpected file " + p.Detail
	case archive.KindIndexTooDeep:
		return fmt.Sprintf("%s %s: indexes nested more than 4 deep", p.Detail, p.Digest)
	case archive.KindDocumentInvalid:
		return fmt.Sprintf("index %s: %s", p.Digest, p.Detail)
	case archive.KindIndexInvalid, archive.KindManifestInvalid:
		what := "manifest"
		if p.Kind == archive.KindIndexInvalid {
			what = "index"
		}
		of := p.Image
		if p.Platform != "" {
			of += " " + p.Platform
		}
		return fmt.Sprintf("%s %s (%s): %s", what, p.Digest, of, p.Detail)
	case archive.KindConfigInvalid:
		return fmt.Sprintf("config %s of %s %s %s", p.Digest, p.Image, p.Platform, p.Detail)
	case archive.KindPlatformsAbsent:
		return fmt.Sprintf("image %s: none of the %s manifests of index %s is in the archive", p.Image, p.Detail, p.Digest)
	case archive.KindIndexBadName:
		return "index.json: " + p.Detail
	case archive.KindDockerBadTag:
		if p.Image != "" {
			return fmt.Sprintf("manifest.json: %s: RepoTag %q is not an image name", p.Image, p.Detail)
		}
		return fmt.Sprintf("manifest.json: RepoTag %q is not an image name", p.Detail)
	case archive.KindDockerTagUnknown:
		return fmt.Sprintf("manifest.json: RepoTag %s is not a name in index.json", p.Detail)
	case archive.KindDockerTagMissing:
		return fmt.Sprintf("index.json: %s has no RepoTag in manifest.json", p.Image)
	case archive.KindDockerEntryAmbiguous:
		return fmt.Sprintf("manifest.json: %s: its RepoTags name %s different images of index.json", p.Image, p.Detail)
	case archive.KindDockerEntryDuplicate:
		return fmt.Sprintf("manifest.json: %s: a second entry for image %s", p.Image, p.Digest)
	case archive.KindDockerEntryUnmatched:
		return fmt.Sprintf("manifest.json: %s matches no image of index.json", p.Image)
	case archive.KindDockerEntryMismatch:
		return fmt.Sprintf("manifest.json: %s: config and layers are not those of any platform of index.json's %s", p.Image, p.Digest)
	case archive.KindDockerEntryMissing:
		return fmt.Sprintf("index.json: %s (%s) has no manifest.json entry", p.Image, p.Digest)
	case archive.KindDockerFileMissing:
		return fmt.Sprintf("manifest.json: %s: %s is missing", p.Image, p.Detail)
	case archive.KindDockerFileCorrupt:
		return fmt.Sprintf("manifest.json: %s: %s hashes to %s", p.Image, p.Detail, p.Digest)
	case archive.KindDockerPlatformMismatch:
		return fmt.Sprintf("manifest.json: %s describes platform %s, not the group's first, %s", p.Image, p.Platform, p.Detail)
	case bundler.KindArchiveMissing:
		if p.Detail != "" {
			return "archive is missing (" + p.Detail + ")"
		}
		return "archive is missing"
	case bundler.KindArchiveUnreadable:
		return "unreadable: " + p.Detail
	case bundler.KindFormatUnexpected:
		return fmt.Sprintf("is a %q archive: build writes an OCI layout with manifest.json", p.Detail)
	case bundler.KindChecksumUnreadable:
		return bundler.SumsFile + ": " + p.Detail
	case bundler.KindChecksumMissing:
		return bundler.SumsFile + " has no line for it"
	case bundler.KindChecksumMismatch:
		return fmt.Sprintf("%s says %s, the file's sha256 is %s", bundler.SumsFile, p.Detail, p.Digest.Encoded())
	case bundler.KindLockfileInvalid:
		return "lockfile: " + p.Detail
	case bundler.KindImageMissing:
		return fmt.Sprintf("image %s is not in index.json", p.Image)
	case bundler.KindDigestMismatch:
		return fmt.Sprintf("image %s: index.json has %s, the lockfile %s", p.Image, p.Digest, p.Detail)
	case bundler.KindLockMismatch:
		if p.Platform != "" {
			return fmt.Sprintf("image %s: platform %s: %s", p.Image, p.Platform, p.Detail)
		}
		return fmt.Sprintf("image %s: %s", p.Image, p.Detail)
	case bundler.KindNotInLockfile:
		if p.Platform != "" {
			return fmt.Sprintf("image %s: platform %s (%s) is not in the lockfile", p.Image, p.Platform, p.Digest)
		}
		return fmt.Sprintf("image %s (%s) is not in the lockfile", p.Image, p.Digest)
	case bundler.KindBlobExtra:
		return fmt.Sprintf("blob %s (%s bytes) is not part of the lockfile's images", p.Digest, p.Detail)
	case bundler.KindDeltaInvalid:
		return "delta.json: " + p.Detail
	case bundler.KindBaseBlobMissing:
		return fmt.Sprintf("blob %s, which the delta leaves out (BASE's %s holds it), is in no archive of BASE", p.Digest, p.Detail)
	case bundler.KindBaseBlobCorrupt:
		return fmt.Sprintf("blob %s, which the delta leaves out, is damaged in BASE: %s", p.Digest, p.Detail)
	}
	// The kinds whose Detail is the whole finding (document-unreadable,
	// not-an-image, diffid-mismatch, compression-mismatch, delta-mismatch,
	// delta-unlisted), and any kind added later.
	return p.Detail
}
