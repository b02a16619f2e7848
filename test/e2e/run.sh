#!/usr/bin/env bash
# run.sh [go test flags...] — the whole end-to-end run on a real single-node cluster:
#   1. test/cluster/bring-up.sh --binaries all --install: Debian packages, every cached binary
#      (e2e.test and agnhost too), the cluster with its NFS share, the images and Stowage from
#      charts/stowage with test/e2e/values-cluster.yaml
#   2. go test ./test/e2e/ (extra arguments go to go test, e.g. -run TestExample)
#   3. Kubernetes' External Storage suite (test/e2e/storage/run.sh)
# and always tears the cluster down at the end (test/cluster/down.sh), unless KEEP_CLUSTER=1.
# Env: KEEP_CLUSTER=1 keep the cluster (and Stowage) running afterwards; SKIP_STORAGE_SUITE=1 skip 3;
#      SKIP_GO_TESTS=1 skip 2.
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

step "bring-up (test/cluster/bring-up.sh)"
test/cluster/bring-up.sh --binaries all --install
# shellcheck disable=SC1091
. test/cluster/env.sh

rc=0
if [ "${SKIP_GO_TESTS:-}" != 1 ]; then
  step "go test ./test/e2e/"
  # Only the single-node package: test/e2e/multinode needs STOWAGE_NODES=3 (make e2e-multinode).
  go test ./test/e2e/ -count=1 -v -timeout 40m "$@" || rc=1
fi
if [ "${SKIP_STORAGE_SUITE:-}" != 1 ]; then
  step "External Storage suite"
  test/e2e/storage/run.sh || rc=1
fi
if [ $rc = 0 ]; then step "all passed"; else step "FAILED (see above)"; fi
exit $rc
