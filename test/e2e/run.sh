#!/usr/bin/env bash
# run.sh [go test flags...] — the whole end-to-end run on a real single-node cluster:
#   1. Debian packages and cached Kubernetes binaries (test/cluster/install-deps.sh, build-binaries.sh)
#   2. the cluster (test/cluster/up.sh; a no-op when it is already up) with its NFS share
#   3. images, including localhost/stowage:dev from the working tree (test/cluster/images.sh)
#   4. Stowage from charts/stowage with test/e2e/values-cluster.yaml (test/e2e/install.sh)
#   5. go test ./test/e2e/... (extra arguments go to go test, e.g. -run TestExample)
#   6. Kubernetes' External Storage suite (test/e2e/storage/run.sh)
# and always tears the cluster down at the end (test/cluster/down.sh), unless KEEP_CLUSTER=1.
# Env: KEEP_CLUSTER=1 keep the cluster (and Stowage) running afterwards; SKIP_STORAGE_SUITE=1 skip 6;
#      SKIP_GO_TESTS=1 skip 5.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

t0=$SECONDS
step() { echo "== [$((SECONDS - t0))s] $*"; }

# shellcheck disable=SC2317 # called from the EXIT trap
teardown() {
  local rc=$?
  if [ "${KEEP_CLUSTER:-}" = 1 ]; then
    step "KEEP_CLUSTER=1: the cluster stays up (. test/cluster/env.sh; test/cluster/down.sh to remove it)"
  else
    step "tearing the cluster down"
    test/cluster/down.sh --quiet || echo "run.sh: test/cluster/down.sh failed" >&2
  fi
  step "done: exit $rc"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

step "dependencies and cached binaries"
test/cluster/install-deps.sh
test/cluster/build-binaries.sh

step "cluster"
test/cluster/up.sh >/dev/null
# shellcheck disable=SC1091
. test/cluster/env.sh
if [ -z "${STOWAGE_NFS_SERVER:-}" ]; then
  echo "run.sh: the cluster came up without its NFS share; NFS-Ganesha said:" >&2
  cat "$STOWAGE_CLUSTER_DIR/logs/ganesha-start.log" >&2 || true
  # The usual cause: another ganesha (test/nfs/ganesha.sh of `make sanity`, the integration tests or
  # the benchmarks) owns port 2049; only one can run per machine.
  ss -Hltnp 'sport = :2049' >&2 || true
  exit 1
fi

step "images"
test/cluster/images.sh

step "helm install stowage"
test/e2e/install.sh

rc=0
if [ "${SKIP_GO_TESTS:-}" != 1 ]; then
  step "go test ./test/e2e/..."
  go test ./test/e2e/... -count=1 -v -timeout 40m "$@" || rc=1
fi
if [ "${SKIP_STORAGE_SUITE:-}" != 1 ]; then
  step "External Storage suite"
  test/e2e/storage/run.sh || rc=1
fi
if [ $rc = 0 ]; then step "all passed"; else step "FAILED (see above)"; fi
exit $rc
