#!/usr/bin/env bash
# run.sh [go test flags...] — the provisioner integration tests: starts a control plane (etcd,
# kube-apiserver, kube-controller-manager; no kubelet, no scheduler) and NFS-Ganesha, runs
# `go test ./test/integration/...` against them with the real stowage binary, and stops both.
# Extra arguments go to `go test` (e.g. -run TestReclaim).
# Env:
#   STOWAGE_IT_CP_DIR / STOWAGE_IT_CP_PORT  this run's control plane (default /tmp/stowage-it-cp,
#                                            17443), separate from other engineers' control planes
#   STOWAGE_NFS_ROOT                        ganesha's state (default /tmp/stowage-nfs). Only one
#                                            ganesha can own port 2049 and the rpcbind entries: one
#                                            already running (this script's or another run's, e.g.
#                                            test/cluster/up.sh) is reused through its config file
#                                            and left running
#   STOWAGE_TEST_LOGS                       keep the stowage process logs here
#   STOWAGE_BIN                             test this binary instead of building ./cmd/stowage
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

export STOWAGE_CP_DIR=${STOWAGE_IT_CP_DIR:-/tmp/stowage-it-cp}
export STOWAGE_CP_PORT=${STOWAGE_IT_CP_PORT:-17443}
# The PV binder makes about six API writes per claim; the component's default 20 qps makes it
# the bottleneck of every test that creates a handful of claims at once.
export KCM_QPS=${KCM_QPS:-100} KCM_BURST=${KCM_BURST:-200}
ganesha=$root/test/nfs/ganesha.sh
started_ganesha=

cleanup() {
  local rc=$?
  "$root/test/cluster/control-plane.sh" down >/dev/null 2>&1 || true
  if [ -n "$started_ganesha" ]; then "$ganesha" stop >/dev/null 2>&1 || true; fi
  exit $rc
}
trap cleanup EXIT INT TERM

# export_of CONF PSEUDO — the directory behind export PSEUDO in a ganesha config.
export_of() {
  awk -v want="$2;" '/^EXPORT/ { path = "" } $1 == "Path" { path = $3; sub(/;$/, "", path) }
    $1 == "Pseudo" && $3 == want { print path }' "$1"
}

# A running ganesha: serve from it. Its config says where and what.
reuse_ganesha() {
  local pid conf
  pid=$(pgrep -xo ganesha.nfsd) || return 1
  conf=$(tr '\0' '\n' <"/proc/$pid/cmdline" | awk 'prev == "-f" { print } { prev = $0 }')
  [ -r "$conf" ] || return 1
  nfs_server=$(awk '$1 == "Bind_Addr" { a = $3; sub(/;$/, "", a); print a }' "$conf")
  case "${nfs_server:-0.0.0.0}" in 0.0.0.0 | ::) nfs_server=127.0.0.1 ;; esac
  nfs_dir=$(export_of "$conf" /export)
  nfs_small=$(export_of "$conf" /small)
  [ -n "$nfs_dir" ] && echo "run.sh: reusing the running NFS server (pid $pid, $conf): $nfs_server:/export = $nfs_dir" >&2
}

kubeconfig=$("$root/test/cluster/control-plane.sh" up)
nfs_server=127.0.0.1 nfs_small=
if ! reuse_ganesha; then
  started_ganesha=1
  nfs_dir=$("$ganesha" start)
  [ -d "$(dirname "$nfs_dir")/small" ] && nfs_small=$(dirname "$nfs_dir")/small
fi

export STOWAGE_TEST_KUBECONFIG=$kubeconfig
export STOWAGE_TEST_NFS_SERVER=$nfs_server STOWAGE_TEST_NFS_SHARE=/export STOWAGE_TEST_NFS_DIR=$nfs_dir
if [ -n "$nfs_small" ] && mountpoint -q "$nfs_small"; then
  export STOWAGE_TEST_NFS_SMALL_SHARE=/small
fi

cd "$root"
go test ./test/integration/... -count=1 -v -timeout 40m "$@"
