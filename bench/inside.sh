# shellcheck shell=bash
# Issue 20 part 3: the inside of the gap, measured. Sourced by run.sh, whose
# helpers (measure, record, fact, log, start_daemons, daemons) it uses.
#
#   push:    airgap-bundle push of the cold row's archive into an empty
#            target registry, then again (nothing to send); peers: crane
#            copy registry to registry, skopeo copy docker-archive: per image
#   serve:   crane pull of every image from airgap-bundle serve of the
#            archive, against crane pull from the registry holding them
#   import:  a k3s node's import (containerd 2.x, k3s's Import call, built
#            from e2e/cmd/k3simport) of the archive as .tar, .tar.gz and
#            .tar.zst, into a fresh containerd each time

TARGET= TARGET_PID=

# start_target: a second docker-registry, the registry inside the gap.
start_target() {
	[[ -n $TARGET ]] && return 0
	start_registry_in "$W/target" || { log "the target registry did not start"; return 1; }
	TARGET=$STARTED_REG TARGET_PID=$STARTED_PID
}

stop_target() {
	[[ -n $TARGET_PID ]] && stop_pid docker-registry "$TARGET_PID" "$REGISTRY_BIN"
	TARGET_PID= TARGET=
}

# inside_rows DIR: the push and serve rows for the archive DIR/bench.tar,
# and its import on a node.
inside_rows() {
	local a=$1/bench.tar
	[[ -f $a ]] || { log "inside rows skipped: no archive $a"; return; }
	if start_target; then
		push_rows "$a"
	fi
	serve_rows "$a"
	node_import tar "$a"
}

push_rows() {
	local a=$1 ref path
	# The set's indexes list an arm64 child the amd64 archive lacks: pushed
	# as filtered indexes (docs/push.md, partial indexes).
	measure ab-push 1 "$AIRGAP_BUNDLE" push --insecure --partial-index filtered "$a" --to "$TARGET/ab"
	record ab-push 1 "airgap-bundle push (into an empty registry)" "airgap-bundle push --insecure --partial-index filtered bench.tar --to TARGET/ab" \
		proc "the cold row's archive, into a fresh repository prefix" --noinspect
	measure ab-push2 1 "$AIRGAP_BUNDLE" push --insecure --partial-index filtered "$a" --to "$TARGET/ab"
	record ab-push2 1 "airgap-bundle push again (unchanged archive)" "airgap-bundle push --insecure --partial-index filtered bench.tar --to TARGET/ab  # 2nd time" \
		proc "every manifest already there: headers read, nothing sent" --noinspect
	fact push2_headers_only "$(grep -c 'nothing pushed' "$MLOG" || true)"
	if want crane && [[ -x $CRANE_BIN ]]; then
		{
			echo 'set -e'
			for ref in "${REFS[@]}"; do
				path=${ref#*/}
				echo "\"$CRANE_BIN\" copy --insecure \"$ref\" \"$TARGET/crane/$path\""
			done
		} >"$W/cmds/crane-copy.sh"
		measure cr-copy 1 bash "$W/cmds/crane-copy.sh"
		record cr-copy 1 "crane copy ×$N (registry to registry)" "crane copy REF TARGET/crane/PATH  # each image" \
			proc "the peer of push: from the source registry, not an archive" --noinspect
	fi
	if want skopeo; then
		{
			echo 'set -e'
			for ref in "${REFS[@]}"; do
				path=${ref#*/}
				echo "\"$SKOPEO_BIN\" copy -q --all --preserve-digests --dest-tls-verify=false \"docker-archive:$a:$ref\" \"docker://$TARGET/skopeo/$path\" 2>/dev/null || \"$SKOPEO_BIN\" copy -q --dest-tls-verify=false \"docker-archive:$a:$ref\" \"docker://$TARGET/skopeo/$path\""
			done
		} >"$W/cmds/skopeo-push.sh"
		measure sk-push 1 bash "$W/cmds/skopeo-push.sh"
		record sk-push 1 "skopeo copy docker-archive: ×$N" "skopeo copy docker-archive:bench.tar:REF docker://TARGET/skopeo/PATH  # each image" \
			proc "the peer of push from an archive: one image per command" --noinspect
	fi
}

serve_rows() {
	local a=$1 port pid i ref path host out=$W/out/$SET-serve
	[[ -x $CRANE_BIN ]] || { log "serve rows skipped: no crane"; return; }
	port=$("$TOOL" freeport)
	"$AIRGAP_BUNDLE" serve --listen "127.0.0.1:$port" "$a" >"$LOGDIR/$SET.serve.log" 2>&1 &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		curl -sf --noproxy '*' -o /dev/null "http://127.0.0.1:$port/v2/" && break
		sleep 0.1
	done
	host=${REG/:/_}
	mkdir -p "$out"
	{
		echo 'set -e'
		for ref in "${REFS[@]}"; do
			path=${ref#*/}
			echo "\"$CRANE_BIN\" pull --insecure --platform linux/amd64 --format oci \"127.0.0.1:$port/$host/$path\" \"$out/s\""
		done
	} >"$W/cmds/serve-pull.sh"
	{
		echo 'set -e'
		for ref in "${REFS[@]}"; do
			echo "\"$CRANE_BIN\" pull --insecure --platform linux/amd64 --format oci \"$ref\" \"$out/r\""
		done
	} >"$W/cmds/reg-pull.sh"
	measure serve-pull 1 bash "$W/cmds/serve-pull.sh"
	local serve_kib
	serve_kib=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
	RSS=$serve_kib record serve-pull 1 "crane pull ×$N from airgap-bundle serve" "crane pull HOST/PATH  # serve bench.tar" \
		serve "RSS: the serve process's peak" --noinspect
	rm -rf "$out"
	mkdir -p "$out"
	measure reg-pull 1 bash "$W/cmds/reg-pull.sh"
	record reg-pull 1 "crane pull ×$N from docker-registry" "crane pull REF  # the registry holding the same images" \
		proc "the peer of serve" --noinspect
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true # its TERM status
	rm -rf "$out"
}

# node_import FORMAT FILE: k3s's import of FILE into a fresh containerd 2.x.
node_import() {
	local format=$1 f=$2
	[[ -n $SKIP_REASON_docker ]] && return 0
	if [[ ! -x $W/bin/k3simport ]]; then
		(cd "$ROOT/e2e" && CGO_ENABLED=0 go build -o "$W/bin/k3simport" ./cmd/k3simport) >>"$LOGDIR/k3simport-build.log" 2>&1 ||
			{ log "k3simport did not build (see $LOGDIR/k3simport-build.log)"; return 0; }
	fi
	daemons clean >>"$LOGDIR/daemons.log" 2>&1 || true
	start_daemons || { log "import row skipped: the daemons did not start"; return 0; }
	measure "import-$format" 1 "$W/bin/k3simport" --address "$CONTAINERD2_SOCK" --no-k3s-tags --archive "$f"
	record "import-$format" 1 "k3s import (containerd 2.x) of .$format" "k3simport --archive bench.$format  # Import(WithAllPlatforms, WithSkipMissing)" \
		na "a fresh containerd each time; the archive as airgap-bundle wrote it" --noinspect "$f"
}
