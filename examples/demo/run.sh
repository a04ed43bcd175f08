#!/usr/bin/env bash
# examples/demo/run.sh: what `make demo` runs, after building bin/airgap-bundle
# and bin/demo-registry. No internet needed.
#
#  1. starts the demo registry (internal/demoregistry) on 127.0.0.1:5959, an
#     in-memory mirror of "docker.io" seeded from testdata/demo/, and stops
#     it again however this script ends;
#  2. checks that bundle.lock matches bundle.toml (`lock --check`, as CI
#     would) and builds from it (`build --locked`) with a cache under
#     examples/demo/.cache/;
#  3. shows the archives, checks SHA256SUMS, compares them with the previous
#     run, and prints how each consumer loads them.
#
# Run it from anywhere; paths are relative to the repository root.
# Environment: AIRGAP_BUNDLE (default bin/airgap-bundle), DEMO_REGISTRY
# (default bin/demo-registry), SOURCE_DATE_EPOCH (archive mtimes, default 0).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

tool=${AIRGAP_BUNDLE:-bin/airgap-bundle}
registry=${DEMO_REGISTRY:-bin/demo-registry}
addr=127.0.0.1:5959 # the mirror named in bundle.toml
demo=examples/demo
spec=$demo/bundle.toml
lock=$demo/bundle.lock
dist=$demo/dist # output-dir in bundle.toml
state=$demo/.cache
cache=$state/blobs
reglog=$state/registry.log
inputs=$state/last-inputs.sha256

bold= plain=
if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

for b in "$tool" "$registry"; do
	[[ -x $b ]] || die "$b is missing: run \`make demo\` (it builds both binaries first)"
done
mkdir -p "$state"

# --- 1. the registry --------------------------------------------------------

reg_pid=
prev_sums=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $reg_pid ]] && kill -0 "$reg_pid" 2>/dev/null; then
		kill "$reg_pid" 2>/dev/null || true
		wait "$reg_pid" 2>/dev/null || true
		echo "demo registry (pid $reg_pid) stopped"
	fi
	[[ -z $prev_sums ]] || rm -f "$prev_sums"
	if ((rc != 0)); then
		echo "demo: FAILED (exit $rc); the registry's log is $reglog" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Starting the demo registry on $addr (mirror of docker.io, seeded from testdata/demo/)"
if "$registry" -probe "$addr" 2>/dev/null; then
	die "a registry already answers on $addr (a demo registry left running?). Stop it first; find it with: ss -ltnp 'sport = :${addr##*:}'"
fi
"$registry" -addr "$addr" -data testdata/demo >"$state/registry.out" 2>"$reglog" &
reg_pid=$!
for ((i = 0; ; i++)); do
	if ! kill -0 "$reg_pid" 2>/dev/null; then
		wait "$reg_pid" 2>/dev/null || true
		reg_pid=
		cat "$reglog" >&2
		die "the demo registry did not start (see above)"
	fi
	if "$registry" -probe "$addr" 2>/dev/null; then
		break
	fi
	((i < 100)) || die "the demo registry (pid $reg_pid) did not answer on $addr within 10 s"
	sleep 0.1
done
sed -n 's/^/  /p' "$state/registry.out"

# --- 2. lock and build ------------------------------------------------------

if [[ ! -f $lock ]]; then
	step "No $lock: resolving the spec once (commit the result)"
	"$tool" lock "$spec"
fi

step "airgap-bundle lock --check $spec   (CI: is the committed lockfile current?)"
"$tool" lock --check "$spec" || {
	rc=$?
	((rc != 3)) || echo "demo: $lock no longer matches $spec. After editing the spec, run \`$tool lock $spec\`; if you edited neither, that is a bug." >&2
	exit "$rc"
}

if [[ -f $dist/SHA256SUMS ]]; then
	prev_sums=$(mktemp)
	cp "$dist/SHA256SUMS" "$prev_sums"
fi
# What the archives depend on: the spec, the lockfile and SOURCE_DATE_EPOCH.
fingerprint=$(
	cat "$spec" "$lock"
	echo "SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-}"
)
fingerprint=$(printf '%s' "$fingerprint" | cksum)

warm=cold
[[ -d $cache ]] && [[ -n $(ls -A "$cache" 2>/dev/null) ]] && warm=warm
step "airgap-bundle build --locked --cache-dir $cache $spec   ($warm cache)"
before=$(wc -l <"$reglog")
"$tool" build --locked --cache-dir "$cache" "$spec"
requests=$(tail -n +"$((before + 1))" "$reglog" | grep -E '(GET|HEAD) /v2/.+/(manifests|blobs)/' || true)
n_req=$(grep -c . <<<"$requests" || true)
n_blob=$(grep -c 'GET /v2/.*/blobs/' <<<"$requests" || true)
if ((n_req == 0)); then
	echo "registry: no requests during the build: everything came from the cache"
else
	echo "registry: $n_req requests during the build ($n_blob blob downloads; each blob once, however many groups share it)"
fi

# --- 3. what it wrote -------------------------------------------------------

step "ls -l $dist"
ls -l "$dist"

step "cat $dist/SHA256SUMS"
cat "$dist/SHA256SUMS"

step "sha256sum -c SHA256SUMS   (in $dist)"
if command -v sha256sum >/dev/null; then
	(cd "$dist" && sha256sum -c SHA256SUMS)
else
	(cd "$dist" && shasum -a 256 -c SHA256SUMS)
fi

if [[ -n $prev_sums ]]; then
	if cmp -s "$prev_sums" "$dist/SHA256SUMS"; then
		echo "same sha256 as the previous run for every archive: the build is reproducible ($warm cache)"
	elif [[ -f $inputs && $(cat "$inputs") == "$fingerprint" ]]; then
		echo "demo: the archives differ from the previous run's, with the same spec, lockfile and SOURCE_DATE_EPOCH:" >&2
		diff "$prev_sums" "$dist/SHA256SUMS" >&2 || true
		die "the build is not reproducible: that is a bug"
	else
		echo "the spec, lockfile or SOURCE_DATE_EPOCH changed since the previous run: new archives, new sha256"
	fi
fi
printf '%s\n' "$fingerprint" >"$inputs"

step "tar -tvf $dist/multiarch.tar   (OCI layout + docker manifest.json; linux/amd64 and linux/arm64 of hello:1.0)"
tar -tvf "$dist/multiarch.tar"

step "Load them on the air-gapped side (copy $dist/ over, then, in it:)"
cat <<'EOF'
  k3s / RKE2   sudo cp k3s-core.tar.zst apps.tar.gz multiarch.tar /var/lib/rancher/k3s/agent/images/
               (RKE2: /var/lib/rancher/rke2/agent/images/); imported when the agent (re)starts,
               all three compressions, registry digests kept
  containerd   sudo ctr -n k8s.io images import multiarch.tar
               gunzip -c apps.tar.gz | sudo ctr -n k8s.io images import -
               zstd -dc k3s-core.tar.zst | sudo ctr -n k8s.io images import -
  docker       docker load -i multiarch.tar      (linux/amd64, the group's first platform)
               docker load -i apps.tar.gz
               docker load -i k3s-core.tar.zst   (Docker 20.10 cannot read .tar.zst:
                                                  zstd -dc k3s-core.tar.zst | docker load)
  podman       podman load -i multiarch.tar; podman load -i apps.tar.gz; podman load -i k3s-core.tar.zst

Images keep their public names: docker.io/library/hello:1.0, docker.io/airgapdemo/pause:3.6,
docker.io/airgapdemo/webapp:2.0, docker.io/airgapdemo/toolbox:1.2 and :stable (one image).
EOF
echo
echo "demo: OK. Run \`make demo\` again: warm cache, no registry traffic, same sha256."
