#!/usr/bin/env bash
# CI: the plain `go install` works. The README promises that
#   go install github.com/airgap-bundle/airgap-bundle/cmd/airgap-bundle@latest
# builds without tags and without cgo; this installs the local module that
# way, from an empty module cache (so go.mod and go.sum alone must fetch
# everything, through the Go module proxy), and runs the binary.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
die() { echo "check-install: $*" >&2; exit 1; }

# `go install module@version` refuses a module whose go.mod replaces or
# excludes modules, while an install from the checkout would not notice.
if "$GO" mod edit -json | grep -qE '"(Replace|Exclude)": \['; then
	die "go.mod has replace or exclude directives: go install ...@latest would refuse the module"
fi

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
# No tags, no cgo, and nothing from this machine's module cache or GOFLAGS.
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -modcacherw" GOPATH="$tmp/gopath" GOBIN="$tmp/bin"
export GOMODCACHE="$tmp/gopath/pkg/mod"
echo "check-install: CGO_ENABLED=0 go install ./cmd/airgap-bundle (no tags, empty module cache $GOMODCACHE)"
"$GO" install ./cmd/airgap-bundle
bin="$tmp/bin/airgap-bundle"
out=$("$bin" version)
echo "$out"
grep -q '^airgap-bundle ' <<<"$out" || die "airgap-bundle version printed no version"
grep -q '^containers/image (go.podman.io/image/v5): v5\.' <<<"$out" || die "airgap-bundle version printed no containers/image version"
# Without the tag the policy engine is left out, and the binary says so.
grep -q '^signature verification: not in this build' <<<"$out" || die "a build without tags claims to verify signatures"
if "$GO" version -m "$bin" | grep -q gpgme; then
	die "gpgme is linked into a build without cgo"
fi
# ...and refuses signature requirements rather than accepting them.
"$GO" test -count=1 -run 'WithoutEngine' ./trust/
echo "check-install: ok"
