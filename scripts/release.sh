#!/usr/bin/env bash
# make release: static, reproducible binaries of airgap-bundle, their
# SHA256SUMS and a CycloneDX SBOM of the module graph, in one directory.
#
#   scripts/release.sh [-o DIR] [GOOS/GOARCH...]   # default: dist/release, every target
#   scripts/release.sh --check                      # CI: one non-native target, built twice
#
# Reproducible: the same commit, Go version and flags give the same bytes
# on any machine. -trimpath drops the paths of the build machine,
# -buildid= the linker's build ID (a cache key, of no use in a release);
# the VCS stamp is left out, as it records the checkout's state and commit
# time, and version and commit are set with -X instead; GOFLAGS and the CPU
# level are pinned so that the environment cannot change the build.
# Nothing records the time of the build.
# See docs/release.md.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
TARGETS_ALL="linux/amd64 linux/arm64 darwin/arm64 windows/amd64"
# The release tag, when HEAD is one; a dirty tree says so.
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
# containers/image's signature package without cgo (docs/release.md).
TAGS=containers_image_openpgp
LDFLAGS="-s -w -buildid= -X main.version=$VERSION -X main.commit=$COMMIT -X github.com/airgap-bundle/airgap-bundle/chart.airgapVersion=$VERSION"
CYCLONEDX=github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0

die() { echo "release: $*" >&2; exit 1; }

# build SRC OUT GOOS/GOARCH [CMD]: one binary from the module in SRC
# (CMD: airgap-bundle, or airgap-bundle-helm, the chart renderer).
build() {
	local src=$1 out=$2 os=${3%/*} arch=${3#*/} cmd=${4:-airgap-bundle}
	(cd "$src" && env GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" \
		GOAMD64=v1 GOARM64=v8.0 \
		"$GO" build -trimpath -tags "$TAGS" -ldflags "$LDFLAGS" -o "$out" "./cmd/$cmd")
}

name() { # GOOS/GOARCH [CMD] -> file name
	local n="${2:-airgap-bundle}-$VERSION-${1%/*}-${1#*/}"
	[ "${1%/*}" = windows ] && n="$n.exe"
	echo "$n"
}

# The second build of the check must not be handed the first one's results:
# another copy of the source at another path, and an empty build cache.
check() {
	local target=linux/arm64
	[ "$("$GO" env GOARCH)" = arm64 ] && target=linux/amd64 # stay non-native
	tmp=$(mktemp -d)
	trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
	mkdir "$tmp/src"
	# Tracked files and new ones not ignored: the tree as it is.
	git ls-files -z --cached --others --exclude-standard |
		tar --null -T - --ignore-failed-read -cf - | tar -xf - -C "$tmp/src"
	echo "release check: $target, version $VERSION, commit $COMMIT"
	build . "$tmp/a" "$target"
	GOCACHE="$tmp/gocache" build "$tmp/src" "$tmp/b" "$target"
	local a b
	a=$(sha256sum <"$tmp/a" | cut -d' ' -f1)
	b=$(sha256sum <"$tmp/b" | cut -d' ' -f1)
	echo "build 1 (this tree, warm cache):            sha256 $a"
	echo "build 2 (copy at another path, empty cache): sha256 $b"
	[ "$a" = "$b" ] || die "the two builds of $target differ: not reproducible"
	local info
	info=$("$GO" version -m "$tmp/a")
	for want in "GOOS=${target%/*}" "GOARCH=${target#*/}" "CGO_ENABLED=0" "-trimpath=true" "-tags=$TAGS"; do
		grep -qF -- "build	$want" <<<"$info" || die "go version -m does not show $want:
$info"
	done
	# With -trimpath the build information leaves -ldflags out (it may hold
	# paths), so the stamped strings are looked for in the binary itself.
	for want in "$VERSION" "$COMMIT"; do
		grep -qaF -- "$want" "$tmp/a" || die "$want is not stamped into the binary"
	done
	echo "release check: reproducible, and stamped with $VERSION ($COMMIT)"
}

if [ "${1:-}" = --check ]; then
	check
	exit 0
fi

OUT=dist/release
if [ "${1:-}" = -o ]; then
	OUT=${2:?-o needs a directory}
	shift 2
fi
TARGETS=${*:-$TARGETS_ALL}
case "$VERSION" in *-dirty) echo "release: warning: the tree has uncommitted changes ($VERSION)" >&2 ;; esac
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
for t in $TARGETS; do
	echo "build $t"
	build . "$OUT/$(name "$t")" "$t"
	# The Helm SDK renders charts in a program of its own (docs/charts.md):
	# shipped beside, it is found there.
	build . "$OUT/$(name "$t" airgap-bundle-helm)" "$t" airgap-bundle-helm
done
# The module graph as go.mod and go.sum pin it, every module the binaries
# may link. Reproducible: no serial number or timestamp, and no goos/goarch
# qualifiers in the package URLs, which would name the machine running the
# tool rather than any release target.
echo "sbom $CYCLONEDX"
GOFLAGS=-buildvcs=false "$GO" run "$CYCLONEDX" mod -json -noserial -notimestamp -short-purls -type application \
	-output "$OUT/airgap-bundle-$VERSION.cdx.json" .
(cd "$OUT" && LC_ALL=C sha256sum -- airgap-bundle-* >SHA256SUMS)
echo "wrote $OUT:"
(cd "$OUT" && cat SHA256SUMS)
