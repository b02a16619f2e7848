#!/usr/bin/env bash
# run.sh [go test flags...] — the multi-node end-to-end run (make e2e-multinode):
#   1. test/cluster/bring-up.sh with STOWAGE_NODES (default 3): node 1 and workers 2..N, each its own
#      kubelet and containerd, then Stowage from charts/stowage with test/e2e/values-cluster.yaml
#      and this directory's values.yaml
#   2. go test ./test/e2e/multinode/... (extra arguments go to go test, e.g. -run TestDrain)
# and always tears the cluster down at the end (test/cluster/down.sh), unless KEEP_CLUSTER=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cd "$repo"
export STOWAGE_NODES=${STOWAGE_NODES:-3}

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

step "bring-up of $STOWAGE_NODES nodes (test/cluster/bring-up.sh)"
test/cluster/bring-up.sh --binaries needed --install --values "$here/values.yaml"
# shellcheck disable=SC1091
. test/cluster/env.sh

step "go test ./test/e2e/multinode/..."
rc=0
go test ./test/e2e/multinode/... -count=1 -v -timeout 30m "$@" || rc=1
if [ $rc = 0 ]; then step "all passed"; else step "FAILED (see above)"; fi
exit $rc
