#!/bin/sh
# in-mount-ns.sh CMD [ARG...] — run CMD where `mount -t nfs` works without a
# kernel NFS client: in a private mount namespace whose /sbin/mount.nfs (and
# mount.nfs4) is test/nfs/mount.nfs, with an exports table that maps
#     127.0.0.1:/export, localhost:/export, $STOWAGE_NFS_BIND:/export
# (and /readonly, /small likewise) to the directories test/nfs/ganesha.sh
# serves, so that what a node mounts is what the userspace NFS client of
# the controller wrote. Nothing changes outside the namespace.
#
# Environment: STOWAGE_NFS_ROOT, STOWAGE_NFS_BIND as for ganesha.sh;
# STOWAGE_FAKE_NFS_LOG (default $STOWAGE_NFS_ROOT/mount-calls.log) records
# every mount.nfs call. Needs root (unshare --mount, mount --bind).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${STOWAGE_NFS_ROOT:-/tmp/stowage-nfs}
BIND=${STOWAGE_NFS_BIND:-127.0.0.1}
INSIDE=--stowage-inside-private-mount-ns

die() { echo "in-mount-ns.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }

if [ "$1" != "$INSIDE" ]; then
	mkdir -p "$ROOT/export" "$ROOT/readonly"
	table=$ROOT/fake-nfs-exports
	{
		echo "# Written by test/nfs/in-mount-ns.sh for test/nfs/mount.nfs."
		for server in 127.0.0.1 localhost "$BIND"; do
			echo "$server:/export $ROOT/export"
			echo "$server:/readonly $ROOT/readonly"
			echo "$server:/small $ROOT/small"
		done
	} | awk '!seen[$0]++' >"$table"
	export STOWAGE_FAKE_NFS_EXPORTS="$table"
	export STOWAGE_FAKE_NFS_LOG="${STOWAGE_FAKE_NFS_LOG:-$ROOT/mount-calls.log}"
	# Re-run this script inside the new namespace; the marker argument
	# (not an environment variable, which children inherit) says so.
	exec unshare --mount --propagation private "$0" "$INSIDE" "$@"
fi
shift

# Bind our helper over every mount.nfs the system has (they are often one
# file reached through /sbin -> /usr/sbin and mount.nfs4 -> mount.nfs).
done_list=" "
for helper in /sbin/mount.nfs /usr/sbin/mount.nfs /sbin/mount.nfs4 /usr/sbin/mount.nfs4; do
	[ -e "$helper" ] || continue
	real=$(readlink -f "$helper")
	case "$done_list" in *" $real "*) continue ;; esac
	mount --bind "$HERE/mount.nfs" "$real" || die "cannot bind $HERE/mount.nfs over $real"
	done_list="$done_list$real "
done
[ "$done_list" != " " ] || die "no mount.nfs to stand in for (it must exist to be bound over): apt-get install nfs-common"

exec "$@"
