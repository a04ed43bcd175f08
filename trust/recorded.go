package trust

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/directory"
	"go.podman.io/image/v5/manifest"

	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// Stored reads content by digest from wherever a run keeps it (a build's
// cache, fetching what is missing; an archive). What it returns must hash
// to the digest asked for.
type Stored interface {
	// Manifest returns the manifest d: an image's, a platform's, or a
	// signature manifest.
	Manifest(ctx context.Context, d digest.Digest) ([]byte, error)
	// Blob returns layer d of a signature manifest, of that size.
	Blob(ctx context.Context, d digest.Digest, size int64) ([]byte, error)
}

// RecordedOptions tune CheckRecorded.
type RecordedOptions struct {
	// TempDir holds the short-lived directories the policy engine reads
	// (default: the system's temporary directory).
	TempDir string
	// Absent are manifests st cannot hold, whose signatures are not
	// checked: the registry's index of an archive that holds a filtered
	// index instead.
	Absent []digest.Digest
}

// Limits of what one recorded signature manifest may make CheckRecorded
// read: containers/image's own limit for one signature body, and far more
// signatures on one manifest than cosign ever attaches.
const (
	maxSignatureLayer  = 4 << 20
	maxSignatureLayers = 256
)

// CheckRecorded verifies again, without asking a registry, the signatures
// a lockfile records for the pinned image e against the requirements reqs:
// every manifest a requirement covers (the image's digest, and with
// verify-platforms each platform's) must have a record made with one of
// the requirement's keys (or its Fulcio identity), and the signature
// manifest that record names, read from st with its layers, must hold a
// signature that containers/image's policy engine accepts for that
// manifest's bytes with that key, as lock accepted it. A lockfile arrives
// by pull request: its records say where the proof is, they are not the
// proof. The signed identity is the image's repository (exactRepository:
// the image is read from tmpDir, which has no repository of its own).
//
// Every failure is reported, gathered in one error of class
// errdefs.ErrSignature, each naming the image, the manifest and the key.
func CheckRecorded(ctx context.Context, ref image.Reference, e *lockfile.Image, reqs []*config.SignatureRequirement, st Stored, opts RecordedOptions) error {
	var errs []error
	for _, r := range reqs {
		if r.Require == config.RequireReject {
			errs = append(errs, &Error{Image: ref.String(), Registry: ref.Domain(), Requirement: r.String(), Reason: "the policy rejects every image of this scope"})
			continue
		}
		if !r.NeedsSignatures() {
			continue
		}
		targets := []lockfile.Platform{{Digest: e.Digest}}
		if r.VerifyPlatforms {
			for _, p := range e.Platforms {
				if p.Digest != e.Digest {
					targets = append(targets, p)
				}
			}
		}
		for _, t := range targets {
			if slices.Contains(opts.Absent, t.Digest) {
				continue
			}
			if err := checkRecorded(ctx, ref, e, t.Digest, r, st, opts.TempDir); err != nil {
				err.Image, err.Registry, err.Platform = ref.String(), ref.Domain(), t.Platform
				errs = append(errs, err)
			}
		}
	}
	return list(errs)
}

func checkRecorded(ctx context.Context, ref image.Reference, e *lockfile.Image, m digest.Digest, r *config.SignatureRequirement, st Stored, tmpDir string) *Error {
	fail := &Error{Manifest: m.String(), Requirement: r.String()}
	var records []lockfile.Signature
	for _, s := range e.Signatures {
		if s.Manifest == m && (r.Fulcio != nil && s.Identity == r.Fulcio.Identity() ||
			r.Fulcio == nil && slices.ContainsFunc(r.Keys, func(k config.Key) bool { return k.Fingerprint == s.Fingerprint })) {
			records = append(records, s)
		}
	}
	if len(records) == 0 {
		fail.Reason = "the lockfile records no signature of it for this requirement; run \"airgap-bundle lock\" to verify it"
		return fail
	}
	cands, err := candidates(r, identity(ref.Name()))
	if err != nil {
		fail.Reason, fail.Err = "the requirement is not usable", err
		return fail
	}
	signed, err := st.Manifest(ctx, m)
	if err != nil {
		fail.Reason, fail.Err = "reading manifest "+m.String(), err
		return fail
	}
	var reasons []string
	for _, rec := range records {
		who := "key " + rec.Key + " (" + rec.Fingerprint + ")"
		if rec.Identity != "" {
			who = rec.Identity
		}
		sigs, err := recordedSignatures(ctx, st, rec.Digest)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("signature %s, %s: %v", rec.Digest, who, err))
			if fail.Err == nil {
				fail.Err = err
			}
			continue
		}
		for _, c := range cands {
			if c.key.Fingerprint != rec.Fingerprint || c.identity != rec.Identity {
				continue
			}
			ok, err := allowedOffline(ctx, tmpDir, signed, sigs, c.req)
			if ok {
				return nil
			}
			reasons = append(reasons, fmt.Sprintf("signature %s, %s: %s", rec.Digest, who, reason(err)))
			if fail.Err == nil {
				fail.Err = err
			}
		}
	}
	fail.Reason = "the signature the lockfile records for it does not verify (an edited lockfile or archive, or a signature gone from the registry): " + strings.Join(reasons, "; ") +
		"; restore the lockfile from version control, or run \"airgap-bundle lock --update\" to verify the image again"
	return fail
}

// sigstoreFormat is how containers/image's dir: transport stores a
// sigstore signature (internal/signature.Blob: a zero byte, the format's
// name, a newline, then the signature as JSON): the one public way to hand
// its policy engine a sigstore signature that did not come from a
// registry.
const sigstoreFormat = "\x00sigstore-json\n"

// recordedSignatures reads signature manifest d and returns its cosign
// signatures in sigstoreFormat, as containers/image turns a registry's
// sigstore attachment into signatures (one per simple-signing layer).
func recordedSignatures(ctx context.Context, st Stored, d digest.Digest) ([][]byte, error) {
	blob, err := st.Manifest(ctx, d)
	if err != nil {
		return nil, err
	}
	m, err := manifest.OCI1FromManifest(blob)
	if err != nil {
		return nil, fmt.Errorf("not a signature manifest: %w", err)
	}
	var out [][]byte
	for _, l := range m.Layers {
		if l.MediaType != SigstoreSignatureType {
			continue
		}
		if len(out) == maxSignatureLayers {
			return nil, fmt.Errorf("more than %d signatures", maxSignatureLayers)
		}
		if l.Size < 0 || l.Size > maxSignatureLayer {
			return nil, fmt.Errorf("signature layer %s: %d bytes, over %d", l.Digest, l.Size, maxSignatureLayer)
		}
		payload, err := st.Blob(ctx, l.Digest, l.Size)
		if err != nil {
			return nil, fmt.Errorf("signature layer %s: %w", l.Digest, err)
		}
		j, err := json.Marshal(struct {
			MIMEType    string            `json:"mimeType"`
			Payload     []byte            `json:"payload"`
			Annotations map[string]string `json:"annotations"`
		}{l.MediaType, payload, l.Annotations})
		if err != nil {
			return nil, err
		}
		out = append(out, append([]byte(sigstoreFormat), j...))
	}
	return out, nil
}

// SigstoreSignatureType is the media type of a cosign signature layer.
const SigstoreSignatureType = "application/vnd.dev.cosign.simplesigning.v1+json"

// allowedOffline runs containers/image's policy engine on manifest blob
// with signatures sigs, through a dir: image written to a directory of
// its own under tmpDir and removed afterwards.
func allowedOffline(ctx context.Context, tmpDir string, blob []byte, sigs [][]byte, req requirement) (bool, error) {
	dir, err := os.MkdirTemp(tmpDir, "airgap-bundle-signature-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), blob, 0o600); err != nil {
		return false, err
	}
	for i, s := range sigs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("signature-%d", i+1)), s, 0o600); err != nil {
			return false, err
		}
	}
	ref, err := directory.NewReference(dir)
	if err != nil {
		return false, err
	}
	src, err := ref.NewImageSource(ctx, nil)
	if err != nil {
		return false, err
	}
	defer src.Close()
	return allowed(ctx, src, "", false, req)
}
