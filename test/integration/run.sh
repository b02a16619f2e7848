#!/usr/bin/env bash
# run.sh [go test flags...] — the provisioner integration tests: starts a control plane (etcd,
# kube-apiserver, kube-controller-manager; no kubelet, no scheduler) and NFS-Ganesha, runs
# `go test ./test/integration/...` against them with the real stowage binary, and stops both.
# Extra arguments go to `go test` (e.g. -run TestReclaim).
# Env:
#   STOWAGE_IT_CP_DIR / STOWAGE_IT_CP_PORT  this run's control plane (default /tmp/stowage-it-cp,
#                                            17443), separate from other engineers' control planes
#   STOWAGE_NFS_ROOT, STOWAGE_NFS_BIND      which NFS-Ganesha to use (test/nfs/ganesha.sh ensure):
#                                            unset, a running one (another run's, or the test
#                                            cluster's) is reused and left running; otherwise
#                                            one is started here and stopped at the end
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

cleanup() {
  local rc=$?
  "$root/test/cluster/control-plane.sh" down >/dev/null 2>&1 || true
  "$ganesha" release >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT INT TERM

kubeconfig=$("$root/test/cluster/control-plane.sh" up)
# STOWAGE_NFS_* of the server to use, and STOWAGE_NFS_STARTED for release. (Assigned first:
# `eval "$(...)"` alone would hide a failure from set -e.)
nfs_env=$("$ganesha" ensure)
set -a
eval "$nfs_env"
set +a

export STOWAGE_TEST_KUBECONFIG=$kubeconfig
export STOWAGE_TEST_NFS_SERVER=$STOWAGE_NFS_SERVER STOWAGE_TEST_NFS_SHARE=$STOWAGE_NFS_SHARE
export STOWAGE_TEST_NFS_DIR=$STOWAGE_NFS_EXPORT_DIR STOWAGE_TEST_NFS_SMALL_SHARE=$STOWAGE_NFS_SMALL_SHARE

cd "$root"
go test ./test/integration/... -count=1 -v -timeout 40m "$@"
