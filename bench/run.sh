#!/usr/bin/env bash
# bench/run.sh — what `make bench` runs. See bench/README.md.
#
# One run, one local registry, three generated image sets (k3s-like, big
# layers, odd shapes): airgap-bundle (cold and warm) against crane, regctl,
# skopeo, docker pull+save and the floor (cat of the same blobs + fsync +
# sha256sum), each cold. Plus registry-request counts, .tar.gz/.tar.zst
# builds and a flat-memory check. Prints a Markdown table with PASS/FAIL
# lines for the targets (bench/results/latest.md) and writes the same as
# JSON (bench/results/latest.json). Exit 0 even when a target fails; 1 only
# when the benchmark itself could not run.
#
# Env: see bench/README.md ("Settings").
#
# It starts a docker-registry and (for the docker rows) e2e/daemons.sh's
# containerd + dockerd under BENCH_DIR, and stops them by PID on any exit.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_QUICK=${BENCH_QUICK:-0}
# quick mode: every set about 10x smaller
if [[ $BENCH_QUICK == 1 ]]; then q=10; else q=1; fi
BENCH_SETS=${BENCH_SETS:-k3s big odd}
BENCH_K3S_IMAGES=${BENCH_K3S_IMAGES:-20}
BENCH_K3S_MB=${BENCH_K3S_MB:-$((250 / q))}
BENCH_BIG_MB=${BENCH_BIG_MB:-$((1024 / q))}
BENCH_COMP_MB=${BENCH_COMP_MB:-$((300 / q))}
BENCH_ODD_MB=${BENCH_ODD_MB:-$((40 / q))}
BENCH_RUNS=${BENCH_RUNS:-1}
BENCH_DIR=${BENCH_DIR:-/tmp/airgap-bench}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/airgap-bench}
BENCH_SEED=${BENCH_SEED:-airgap-bench-v2}
BENCH_CONTENDERS=${BENCH_CONTENDERS:-airgap-bundle crane regctl skopeo docker floor}
BENCH_OUT=${BENCH_OUT:-$ROOT/bench/results/latest.md}
BENCH_JSON=${BENCH_JSON:-${BENCH_OUT%.md}.json}
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
REGCTL_VERSION=${REGCTL_VERSION:-latest}
REGCTL_BIN=$BENCH_CACHE/regctl-$REGCTL_VERSION/regctl
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

for v in BENCH_K3S_IMAGES BENCH_K3S_MB BENCH_BIG_MB BENCH_COMP_MB BENCH_ODD_MB BENCH_RUNS; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 1 ]] || die "$v=${!v}: not a number >= 1"
done
((BENCH_K3S_IMAGES >= 2)) || die "BENCH_K3S_IMAGES must be >= 2"
for v in $BENCH_SETS; do [[ $v == k3s || $v == big || $v == odd || $v == many ]] || die "BENCH_SETS: unknown set $v"; done
[[ $BENCH_DIR == /* && $BENCH_DIR != / && $BENCH_DIR != *[[:space:]]* ]] || die "BENCH_DIR must be an absolute path other than /, without spaces"
for t in curl od awk setsid; do command -v "$t" >/dev/null || die "$t not found"; done

want() { [[ " $BENCH_CONTENDERS " == *" $1 "* ]]; }

# issue 20 part 2's set (hundreds of images): its settings, generator
# arguments and rows (many_rows)
# shellcheck source=bench/many.sh
source "$ROOT/bench/many.sh"

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
	[[ -f $W/target/pid ]] && stop_pid docker-registry "$(cat "$W/target/pid")" "$REGISTRY_BIN"
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

SKIP_REASON_skopeo= SKIP_REASON_crane= SKIP_REASON_docker= SKIP_REASON_regctl=
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
if want regctl && [[ ! -x $REGCTL_BIN ]]; then
	log "building regctl $REGCTL_VERSION into $(dirname "$REGCTL_BIN") (once)"
	mkdir -p "$(dirname "$REGCTL_BIN")"
	if ! (cd / && GOBIN=$(dirname "$REGCTL_BIN") GOFLAGS=-mod=mod CGO_ENABLED=0 \
		go install "github.com/regclient/regclient/cmd/regctl@$REGCTL_VERSION") >"$LOGDIR/regctl-build.log" 2>&1; then
		tail -n 20 "$LOGDIR/regctl-build.log" >&2
		SKIP_REASON_regctl="building regctl $REGCTL_VERSION failed"
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
# answered by another server. Level warn, but the access log is on: the
# request-count checks count its lines (benchtool reqs).
# start_registry_in DIR: one docker-registry with its storage, config and
# log under DIR; sets STARTED_REG (127.0.0.1:PORT) and STARTED_PID.
start_registry_in() {
	local dir=$1 attempt port nonce i hdrs v pid
	local unset=() # like testregistry: no REGISTRY_* variable overrides config.yml
	for v in $(compgen -e); do [[ $v == REGISTRY_* ]] && unset+=(-u "$v"); done
	mkdir -p "$dir/storage"
	for attempt in 1 2 3; do
		port=$("$TOOL" freeport)
		nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
		cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: "$dir/storage"
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
		env "${unset[@]}" setsid "$REGISTRY_BIN" serve "$dir/config.yml" \
			</dev/null >>"$dir/registry.log" 2>&1 &
		pid=$!
		echo "$pid" >"$dir/pid"
		for ((i = 0; i < 100; i++)); do
			hdrs=$(curl -sf --noproxy '*' -o /dev/null -D - "http://127.0.0.1:$port/v2/" 2>/dev/null || true)
			if [[ ${hdrs,,} == *"x-bench-instance: $nonce"* ]]; then
				STARTED_REG=127.0.0.1:$port STARTED_PID=$pid
				log "docker-registry ready on $STARTED_REG (pid $pid, $dir)"
				return 0
			fi
			pid_is "$pid" "$REGISTRY_BIN" || break
			sleep 0.1
		done
		stop_pid docker-registry "$pid" "$REGISTRY_BIN"
		log "registry attempt $attempt on port $port failed; retrying"
	done
	tail -n 20 "$dir/registry.log" >&2
	die "docker-registry did not start"
}

# the source registry of every row
start_registry() {
	start_registry_in "$W/registry" || die "docker-registry did not start"
	REG=$STARTED_REG REG_PID=$STARTED_PID
}

start_registry


# ---- images ----------------------------------------------------------------

for set in $BENCH_SETS; do
	case $set in
	k3s) args=(--images "$BENCH_K3S_IMAGES" --total-mb "$BENCH_K3S_MB") ;;
	big) args=(--big-mb "$BENCH_BIG_MB" --comp-mb "$BENCH_COMP_MB" --double="$(want airgap-bundle && echo true || echo false)") ;;
	odd) args=(--total-mb "$BENCH_ODD_MB") ;;
	many) args=("${MANY_GEN_ARGS[@]}") ;;
	esac
	log "generating and pushing set $set (${args[*]})"
	"$TOOL" gen --set "$set" --registry "$REG" "${args[@]}" --seed "$BENCH_SEED" --work "$W/gen" \
		--out "$W/refs-$set.json" 2> >(tee -a "$LOGDIR/gen.log" >&2) || die "generating set $set failed"
	rm -rf "$W/gen"
done
STORAGE=$W/registry/storage
# everything below reads blobs the registry just wrote: flush them once, so
# that no row pays for the generator's dirty pages
sync

# ---- measuring -------------------------------------------------------------

# measure ID RUN CMD...: run CMD under /usr/bin/time -v, output to a log.
# Sets WALL (seconds), CPU (user + system seconds of CMD and its children),
# RSS (KiB: peak RSS of the largest process of the tree), FSOUT (bytes the
# tree wrote to file systems, from time -v's 512-byte "File system outputs")
# and RC.
measure() {
	local id=$1 run=$2 t0 t1
	shift 2
	MLOG=$LOGDIR/$SET.$id.run$run.log
	local tf=$LOGDIR/$SET.$id.run$run.time
	# No row pays for the dirty pages of the one before it (crane and
	# regctl never sync their output, so the kernel writes it back later).
	sync
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
	FSOUT=$(awk -F': *' '/File system outputs/ { printf "%.0f", $2 * 512 }' "$tf" 2>/dev/null)
	FSOUT=${FSOUT:-0}
	if ((RC != 0)); then
		log "FAILED (exit $RC): $*"
		tail -n 20 "$MLOG" >&2
	fi
}

# record ID RUN CONTENDER COMMAND RSS_KIND NOTES [--noinspect] [--big] PATH...:
# inspect the outputs and append one line to results.tsv (format: report.go).
record() {
	local id=$1 run=$2 contender=$3 command=$4 rsskind=$5 notes=$6 big= inspect=1
	shift 6
	if [[ ${1:-} == --noinspect ]]; then inspect=0; shift; fi
	if [[ ${1:-} == --big ]]; then big=--big; shift; fi
	local size=0 files=$# insp status=ok images="" kept="" format="" p missing=
	if ((RC == 0)); then
		for p in "$@"; do
			if [[ -f $p ]]; then size=$((size + $(stat -c %s "$p"))); else missing=$p; fi
		done
	fi
	if [[ -n $missing ]]; then
		status=failed notes="$notes; exit 0 but $missing is missing"
	elif ((RC == 0 && inspect)); then
		if insp=$("$TOOL" inspect --expect "$W/refs-$SET.json" $big "$@" 2>>"$MLOG"); then
			IFS=$'\t' read -r images kept format <<<"$insp"
		else
			status=failed notes="inspecting the output failed (log: $FAIL_LOGS/${MLOG#"$LOGDIR"/})"
		fi
	elif ((RC != 0)); then
		status=failed notes="$notes; exit $RC: $(tail -n 1 "$MLOG" | tr '\t' ' ' | cut -c1-200) (log: $FAIL_LOGS/${MLOG#"$LOGDIR"/})"
	fi
	[[ $status == ok ]] || FAILED=1
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$SET" "$id" "$contender" "$command" "$files" \
		"$WALL" "$CPU" "$RSS" "$rsskind" "$size" "$FSOUT" "$images" "$kept" "$format" "$notes" "$status" >>"$RESULTS"
	log "$(printf '%-4s %-44s %7.2f s wall %7.2f s CPU %6s MiB  %s' "$SET" "$contender" "$WALL" "$CPU" "$((RSS / 1024))" "${status}")"
}

skipped() { # ID CONTENDER REASON
	printf '%s\t%s\t%s\t-\t0\t0\t0\t0\tna\t0\t0\t\t\t\t%s\tskipped\n' "$SET" "$1" "$2" "$3" >>"$RESULTS"
}

fact() { printf '%s\t%s\t%s\n' "$SET" "$1" "$2" >>"$FACTS"; } # KEY VALUE

# reglines: lines in the registry log so far (the next request is line +1)
reglines() { wc -l <"$W/registry/registry.log"; }

# ---- contenders --------------------------------------------------------------

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

AB_CMD="airgap-bundle build bundle.toml --cache-dir EMPTY --output DIR"

run_airgap() { # RUN
	local r=$1 d=$W/out/$SET-airgap-r$1 l0
	spec "$d/tar" bench.tar "${REFS[@]}"
	measure ab-cold "$r" "$AIRGAP_BUNDLE" build "$d/tar/bundle.toml" --cache-dir "$d/cache" --output "$d/cold"
	record ab-cold "$r" "airgap-bundle build (cold)" "$AB_CMD  # no lockfile yet: locks first" \
		proc "empty cache, no lockfile: resolve + fetch + write" "$d/cold/bench.tar"
	if ((RC == 0)); then
		l0=$(($(reglines) + 1))
		measure ab-warm "$r" "$AIRGAP_BUNDLE" build "$d/tar/bundle.toml" --cache-dir "$d/cache" --output "$d/warm"
		record ab-warm "$r" "airgap-bundle build (warm)" \
			"airgap-bundle build bundle.toml --cache-dir SAME --output DIR2  # lockfile and blobs of the cold row" \
			proc "lockfile + filled cache of the cold row" "$d/warm/bench.tar"
		((r == 1)) && fact req_warm_all "$("$TOOL" reqs --log "$W/registry/registry.log" --from "$l0" --refs "$W/refs-$SET.json" | sed 's/^REQ_ALL=\([0-9]*\).*/\1/')"
	else
		RC=1 WALL=0 CPU=0 RSS=0 FSOUT=0 record ab-warm "$r" "airgap-bundle build (warm)" - proc "cold build failed"
	fi
	# issue 20's one-shot CI build: no lockfile, no cache at all
	spec "$d/nc" bench.tar "${REFS[@]}"
	measure ab-nocache "$r" "$AIRGAP_BUNDLE" build "$d/nc/bundle.toml" --no-cache --output "$d/nocache"
	record ab-nocache "$r" "airgap-bundle build --no-cache (cold)" "airgap-bundle build bundle.toml --no-cache --output DIR  # no lockfile, no cache" \
		proc "no cache: big layers stream into the archive" "$d/nocache/bench.tar"
	rm -rf "$d/nocache"
	# the request checks and delta rows of the k3s set, and the big set's
	# delta rows, start from run 1's cache, lockfile and archive (BASE)
	if [[ ($SET == k3s || $SET == big) && $r == 1 ]]; then
		local x
		rm -rf "$W/keep-$SET" && mkdir -p "$W/keep-$SET"
		for x in cache tar cold; do
			# the big set's delta rows need BASE's archive and lockfile only
			[[ $SET == big && $x == cache ]] && continue
			if [[ -e $d/$x ]]; then mv "$d/$x" "$W/keep-$SET/"; fi
		done
	fi
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
}

run_crane() { # RUN
	local r=$1 d=$W/out/$SET-crane-r$1
	if [[ -n $SKIP_REASON_crane ]]; then
		((r == 1)) && skipped cr-tarball "crane pull (tarball)" "$SKIP_REASON_crane"
		return
	fi
	mkdir -p "$d"
	measure cr-tarball "$r" "$CRANE_BIN" pull --insecure --platform linux/amd64 --format tarball "${REFS[@]}" "$d/crane.tar"
	record cr-tarball "$r" "crane pull (tarball)" \
		"crane pull --insecure --platform linux/amd64 --format tarball \$REFS out.tar" \
		proc "multi-image docker tarball, shared layers once" "$d/crane.tar"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
}

run_regctl() { # RUN
	local r=$1 d=$W/out/$SET-regctl-r$1
	if [[ -n $SKIP_REASON_regctl ]]; then
		((r == 1)) && skipped regctl "regctl image export" "$SKIP_REASON_regctl"
		return
	fi
	measure regctl "$r" bash "$W/cmds/regctl.sh" "$d" "$W/refs-$SET.txt"
	local files=()
	((RC == 0)) && files=("$d"/*.tar)
	record regctl "$r" "regctl image export ×$N (one tar each)" \
		"for ref in \$REFS; do regctl image export --platform linux/amd64 \$ref \$i.tar; done" \
		proc "$N tar files (regctl exports one image per tar): sizes and times summed, RSS = largest" "${files[@]}"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
}

run_skopeo() { # RUN
	local r=$1 d=$W/out/$SET-skopeo-r$1
	if [[ -n $SKIP_REASON_skopeo ]]; then
		((r == 1)) && skipped skopeo "skopeo copy (docker-archive)" "$SKIP_REASON_skopeo"
		return
	fi
	measure skopeo "$r" bash "$W/cmds/skopeo.sh" "$d" "$W/refs-$SET.txt"
	local files=()
	((RC == 0)) && files=("$d"/*.tar)
	record skopeo "$r" "skopeo copy ×$N (docker-archive each)" \
		"for ref in \$REFS; do skopeo copy docker://\$ref docker-archive:\$i.tar:\$ref; done" \
		proc "skopeo 1.9 cannot put a 2nd image into a docker-archive: $N archives, sizes and times summed, RSS = largest" "${files[@]}"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
}

run_floor() { # RUN
	local r=$1 d=$W/out/$SET-floor-r$1
	mkdir -p "$d"
	"$TOOL" refs --blobs "$STORAGE" "$W/refs-$SET.json" >"$W/blobs-$SET.txt"
	measure floor "$r" bash "$W/cmds/floor.sh" "$d/floor.bin" "$W/blobs-$SET.txt"
	record floor "$r" "FLOOR: cat blobs + fsync + sha256sum" \
		"xargs cat <blob files of the set> >out; sync out; sha256sum out" \
		proc "the set's $NBLOBS distinct linux/amd64 blobs from the registry's storage" --noinspect "$d/floor.bin"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
}

# The command scripts are plain files, so a kept BENCH_DIR shows exactly what ran.
# skopeo reads no host registries.conf/policy.json: a permissive policy (the
# images are unsigned) and an empty registries.conf.
mkdir -p "$W/skopeo" "$W/regctl-home"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$W/skopeo/policy.json"
echo 'unqualified-search-registries = []' >"$W/skopeo/registries.conf"
cat >"$W/cmds/skopeo.sh" <<EOF
# skopeo copy, one docker-archive per image (skopeo 1.9 cannot append to one)
set -e
export CONTAINERS_REGISTRIES_CONF=$W/skopeo/registries.conf
out=\$1; mkdir -p "\$out"; i=0
while read -r ref; do
	i=\$((i + 1))
	$SKOPEO_BIN --policy $W/skopeo/policy.json --override-os linux --override-arch amd64 copy -q --src-tls-verify=false "docker://\$ref" "docker-archive:\$out/\$(printf %02d \$i).tar:\$ref"
done <"\$2"
EOF
cat >"$W/cmds/regctl.sh" <<EOF
# regctl image export, one tar per image (config: plain HTTP for the registry)
set -e
export HOME=$W/regctl-home
out=\$1; mkdir -p "\$out"; i=0
while read -r ref; do
	i=\$((i + 1))
	$REGCTL_BIN image export --platform linux/amd64 "\$ref" "\$out/\$(printf %02d \$i).tar"
done <"\$2"
EOF
cat >"$W/cmds/floor.sh" <<'EOF'
# the floor: the set's blobs, straight from the registry's storage, into one
# file, fsynced (coreutils sync FILE), then hashed once
set -e
xargs -d '\n' -a "$2" cat >"$1"
sync "$1"
sha256sum "$1" >"$1.sha256"
EOF
cat >"$W/cmds/catsync.sh" <<'EOF'
# apply's floor: the bytes apply writes, read from a file (build's copy),
# written once and made durable
set -e
cat "$2" >"$1"
sync "$1"
EOF
cat >"$W/cmds/docker.sh" <<EOF
# docker pull each image, then docker save all of them into one tarball
set -e
out=\$1 split=\$2
mapfile -t refs <"\$3"
t0=\$(date +%s%N)
for ref in "\${refs[@]}"; do $DOCKER_BIN pull -q "\$ref"; done
t1=\$(date +%s%N)
$DOCKER_BIN save -o "\$out" "\${refs[@]}"
t2=\$(date +%s%N)
echo "\$(( (t1 - t0) / 1000000 )) \$(( (t2 - t1) / 1000000 ))" >"\$split"
EOF
if want regctl && [[ -z $SKIP_REASON_regctl ]]; then
	HOME=$W/regctl-home "$REGCTL_BIN" registry set --tls disabled "$REG" >>"$LOGDIR/regctl-setup.log" 2>&1 ||
		SKIP_REASON_regctl="regctl registry set --tls disabled failed"
fi

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
	local r=$1 d=$W/out/$SET-docker-r$1
	if [[ -n $SKIP_REASON_docker ]]; then
		((r == 1)) && skipped docker "docker pull + docker save" "$SKIP_REASON_docker"
		return
	fi
	if ! start_daemons; then
		RC=1 WALL=0 CPU=0 RSS=0 FSOUT=0 MLOG=$LOGDIR/daemons.log record docker "$r" "docker pull ×$N + docker save" - na "dockerd did not start"
		return
	fi
	mkdir -p "$d"
	# The client's RSS says nothing; dockerd does the work. Reset dockerd's
	# peak-RSS counter (clear_refs 5) and report how far the peak rose.
	local before rsskind=dockerd cpu0 cpu1
	before=$(dockerd_kib VmRSS)
	cpu0=$(dockerd_ticks)
	echo 5 >"/proc/$DOCKERD_PID/clear_refs" 2>/dev/null || rsskind=na
	measure docker "$r" bash "$W/cmds/docker.sh" "$d/docker.tar" "$d/split" "$W/refs-$SET.txt"
	local hwm split=(0 0)
	hwm=$(dockerd_kib VmHWM)
	cpu1=$(dockerd_ticks)
	# CPU: the CLI processes (from time -v) plus dockerd's own user+system time
	CPU=$(awk -v c="$CPU" -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", c + (b - a) / hz }')
	[[ -s $d/split ]] && read -r -a split <"$d/split"
	RSS=$((hwm > before ? hwm - before : 0))
	FSOUT=0 # dockerd's writes (data-root) are not the CLI's; see the notes
	record docker "$r" "docker pull ×$N + docker save" \
		"for ref in \$REFS; do docker pull \$ref; done; docker save -o out.tar \$REFS" \
		"$rsskind" "fresh data-root; pull $(awk -v m="${split[0]}" 'BEGIN { printf "%.1f", m / 1000 }') s + save $(awk -v m="${split[1]}" 'BEGIN { printf "%.1f", m / 1000 }') s, dockerd peak $((hwm / 1024)) MiB, $((before / 1024)) MiB before" \
		"$d/docker.tar"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
	# stop and wipe: the next run starts from an empty data-root again
	daemons clean >>"$LOGDIR/daemons.log" 2>&1 || log "daemons.sh clean failed (see $LOGDIR/daemons.log)"
}

# ---- extras: once per set --------------------------------------------------

# k3s: what the registry sees, counted in its access log (benchtool reqs).
k3s_requests() {
	local k=$W/keep-k3s l0 out
	[[ -f $k/tar/bundle.lock ]] || { log "request checks skipped: no cold build to start from"; return; }
	# BASE of the delta rows (k3s_delta): v1's lockfile, and a copy of the
	# cache as the cold row left it, holding BASE's blobs and nothing else
	cp "$k/tar/bundle.lock" "$k/v1.lock"
	cp -a "$k/cache" "$k/cache-base"
	# 1. lock --check on the unchanged spec: no request at all
	l0=$(($(reglines) + 1))
	set +e
	"$AIRGAP_BUNDLE" lock --check "$k/tar/bundle.toml" >"$LOGDIR/k3s.lock-check.log" 2>&1
	fact req_check_rc $?
	set -e
	eval "$("$TOOL" reqs --log "$W/registry/registry.log" --from "$l0" --refs "$W/refs-$SET.json" --dump "$LOGDIR/k3s.lock-check.requests")"
	fact req_check_all "$REQ_ALL"
	# 2. a one-image version bump: BUMP_FROM -> BUMP_TO in the spec, build
	# from the cold row's cache and lockfile (build locks first)
	sed -i "s|\"$BUMP_FROM\"|\"$BUMP_TO\"|" "$k/tar/bundle.toml"
	l0=$(($(reglines) + 1))
	measure ab-bump 1 "$AIRGAP_BUNDLE" build "$k/tar/bundle.toml" --cache-dir "$k/cache" --output "$k/bump"
	record ab-bump 1 "airgap-bundle build after a 1-image bump" \
		"sed -i s/app-01:v1/app-01:v2/ bundle.toml; airgap-bundle build bundle.toml --cache-dir SAME --output DIR3" \
		proc "cold row's cache + lockfile; image 1 bumped to a tag with 1 changed layer" --noinspect "$k/bump/bench.tar"
	eval "$("$TOOL" reqs --log "$W/registry/registry.log" --from "$l0" --refs "$W/refs-$SET.json" --dump "$LOGDIR/k3s.bump.requests")"
	fact req_bump_rc "$RC"
	fact req_bump_blob_distinct "$REQ_BLOB_DISTINCT"
	fact req_bump_blob_get "$REQ_BLOB_GET"
	fact req_bump_blob_new "$REQ_BLOB_NEW"
	fact req_bump_expected "$BUMP_NEW"
	fact req_bump_manifest "$REQ_MANIFEST"
	# 3. lock of N new tags (same digests), no lockfile
	mapfile -t retag < <("$TOOL" refs --retag "$W/refs-$SET.json")
	spec "$k/retag" bench.tar "${retag[@]}"
	l0=$(($(reglines) + 1))
	set +e
	"$AIRGAP_BUNDLE" lock "$k/retag/bundle.toml" >"$LOGDIR/k3s.lock-retag.log" 2>&1
	fact req_lock_rc $?
	set -e
	eval "$("$TOOL" reqs --log "$W/registry/registry.log" --from "$l0" --refs "$W/refs-$SET.json" --dump "$LOGDIR/k3s.lock-retag.requests")"
	fact req_lock_tags "${#retag[@]}"
	fact req_lock_all "$REQ_ALL"
	fact req_lock_manifest "$REQ_MANIFEST"
	fact req_lock_blob_get "$REQ_BLOB_GET"
	fact req_lock_blob_cfg "$REQ_BLOB_CFG"
	fact req_lock_singles "$(grep -c '"index": false' "$W/refs-$SET.json")"
}

# delta_rows LABEL BASE_DIR BASE_LOCK SPEC CACHE DIR: issue 17's rows.
# build --since BASE_LOCK (its output: the delta directory, its requests
# counted), apply of that delta to BASE_DIR's archive (checked against
# build's, byte for byte), and apply's floor: cat + fsync of the same
# output bytes from a file.
delta_rows() {
	local label=$1 base=$2 baselock=$3 specf=$4 cache=$5 s=$6 l0 files=() p bytes=0
	l0=$(($(reglines) + 1))
	measure ab-since 1 "$AIRGAP_BUNDLE" build "$specf" --since "$baselock" --cache-dir "$cache" --output "$s/out"
	if ((RC == 0)); then files=("$s/out/delta"/*); fi
	record ab-since 1 "airgap-bundle build --since BASE ($label)" \
		"airgap-bundle build bundle.toml --since v1.lock --cache-dir CACHE --output DIR  # output: DIR/delta" \
		proc "writes the full archive and the delta directory (its files are the output here)" --noinspect "${files[@]}"
	eval "$("$TOOL" reqs --log "$W/registry/registry.log" --from "$l0" --refs "$W/refs-$SET.json" --dump "$LOGDIR/$SET.since.requests")"
	fact req_since_rc "$RC"
	fact req_since_all "$REQ_ALL"
	fact req_since_manifest "$REQ_MANIFEST"
	fact req_since_blob_get "$REQ_BLOB_GET"
	fact req_since_blob_new "$REQ_BLOB_NEW"
	((RC == 0)) || return 0
	for p in "${files[@]}"; do bytes=$((bytes + $(stat -c %s "$p"))); done
	fact delta_bytes "$bytes"
	fact delta_full_bytes "$(stat -c %s "$s/out/bench.tar")"
	# apply and its floor take turns, three runs each (medians reported):
	# the page cache and writeback state left by build --since's gigabytes
	# then falls on both alike instead of on whichever runs first.
	local run
	for run in 1 2 3; do
		rm -rf "$s/applied"
		measure ab-apply "$run" "$AIRGAP_BUNDLE" apply "$s/out/delta" --base "$base" -o "$s/applied"
		local applywall=$WALL applyrc=$RC
		record ab-apply "$run" "airgap-bundle apply ($label)" "airgap-bundle apply DIR/delta --base BASE_DIR -o DIR2" \
			proc "BASE's archive + the delta: the new archive, checked against delta.json" --noinspect "$s/applied/bench.tar"
		if ((run == 1)); then
			fact apply_identical "$(cmp -s "$s/applied/bench.tar" "$s/out/bench.tar" && echo 1 || echo 0)"
		fi
		rm -f "$s/cat.out"
		measure cat-apply "$run" bash "$W/cmds/catsync.sh" "$s/cat.out" "$s/out/bench.tar"
		record cat-apply "$run" "FLOOR of apply: cat + fsync of the same bytes" "cat bench.tar >out; sync out" \
			proc "apply's output bytes, from build's archive" --noinspect "$s/cat.out"
		# the pair's own ratio: two runs side by side share the machine's
		# state, which drifts between pairs (writeback, other work)
		if ((applyrc == 0 && RC == 0)); then
			fact "apply_ratio_run$run" "$(awk -v a="$applywall" -v b="$WALL" 'BEGIN { printf "%.3f", a / b }')"
		fi
	done
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$s/applied"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$s"
}

# k3s: the one-image bump as a delta. build --since v1's lockfile from a
# cache holding BASE only (so the download counts say whether the delta
# costs any), then apply to the cold row's archive.
k3s_delta() {
	local k=$W/keep-k3s s=$W/keep-k3s/since
	[[ -f $k/v1.lock && -f $k/cold/bench.tar ]] || { log "delta rows skipped: no cold build to start from"; return; }
	mkdir -p "$s/spec"
	# the bumped spec with v1's lockfile: build locks first, as the bump row did
	cp "$k/tar/bundle.toml" "$s/spec/bundle.toml"
	cp "$k/v1.lock" "$s/spec/bundle.lock"
	fact delta_new_bytes "$BUMP_NEW_BYTES"
	delta_rows "1-image bump" "$k/cold" "$k/v1.lock" "$s/spec/bundle.toml" "$k/cache-base" "$s"
}

# k3s: issue 18's rows. The set at a max-size of 2/5 of its size (100 MiB
# of 250) is written as parts; their sizes, their bytes over one archive,
# the union's images and digests (inspected together), and the build time
# against one archive's, both from the same warm cache and lockfile.
k3s_parts() {
	local k=$W/keep-k3s d=$W/out/k3s-parts max p sz n=0 biggest=0 total=0 files=()
	[[ -f $k/v1.lock ]] || { log "parts rows skipped: no cold build to start from"; return; }
	max=$((BENCH_K3S_MB * 1048576 * 2 / 5))
	# the set as generated (the request checks bumped one image of the
	# kept spec), with its lockfile
	spec "$d/spec" bench.tar "${REFS[@]}"
	cp "$k/v1.lock" "$d/spec/bundle.lock"
	measure ab-whole 1 "$AIRGAP_BUNDLE" build --locked "$d/spec/bundle.toml" --cache-dir "$k/cache" --output "$d/whole"
	record ab-whole 1 "airgap-bundle build, one archive (warm)" "airgap-bundle build --locked bundle.toml --cache-dir SAME --output DIR" \
		proc "the reference of the parts row" --noinspect "$d/whole/bench.tar"
	((RC == 0)) || return 0
	measure ab-parts 1 "$AIRGAP_BUNDLE" build --locked "$d/spec/bundle.toml" --cache-dir "$k/cache" --output "$d/parts" --max-size "$max"
	((RC == 0)) && files=("$d/parts"/bench.part-*)
	record ab-parts 1 "airgap-bundle build --max-size 2/5 of the set (warm)" \
		"airgap-bundle build --locked bundle.toml --max-size 100MiB --cache-dir SAME --output DIR2" \
		proc "written as parts, each a complete archive; images and digests of their union" "${files[@]}"
	((RC == 0)) || return 0
	for p in "${files[@]}"; do
		sz=$(stat -c %s "$p")
		n=$((n + 1)) total=$((total + sz))
		((sz > biggest)) && biggest=$sz
	done
	fact parts_max_size "$max"
	fact parts_count "$n"
	fact parts_biggest "$biggest"
	fact parts_total "$total"
	fact parts_whole "$(stat -c %s "$d/whole/bench.tar")"
	# each part alone is a complete archive (verify ARCHIVE: its own checks)
	fact parts_each_ok "$("$AIRGAP_BUNDLE" verify "${files[@]}" >"$LOGDIR/k3s.parts-verify.log" 2>&1 && echo 1 || echo 0)"
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
}

# compress_speedup EXT: the archive compressor alone (archive's
# BenchmarkCompression, compressible text, memory to io.Discard) on 1 core
# and on every core: does compression use them all?
compress_speedup() {
	local ext=$1 alg out1 outn n bin
	case $ext in gz) alg=gzip ;; zst) alg=zstd ;; esac
	n=$(nproc)
	bin=$W/archive.test
	[[ -x $bin ]] || (cd "$ROOT" && CGO_ENABLED=0 go test -tags "containers_image_openpgp" -c -o "$bin" ./archive) || {
		log "building the compression benchmark failed"
		return 0
	}
	# One process per core count: in one process with -cpu 1,N, the 1-core
	# run came out as fast as the N-core one (Go 1.26), hiding the speedup.
	out1=$("$bin" -test.run '^$' -test.bench "^BenchmarkCompression\$/^$alg\$/^compressible\$" -test.benchtime 5x -test.cpu 1 2>&1) &&
		outn=$("$bin" -test.run '^$' -test.bench "^BenchmarkCompression\$/^$alg\$/^compressible\$" -test.benchtime 5x -test.cpu "$n" 2>&1) || {
		log "compression benchmark failed: $out1 $outn"
		return 0
	}
	printf '%s\n%s\n' "$out1" "$outn" >"$LOGDIR/compress-$ext.log"
	fact "compress_${ext}_1" "$(awk -v n="$alg/compressible" '$1 == "BenchmarkCompression/" n { print $(NF-1) }' <<<"$out1")"
	fact "compress_${ext}_n" "$(awk -v n="$alg/compressible-$n" '$1 == "BenchmarkCompression/" n { print $(NF-1) }' <<<"$outn")"
}

# k3s: the set as .tar.gz and .tar.zst: a cold build, then a second build
# (from the first one's cache, into a new directory) must give the same bytes.
k3s_compressed() {
	local ext d sum1 sum2
	for ext in gz zst; do
		d=$W/out/k3s-$ext
		spec "$d/spec" "bench.tar.$ext" "${REFS[@]}"
		measure "ab-$ext" 1 "$AIRGAP_BUNDLE" build "$d/spec/bundle.toml" --cache-dir "$d/cache" --output "$d/a"
		record "ab-$ext" 1 "airgap-bundle build .tar.$ext (cold)" "$AB_CMD  # archive = \"bench.tar.$ext\"" \
			proc "whole archive compressed" "$d/a/bench.tar.$ext"
		((RC == 0)) || continue
		measure "ab-$ext-2" 1 "$AIRGAP_BUNDLE" build "$d/spec/bundle.toml" --cache-dir "$d/cache" --output "$d/b"
		record "ab-$ext-2" 1 "airgap-bundle build .tar.$ext (warm, 2nd)" \
			"airgap-bundle build bundle.toml --cache-dir SAME --output DIR2" proc "second build, for the sha256 comparison" --noinspect "$d/b/bench.tar.$ext"
		sum1=$(sha256sum "$d/a/bench.tar.$ext" | cut -d' ' -f1)
		sum2=$(sha256sum "$d/b/bench.tar.$ext" 2>/dev/null | cut -d' ' -f1)
		fact "${ext}_identical" "$([[ $sum1 == "$sum2" ]] && echo 1 || echo 0)"
		compress_speedup "$ext"
		fact "${ext}_sha256" "$sum1"
		node_import "tar.$ext" "$d/a/bench.tar.$ext"
		[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
	done
}

# big: the same image with the big layer doubled, for the flat-memory check
big_double() {
	local ref d=$W/out/big-2x
	ref=$("$TOOL" refs --big "$W/refs-$SET.json")
	[[ -n $ref ]] || return 0
	spec "$d/spec" bench.tar "$ref"
	measure ab-2x 1 "$AIRGAP_BUNDLE" build "$d/spec/bundle.toml" --cache-dir "$d/cache" --output "$d/out"
	record ab-2x 1 "airgap-bundle build, big layer doubled (cold)" "$AB_CMD  # the big layer at $((2 * BENCH_BIG_MB)) MiB" \
		proc "flat-memory check: compare peak RSS with the cold row" --noinspect "$d/out/bench.tar"
	# the same image as a delta against the cold row's (every byte new but
	# the compressible layer's): apply's memory on 8x the k3s set's bytes
	local k=$W/keep-big
	if ((RC == 0)) && [[ -f $k/tar/bundle.lock && -f $k/cold/bench.tar ]]; then
		rm -rf "$d/out" # room: build --since writes the archive again
		delta_rows "big layer doubled" "$k/cold" "$k/tar/bundle.lock" "$d/spec/bundle.toml" "$d/cache" "$d/since"
	fi
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d" "$k"
}

# ---- the run ------------------------------------------------------------------

# issue 20 part 3's rows (push, serve, a node's import)
# shellcheck source=bench/inside.sh
source "$ROOT/bench/inside.sh"

RESULTS=$W/results.tsv FACTS=$W/facts.tsv
: >"$RESULTS"
: >"$FACTS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$SECONDS
for SET in $BENCH_SETS; do
	mapfile -t REFS < <("$TOOL" refs "$W/refs-$SET.json")
	"$TOOL" refs "$W/refs-$SET.json" >"$W/refs-$SET.txt"
	N=${#REFS[@]}
	eval "$("$TOOL" refs --sh "$W/refs-$SET.json")" # NREFS DISTINCT_BYTES NBLOBS BUMP_*
	fact distinct_bytes "$DISTINCT_BYTES"
	fact blobs "$NBLOBS"
	fact refs "$N"
	if [[ $SET == many ]]; then want airgap-bundle && many_rows; continue; fi
	for ((run = 1; run <= BENCH_RUNS; run++)); do
		log "---- set $SET ($N references, $((DISTINCT_BYTES >> 20)) MiB distinct), run $run of $BENCH_RUNS"
		want airgap-bundle && run_airgap "$run"
		want crane && run_crane "$run"
		want regctl && run_regctl "$run"
		want skopeo && run_skopeo "$run"
		want docker && run_docker "$run"
		want floor && run_floor "$run"
	done
	if want airgap-bundle; then
		case $SET in
		k3s)
			k3s_requests
			inside_rows "$W/keep-k3s/cold"
			k3s_delta
			k3s_parts
			[[ $BENCH_KEEP == 1 ]] || rm -rf "$W/keep-k3s"
			k3s_compressed
			;;
		big)
			inside_rows "$W/keep-big/cold"
			big_double
			;;
		esac
	fi
done
T_TOTAL=$((SECONDS - T_START))

# ---- report ----------------------------------------------------------------

ver() { "$@" 2>/dev/null | head -n 1 || echo unknown; }
mkdir -p "$(dirname "$BENCH_OUT")" "$(dirname "$BENCH_JSON")"
{
	echo "# airgap-bundle benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(df --output=fstype "$W" | tail -n 1) under $BENCH_DIR, kernel $(uname -r). Mode: $([[ $BENCH_QUICK == 1 ]] && echo "quick (BENCH_QUICK=1, sets ~10x smaller)" || echo default). Runs per row: $BENCH_RUNS (median). Rows took ${T_TOTAL}s. Load average (1/5/15 min) $LOAD_START before the rows, $(cut -d' ' -f1-3 /proc/loadavg) after."
	echo
	echo "**Registry:** $(ver "$REGISTRY_BIN" --version | awk '{ print $NF }') (Debian docker-registry) on $REG, plain HTTP, loopback; its blobs were just written, so reads come from the page cache."
	echo
	echo "**Versions:** airgap-bundle $(ver "$AIRGAP_BUNDLE" version | awk '{ print $NF }'), crane $CRANE_VERSION, regctl $(HOME=$W/regctl-home ver "$REGCTL_BIN" version --format '{{.VCSTag}}'), $(ver "$SKOPEO_BIN" --version), docker $(ver "$DOCKER_BIN" --version | sed 's/^Docker version //; s/,.*//') (client and dockerd from docker.io)."
	echo
	"$TOOL" report --results "$RESULTS" --facts "$FACTS" --json "$BENCH_JSON" --cores "$(nproc)" \
		--sets "k3s=$BENCH_K3S_IMAGES images over 3 shared base layers, $BENCH_K3S_MB MiB of incompressible layer data (Docker and OCI, single manifests and indexes with an arm64 child);big=1 OCI image: $BENCH_BIG_MB MiB incompressible layer + $BENCH_COMP_MB MiB (uncompressed) compressible layer;odd=9 references: OCI index with 3 platforms + attestation, Docker manifest list, whiteouts, 60 layers, zstd layers, a compressible layer, the same layer twice + an empty layer, a tiny image under 2 tags (layer data: about $BENCH_ODD_MB MiB before compression, all platforms);many=$MANY_DESC"
	echo
	echo "See bench/README.md for what every row and target measures."
} >"$BENCH_OUT.tmp"
mv "$BENCH_OUT.tmp" "$BENCH_OUT"
echo
cat "$BENCH_OUT"
echo
log "written to $BENCH_OUT and $BENCH_JSON"
# the targets never change the exit status; a failed row does not either
# (it is in the table), but its logs are kept (see cleanup)
((FAILED)) && log "some rows failed: see the table and $FAIL_LOGS"
exit 0
