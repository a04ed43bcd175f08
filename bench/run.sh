#!/usr/bin/env bash
# bench/run.sh — what `make bench` runs. See bench/README.md.
#
# One run, one local registry, one generated image set: airgap-bundle against
# skopeo, crane and docker pull+save, each writing the whole set into one
# tarball (or, where the tool cannot, saying exactly what it wrote instead).
# Prints a Markdown table and writes it to bench/results/latest.md.
#
# Env (defaults): BENCH_IMAGES (8) images, BENCH_LAYER_MB (40) MiB of layer
# data per image, BENCH_BIG_MB (512; 0 skips) single-layer image for the
# memory row, BENCH_RUNS (1) runs per row (median reported), BENCH_DIR
# (/tmp/airgap-bench) bulky temporary data, removed at the end unless
# BENCH_KEEP=1, BENCH_CACHE (~/.cache/airgap-bench) crane and containerd
# builds, BENCH_SEED (airgap-bench-v1), BENCH_CONTENDERS ("airgap-bundle
# skopeo crane docker"), BENCH_OUT (bench/results/latest.md).
#
# It starts a docker-registry and (for the docker row) e2e/daemons.sh's
# containerd + dockerd under BENCH_DIR, and stops them by PID on any exit.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_IMAGES=${BENCH_IMAGES:-8}
BENCH_LAYER_MB=${BENCH_LAYER_MB:-40}
BENCH_BIG_MB=${BENCH_BIG_MB:-512}
BENCH_RUNS=${BENCH_RUNS:-1}
BENCH_DIR=${BENCH_DIR:-/tmp/airgap-bench}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/airgap-bench}
BENCH_SEED=${BENCH_SEED:-airgap-bench-v1}
BENCH_CONTENDERS=${BENCH_CONTENDERS:-airgap-bundle skopeo crane docker}
BENCH_OUT=${BENCH_OUT:-$ROOT/bench/results/latest.md}
# logs of a failed or interrupted run are copied here (a new directory each
# time, git-ignored), since BENCH_DIR itself is removed
FAIL_LOGS=$ROOT/bench/results/logs-$(date +%Y%m%d-%H%M%S)
AIRGAP_BUNDLE=${AIRGAP_BUNDLE:-$ROOT/bin/airgap-bundle}
REGISTRY_BIN=${REGISTRY_BIN:-/usr/bin/docker-registry}
SKOPEO_BIN=${SKOPEO_BIN:-skopeo}
# Debian's docker.io 20.10 client, the one that matches the dockerd daemons.sh
# starts (another docker CLI may come first on PATH).
DOCKER_BIN=${DOCKER_BIN:-/usr/bin/docker}
CRANE_VERSION=${CRANE_VERSION:-v0.22.1}
CRANE_BIN=$BENCH_CACHE/crane-$CRANE_VERSION/crane
MARKER=.airgap-bench-dir

W=$BENCH_DIR
LOGDIR=$W/logs
TOOL=$W/bin/benchtool
RESULTS=$W/results.tsv
DAEMONS_DIR=$W/daemons
REG_PID=
FAILED=0

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for v in BENCH_IMAGES BENCH_LAYER_MB BENCH_BIG_MB BENCH_RUNS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v}: not a number"
done
((BENCH_IMAGES >= 1 && BENCH_RUNS >= 1)) || die "BENCH_IMAGES and BENCH_RUNS must be >= 1"
((BENCH_LAYER_MB >= 4)) || die "BENCH_LAYER_MB must be >= 4 (4 layers of a quarter each)"
[[ $BENCH_DIR == /* && $BENCH_DIR != / && $BENCH_DIR != *[[:space:]]* ]] || die "BENCH_DIR must be an absolute path other than /, without spaces"
for t in curl od awk setsid; do command -v "$t" >/dev/null || die "$t not found"; done

want() { [[ " $BENCH_CONTENDERS " == *" $1 "* ]]; }

# mounts_under DIR: is anything mounted below DIR?
mounts_under() {
	awk -v p="$1/" '{ mp=$5; gsub(/\\040/, " ", mp); if (index(mp, p) == 1) { found=1 } } END { exit !found }' /proc/self/mountinfo
}

# safe_rm DIR: remove a BENCH_DIR, but only one this script created (marker
# file) and only when nothing is mounted inside it any more.
safe_rm() {
	local d=$1
	[[ -e $d ]] || return 0
	[[ -f $d/$MARKER ]] || die "$d exists and was not created by bench/run.sh (no $MARKER); remove it or set BENCH_DIR"
	if mounts_under "$d"; then
		log "not removing $d: something is still mounted below it"
		return 1
	fi
	rm -rf "$d"
}

# pid_is PID EXE: PID is alive and runs EXE (guards against PID reuse).
pid_is() { [[ -n $1 && -d /proc/$1 && $(readlink -f "/proc/$1/exe" 2>/dev/null) == "$(readlink -f "$2")" ]]; }

stop_pid() { # NAME PID EXE
	local name=$1 pid=$2 exe=$3 i
	pid_is "$pid" "$exe" || return 0
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do pid_is "$pid" "$exe" || return 0; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
}

daemons() { E2E_DIR=$DAEMONS_DIR DOCKER_BIN=$DOCKER_BIN bash "$ROOT/e2e/daemons.sh" "$@"; }

stop_everything() {
	stop_pid docker-registry "$REG_PID" "$REGISTRY_BIN"
	REG_PID=
	if [[ -d $DAEMONS_DIR ]]; then daemons stop >>"$LOGDIR/daemons.log" 2>&1 || log "daemons.sh stop failed (see $LOGDIR/daemons.log)"; fi
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	stop_everything
	if [[ ($rc != 0 || $FAILED == 1) && -d $LOGDIR ]]; then
		mkdir -p "$FAIL_LOGS" && cp -r "$LOGDIR"/. "$FAIL_LOGS"/ &&
			cp -f "$W/registry/registry.log" "$FAIL_LOGS"/ 2>/dev/null
		log "logs copied to $FAIL_LOGS"
	fi
	if [[ $BENCH_KEEP == 1 ]]; then
		log "BENCH_KEEP=1: kept $W (logs in $LOGDIR)"
	else
		safe_rm "$W"
	fi
	exit "$rc"
}

# A previous run killed with SIGKILL may have left its registry and daemons
# running: stop those (by their pidfiles) before reusing the directory.
if [[ -f $W/$MARKER ]]; then
	log "cleaning up a previous run's $W"
	mkdir -p "$W/logs"
	LOGDIR=$W/logs
	[[ -f $W/registry/pid ]] && REG_PID=$(cat "$W/registry/pid")
	stop_everything
fi
safe_rm "$W"
mkdir -p "$W"
touch "$W/$MARKER"
mkdir -p "$LOGDIR" "$W/bin" "$W/cmds" "$W/out"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools -----------------------------------------------------------------

[[ -x $AIRGAP_BUNDLE ]] || die "$AIRGAP_BUNDLE missing: run make build (make bench does)"
[[ -x $REGISTRY_BIN ]] || die "$REGISTRY_BIN missing (apt-get install docker-registry)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (apt-get install time)"

log "building benchtool"
(cd "$ROOT/bench" && CGO_ENABLED=0 go build -o "$TOOL" ./cmd/benchtool) || die "building bench/cmd/benchtool failed"

SKIP_REASON_skopeo= SKIP_REASON_crane= SKIP_REASON_docker=
if want skopeo && ! command -v "$SKOPEO_BIN" >/dev/null; then SKIP_REASON_skopeo="skopeo not installed"; fi
if want crane && [[ ! -x $CRANE_BIN ]]; then
	log "building crane $CRANE_VERSION into $(dirname "$CRANE_BIN") (once)"
	mkdir -p "$(dirname "$CRANE_BIN")"
	if ! (cd / && GOBIN=$(dirname "$CRANE_BIN") GOFLAGS=-mod=mod CGO_ENABLED=0 \
		go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION") >"$LOGDIR/crane-build.log" 2>&1; then
		tail -n 20 "$LOGDIR/crane-build.log" >&2
		SKIP_REASON_crane="building crane $CRANE_VERSION failed"
	fi
fi
if want docker; then
	if [[ $(id -u) != 0 ]]; then SKIP_REASON_docker="needs root (dockerd)"
	elif [[ ! -x /usr/sbin/dockerd || ! -x $DOCKER_BIN ]]; then SKIP_REASON_docker="docker.io not installed"
	fi
fi

# ---- registry --------------------------------------------------------------

# Like internal/testregistry: a config of our own (the Debian default is never
# read), filesystem storage, a per-process header so readiness cannot be
# answered by another server. Quieter logs: the registry runs during every row.
start_registry() {
	local attempt port nonce i hdrs v
	local unset=() # like testregistry: no REGISTRY_* variable overrides config.yml
	for v in $(compgen -e); do [[ $v == REGISTRY_* ]] && unset+=(-u "$v"); done
	mkdir -p "$W/registry/storage"
	for attempt in 1 2 3; do
		port=$("$TOOL" freeport)
		nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
		cat >"$W/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "$W/registry/storage"
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: "127.0.0.1:$port"
  net: tcp
  secret: "$nonce"
  headers:
    X-Bench-Instance: ["$nonce"]
notifications:
  endpoints: []
health:
  storagedriver:
    enabled: false
EOF
		# own session: a Ctrl-C of make does not kill it under a running row;
		# the EXIT trap stops it.
		env "${unset[@]}" setsid "$REGISTRY_BIN" serve "$W/registry/config.yml" \
			</dev/null >>"$W/registry/registry.log" 2>&1 &
		REG_PID=$!
		echo "$REG_PID" >"$W/registry/pid"
		for ((i = 0; i < 100; i++)); do
			hdrs=$(curl -sf --noproxy '*' -o /dev/null -D - "http://127.0.0.1:$port/v2/" 2>/dev/null || true)
			if [[ ${hdrs,,} == *"x-bench-instance: $nonce"* ]]; then
				REG=127.0.0.1:$port
				log "docker-registry ready on $REG (pid $REG_PID)"
				return 0
			fi
			pid_is "$REG_PID" "$REGISTRY_BIN" || break
			sleep 0.1
		done
		stop_pid docker-registry "$REG_PID" "$REGISTRY_BIN"
		REG_PID=
		log "registry attempt $attempt on port $port failed; retrying"
	done
	tail -n 20 "$W/registry/registry.log" >&2
	die "docker-registry did not start"
}

start_registry

log "generating and pushing $BENCH_IMAGES images x $BENCH_LAYER_MB MiB$( ((BENCH_BIG_MB)) && echo " + one image with a $BENCH_BIG_MB MiB layer")"
"$TOOL" gen --registry "$REG" --images "$BENCH_IMAGES" --image-mb "$BENCH_LAYER_MB" --big-mb "$BENCH_BIG_MB" \
	--seed "$BENCH_SEED" --work "$W/gen" --out "$W/refs.json" 2> >(tee "$LOGDIR/gen.log" >&2) || die "generating images failed"
rm -rf "$W/gen"
mapfile -t REFS < <("$TOOL" refs "$W/refs.json")
BIG_REF=$("$TOOL" refs --big "$W/refs.json")
eval "$("$TOOL" refs --sizes "$W/refs.json")" # DISTINCT_MIB REFERENCED_MIB LAYER_MIB

# ---- measuring -------------------------------------------------------------

# measure ID RUN CMD...: run CMD under /usr/bin/time -v, output to a log.
# Sets WALL (seconds), CPU (user + system seconds of CMD and its children),
# RSS (KiB: peak RSS of CMD and every child it waited for, i.e. the largest
# process of the tree) and RC.
measure() {
	local id=$1 run=$2 t0 t1
	shift 2
	MLOG=$LOGDIR/$id.run$run.log
	local tf=$LOGDIR/$id.run$run.time
	t0=$(date +%s%N)
	set +e
	/usr/bin/time -v -o "$tf" "$@" >"$MLOG" 2>&1
	RC=$?
	set -e
	t1=$(date +%s%N)
	WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	RSS=$(awk -F': *' '/Maximum resident set size/ { print $2 }' "$tf" 2>/dev/null)
	RSS=${RSS:-0}
	CPU=$(awk -F': *' '/User time|System time/ { t += $2 } END { printf "%.3f", t }' "$tf" 2>/dev/null)
	CPU=${CPU:-0}
	if ((RC != 0)); then
		log "FAILED (exit $RC): $*"
		tail -n 20 "$MLOG" >&2
	fi
}

# record ID RUN CONTENDER COMMAND RSS_KIND NOTES [--big] PATH...: inspect the
# outputs and append one line to results.tsv (format: see report.go).
record() {
	local id=$1 run=$2 contender=$3 command=$4 rsskind=$5 notes=$6 big=
	shift 6
	if [[ ${1:-} == --big ]]; then big=--big; shift; fi
	local size=0 files=$# insp status=ok images="" kept="" format="" p missing=
	if ((RC == 0)); then
		for p in "$@"; do
			if [[ -f $p ]]; then size=$((size + $(stat -c %s "$p"))); else missing=$p; fi
		done
	fi
	if [[ -n $missing ]]; then
		status=failed notes="$notes; exit 0 but $missing is missing"
		FAILED=1
	elif ((RC == 0)); then
		if insp=$("$TOOL" inspect --expect "$W/refs.json" $big "$@" 2>>"$LOGDIR/$id.run$run.log"); then
			IFS=$'\t' read -r images kept format <<<"$insp"
		else
			status=failed notes="inspecting the output failed (log: $FAIL_LOGS/$id.run$run.log)"
			FAILED=1
		fi
	else
		status=failed notes="$notes; exit $RC (log: $FAIL_LOGS/${MLOG#"$LOGDIR"/})"
		FAILED=1
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$contender" "$command" "$files" \
		"$WALL" "$CPU" "$RSS" "$rsskind" "$size" "$images" "$kept" "$format" "$notes" "$status" >>"$RESULTS"
	log "$(printf '%-60s %7.2f s wall %7.2f s CPU %6s MiB  %s' "$contender" "$WALL" "$CPU" "$((RSS / 1024))" "${status}")"
}

skipped() { # ID CONTENDER REASON
	printf '%s\t%s\t%s\t0\t0\t0\t0\tna\t0\t\t\t\t%s\tskipped\n' "$1" "$2" "-" "$3" >>"$RESULTS"
}

# ---- contenders --------------------------------------------------------------

N=${#REFS[@]}

spec() { # DIR ARCHIVE REF...
	local dir=$1 archive=$2
	shift 2
	mkdir -p "$dir"
	{
		echo 'platforms = ["linux/amd64"]'
		echo "registries.\"$REG\" = { insecure = true }"
		echo
		echo '[[group]]'
		echo 'name = "bench"'
		echo "archive = \"$archive\""
		echo 'images = ['
		printf '  "%s",\n' "$@"
		echo ']'
	} >"$dir/bundle.toml"
}

run_airgap() { # RUN
	local r=$1 d=$W/out/airgap-r$1
	spec "$d/tar" bench.tar "${REFS[@]}"
	measure ab-cold "$r" "$AIRGAP_BUNDLE" build "$d/tar/bundle.toml" --cache-dir "$d/cache" --output "$d/cold"
	record ab-cold "$r" "airgap-bundle build (cold cache)" \
		"airgap-bundle build bundle.toml --cache-dir EMPTY --output DIR  # no lockfile yet: resolves tags, writes it" \
		proc "empty cache, no lockfile: resolve + fetch + write" "$d/cold/bench.tar"
	if ((RC == 0)); then
		measure ab-warm "$r" "$AIRGAP_BUNDLE" build "$d/tar/bundle.toml" --cache-dir "$d/cache" --output "$d/warm"
		record ab-warm "$r" "airgap-bundle build (warm cache)" \
			"airgap-bundle build bundle.toml --cache-dir SAME --output DIR2  # lockfile and blobs from row 1" \
			proc "lockfile + cache from the cold row: no registry calls" "$d/warm/bench.tar"
	else
		RC=1 WALL=0 CPU=0 RSS=0 record ab-warm "$r" "airgap-bundle build (warm cache)" - proc "cold build failed"
	fi
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d/cache" "$d/cold" "$d/warm"
	spec "$d/zst" bench.tar.zst "${REFS[@]}"
	measure ab-zst "$r" "$AIRGAP_BUNDLE" build "$d/zst/bundle.toml" --cache-dir "$d/cache-zst" --output "$d/zst-out"
	record ab-zst "$r" "airgap-bundle build, .tar.zst group (cold cache)" \
		"airgap-bundle build bundle.toml --cache-dir EMPTY  # archive = \"bench.tar.zst\"" \
		proc "as row 1, whole archive zstd-compressed" "$d/zst-out/bench.tar.zst"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
}

run_big() { # RUN
	local r=$1 d=$W/out/big-r$1
	spec "$d/spec" big.tar "$BIG_REF"
	measure ab-big "$r" "$AIRGAP_BUNDLE" build "$d/spec/bundle.toml" --cache-dir "$d/cache" --output "$d/out"
	local pct=
	((RC == 0)) && pct=$(awk -v r="$RSS" -v m="$BENCH_BIG_MB" 'BEGIN { printf "%.0f", 100 * r / 1024 / m }')
	# "Flat" = far below the layer: more than a quarter of it means the
	# layer is being buffered. Below 128 MiB the process's own baseline
	# (~15 MiB) dominates, so the ratio means little.
	local verdict="peak RSS = ${pct}% of the layer size"
	if ((RC == 0 && BENCH_BIG_MB < 128)); then
		verdict="$verdict (layer too small for the ratio to mean much; use BENCH_BIG_MB >= 128)"
	elif ((RC == 0 && pct > 25)); then
		verdict="WARNING: $verdict, memory is not flat"
		log "$verdict"
		FAILED=1
	fi
	record ab-big "$r" "airgap-bundle build, 1 image with one ${BENCH_BIG_MB} MiB layer (cold)" \
		"airgap-bundle build bundle.toml --cache-dir EMPTY  # images = [\"\$REG/bench/big:v1\"]" \
		proc "memory check: $verdict" --big "$d/out/big.tar"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
}

# skopeo reads no host registries.conf/policy.json: a permissive policy (the
# images are unsigned) and an empty registries.conf, like airgap-bundle's
# hermetic set-up.
mkdir -p "$W/skopeo"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$W/skopeo/policy.json"
echo 'unqualified-search-registries = []' >"$W/skopeo/registries.conf"
SKOPEO=("$SKOPEO_BIN" --policy "$W/skopeo/policy.json")

# The command scripts are plain files, so a kept BENCH_DIR shows exactly what ran.
cat >"$W/cmds/skopeo-archives.sh" <<EOF
# skopeo copy, one docker-archive per image (skopeo 1.9 cannot append to one)
set -e
export CONTAINERS_REGISTRIES_CONF=$W/skopeo/registries.conf
out=\$1; mkdir -p "\$out"; i=0
for ref in ${REFS[*]}; do
	i=\$((i + 1))
	${SKOPEO[*]} copy -q --src-tls-verify=false "docker://\$ref" "docker-archive:\$out/\$(printf %02d \$i).tar:\$ref"
done
EOF
cat >"$W/cmds/skopeo-oci.sh" <<EOF
# skopeo copy --preserve-digests of every image into one oci: layout, then tar it
set -e
export CONTAINERS_REGISTRIES_CONF=$W/skopeo/registries.conf
layout=\$1 out=\$2
for ref in ${REFS[*]}; do
	${SKOPEO[*]} copy -q --preserve-digests --src-tls-verify=false "docker://\$ref" "oci:\$layout:\$ref"
done
tar -cf "\$out" -C "\$layout" .
EOF
cat >"$W/cmds/crane-oci.sh" <<EOF
# crane pull --format oci (a layout directory), then tar it
set -e
layout=\$1 out=\$2
$CRANE_BIN pull --insecure --format oci --annotate-ref ${REFS[*]} "\$layout"
tar -cf "\$out" -C "\$layout" .
EOF
cat >"$W/cmds/docker.sh" <<EOF
# docker pull each image, then docker save all of them into one tarball
set -e
out=\$1 split=\$2
t0=\$(date +%s%N)
for ref in ${REFS[*]}; do $DOCKER_BIN pull -q "\$ref"; done
t1=\$(date +%s%N)
$DOCKER_BIN save -o "\$out" ${REFS[*]}
t2=\$(date +%s%N)
echo "\$(( (t1 - t0) / 1000000 )) \$(( (t2 - t1) / 1000000 ))" >"\$split"
EOF

run_skopeo() { # RUN
	local r=$1 d=$W/out/skopeo-r$1
	if [[ -n $SKIP_REASON_skopeo ]]; then
		((r == 1)) && skipped sk-archives "skopeo copy" "$SKIP_REASON_skopeo"
		return
	fi
	measure sk-archives "$r" bash "$W/cmds/skopeo-archives.sh" "$d/archives"
	local files=()
	((RC == 0)) && files=("$d"/archives/*.tar)
	record sk-archives "$r" "skopeo copy ×$N → $N docker-archive files" \
		"for ref in \$REFS; do skopeo copy docker://\$ref docker-archive:\$i.tar:\$ref; done" \
		proc "skopeo 1.9 cannot put a 2nd image into a docker-archive (\"doesn't support modifying existing images\"): $N archives, sizes and times summed, RSS = largest copy" \
		"${files[@]}"
	measure sk-oci "$r" bash "$W/cmds/skopeo-oci.sh" "$d/layout" "$d/skopeo-oci.tar"
	record sk-oci "$r" "skopeo copy --preserve-digests ×$N → one oci: layout, tar" \
		"for ref in \$REFS; do skopeo copy --preserve-digests docker://\$ref oci:layout:\$ref; done; tar -cf out.tar -C layout ." \
		proc "one layout holds all images, blobs stored once; times include tar" "$d/skopeo-oci.tar"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
}

run_crane() { # RUN
	local r=$1 d=$W/out/crane-r$1
	if [[ -n $SKIP_REASON_crane ]]; then
		((r == 1)) && skipped cr-tarball "crane pull" "$SKIP_REASON_crane"
		return
	fi
	mkdir -p "$d"
	measure cr-tarball "$r" "$CRANE_BIN" pull --insecure --format tarball "${REFS[@]}" "$d/crane.tar"
	record cr-tarball "$r" "crane pull (tarball)" \
		"crane pull --insecure --format tarball \$REFS out.tar" \
		proc "multi-image docker tarball, shared layers once" "$d/crane.tar"
	measure cr-oci "$r" bash "$W/cmds/crane-oci.sh" "$d/layout" "$d/crane-oci.tar"
	record cr-oci "$r" "crane pull --format oci, tar" \
		"crane pull --insecure --format oci --annotate-ref \$REFS layout; tar -cf out.tar -C layout ." \
		proc "OCI layout directory, then tar; times include tar" "$d/crane-oci.tar"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
}

# dockerd from e2e/daemons.sh (containerd 1.6 + 2.x + dockerd 20.10, each on
# its own socket under $DAEMONS_DIR), started fresh for every docker run and
# cleaned after it, so every run pulls into an empty data-root. containerd
# 2.x, which daemons.sh always starts, is built once into $BENCH_CACHE.
start_daemons() {
	mkdir -p "$DAEMONS_DIR" "$BENCH_CACHE/containerd2"
	ln -sfn "$BENCH_CACHE/containerd2" "$DAEMONS_DIR/bin"
	log "starting dockerd (e2e/daemons.sh; builds containerd 2.x into $BENCH_CACHE/containerd2 the first time)"
	local attempt
	for attempt in 1 2; do
		daemons start >>"$LOGDIR/daemons.log" 2>&1 && break
		# keep the daemons' own logs (daemons.sh clean deletes them)
		mkdir -p "$LOGDIR/daemons-attempt$attempt"
		cp "$DAEMONS_DIR"/*.log "$LOGDIR/daemons-attempt$attempt/" 2>/dev/null || true
		tail -n 5 "$LOGDIR/daemons.log" >&2
		daemons clean >>"$LOGDIR/daemons.log" 2>&1 || true
		((attempt == 1)) || return 1
		log "daemons.sh start failed; cleaning and trying once more"
	done
	eval "$(daemons env)"
	export DOCKER_HOST=unix://$DOCKER_SOCK DOCKER_CONFIG=$DAEMONS_DIR/docker/client
	DOCKERD_PID=$(cat "$DAEMONS_DIR/docker/pid")
	local info
	info=$("$DOCKER_BIN" info 2>/dev/null || true)
	if [[ $info != *127.0.0.0/8* ]]; then
		log "warning: dockerd does not list 127.0.0.0/8 as an insecure registry; the pull may try HTTPS"
	fi
}

# dockerd_ticks: user + system clock ticks dockerd has used (all its threads;
# it has no children in a pull or save).
dockerd_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$DOCKERD_PID/stat" 2>/dev/null || echo 0; }
dockerd_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$DOCKERD_PID/status" 2>/dev/null || echo 0; }

run_docker() { # RUN
	local r=$1 d=$W/out/docker-r$1
	if [[ -n $SKIP_REASON_docker ]]; then
		((r == 1)) && skipped dk "docker pull + docker save" "$SKIP_REASON_docker"
		return
	fi
	if ! start_daemons; then
		RC=1 WALL=0 CPU=0 RSS=0 MLOG=$LOGDIR/daemons.log record dk "$r" "docker pull ×$N + docker save" - na "dockerd did not start"
		return
	fi
	mkdir -p "$d"
	# The client's RSS says nothing; dockerd does the work. Reset dockerd's
	# peak-RSS counter (clear_refs 5) and report how far the peak rose.
	local before rsskind=dockerd cpu0 cpu1
	before=$(dockerd_kib VmRSS)
	cpu0=$(dockerd_ticks)
	echo 5 >"/proc/$DOCKERD_PID/clear_refs" 2>/dev/null || rsskind=na
	measure dk "$r" bash "$W/cmds/docker.sh" "$d/docker.tar" "$d/split"
	local hwm split=(0 0)
	hwm=$(dockerd_kib VmHWM)
	cpu1=$(dockerd_ticks)
	# CPU: the CLI processes (from time -v) plus dockerd's own user+system time
	CPU=$(awk -v c="$CPU" -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", c + (b - a) / hz }')
	[[ -s $d/split ]] && read -r -a split <"$d/split"
	RSS=$((hwm > before ? hwm - before : 0))
	record dk "$r" "docker pull ×$N + docker save" \
		"for ref in \$REFS; do docker pull \$ref; done; docker save -o out.tar \$REFS" \
		"$rsskind" "fresh data-root; last run: pull $(awk -v m="${split[0]}" 'BEGIN { printf "%.1f", m / 1000 }') s + save $(awk -v m="${split[1]}" 'BEGIN { printf "%.1f", m / 1000 }') s, dockerd peak $((hwm / 1024)) MiB, $((before / 1024)) MiB before" \
		"$d/docker.tar"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
	# stop and wipe: the next run starts from an empty data-root again
	daemons clean >>"$LOGDIR/daemons.log" 2>&1 || log "daemons.sh clean failed (see $LOGDIR/daemons.log)"
}

: >"$RESULTS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for ((run = 1; run <= BENCH_RUNS; run++)); do
	log "---- run $run of $BENCH_RUNS"
	want airgap-bundle && run_airgap "$run"
	want skopeo && run_skopeo "$run"
	want crane && run_crane "$run"
	want docker && run_docker "$run"
	if want airgap-bundle && [[ -n $BIG_REF ]]; then run_big "$run"; fi
done

# ---- report ----------------------------------------------------------------

ver() { "$@" 2>/dev/null | head -n 1 || echo unknown; }
mkdir -p "$(dirname "$BENCH_OUT")"
{
	echo "# airgap-bundle benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(df --output=fstype "$W" | tail -n 1) under $BENCH_DIR, kernel $(uname -r). Load average (1/5/15 min) $LOAD_START before the rows, $(cut -d' ' -f1-3 /proc/loadavg) after: anything else running shows up in the times."
	echo
	echo "**Workload:** $N linux/amd64 images (odd: Docker schema2, even: OCI) of 4 gzip layers of random (incompressible) data, $LAYER_MIB MiB each; layer 1 is one base layer shared by all images: $DISTINCT_MIB MiB of distinct blobs, $REFERENCED_MIB MiB referenced. Seed \`$BENCH_SEED\`. Registry: $(ver "$REGISTRY_BIN" --version | awk '{ print $NF }') (Debian docker-registry) on $REG, plain HTTP, loopback. Runs per row: $BENCH_RUNS (median)."
	echo
	echo "**Versions:** airgap-bundle $(ver "$AIRGAP_BUNDLE" version | awk '{ print $NF }'), $(ver "$SKOPEO_BIN" --version), crane $CRANE_VERSION, docker $(ver "$DOCKER_BIN" --version | sed 's/^Docker version //; s/,.*//') (client and dockerd from docker.io)."
	echo
	"$TOOL" report "$RESULTS"
	echo
	echo "CPU time is user + system time of every process of the command (for docker: the CLI plus dockerd's own). Peak RSS is \`/usr/bin/time -v\`'s maximum resident set size: the largest single process of the command (for the scripted rows, the largest of the skopeo/crane/tar processes). For docker it is how far dockerd's peak RSS rose during pull + save (the CLI does no work). \"Images in output\": images whose config blob is in the output byte for byte. \"Registry manifest digests kept\": images whose manifest, exactly as the registry serves it, is in the output, so \`image@sha256:…\` still matches after import. See bench/README.md."
} >"$BENCH_OUT.tmp"
mv "$BENCH_OUT.tmp" "$BENCH_OUT"
echo
cat "$BENCH_OUT"
echo
log "written to $BENCH_OUT"
if ((FAILED)); then die "some rows failed or memory was not flat (see the table)"; fi
