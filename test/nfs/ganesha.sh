#!/bin/sh
# ganesha.sh ensure|release|start|stop|status|restart — the project's test NFS server.
#
# Runs NFS-Ganesha (userspace, because this kernel has no nfsd) serving
# $STOWAGE_NFS_ROOT/export over NFSv3 and NFSv4 at the pseudo path /export,
# plus rpcbind, which NFSv3 clients need to find the MOUNT and NFS ports.
# Two more exports exist for error tests: /readonly (read-only) and /small
# (a 4 MiB tmpfs, to fill up; only when this user may mount tmpfs).
#
# Environment:
#   STOWAGE_NFS_ROOT  state directory (default /tmp/stowage-nfs): export/,
#                     ganesha.conf, ganesha.log, pid files, recovery/
#   STOWAGE_NFS_BIND  address to serve on (default 127.0.0.1); the e2e cluster
#                     passes the host IP so that pods can reach the server;
#                     0.0.0.0 serves every address
#   STOWAGE_NFS_PORT, STOWAGE_NFS_MNT_PORT  (default 2049, 20048)
#
# `ensure` is what every tier calls: it reuses a server that already serves
# what was asked (this root's, or another run's: any address and directory
# unless STOWAGE_NFS_BIND / STOWAGE_NFS_ROOT are set, then those), else starts
# one, and prints on stdout, as shell assignments, what to use:
#   STOWAGE_NFS_SERVER, STOWAGE_NFS_SHARE (/export), STOWAGE_NFS_EXPORT_DIR
#   (the directory behind it), STOWAGE_NFS_SMALL_SHARE (/small, or empty),
#   STOWAGE_NFS_ROOT and STOWAGE_NFS_BIND (of the server used, for
#   in-mount-ns.sh and stop), STOWAGE_NFS_STARTED (1 if ensure started it).
# So a caller does
#   set -a; eval "$(test/nfs/ganesha.sh ensure)"; set +a
#   trap 'test/nfs/ganesha.sh release' EXIT   # stops it only if STARTED=1
# `start` prints the export directory on stdout (progress goes to stderr).
# Starting when already running is a no-op; `stop` stops only what this
# script started (an rpcbind that was already running is left alone).
set -eu

ROOT=${STOWAGE_NFS_ROOT:-/tmp/stowage-nfs}
BIND=${STOWAGE_NFS_BIND:-127.0.0.1}
NFS_PORT=${STOWAGE_NFS_PORT:-2049}
MNT_PORT=${STOWAGE_NFS_MNT_PORT:-20048}
PSEUDO=/export
EXPORT_DIR=$ROOT/export
SMALL_DIR=$ROOT/small
GANESHA_PID=$ROOT/ganesha.pid
RPCBIND_PID=$ROOT/rpcbind.pid

# The address to probe: a wildcard bind still answers on loopback.
case "$BIND" in 0.0.0.0|::) PROBE=127.0.0.1 ;; *) PROBE=$BIND ;; esac

say() { echo "ganesha.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# alive PID NAME: true if PID runs a process called NAME. Checked through /proc
# because a process we started but nobody reaped lingers as a zombie, which
# `kill -0` would call alive, and because a PID can be reused.
alive() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	comm=${stat#*(}; comm=${comm%%)*}
	state=${stat##*) }; state=${state%% *}
	[ "$state" != Z ] && [ "$comm" = "$2" ]
}

pid_of() { if [ -r "$1" ]; then cat "$1" 2>/dev/null || true; fi; }

# Live processes named $1 (zombies excluded).
live_pids() {
	for p in $(pgrep -x "$1" 2>/dev/null || true); do
		if alive "$p" "$1"; then echo "$p"; fi
	done
}

# port_in_use PORT: something listens on PORT at our bind address or on a
# wildcard. Servers on other addresses may coexist (the test cluster's, on the
# host IP, next to a test run's on 127.0.0.1): both use the same fixed ports,
# so rpcbind's answer is right for either.
port_in_use() {
	ss -Hltn "sport = :$1" 2>/dev/null | awk '{print $4}' | sed 's/^\[::ffff:\(.*\)\]/\1/; s/:[0-9]*$//' |
		grep -qxE "$BIND|0\.0\.0\.0|\*|\[::\]|::"
}

# answers: the export lists over NFSv3, which needs rpcbind and MOUNT too.
answers() { timeout 5 nfs-ls "nfs://$PROBE$PSEUDO" >/dev/null 2>&1; }
answers_v4() { timeout 5 nfs-ls "nfs://$PROBE$PSEUDO?version=4" >/dev/null 2>&1; }

plugins_dir() {
	for d in /usr/lib/*/ganesha /usr/lib64/ganesha /usr/lib/ganesha; do
		if [ -e "$d/libfsalvfs.so" ]; then echo "$d"; return; fi
	done
	die "cannot find the ganesha VFS plugin (libfsalvfs.so); install nfs-ganesha-vfs"
}

write_config() {
	cat >"$ROOT/ganesha.conf" <<EOF
# Written by test/nfs/ganesha.sh; edits are lost on the next start.
NFS_CORE_PARAM {
	Bind_Addr = $BIND;
	NFS_Port = $NFS_PORT;
	MNT_Port = $MNT_PORT;
	Protocols = 3, 4;
	Enable_UDP = false;
	Enable_NLM = false;
	Enable_RQUOTA = false;
	# NFSv3 clients mount $PSEUDO too, not the directory behind it.
	Mount_Path_Pseudo = true;
	Plugins_Dir = $(plugins_dir);
}
NFS_KRB5 { Active_krb5 = false; }
NFSV4 {
	# No 90 s grace period after a start: tests start it fresh every time.
	Graceless = true;
	RecoveryBackend = fs;
	RecoveryRoot = $ROOT/recovery;
	# No idmapd domain here: send uid/gid as numbers.
	Only_Numeric_Owners = true;
}
EXPORT {
	Export_Id = 1;
	Path = $EXPORT_DIR;
	Pseudo = $PSEUDO;
	Access_Type = RW;
	# The Stowage controller creates volume directories as root.
	Squash = No_Root_Squash;
	Protocols = 3, 4;
	Transports = TCP;
	SecType = sys;
	FSAL { Name = VFS; }
}
EXPORT {
	Export_Id = 2;
	Path = $ROOT/readonly;
	Pseudo = /readonly;
	Access_Type = RO;
	Squash = No_Root_Squash;
	Protocols = 3, 4;
	Transports = TCP;
	SecType = sys;
	FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
EOF
	if mountpoint -q "$SMALL_DIR"; then
		cat >>"$ROOT/ganesha.conf" <<EOF
EXPORT {
	Export_Id = 3;
	Path = $SMALL_DIR;
	Pseudo = /small;
	Access_Type = RW;
	Squash = No_Root_Squash;
	Protocols = 3, 4;
	Transports = TCP;
	SecType = sys;
	FSAL { Name = VFS; }
}
EOF
	fi
}

# mount_small mounts the tmpfs behind /small, if this user may.
mount_small() {
	mkdir -p "$SMALL_DIR"
	mountpoint -q "$SMALL_DIR" && return
	mount -t tmpfs -o size=4m,mode=0755 stowage-nfs-small "$SMALL_DIR" 2>/dev/null ||
		say "cannot mount a tmpfs on $SMALL_DIR (not root?); serving without /small"
}

start_rpcbind() {
	if [ -n "$(live_pids rpcbind)" ]; then
		# Another rpcbind (ours from before, or one the system started) already
		# owns port 111; ganesha registers with whichever it is.
		return
	fi
	command -v rpcbind >/dev/null || die "rpcbind not found; apt-get install rpcbind"
	# -f keeps it in the foreground so that we own its PID. (-h 127.0.0.1
	# makes this rpcbind crash, so it listens on every address.)
	setsid rpcbind -f </dev/null >"$ROOT/rpcbind.log" 2>&1 &
	echo $! >"$RPCBIND_PID"
	i=0
	until rpcinfo -p 127.0.0.1 >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -le 50 ] || die "rpcbind did not answer within 5 s; see $ROOT/rpcbind.log"
		alive "$(pid_of "$RPCBIND_PID")" rpcbind || die "rpcbind exited; see $ROOT/rpcbind.log"
		sleep 0.1
	done
}

do_start() {
	mkdir -p "$EXPORT_DIR" "$ROOT/readonly" "$ROOT/recovery"
	if alive "$(pid_of "$GANESHA_PID")" ganesha.nfsd; then
		if answers; then
			say "already running (pid $(pid_of "$GANESHA_PID"))"
			echo "$EXPORT_DIR"
			return
		fi
		# Typically rpcbind died: ganesha registers its ports only at start.
		say "ganesha (pid $(pid_of "$GANESHA_PID")) runs but $PROBE:$PSEUDO does not answer over NFSv3; restarting it"
		do_stop
	fi
	other=$(live_pids ganesha.nfsd)
	if [ -n "$other" ]; then
		die "another ganesha.nfsd is running (pid $other), not started by this script (perhaps by the nfs-ganesha package); stop it with: kill $other"
	fi
	if port_in_use "$NFS_PORT"; then
		die "port $NFS_PORT is already in use by another program; stop it or set STOWAGE_NFS_PORT"
	fi
	command -v ganesha.nfsd >/dev/null || die "ganesha.nfsd not found; apt-get install nfs-ganesha nfs-ganesha-vfs"
	command -v nfs-ls >/dev/null || die "nfs-ls not found; apt-get install libnfs-utils"

	start_rpcbind
	mount_small
	write_config
	: >"$ROOT/ganesha.log"
	setsid ganesha.nfsd -F -f "$ROOT/ganesha.conf" -L "$ROOT/ganesha.log" \
		-p "$ROOT/ganesha.nfsd.pid" </dev/null >"$ROOT/ganesha.out" 2>&1 &
	echo $! >"$GANESHA_PID"
	i=0
	until answers; do
		i=$((i + 1))
		if ! alive "$(pid_of "$GANESHA_PID")" ganesha.nfsd; then
			tail -n 20 "$ROOT/ganesha.log" "$ROOT/ganesha.out" >&2 || true
			die "ganesha.nfsd exited during start; see $ROOT/ganesha.log"
		fi
		[ $i -le 60 ] || die "ganesha did not serve $PROBE:$PSEUDO within 30 s; see $ROOT/ganesha.log"
		sleep 0.5
	done
	say "serving $EXPORT_DIR as $BIND:$PSEUDO (NFSv3+v4, nfs port $NFS_PORT, mount port $MNT_PORT, pid $(pid_of "$GANESHA_PID"))"
	echo "$EXPORT_DIR"
}

# stop_pid FILE NAME: TERM, then KILL after 10 s, the process recorded in FILE.
stop_pid() {
	pid=$(pid_of "$1")
	if alive "$pid" "$2"; then
		kill "$pid" 2>/dev/null || true
		i=0
		while alive "$pid" "$2"; do
			i=$((i + 1))
			if [ $i -gt 100 ]; then
				say "$2 (pid $pid) ignored SIGTERM for 10 s; killing it"
				kill -9 "$pid" 2>/dev/null || true
				break
			fi
			sleep 0.1
		done
		say "stopped $2 (pid $pid)"
	fi
	rm -f "$1"
}

do_stop() {
	stop_pid "$GANESHA_PID" ganesha.nfsd
	rm -f "$ROOT/ganesha.nfsd.pid"
	stop_pid "$RPCBIND_PID" rpcbind
	if mountpoint -q "$SMALL_DIR"; then umount "$SMALL_DIR" || say "cannot unmount $SMALL_DIR"; fi
}

do_status() {
	g=$(pid_of "$GANESHA_PID")
	if alive "$g" ganesha.nfsd; then
		if answers; then
			echo "running: ganesha pid $g serving $EXPORT_DIR as $BIND:$PSEUDO"
			return 0
		fi
		if answers_v4; then
			echo "unhealthy: ganesha pid $g answers NFSv4 but not NFSv3 (is rpcbind running?); run: $0 restart"
		else
			echo "unhealthy: ganesha pid $g runs but $PROBE:$PSEUDO does not answer; see $ROOT/ganesha.log"
		fi
		return 1
	fi
	other=$(live_pids ganesha.nfsd)
	if [ -n "$other" ]; then
		echo "stopped (but another ganesha.nfsd runs: pid $other)"
	else
		echo "stopped"
	fi
	return 3
}

# conf_value CONF KEY: the value of the first "KEY = value;" in a ganesha config.
conf_value() {
	awk -v key="$2" '$1 == key { v = $3; sub(/;$/, "", v); print v; exit }' "$1"
}

# export_of CONF PSEUDO: the directory behind export PSEUDO in a ganesha config.
export_of() {
	awk -v want="$2;" '/^EXPORT/ { path = "" } $1 == "Path" { path = $3; sub(/;$/, "", path) }
		$1 == "Pseudo" && $3 == want { print path; exit }' "$1"
}

# config_of PID: the config file a running ganesha.nfsd was started with (-f).
config_of() {
	conf=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | awk 'prev == "-f" { print; exit } { prev = $0 }')
	[ -n "$conf" ] && [ -r "$conf" ] && echo "$conf"
}

# client_addr BIND: where a client on this machine reaches a server bound to BIND.
client_addr() { case "$1" in 0.0.0.0|::|"") echo 127.0.0.1 ;; *) echo "$1" ;; esac; }

# fits CONF: the server of CONF serves /export the way the caller asked. A
# caller that set STOWAGE_NFS_BIND or STOWAGE_NFS_ROOT (the test cluster does:
# its pods reach the host IP and mount its own directory) gets only that.
fits() {
	dir=$(export_of "$1" "$PSEUDO")
	[ -n "$dir" ] || return 1
	if [ -n "${STOWAGE_NFS_ROOT:-}" ] && [ "$dir" != "$EXPORT_DIR" ]; then return 1; fi
	bind=$(conf_value "$1" Bind_Addr)
	if [ -n "${STOWAGE_NFS_BIND:-}" ]; then
		case "$bind" in "$BIND"|0.0.0.0|::) ;; *) return 1 ;; esac
	fi
	timeout 5 nfs-ls "nfs://$(client_addr "$bind")$PSEUDO" >/dev/null 2>&1
}

# print_env CONF STARTED: the assignments `ensure` promises, for the server of CONF.
print_env() {
	bind=$(conf_value "$1" Bind_Addr)
	dir=$(export_of "$1" "$PSEUDO")
	small=$(export_of "$1" /small)
	if [ -z "$small" ] || ! mountpoint -q "$small"; then small=; else small=/small; fi
	printf "STOWAGE_NFS_SERVER='%s'\n" "$(client_addr "$bind")"
	printf "STOWAGE_NFS_SHARE='%s'\n" "$PSEUDO"
	printf "STOWAGE_NFS_EXPORT_DIR='%s'\n" "$dir"
	printf "STOWAGE_NFS_SMALL_SHARE='%s'\n" "$small"
	printf "STOWAGE_NFS_ROOT='%s'\n" "$(dirname "$dir")"
	printf "STOWAGE_NFS_BIND='%s'\n" "${bind:-0.0.0.0}"
	printf "STOWAGE_NFS_STARTED=%s\n" "$2"
}

do_ensure() {
	ours=$(pid_of "$GANESHA_PID")
	# This root's server first, then any other that fits.
	for pid in $ours $(live_pids ganesha.nfsd); do
		alive "$pid" ganesha.nfsd || continue
		conf=$(config_of "$pid") || continue
		if fits "$conf"; then
			say "reusing the running server (pid $pid, $conf); it stays running"
			print_env "$conf" 0
			return
		fi
	done
	# This root's server runs and answers, but not as asked: restarting it (as
	# start would) could pull it from under another run that uses it.
	if alive "$ours" ganesha.nfsd && [ -r "$ROOT/ganesha.conf" ]; then
		bind=$(conf_value "$ROOT/ganesha.conf" Bind_Addr)
		if timeout 5 nfs-ls "nfs://$(client_addr "$bind")$PSEUDO" >/dev/null 2>&1; then
			die "the server of $ROOT (pid $ours) serves $bind, not $BIND as asked; stop it (STOWAGE_NFS_ROOT=$ROOT $0 stop) or set another STOWAGE_NFS_ROOT"
		fi
	fi
	do_start >/dev/null
	print_env "$ROOT/ganesha.conf" 1
}

# do_release: stop the server if `ensure` started it (STOWAGE_NFS_STARTED=1 in
# the environment, with its STOWAGE_NFS_ROOT), else leave it to its owner.
do_release() {
	if [ "${STOWAGE_NFS_STARTED:-0}" = 1 ]; then
		do_stop
	fi
}

case "${1:-}" in
ensure) do_ensure ;;
release) do_release ;;
start) do_start ;;
stop) do_stop ;;
restart) do_stop; do_start ;;
status) do_status ;;
*) echo "usage: $0 ensure|release|start|stop|restart|status" >&2; exit 2 ;;
esac
