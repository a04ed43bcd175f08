#!/usr/bin/env bash
# e2e/daemons.sh — start/stop the real image consumers used by the e2e tests.
#
#   bash e2e/daemons.sh start    # containerd 1.6 (Debian), containerd 2.x (built once), dockerd 20.10
#   bash e2e/daemons.sh stop     # kill them by PID, unmount everything under $E2E_DIR
#   bash e2e/daemons.sh status   # exit 0 iff all three answer on their sockets
#   bash e2e/daemons.sh env      # print the socket paths as shell assignments
#   bash e2e/daemons.sh clean    # stop, then delete all state except the cached binaries
#
# Everything lives under $E2E_DIR (default /tmp/airgap-e2e); every daemon listens on
# its own unix socket there (no TCP, no iptables, no bridge), so it never collides
# with a host containerd/dockerd. Must run as root.
#
# Env: E2E_DIR, CONTAINERD2_VERSION (pinned below), E2E_FORCE_TMPFS=1 (put daemon
# state on a tmpfs even if overlayfs works on $E2E_DIR's filesystem; the choice is
# remembered in $E2E_DIR/state-base until `clean`), E2E_DOCKER_STORAGE_DRIVER
# (default overlay2), READY_TIMEOUT (seconds, default 60).
set -euo pipefail

E2E_DIR=${E2E_DIR:-/tmp/airgap-e2e}
# Pinned containerd 2.x (newest 2.x on the module proxy when this was written).
CONTAINERD2_VERSION=${CONTAINERD2_VERSION:-v2.4.2}
CONTAINERD16_BIN=${CONTAINERD16_BIN:-/usr/bin/containerd}
CTR16_BIN=${CTR16_BIN:-/usr/bin/ctr}
DOCKERD_BIN=${DOCKERD_BIN:-/usr/sbin/dockerd}
DOCKER_BIN=${DOCKER_BIN:-/usr/bin/docker}
BIN_DIR=$E2E_DIR/bin
CTR2_BIN=$BIN_DIR/ctr
CONTAINERD2_BIN=$BIN_DIR/containerd
READY_TIMEOUT=${READY_TIMEOUT:-60}

CD16_DIR=$E2E_DIR/containerd16
CD2_DIR=$E2E_DIR/containerd2
DOCKER_DIR=$E2E_DIR/docker
CD16_SOCK=$CD16_DIR/containerd.sock
CD2_SOCK=$CD2_DIR/containerd.sock
DOCKER_SOCK=$DOCKER_DIR/docker.sock

log() { echo "daemons.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# STATE_BASE holds the daemons' roots (content, snapshots, overlay2). It is $E2E_DIR
# itself when overlayfs works there, else a tmpfs mounted at $E2E_DIR/tmpfs.
state_base() {
	if [[ -f $E2E_DIR/state-base ]]; then cat "$E2E_DIR/state-base"; else echo "$E2E_DIR"; fi
}

# overlay_works DIR: can the kernel mount an overlay whose upper/work dirs are in DIR?
overlay_works() {
	local d=$1/.overlay-probe rc=0
	rm -rf "$d"
	mkdir -p "$d"/{lower,upper,work,merged}
	echo x >"$d/lower/f"
	if mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>/dev/null; then
		# a whiteout (char 0:0) must be creatable too: that is what the snapshotter relies on
		rm -f "$d/merged/f" || rc=1
		[[ -e $d/merged/f ]] && rc=1
		umount "$d/merged" || rc=1
	else
		rc=1
	fi
	rm -rf "$d"
	return $rc
}

choose_state_base() {
	if [[ -f $E2E_DIR/state-base ]]; then
		local b; b=$(cat "$E2E_DIR/state-base")
		if [[ $b == "$E2E_DIR/tmpfs" ]] && ! mountpoint -q "$b"; then
			mkdir -p "$b" && mount -t tmpfs -o mode=0755 tmpfs "$b"
		fi
		return
	fi
	if [[ ${E2E_FORCE_TMPFS:-0} != 1 ]] && overlay_works "$E2E_DIR"; then
		log "overlayfs works directly on $(df --output=fstype "$E2E_DIR" | tail -1) under $E2E_DIR"
		echo "$E2E_DIR" >"$E2E_DIR/state-base"
		return
	fi
	if [[ ${E2E_FORCE_TMPFS:-0} == 1 ]]; then
		log "E2E_FORCE_TMPFS=1: putting daemon state on a tmpfs at $E2E_DIR/tmpfs"
	else
		log "overlayfs refused on $E2E_DIR; putting daemon state on a tmpfs at $E2E_DIR/tmpfs"
	fi
	mkdir -p "$E2E_DIR/tmpfs"
	mountpoint -q "$E2E_DIR/tmpfs" || mount -t tmpfs -o mode=0755 tmpfs "$E2E_DIR/tmpfs"
	overlay_works "$E2E_DIR/tmpfs" || die "overlayfs does not work on tmpfs either"
	echo "$E2E_DIR/tmpfs" >"$E2E_DIR/state-base"
}

# pid_alive PIDFILE EXE: the pid in PIDFILE is running EXE (guards against PID reuse).
pid_alive() {
	local pidfile=$1 exe=$2 pid
	[[ -s $pidfile ]] || return 1
	pid=$(cat "$pidfile")
	[[ -d /proc/$pid ]] || return 1
	[[ $(readlink -f "/proc/$pid/exe" 2>/dev/null) == "$(readlink -f "$exe")" ]]
}

cd16_ready() { "$CTR16_BIN" --address "$CD16_SOCK" --timeout 2s version >/dev/null 2>&1; }
cd2_ready() { "$CTR2_BIN" --address "$CD2_SOCK" --timeout 2s version >/dev/null 2>&1; }
docker_ready() { DOCKER_CONFIG=$DOCKER_DIR/client "$DOCKER_BIN" -H "unix://$DOCKER_SOCK" version >/dev/null 2>&1; }

wait_ready() { # NAME CHECKFN PIDFILE EXE LOG
	local name=$1 check=$2 pidfile=$3 exe=$4 logf=$5 i
	for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
		if $check; then log "$name ready (pid $(cat "$pidfile"))"; return 0; fi
		if ! pid_alive "$pidfile" "$exe"; then
			tail -n 30 "$logf" >&2 || true
			die "$name exited during startup; log: $logf"
		fi
		sleep 0.2
	done
	tail -n 30 "$logf" >&2 || true
	die "$name not ready after ${READY_TIMEOUT}s; log: $logf"
}

# spawn PIDFILE LOG CMD...: start CMD detached (own session, no inherited fds).
spawn() {
	local pidfile=$1 logf=$2; shift 2
	setsid "$@" </dev/null >>"$logf" 2>&1 &
	echo $! >"$pidfile"
}

build_containerd2() {
	if [[ -x $CONTAINERD2_BIN && -x $CTR2_BIN && -f $BIN_DIR/containerd2.version &&
		$(cat "$BIN_DIR/containerd2.version") == "$CONTAINERD2_VERSION" ]]; then
		return
	fi
	mkdir -p "$BIN_DIR"
	log "building containerd $CONTAINERD2_VERSION into $BIN_DIR (one-off, ~1.5 min warm, longer cold)"
	local t0=$SECONDS
	# run outside any module so the e2e/root go.mod never matters
	(cd / && GOBIN=$BIN_DIR GOFLAGS=-mod=mod CGO_ENABLED=${CGO_ENABLED:-1} go install \
		"github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD2_VERSION" \
		"github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD2_VERSION") ||
		die "go install containerd $CONTAINERD2_VERSION failed"
	echo "$CONTAINERD2_VERSION" >"$BIN_DIR/containerd2.version"
	log "built containerd $CONTAINERD2_VERSION in $((SECONDS - t0))s"
}

start_containerd16() {
	local base; base=$(state_base)
	if pid_alive "$CD16_DIR/pid" "$CONTAINERD16_BIN" && cd16_ready; then log "containerd 1.6 already running"; return; fi
	[[ -x $CONTAINERD16_BIN ]] || die "$CONTAINERD16_BIN missing (apt-get install containerd)"
	mkdir -p "$CD16_DIR" "$base/containerd16/root" "$base/containerd16/state" "$base/containerd16/opt" "$base/containerd16/tmp"
	rm -f "$CD16_SOCK" "$CD16_SOCK.ttrpc"
	cat >"$CD16_DIR/config.toml" <<CFG
version = 2
root = "$base/containerd16/root"
state = "$base/containerd16/state"
temp = "$base/containerd16/tmp"
imports = []
# CRI is not needed for import/unpack; overlayfs is a plain snapshotter plugin.
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$CD16_SOCK"
[ttrpc]
  address = "$CD16_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$base/containerd16/opt"
CFG
	spawn "$CD16_DIR/pid" "$E2E_DIR/containerd16.log" "$CONTAINERD16_BIN" --config "$CD16_DIR/config.toml"
	wait_ready "containerd 1.6" cd16_ready "$CD16_DIR/pid" "$CONTAINERD16_BIN" "$E2E_DIR/containerd16.log"
}

start_containerd2() {
	local base; base=$(state_base)
	if pid_alive "$CD2_DIR/pid" "$CONTAINERD2_BIN" && cd2_ready; then log "containerd 2 already running"; return; fi
	build_containerd2
	mkdir -p "$CD2_DIR" "$base/containerd2/root" "$base/containerd2/state" "$base/containerd2/opt" "$base/containerd2/tmp"
	rm -f "$CD2_SOCK" "$CD2_SOCK.ttrpc"
	cat >"$CD2_DIR/config.toml" <<CFG
version = 3
root = "$base/containerd2/root"
state = "$base/containerd2/state"
temp = "$base/containerd2/tmp"
imports = []
# No CRI (not needed to import/unpack), no NRI (its socket is host-global: /var/run/nri).
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs"]

[grpc]
  address = "$CD2_SOCK"
[ttrpc]
  address = "$CD2_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$base/containerd2/opt"
  [plugins."io.containerd.image-verifier.v1.bindir"]
    bin_dir = "$base/containerd2/opt/image-verifier/bin"
CFG
	spawn "$CD2_DIR/pid" "$E2E_DIR/containerd2.log" "$CONTAINERD2_BIN" --config "$CD2_DIR/config.toml"
	wait_ready "containerd $CONTAINERD2_VERSION" cd2_ready "$CD2_DIR/pid" "$CONTAINERD2_BIN" "$E2E_DIR/containerd2.log"
}

start_dockerd() {
	local base; base=$(state_base)
	if pid_alive "$DOCKER_DIR/pid" "$DOCKERD_BIN" && docker_ready; then log "dockerd already running"; return; fi
	[[ -x $DOCKERD_BIN ]] || die "$DOCKERD_BIN missing (apt-get install docker.io)"
	mkdir -p "$DOCKER_DIR/client" "$base/docker/root" "$base/docker/exec"
	rm -f "$DOCKER_SOCK" "$DOCKER_DIR/docker.pid"
	echo '{}' >"$DOCKER_DIR/daemon.json" # never read the host's /etc/docker/daemon.json
	# dockerd 20.10 needs a containerd for containers (not for load/inspect); give it
	# the 1.6 one (namespace "moby") instead of letting it spawn a private one.
	spawn "$DOCKER_DIR/pid" "$E2E_DIR/dockerd.log" "$DOCKERD_BIN" \
		--config-file "$DOCKER_DIR/daemon.json" \
		-H "unix://$DOCKER_SOCK" \
		--data-root "$base/docker/root" \
		--exec-root "$base/docker/exec" \
		--pidfile "$DOCKER_DIR/docker.pid" \
		--containerd "$CD16_SOCK" \
		--storage-driver "${E2E_DOCKER_STORAGE_DRIVER:-overlay2}" \
		--iptables=false --ip6tables=false --bridge=none --ip-masq=false --ip-forward=false \
		--userland-proxy=false --group root
	wait_ready "dockerd" docker_ready "$DOCKER_DIR/pid" "$DOCKERD_BIN" "$E2E_DIR/dockerd.log"
}

stop_one() { # NAME PIDFILE EXE
	local name=$1 pidfile=$2 exe=$3 pid i
	if ! pid_alive "$pidfile" "$exe"; then rm -f "$pidfile"; return; fi
	pid=$(cat "$pidfile")
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
	if [[ -d /proc/$pid ]]; then log "$name did not exit; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.3; fi
	rm -f "$pidfile"
}

# unmount everything below $E2E_DIR (deepest first); the tmpfs last.
umount_all() {
	local mp
	awk -v p="$E2E_DIR/" '{ mp=$5; gsub(/\\040/, " ", mp); if (index(mp, p) == 1) print mp }' /proc/self/mountinfo |
		sort -r | while read -r mp; do
		[[ $mp == "$E2E_DIR/tmpfs" ]] && continue
		umount -R "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "could not unmount $mp"
	done
}

cmd_start() {
	[[ $(id -u) == 0 ]] || die "must run as root"
	mkdir -p "$E2E_DIR"
	choose_state_base
	build_containerd2 # before anything starts, so a slow build can't time out a daemon
	start_containerd16
	start_containerd2
	start_dockerd
}

cmd_stop() {
	stop_one dockerd "$DOCKER_DIR/pid" "$DOCKERD_BIN"
	stop_one "containerd 2" "$CD2_DIR/pid" "$CONTAINERD2_BIN"
	stop_one "containerd 1.6" "$CD16_DIR/pid" "$CONTAINERD16_BIN"
	[[ -d $E2E_DIR ]] && umount_all
	return 0
}

cmd_status() {
	local rc=0
	if pid_alive "$CD16_DIR/pid" "$CONTAINERD16_BIN" && cd16_ready; then echo "containerd16 up $CD16_SOCK"; else echo "containerd16 down"; rc=1; fi
	if [[ -x $CTR2_BIN ]] && pid_alive "$CD2_DIR/pid" "$CONTAINERD2_BIN" && cd2_ready; then echo "containerd2 up $CD2_SOCK"; else echo "containerd2 down"; rc=1; fi
	if pid_alive "$DOCKER_DIR/pid" "$DOCKERD_BIN" && docker_ready; then echo "docker up $DOCKER_SOCK"; else echo "docker down"; rc=1; fi
	return $rc
}

cmd_clean() {
	cmd_stop
	local base; base=$(state_base)
	rm -rf "$CD16_DIR" "$CD2_DIR" "$DOCKER_DIR" "$E2E_DIR"/podman "$base"/podman "$E2E_DIR"/*.log
	[[ $base != "$E2E_DIR" ]] && { umount "$base" 2>/dev/null || true; rmdir "$base" 2>/dev/null || true; }
	rm -rf "$E2E_DIR/containerd16" "$E2E_DIR/containerd2" "$E2E_DIR/docker" "$E2E_DIR/state-base"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
clean) cmd_clean ;;
env)
	echo "E2E_DIR=$E2E_DIR"
	echo "CONTAINERD16_SOCK=$CD16_SOCK"
	echo "CONTAINERD2_SOCK=$CD2_SOCK"
	echo "DOCKER_SOCK=$DOCKER_SOCK"
	echo "CTR16=$CTR16_BIN"
	echo "CTR2=$CTR2_BIN"
	echo "CONTAINERD2_VERSION=$CONTAINERD2_VERSION"
	;;
*) echo "usage: $0 start|stop|status|clean|env" >&2; exit 2 ;;
esac
