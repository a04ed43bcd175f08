# shellcheck shell=bash
# Issue 20 part 2: hundreds of images. Sourced by run.sh (early: the
# generator's arguments are needed before the images are pushed), whose
# helpers (measure, record, fact, log, spec, reglines, run_floor) it uses.
#
# The set `many` (benchtool gen --set many): BENCH_MANY_IMAGES images over
# shared bases, about BENCH_MANY_BLOBS distinct linux/amd64 blobs and
# BENCH_MANY_MB MiB, half of them multi-arch indexes. Its shape repeats
# every 30 images, so the first 30 are the whole set in small. Rows, all of
# airgap-bundle (no peer: the question is how the tool scales, not how it
# compares):
#
#   lock of the first 30 and of all the images (two specs, no lockfile);
#   build of each from its lockfile into an empty cache (300 first: the
#   disk's state after generation falls on it); the build of all the
#   images without a lockfile (it locks first); all under benchtool
#   fdwatch, which samples the open file descriptors;
#   lock --check and verify of all the images, their registry requests
#   counted; a cold build of the first 30 images as 10 groups on a pty
#   (script(1)), for the height of the redrawn progress area; the floor.

BENCH_MANY_IMAGES=${BENCH_MANY_IMAGES:-300}
# quick: 3000, not 1000: 300 images need at least one own layer each
# beside their manifests, configs and the shared layers (about 1100 blobs)
BENCH_MANY_BLOBS=${BENCH_MANY_BLOBS:-$((q == 1 ? 10000 : 3000))}
BENCH_MANY_MB=${BENCH_MANY_MB:-$((3072 / q))}
# the small spec of the linearity rows: the first MANY_SMALL images
MANY_SMALL=30
for v in BENCH_MANY_IMAGES BENCH_MANY_BLOBS BENCH_MANY_MB; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 1 ]] || die "$v=${!v}: not a number >= 1"
done
((BENCH_MANY_IMAGES >= 2 * MANY_SMALL)) || die "BENCH_MANY_IMAGES must be >= $((2 * MANY_SMALL))"
MANY_GEN_ARGS=(--images "$BENCH_MANY_IMAGES" --blobs "$BENCH_MANY_BLOBS" --total-mb "$BENCH_MANY_MB")
MANY_DESC="$BENCH_MANY_IMAGES images (every 30 the same mix: half multi-arch indexes, 10 base chains of 3 layers, 5 runtimes of 2, 1 to 50 own layers each) over about $BENCH_MANY_BLOBS distinct blobs, $BENCH_MANY_MB MiB of incompressible layer data"

# many_fd ID: record the fdwatch numbers of row ID (its FD_* file)
many_fd() {
	local f=$LOGDIR/$SET.$1.fd FD_PEAK= FD_TABLE= FD_TABLE_START= FD_SAMPLES= FD_KINDS=
	[[ -s $f ]] || return 0
	eval "$(cat "$f")"
	fact "fd_peak_$1" "$FD_PEAK"
	fact "fd_table_$1" "$FD_TABLE"
	fact "fd_table_start_$1" "$FD_TABLE_START"
	fact "fd_samples_$1" "$FD_SAMPLES"
	fact "fd_kinds_$1" "$FD_KINDS"
}

# many_ci_lines ID: the timestamped progress lines in row ID's log (stdout
# and stderr of a pipe, as in CI): all of them, the tasks started, and the
# lines in between (a task's "N / M (P%)" while it runs)
many_ci_lines() {
	local ts='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z '
	fact "ci_lines_$1" "$(grep -Ec "$ts" "$MLOG" || true)"
	fact "ci_tasks_$1" "$(grep -Ec "$ts.*: started, " "$MLOG" || true)"
	fact "ci_running_$1" "$(grep -Ec "$ts.* \([0-9]+%\)" "$MLOG" || true)"
	fact "ci_wall_$1" "$WALL"
}

many_rows() {
	local d=$W/out/many n l0 g i run
	local small=("${REFS[@]:0:MANY_SMALL}")
	fact small "$MANY_SMALL"
	for ((run = 1; run <= BENCH_RUNS; run++)); do
		log "---- set many ($N references, $((DISTINCT_BYTES >> 20)) MiB distinct), run $run of $BENCH_RUNS"
		rm -rf "$d"
		spec "$d/s$N" bench.tar "${REFS[@]}"
		spec "$d/s$MANY_SMALL" bench.tar "${small[@]}"
		for n in "$MANY_SMALL" "$N"; do
			l0=$(($(reglines) + 1))
			measure "lock-$n" "$run" "$TOOL" fdwatch --out "$LOGDIR/$SET.lock-$n.fd" -- "$AIRGAP_BUNDLE" lock "$d/s$n/bundle.toml"
			record "lock-$n" "$run" "airgap-bundle lock, $n images" "airgap-bundle lock bundle.toml  # $n tags, no lockfile" \
				proc "output: the lockfile" --noinspect "$d/s$n/bundle.lock"
			if ((run == 1)); then
				many_fd "lock-$n"
				many_ci_lines "lock-$n"
				eval "$("$TOOL" reqs --log "$W/registry/registry.log" --from "$l0" --refs "$W/refs-$SET.json")"
				fact "req_lock_${n}_all" "$REQ_ALL"
				fact "req_lock_${n}_manifest" "$REQ_MANIFEST"
				fact "req_lock_${n}_blob_get" "$REQ_BLOB_GET"
			fi
		done
		# 300 first: the generator's deleted upload files make file
		# creation slower for a while on some file systems (see README)
		for n in "$N" "$MANY_SMALL"; do
			[[ -f $d/s$n/bundle.lock ]] || continue
			l0=$(($(reglines) + 1))
			measure "build-$n" "$run" "$TOOL" fdwatch --out "$LOGDIR/$SET.build-$n.fd" -- "$AIRGAP_BUNDLE" build "$d/s$n/bundle.toml" --cache-dir "$d/cache$n" --output "$d/out$n"
			local inspect=--noinspect
			((n == N)) && inspect=
			record "build-$n" "$run" "airgap-bundle build, $n images (cold cache)" \
				"airgap-bundle build bundle.toml --cache-dir EMPTY --output DIR  # $n images, lockfile of the lock row" \
				proc "empty cache, lockfile: fetch + write" $inspect "$d/out$n/bench.tar"
			if ((run == 1)); then
				many_fd "build-$n"
				many_ci_lines "build-$n"
				eval "$("$TOOL" reqs --log "$W/registry/registry.log" --from "$l0" --refs "$W/refs-$SET.json")"
				fact "req_build_${n}_all" "$REQ_ALL"
				fact "req_build_${n}_manifest" "$REQ_MANIFEST"
				fact "req_build_${n}_blob_get" "$REQ_BLOB_GET"
			fi
		done
		((run == BENCH_RUNS)) || continue
		[[ -f $d/out$N/bench.tar ]] || break
		# the build that locks first (no lockfile): it downloads the layers
		# of the images resolved while it resolves the others
		spec "$d/first" bench.tar "${REFS[@]}"
		measure "build-first-$N" "$run" "$TOOL" fdwatch --out "$LOGDIR/$SET.build-first-$N.fd" -- "$AIRGAP_BUNDLE" build "$d/first/bundle.toml" --cache-dir "$d/first/cache" --output "$d/first/out"
		record "build-first-$N" "$run" "airgap-bundle build, $N images, no lockfile (locks first)" \
			"airgap-bundle build bundle.toml --cache-dir EMPTY --output DIR  # no lockfile yet" \
			proc "empty cache, no lockfile: resolve + fetch + write" --noinspect "$d/first/out/bench.tar"
		many_fd "build-first-$N"
		rm -rf "$d/first"
		# lock --check and verify of every image: neither needs the registry
		l0=$(($(reglines) + 1))
		measure check "$run" "$AIRGAP_BUNDLE" lock --check "$d/s$N/bundle.toml"
		record check "$run" "airgap-bundle lock --check, $N images" "airgap-bundle lock --check bundle.toml" \
			proc "the lockfile against the spec; no registry" --noinspect "$d/s$N/bundle.lock"
		eval "$("$TOOL" reqs --log "$W/registry/registry.log" --from "$l0" --refs "$W/refs-$SET.json" --dump "$LOGDIR/many.check.requests")"
		fact req_check_rc "$RC"
		fact req_check_all "$REQ_ALL"
		l0=$(($(reglines) + 1))
		measure verify "$run" "$AIRGAP_BUNDLE" verify "$d/s$N/bundle.toml" --output "$d/out$N"
		record verify "$run" "airgap-bundle verify, $N images" "airgap-bundle verify bundle.toml --output DIR" \
			proc "every blob of the archive hashed, every image against the lockfile" --noinspect "$d/out$N/bench.tar"
		eval "$("$TOOL" reqs --log "$W/registry/registry.log" --from "$l0" --refs "$W/refs-$SET.json" --dump "$LOGDIR/many.verify.requests")"
		fact req_verify_rc "$RC"
		fact req_verify_all "$REQ_ALL"
		# the progress display on a terminal: the small spec as 10 groups,
		# cold (so that it lasts a few redraws), on a 40-row pty
		many_terminal "$d" "${small[@]}"
	done
	want floor && run_floor 1
	[[ $BENCH_KEEP == 1 ]] || rm -rf "$d"
}

# many_terminal DIR REF...: a cold build of REFs as 10 groups under
# script(1): the most lines one redraw covered (ESC [ n A), and how many
# redraws there were. Locked first (the lock rows' lockfiles have one
# group), so that the build itself downloads.
many_terminal() {
	local d=$1 groups=10 g i per most refs
	shift
	refs=("$@")
	command -v script >/dev/null || return 0
	per=$((${#refs[@]} / groups))
	mkdir -p "$d/tty"
	{
		echo 'platforms = ["linux/amd64"]'
		echo "registries.\"$REG\" = { insecure = true }"
		for ((g = 0; g < groups; g++)); do
			printf '\n[[group]]\nname = "g%02d"\narchive = "g%02d.tar"\nimages = [\n' "$g" "$g"
			for ((i = g * per; i < (g + 1) * per; i++)); do printf '  "%s",\n' "${refs[i]}"; done
			echo ']'
		done
	} >"$d/tty/bundle.toml"
	"$AIRGAP_BUNDLE" lock "$d/tty/bundle.toml" >"$LOGDIR/many.tty-lock.log" 2>&1 || return 0
	script -qfec "stty cols 120 rows 40; $AIRGAP_BUNDLE build --cache-dir $d/tty/cache --output $d/tty/out $d/tty/bundle.toml" /dev/null \
		>"$LOGDIR/many.tty.screen" 2>&1 || { log "the pty build failed (see $LOGDIR/many.tty.screen)"; return 0; }
	# each redraw moves the cursor up over the lines it redraws: ESC [ n A
	most=$({ grep -ao $'\x1b\\[[0-9]*A' "$LOGDIR/many.tty.screen" || true; } | tr -dc '0-9\n' | sort -n | tail -n 1)
	fact tty_groups "$groups"
	fact tty_most_lines "${most:-0}"
	fact tty_redraws "$({ grep -ao $'\x1b\\[[0-9]*A' "$LOGDIR/many.tty.screen" || true; } | wc -l)"
	fact tty_rows 40
	rm -rf "$d/tty"
}
