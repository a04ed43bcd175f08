package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/bundler"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

func TestPrintDiffSignatures(t *testing.T) {
	d := &lockfile.Diff{GroupsChanged: 1, Updated: 1, Groups: []lockfile.GroupDiff{{Name: "core", Change: lockfile.Updated, Images: []lockfile.ImageDiff{{
		Change: lockfile.Updated, OldRef: "docker.io/x/y:1", NewRef: "docker.io/x/y:1",
		OldDigest: digest.Digest("sha256:" + strings.Repeat("a", 64)), NewDigest: digest.Digest("sha256:" + strings.Repeat("a", 64)),
		UnchangedPlatforms: []string{"linux/amd64"},
		SignaturesChanged:  true, OldSignedBy: []string{"key a.pub (sha256:1)"}, NewSignedBy: []string{"key b.pub (sha256:2)"},
		ArtifactsChanged: true, OldArtifacts: 1, NewArtifacts: 3,
	}}}}}
	var b bytes.Buffer
	printDiff(&b, d)
	for _, want := range []string{
		"  ~ docker.io/x/y:1  sha256:aaaaaaaaaaaa… (same digest)",
		"      signed by: key a.pub (sha256:1) -> key b.pub (sha256:2)\n",
		"      signatures, SBOMs and attestations carried: 1 -> 3\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestLockTrustNote(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	l := &lockfile.Lock{Groups: []lockfile.Group{{Name: "g", Attachments: true, Images: []lockfile.Image{{Ref: "docker.io/x/y:1", Digest: digest.Digest(d),
		Signatures: []lockfile.Signature{{Manifest: digest.Digest(d), Digest: digest.Digest(d), Key: "a.pub", Fingerprint: "sha256:1"}},
		Artifacts:  []lockfile.Artifact{{Kind: "signature"}, {Kind: "sbom"}},
	}, {Ref: "docker.io/x/z:1", Digest: digest.Digest(d)}}}}}
	if got := trustNote(l, bundler.Entry{Group: "g", Ref: "docker.io/x/y:1"}); got != " (signed by key a.pub (sha256:1); 2 artifacts carried)" {
		t.Errorf("note %q", got)
	}
	if got := trustNote(l, bundler.Entry{Group: "g", Ref: "docker.io/x/z:1"}); got != "" {
		t.Errorf("unsigned note %q", got)
	}
}
